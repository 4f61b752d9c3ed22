"""pluggy hook implementations of the DDPM plugin: the ``train ddpm`` command and the demo weights.

Import-light on purpose: no torch, no plugin modules; the paths are computed from this file.
"""

from __future__ import annotations

from pathlib import Path

from diffusers_hub.hookspecs import demo_folder, provides

__all__ = ["DEMO_FOLDER"]

#: The embedded demo pipeline folder (a DDPM trained on the builtin 8x8 digits at 16x16).
DEMO_FOLDER = Path(__file__).resolve().parent / "demo"

#: ``diffusers-hub train ddpm`` runs ``diffusers_hub_ddpm.train:main(argv)``.
diffusers_hub_trainers = provides({"ddpm": "diffusers_hub_ddpm.train:main"})
#: The shipped demo pipeline, under the pipeline's entry-point name (any of its names finds it).
diffusers_hub_demo_checkpoints = demo_folder("ddpm", DEMO_FOLDER)
