"""pluggy hook implementations of the DDIM plugin: DDIM sampling of the DDPM demo weights.

Import-light on purpose: no torch; the demo folder is the ddpm plugin's, found by path.
"""

from __future__ import annotations

from diffusers_hub_ddpm.hooks import DEMO_FOLDER

from diffusers_hub.hookspecs import demo_folder

#: ``diffusers-hub generate ddim`` samples the DDPM demo weights with DDIM.
diffusers_hub_demo_checkpoints = demo_folder("ddim", DEMO_FOLDER)
