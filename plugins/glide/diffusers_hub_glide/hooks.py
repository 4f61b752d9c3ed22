"""pluggy hook implementations of the GLIDE plugin: ``train glide``, ``convert glide``, demo weights.

Import-light on purpose: no torch, no plugin modules; the paths are computed from this file.
"""

from __future__ import annotations

from pathlib import Path

from diffusers_hub.hookspecs import demo_folder, provides

__all__ = ["DEMO_FOLDER"]

#: The embedded demo pipeline folder (a tiny 32 -> 64 px GLIDE trained on the captioned shapes).
DEMO_FOLDER = Path(__file__).resolve().parent / "demo"

#: ``diffusers-hub train glide`` runs ``diffusers_hub_glide.train:main(argv)``.
diffusers_hub_trainers = provides({"glide": "diffusers_hub_glide.train:main"})
#: ``diffusers-hub convert glide`` turns the release's ``base.pt`` / ``upsample.pt`` into a
#: pipeline folder.
diffusers_hub_converters = provides({"glide": "diffusers_hub_glide.convert:main"})
#: The shipped demo pipeline, under the pipeline's short name.
diffusers_hub_demo_checkpoints = demo_folder("glide", DEMO_FOLDER)
