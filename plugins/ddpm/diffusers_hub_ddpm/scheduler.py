"""DDPMScheduler: ancestral sampling of Ho et al. 2020 with the variance choices of Nichol & Dhariwal.

One step draws $x_{t'} \\sim q(x_{t'} \\mid x_t, \\hat x_0)$, the Gaussian posterior between the
current timestep ``t`` and the previous timestep ``t'`` of the schedule (``t' = t - 1`` when all T
steps are used; the posterior is recomputed from $\\bar\\alpha$ for skipped steps).

References:
    Ho et al. 2020, "Denoising Diffusion Probabilistic Models", arXiv:2006.11239.
    Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models", arXiv:2102.09672.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch

from diffusers_hub import schedules
from diffusers_hub.scheduling import SchedulerConfig, SchedulerMixin, StepNoise, timestep_to_int

__all__ = [
    "DDPMScheduler",
    "DDPMSchedulerConfig",
    "VarianceType",
    "ddpm_log_variance",
    "ddpm_posterior_mean",
]

VarianceType = Literal[
    "fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range"
]


class DDPMSchedulerConfig(SchedulerConfig):
    """DDPM scheduler fields (``scheduler_config.json`` of the google/ddpm-* repos).

    Attributes:
        variance_type: the reverse-process variance: ``fixed_small`` (the posterior variance
            $\\tilde\\beta_t$), ``fixed_large`` ($\\beta_t$), their ``_log`` spellings
            (same variance, computed through logs), ``learned`` (the model's second half of channels
            is the variance itself) or ``learned_range`` (it interpolates the log variance between
            $\\tilde\\beta_t$ and $\\beta_t$, eq. 15 of arXiv:2102.09672).
    """

    variance_type: VarianceType = "fixed_small"


def ddpm_posterior_mean(
    x0: torch.Tensor, sample: torch.Tensor, alpha_bar_t: float, alpha_bar_prev: float
) -> torch.Tensor:
    """Mean of $q(x_{t'} \\mid x_t, x_0)$ for a step from ``t`` to an earlier ``t'``.

    With $\\alpha = \\bar\\alpha_t/\\bar\\alpha_{t'}$ and $\\beta = 1 - \\alpha$:
    $\\tilde\\mu = \\frac{\\sqrt{\\bar\\alpha_{t'}}\\beta}{1-\\bar\\alpha_t} x_0
    + \\frac{\\sqrt{\\alpha}(1-\\bar\\alpha_{t'})}{1-\\bar\\alpha_t} x_t$.

    Args:
        x0: (B, C, ...) predicted clean sample.
        sample: (B, C, ...) current sample x_t.
        alpha_bar_t: $\\bar\\alpha_t$.
        alpha_bar_prev: $\\bar\\alpha_{t'}$ (1 at the clean end).

    References:
        eq. 7, arXiv:2006.11239.
    """
    alpha = schedules.step_alpha(alpha_bar_t, alpha_bar_prev)
    beta = 1.0 - alpha
    coef_x0 = math.sqrt(alpha_bar_prev) * beta / (1.0 - alpha_bar_t)
    coef_xt = math.sqrt(alpha) * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t)
    return torch.add(x0 * coef_x0, sample, alpha=coef_xt)  # eq. 7, arXiv:2006.11239


def ddpm_log_variance(
    alpha_bar_t: float,
    alpha_bar_prev: float,
    variance_type: str,
    predicted_variance: torch.Tensor | None = None,
) -> float | torch.Tensor:
    """The log of the reverse-process variance for a step from ``t`` to ``t'``.

    $\\tilde\\beta = \\frac{1-\\bar\\alpha_{t'}}{1-\\bar\\alpha_t}\\beta$ (eq. 7, arXiv:2006.11239;
    floored at 1e-20) for the ``fixed_small`` types, $\\beta = 1 - \\bar\\alpha_t/\\bar\\alpha_{t'}$
    for the ``fixed_large`` types; ``learned_range`` gives
    $f \\log\\beta + (1-f)\\log\\tilde\\beta$ with $f = (v+1)/2$ (eq. 15,
    arXiv:2102.09672); ``learned`` takes ``predicted_variance`` as the variance itself.

    Args:
        alpha_bar_t: $\\bar\\alpha_t$.
        alpha_bar_prev: $\\bar\\alpha_{t'}$.
        variance_type: one of :data:`VarianceType`.
        predicted_variance: (B, C, ...) the model's variance channels (learned types only).

    Returns:
        a float, or a (B, C, ...) tensor for the learned types.
    """
    beta = 1.0 - schedules.step_alpha(alpha_bar_t, alpha_bar_prev)
    posterior = max((1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t) * beta, 1e-20)
    if variance_type in ("fixed_small", "fixed_small_log"):
        return math.log(posterior)
    if variance_type in ("fixed_large", "fixed_large_log"):
        return math.log(beta)
    if predicted_variance is None:
        raise ValueError(
            f"variance_type={variance_type!r} needs the model's variance: the model output must "
            "have twice the sample's channels"
        )
    if variance_type == "learned":
        return predicted_variance.log()
    if variance_type == "learned_range":
        frac = (predicted_variance + 1.0) / 2.0
        return frac * math.log(beta) + (1.0 - frac) * math.log(
            posterior
        )  # eq. 15, arXiv:2102.09672
    raise ValueError(f"unknown variance_type {variance_type!r}")


class DDPMScheduler(SchedulerMixin):
    """Denoising diffusion probabilistic model sampling (ancestral), T or fewer steps.

    ``step`` samples the posterior between the current timestep and the previous one of the
    schedule: with ``set_timesteps(n)`` for n < T the skipped steps are folded into one posterior
    (``alpha = alpha_bar_t / alpha_bar_prev``). Noise is drawn only for t > 0.

    Example:
        >>> import torch
        >>> scheduler = DDPMScheduler(num_train_timesteps=100)
        >>> scheduler.set_timesteps(10)
        >>> x = torch.randn(1, 3, 8, 8, generator=torch.manual_seed(0))
        >>> g = torch.manual_seed(1)
        >>> for t in scheduler.timesteps:
        ...     eps = torch.zeros_like(x)  # a model's noise prediction
        ...     x = scheduler.step(eps, t, x, generator=g).prev_sample
        >>> tuple(x.shape)
        (1, 3, 8, 8)

    References:
        Ho et al. 2020, arXiv:2006.11239 (Algorithm 2, eq. 7); Nichol & Dhariwal 2021,
        arXiv:2102.09672 (learned variances).
    """

    config_class = DDPMSchedulerConfig
    config: DDPMSchedulerConfig
    compatibles: ClassVar[tuple[str, ...]] = ("DDPMScheduler", "DDIMScheduler")

    @property
    def variance_type(self) -> str:
        """The configured variance type."""
        return self.config.variance_type

    def get_variance(
        self,
        timestep: int | torch.Tensor,
        predicted_variance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The variance $\\sigma_t^2$ that ``step`` adds at ``timestep`` (not its log).

        Works with the seed's manual loop: ``scheduler.get_variance(t).sqrt() * noise``.

        Args:
            timestep: a timestep of the schedule.
            predicted_variance: the model's variance channels (learned types).

        Returns:
            a 0-dim float32 tensor, or the (B, C, ...) variance for the learned types.
        """
        t = timestep_to_int(timestep)
        prev_t = self.previous_timestep(t)
        log_var = ddpm_log_variance(
            self.alpha_bar(t), self.alpha_bar(prev_t), self.config.variance_type, predicted_variance
        )
        if isinstance(log_var, torch.Tensor):
            return log_var.exp()
        return torch.tensor(math.exp(log_var), dtype=torch.float32)

    def step_tensors(
        self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, noise: StepNoise
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One ancestral step: predict $\\hat x_0$, then sample the posterior (``step`` calls it).

        Notation (code name: paper symbol): ``alpha_bar_t``: $\\bar\\alpha_t$;
        ``alpha_bar_prev``: $\\bar\\alpha_{t'}$ for the previous timestep ``prev_t`` of the
        schedule (1 past the end); ``x0``: $\\hat x_0$; ``log_var``: $\\log\\sigma_t^2$.

        Args:
            model_output: (B, C, ...) the model output at ``timestep``; (B, 2C, ...) for the
                learned variance types (prediction, then variance channels).
            timestep: the current timestep t.
            sample: (B, C, ...) the current sample x_t.
            noise: the step's noise (drawn only for t > 0).

        Returns:
            x_{t'} and $\\hat x_0$.

        References:
            Algorithm 2 and eq. 7, arXiv:2006.11239; eq. 15, arXiv:2102.09672.
        """
        c = self.config
        out, prev_t = model_output, self.previous_timestep(timestep)
        predicted_variance = None
        channels = sample.shape[1]
        if c.variance_type in ("learned", "learned_range") and out.shape[1] == 2 * channels:
            out, predicted_variance = out[:, :channels], out[:, channels:]

        alpha_bar_t = self.alpha_bar(timestep)
        alpha_bar_prev = self.alpha_bar(prev_t)
        x0 = schedules.predict_x0(out, sample, alpha_bar_t, c.prediction_type)
        x0 = self.apply_x0_constraints(x0)
        prev_sample = ddpm_posterior_mean(x0, sample, alpha_bar_t, alpha_bar_prev)

        if timestep > 0:
            z = noise(out)
            log_var = ddpm_log_variance(
                alpha_bar_t, alpha_bar_prev, c.variance_type, predicted_variance
            )
            if isinstance(log_var, torch.Tensor):
                std: Any = (0.5 * log_var).exp()
                prev_sample = prev_sample + std * z
            else:
                prev_sample = prev_sample.add_(z, alpha=math.exp(0.5 * log_var))
        return prev_sample, x0
