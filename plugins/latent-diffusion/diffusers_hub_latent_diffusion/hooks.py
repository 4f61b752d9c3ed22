"""pluggy hook implementations of the latent-diffusion plugin: ``train`` command and demo weights.

Import-light on purpose: no torch, no plugin modules; the paths are computed from this file.
"""

from __future__ import annotations

from pathlib import Path

from diffusers_hub.hookspecs import demo_folder, provides

__all__ = ["DEMO_FOLDER"]

#: The embedded demo pipeline folder (a tiny text-to-image LDM trained on the captioned shapes).
DEMO_FOLDER = Path(__file__).resolve().parent / "demo"

#: ``diffusers-hub train latent-diffusion`` runs ``diffusers_hub_latent_diffusion.train:main``.
diffusers_hub_trainers = provides({"latent-diffusion": "diffusers_hub_latent_diffusion.train:main"})
#: The shipped demo pipeline, under the pipeline's entry-point name (any of its names finds it).
diffusers_hub_demo_checkpoints = demo_folder("latent-diffusion", DEMO_FOLDER)
