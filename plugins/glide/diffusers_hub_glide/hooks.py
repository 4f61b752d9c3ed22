"""pluggy hook implementations of the GLIDE plugin: ``train glide``, ``convert glide``, demo weights.

Import-light on purpose: no torch, no plugin modules; the paths are computed from this file.
"""

from __future__ import annotations

from pathlib import Path

from diffusers_hub.hookspecs import hookimpl

__all__ = [
    "DEMO_FOLDER",
    "diffusers_hub_converters",
    "diffusers_hub_demo_checkpoints",
    "diffusers_hub_trainers",
]

#: The embedded demo pipeline folder (a tiny 32 -> 64 px GLIDE trained on the captioned shapes).
DEMO_FOLDER = Path(__file__).resolve().parent / "demo"


@hookimpl
def diffusers_hub_trainers() -> dict[str, str]:
    """``diffusers-hub train glide`` runs ``diffusers_hub_glide.train:main(argv)``."""
    return {"glide": "diffusers_hub_glide.train:main"}


@hookimpl
def diffusers_hub_converters() -> dict[str, str]:
    """``diffusers-hub convert glide`` turns the release's ``base.pt`` / ``upsample.pt`` into a
    pipeline folder."""
    return {"glide": "diffusers_hub_glide.convert:main"}


@hookimpl
def diffusers_hub_demo_checkpoints() -> dict[str, str]:
    """The shipped demo pipeline, under the pipeline's short name."""
    if not (DEMO_FOLDER / "model_index.json").is_file():
        return {}
    return {"glide": str(DEMO_FOLDER)}
