"""pluggy hook implementations of the DDPM plugin: the ``train ddpm`` command and the demo weights.

Import-light on purpose: no torch, no plugin modules; the paths are computed from this file.
"""

from __future__ import annotations

from pathlib import Path

from diffusers_hub.hookspecs import hookimpl

__all__ = ["DEMO_FOLDER", "diffusers_hub_demo_checkpoints", "diffusers_hub_trainers"]

#: The embedded demo pipeline folder (a DDPM trained on the builtin 8x8 digits at 16x16).
DEMO_FOLDER = Path(__file__).resolve().parent / "demo"


@hookimpl
def diffusers_hub_trainers() -> dict[str, str]:
    """``diffusers-hub train ddpm`` runs ``diffusers_hub_ddpm.train:main(argv)``."""
    return {"ddpm": "diffusers_hub_ddpm.train:main"}


@hookimpl
def diffusers_hub_demo_checkpoints() -> dict[str, str]:
    """The shipped demo pipeline, under the pipeline's entry-point name (any of its names finds it)."""
    if not (DEMO_FOLDER / "model_index.json").is_file():
        return {}
    return {"ddpm": str(DEMO_FOLDER)}
