"""diffusers-hub-pndm: the PNDM scheduler (PRK warm-up + PLMS) as a diffusers-hub plugin.

The scheduler module (and torch) is imported on first attribute access, so that listing plugins
stays cheap.

References:
    Liu, Ren, Lin, Zhao 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds",
    arXiv:2202.09778.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PNDMScheduler", "PNDMSchedulerConfig", "PNDMState"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        from diffusers_hub_pndm import scheduler

        return getattr(scheduler, name)
    raise AttributeError(f"module 'diffusers_hub_pndm' has no attribute {name!r}")
