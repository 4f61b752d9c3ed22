"""diffusers-hub-deis: the DEIS multistep scheduler as a diffusers-hub plugin.

Listing plugins reads only the package metadata; importing the package imports torch.

References:
    Zhang, Chen 2022, "Fast Sampling of Diffusion Models with Exponential Integrator",
    arXiv:2204.13902.
"""

from __future__ import annotations

from diffusers_hub_deis.scheduler import (
    DEISMultistepScheduler,
    DEISMultistepSchedulerConfig,
    DEISState,
)

__all__ = ["DEISMultistepScheduler", "DEISMultistepSchedulerConfig", "DEISState"]
__version__ = "0.1.0"
