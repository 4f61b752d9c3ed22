"""diffusers-hub-dpm-solver: the DPM-Solver++ multistep scheduler as a diffusers-hub plugin.

The scheduler module (and torch) is imported on first attribute access, so that listing plugins
stays cheap.

References:
    Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
    Models", arXiv:2211.01095.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DPMSolverMultistepScheduler", "DPMSolverMultistepSchedulerConfig", "DPMSolverState"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        from diffusers_hub_dpm_solver import scheduler

        return getattr(scheduler, name)
    raise AttributeError(f"module 'diffusers_hub_dpm_solver' has no attribute {name!r}")
