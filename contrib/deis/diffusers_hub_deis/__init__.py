"""diffusers-hub-deis: the DEIS multistep scheduler as a diffusers-hub plugin.

The scheduler module (and torch) is imported on first attribute access, so that listing plugins
stays cheap.

References:
    Zhang, Chen 2022, "Fast Sampling of Diffusion Models with Exponential Integrator",
    arXiv:2204.13902.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEISMultistepScheduler", "DEISMultistepSchedulerConfig", "DEISState"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        from diffusers_hub_deis import scheduler

        return getattr(scheduler, name)
    raise AttributeError(f"module 'diffusers_hub_deis' has no attribute {name!r}")
