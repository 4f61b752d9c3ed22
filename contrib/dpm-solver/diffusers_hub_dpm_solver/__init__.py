"""diffusers-hub-dpm-solver: the DPM-Solver++ multistep scheduler as a diffusers-hub plugin.

Listing plugins reads only the package metadata; importing the package imports torch.

References:
    Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
    Models", arXiv:2211.01095.
"""

from __future__ import annotations

from diffusers_hub_dpm_solver.scheduler import (
    DPMSolverMultistepScheduler,
    DPMSolverMultistepSchedulerConfig,
    DPMSolverState,
)

__all__ = ["DPMSolverMultistepScheduler", "DPMSolverMultistepSchedulerConfig", "DPMSolverState"]
__version__ = "0.1.0"
