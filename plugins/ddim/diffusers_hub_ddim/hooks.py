"""pluggy hook implementations of the DDIM plugin: DDIM sampling of the DDPM demo weights.

Import-light on purpose: no torch; the demo folder is the ddpm plugin's, found by path.
"""

from __future__ import annotations

from diffusers_hub_ddpm.hooks import DEMO_FOLDER

from diffusers_hub.hookspecs import hookimpl

__all__ = ["diffusers_hub_demo_checkpoints"]


@hookimpl
def diffusers_hub_demo_checkpoints() -> dict[str, str]:
    """``diffusers-hub generate ddim`` samples the DDPM demo weights with DDIM."""
    if not (DEMO_FOLDER / "model_index.json").is_file():
        return {}
    return {"ddim": str(DEMO_FOLDER)}
