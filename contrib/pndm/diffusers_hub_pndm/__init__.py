"""diffusers-hub-pndm: the PNDM scheduler (PRK warm-up + PLMS) as a diffusers-hub plugin.

Listing plugins reads only the package metadata; importing the package imports torch.

References:
    Liu, Ren, Lin, Zhao 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds",
    arXiv:2202.09778.
"""

from __future__ import annotations

from diffusers_hub_pndm.scheduler import PNDMScheduler, PNDMSchedulerConfig, PNDMState

__all__ = ["PNDMScheduler", "PNDMSchedulerConfig", "PNDMState"]
__version__ = "0.1.0"
