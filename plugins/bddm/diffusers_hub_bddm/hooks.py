"""pluggy hook implementations of the BDDM plugin: ``train bddm`` and ``convert bddm``.

Import-light on purpose: no torch, no plugin modules; the paths are computed from this file.
"""

from __future__ import annotations

from diffusers_hub.hookspecs import hookimpl

__all__ = ["diffusers_hub_converters", "diffusers_hub_trainers"]


@hookimpl
def diffusers_hub_trainers() -> dict[str, str]:
    """``diffusers-hub train bddm`` runs ``diffusers_hub_bddm.train:main(argv)``."""
    return {"bddm": "diffusers_hub_bddm.train:main"}


@hookimpl
def diffusers_hub_converters() -> dict[str, str]:
    """``diffusers-hub convert bddm`` turns an original BDDM checkpoint into a pipeline folder."""
    return {"bddm": "diffusers_hub_bddm.convert:main"}
