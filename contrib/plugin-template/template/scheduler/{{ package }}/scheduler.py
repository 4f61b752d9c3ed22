"""The plugin's example scheduler, a working starting point that you replace with your method.

It is a complete, working sampler: strided ancestral sampling with a stochasticity knob ``eta``
(the generalized update of DDIM). From the model output at timestep t it estimates the clean
sample x0, then moves to the previous scheduled timestep t' < t:

    x0      = (x_t - sqrt(1 - a_t) * eps) / sqrt(a_t)                       (eq. 9)
    sigma^2 = eta^2 * (1 - a_t') / (1 - a_t) * (1 - a_t / a_t')             (eq. 16)
    x_t'    = sqrt(a_t') * x0 + sqrt(1 - a_t' - sigma^2) * eps + sigma * z  (eq. 12)

with a_t the cumulative product of alphas ("alpha bar"), eps the predicted noise and z standard
normal noise. ``eta = 1`` is the DDPM posterior over the strided schedule, ``eta = 0`` is
deterministic.

Replace the body of ``step_tensors`` with your method; keep it a pure function of its arguments
and of the schedule set by ``set_timesteps`` (no hidden counters), so that a loop may start
mid-schedule or repeat a timestep. Everything else (``step`` itself, with its numpy and timestep
conversions, beta schedules, timestep spacings, ``add_noise``, training targets, config files)
comes from :class:`diffusers_hub.scheduling.SchedulerMixin`.

References:
    Song, Meng and Ermon 2020, "Denoising Diffusion Implicit Models", arXiv:2010.02502.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from diffusers_hub.schedules import eps_from_x0, predict_x0, step_alpha
from diffusers_hub.scheduling import SchedulerConfig, SchedulerMixin, StepNoise
from pydantic import Field

__all__ = [
    "{{ class_name }}",
    "{{ class_name }}Config",
    "ancestral_coefficients",
]


class {{ class_name }}Config(SchedulerConfig):
    """The scheduler's config: the shared scheduler fields plus ``eta``.

    Attributes:
        eta: stochasticity, 0 (deterministic) to 1 (DDPM posterior variance).
    """

    eta: float = Field(default=1.0, ge=0.0)


def ancestral_coefficients(
    alpha_bar_t: float, alpha_bar_prev: float, eta: float
) -> tuple[float, float, float]:
    """The coefficients of the update x_t' = c_x0 * x0 + c_eps * eps + sigma * z.

    Args:
        alpha_bar_t: cumulative alpha at the current timestep t.
        alpha_bar_prev: cumulative alpha at the previous timestep t' (1.0 past the end).
        eta: stochasticity (0 deterministic, 1 DDPM posterior).

    Returns:
        ``(c_x0, c_eps, sigma)``.

    References:
        eq. 12 and eq. 16, arXiv:2010.02502.
    """
    step_beta = 1.0 - step_alpha(alpha_bar_t, alpha_bar_prev)  # rounded like the format's alphas
    variance = (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t) * step_beta
    sigma = eta * math.sqrt(max(variance, 0.0))  # eq. 16
    c_eps = math.sqrt(max(1.0 - alpha_bar_prev - sigma**2, 0.0))  # eq. 12, "direction to x_t"
    return math.sqrt(alpha_bar_prev), c_eps, sigma


class {{ class_name }}(SchedulerMixin):
    """Strided ancestral sampling with stochasticity ``eta`` (the template's example scheduler).

    Example:
        >>> scheduler = {{ class_name }}(num_train_timesteps=100, eta=0.0)
        >>> scheduler.set_timesteps(10)
        >>> scheduler.timesteps[:3].tolist()
        [90, 80, 70]
    """

    config_class = {{ class_name }}Config
    config: {{ class_name }}Config
    #: schedulers whose configs this one reads (``from_config(ddpm.config)``)
    compatibles: ClassVar[tuple[str, ...]] = ("ddpm", "ddim")

    def step_tensors(
        self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, noise: StepNoise
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Move ``sample`` from ``timestep`` to the previous scheduled timestep.

        The inherited ``step`` calls this with tensors (numpy inputs converted, and converted
        back in its output) and the timestep as an int.

        Args:
            model_output: (B, C, ...) the model output at ``timestep``.
            timestep: the current timestep t (one of ``self.timesteps``).
            sample: (B, C, ...) the current sample x_t.
            noise: ``noise(like)`` is the noise z (from ``step``'s ``generator`` or its
                ``variance_noise``).

        Returns:
            ``(x_t', x0)``: the sample at the previous timestep and the clean-sample estimate,
            of the sample's dtype.

        References:
            eq. 9, eq. 12 and eq. 16, arXiv:2010.02502.
        """
        out = model_output.to(device=sample.device, dtype=sample.dtype)
        t_prev = self.previous_timestep(timestep)
        alpha_bar_t, alpha_bar_prev = self.alpha_bar(timestep), self.alpha_bar(t_prev)
        # the clean-sample estimate, clipped or thresholded as configured, and the noise
        # estimate consistent with it (eq. 9)
        x0 = predict_x0(out, sample, alpha_bar_t, self.config.prediction_type)
        x0 = self.apply_x0_constraints(x0)
        eps = eps_from_x0(x0, sample, alpha_bar_t)
        c_x0, c_eps, sigma = ancestral_coefficients(alpha_bar_t, alpha_bar_prev, self.config.eta)
        prev = c_x0 * x0 + c_eps * eps  # eq. 12
        if sigma > 0.0:
            prev = prev + sigma * noise(sample)
        return prev, x0
