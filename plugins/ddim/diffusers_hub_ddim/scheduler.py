"""DDIMScheduler and DDIMInverseScheduler: the non-Markovian sampler of Song et al. and its inverse.

A DDIM step from timestep ``t`` to ``t'`` (eq. 12, arXiv:2010.02502):

$$
x_{t'} = \\sqrt{\\bar\\alpha_{t'}}\\,\\hat x_0
  + \\sqrt{1 - \\bar\\alpha_{t'} - \\sigma_t^2}\\,\\hat\\epsilon + \\sigma_t z,
\\qquad \\sigma_t = \\eta \\sqrt{\\frac{1-\\bar\\alpha_{t'}}{1-\\bar\\alpha_t}}
  \\sqrt{1 - \\frac{\\bar\\alpha_t}{\\bar\\alpha_{t'}}}\\quad\\text{(eq. 16)}
$$

``eta = 0`` is deterministic (DDIM); ``eta = 1`` matches DDPM's posterior variance. The previous
timestep ``t'`` is ``t - T // n`` after ``set_timesteps(n)`` (the diffusers-format convention,
which for ``leading`` spacing is exactly the next timestep of the schedule), or the next entry of an
explicit timestep list. Either way ``step`` depends only on its arguments and the schedule.

References:
    Song, Meng & Ermon 2020, "Denoising Diffusion Implicit Models", arXiv:2010.02502.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from diffusers_hub import schedules
from diffusers_hub.noise import step_noise
from diffusers_hub.scheduling import (
    ArrayLike,
    GeneratorLike,
    SchedulerConfig,
    SchedulerMixin,
    SchedulerOutput,
    StepNoise,
    as_tensor,
    step_output,
    timestep_to_int,
)

__all__ = [
    "DDIMInverseScheduler",
    "DDIMInverseSchedulerConfig",
    "DDIMScheduler",
    "DDIMSchedulerConfig",
    "ddim_inverse_step",
    "ddim_sigma",
    "ddim_step",
]


class DDIMSchedulerConfig(SchedulerConfig):
    """DDIM scheduler fields.

    Attributes:
        set_alpha_to_one: at the last step, use $\\bar\\alpha = 1$ as the "previous" noise
            level (a fully clean end); when False, use $\\bar\\alpha_0$ (latent diffusion).
    """

    set_alpha_to_one: bool = True


class DDIMInverseSchedulerConfig(DDIMSchedulerConfig):
    """DDIM inversion fields (the same as DDIM's; ``set_alpha_to_one`` picks the starting level)."""


def ddim_sigma(alpha_bar_t: float, alpha_bar_prev: float, eta: float) -> float:
    """$\\sigma_t(\\eta)$ of eq. 16, arXiv:2010.02502.

    Args:
        alpha_bar_t: $\\bar\\alpha_t$.
        alpha_bar_prev: $\\bar\\alpha_{t'}$.
        eta: 0 for DDIM, 1 for the DDPM posterior variance.
    """
    step_beta = 1.0 - schedules.step_alpha(alpha_bar_t, alpha_bar_prev)
    variance = (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t) * step_beta
    return eta * math.sqrt(variance)  # eq. 16, arXiv:2010.02502


def ddim_step(
    x0: torch.Tensor,
    eps: torch.Tensor,
    alpha_bar_prev: float,
    sigma: float,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """The DDIM update $x_{t'}$ from the predictions $\\hat x_0$ and $\\hat\\epsilon$.

    Args:
        x0: (B, C, ...) predicted clean sample.
        eps: (B, C, ...) predicted noise (the "direction pointing to x_t").
        alpha_bar_prev: $\\bar\\alpha_{t'}$.
        sigma: $\\sigma_t$ (:func:`ddim_sigma`).
        noise: (B, C, ...) standard normal noise z; required when sigma > 0.

    Returns:
        (B, C, ...) x_{t'}.

    References:
        eq. 12, arXiv:2010.02502.
    """
    direction = math.sqrt(1.0 - alpha_bar_prev - sigma**2)
    prev = torch.add(x0 * math.sqrt(alpha_bar_prev), eps, alpha=direction)  # eq. 12
    if sigma > 0:
        if noise is None:
            raise ValueError("ddim_step needs noise when sigma > 0")
        prev = prev.add_(noise, alpha=sigma)
    return prev


def ddim_inverse_step(x0: torch.Tensor, eps: torch.Tensor, alpha_bar_next: float) -> torch.Tensor:
    """Deterministic DDIM step towards more noise: eq. 12 with $\\eta = 0$, run forward.

    Args:
        x0: (B, C, ...) predicted clean sample.
        eps: (B, C, ...) predicted noise.
        alpha_bar_next: $\\bar\\alpha$ of the noisier timestep.

    References:
        eq. 12 with eta = 0 (and its ODE form, eq. 13), arXiv:2010.02502.
    """
    return torch.add(x0 * math.sqrt(alpha_bar_next), eps, alpha=math.sqrt(1.0 - alpha_bar_next))


class _CleanEnd(SchedulerMixin):
    """The noise level past the clean end of the schedule that DDIM and its inverse share."""

    config: DDIMSchedulerConfig

    @property
    def final_alpha_cumprod(self) -> float:
        """$\\bar\\alpha$ used past the last timestep: 1, or $\\bar\\alpha_0$."""
        return 1.0 if self.config.set_alpha_to_one else self._alpha_bar[0]

    def alpha_bar(self, timestep: int) -> float:
        """$\\bar\\alpha_t$ as a float; ``final_alpha_cumprod`` for t < 0."""
        return self.final_alpha_cumprod if timestep < 0 else self._alpha_bar[timestep]


class DDIMScheduler(_CleanEnd):
    """Denoising diffusion implicit model sampling: 10-100 steps, deterministic at eta = 0.

    Reads any DDPM-family ``scheduler_config.json`` (``DDIMScheduler.from_config(ddpm.config)``).
    The latent-diffusion setting (``scaled_linear`` 0.00085-0.012, ``steps_offset=1``,
    ``set_alpha_to_one=False``, ``clip_sample=False``) gives LDM's timesteps 981, 961, ..., 1 for 50
    steps.

    Example:
        >>> import torch
        >>> scheduler = DDIMScheduler(num_train_timesteps=100)
        >>> scheduler.set_timesteps(10)
        >>> x = torch.randn(1, 3, 8, 8, generator=torch.manual_seed(0))
        >>> for t in scheduler.timesteps:
        ...     eps = torch.zeros_like(x)  # a model's noise prediction
        ...     x = scheduler.step(eps, t, x, eta=0.0).prev_sample
        >>> tuple(x.shape)
        (1, 3, 8, 8)

    References:
        Song, Meng & Ermon 2020, arXiv:2010.02502 (eq. 12 and 16).
    """

    config_class = DDIMSchedulerConfig
    config: DDIMSchedulerConfig
    compatibles: ClassVar[tuple[str, ...]] = ("DDIMScheduler", "DDPMScheduler")

    def previous_timestep(self, timestep: int) -> int:
        """``t - T // n`` after ``set_timesteps(n)``; the next entry of an explicit list.

        Raises:
            ValueError: ``set_timesteps`` has not been called, or (explicit lists) ``timestep``
                is not in the list.
        """
        if self.num_inference_steps is None:
            raise ValueError(
                f"{type(self).__name__}.step needs a schedule: call set_timesteps() first"
            )
        if self.custom_timesteps:
            return super().previous_timestep(timestep)
        self.check_timestep(timestep)
        return timestep - self.config.num_train_timesteps // self.num_inference_steps

    def get_variance(self, timestep: int | torch.Tensor) -> torch.Tensor:
        """$\\sigma_t^2$ at eta = 1 for the step from ``timestep`` (eq. 16, arXiv:2010.02502).

        Returns:
            0-dim float32 tensor; scale its square root by eta for other etas.
        """
        t = timestep_to_int(timestep)
        sigma = ddim_sigma(self.alpha_bar(t), self.alpha_bar(self.previous_timestep(t)), 1.0)
        return torch.tensor(sigma**2, dtype=torch.float32)

    def step(  # type: ignore[override]
        self,
        model_output: ArrayLike,
        timestep: int | torch.Tensor,
        sample: ArrayLike,
        eta: float = 0.0,
        use_clipped_model_output: bool = False,
        generator: GeneratorLike = None,
        variance_noise: ArrayLike | None = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple[ArrayLike, ArrayLike]:
        """One DDIM step from ``timestep`` to the previous timestep (eq. 12, arXiv:2010.02502).

        Notation (code name: paper symbol): ``alpha_bar_t``: $\\alpha_t$ in the paper
        ($\\bar\\alpha_t$ here); ``alpha_bar_prev``: $\\alpha_{t-1}$; ``x0``:
        "predicted x_0"; ``eps``: $\\epsilon_\\theta(x_t)$; ``sigma``: $\\sigma_t(\\eta)$.

        Args:
            model_output: (B, C, ...) the model output at ``timestep``.
            timestep: the current timestep t (int or 0-dim tensor).
            sample: (B, C, ...) the current sample x_t.
            eta: noise weight: 0 deterministic, 1 DDPM-like.
            use_clipped_model_output: recompute $\\hat\\epsilon$ from the clipped (or
                thresholded) $\\hat x_0$.
            generator: torch generator(s) or numpy generator for the noise (eta > 0).
            variance_noise: (B, C, ...) noise z to use instead of drawing it (eta > 0).
            return_dict: return a :class:`SchedulerOutput` (else a tuple).

        Returns:
            ``prev_sample`` and ``pred_original_sample``, the same type as ``sample``.
        """
        c = self.config
        x_t, was_numpy = as_tensor(sample)
        out = as_tensor(model_output)[0]
        t = timestep_to_int(timestep)
        prev_t = self.previous_timestep(t)
        alpha_bar_t = self._alpha_bar[t]
        alpha_bar_prev = self.alpha_bar(prev_t)

        x0 = schedules.predict_x0(out, x_t, alpha_bar_t, c.prediction_type)
        eps = schedules.predict_eps(out, x_t, alpha_bar_t, c.prediction_type)
        x0 = self.apply_x0_constraints(x0)
        if use_clipped_model_output:
            eps = schedules.eps_from_x0(x0, x_t, alpha_bar_t)

        sigma = ddim_sigma(alpha_bar_t, alpha_bar_prev, eta)  # eq. 16
        noise = None
        if eta > 0:
            noise = step_noise(generator, variance_noise, out)
        prev_sample = ddim_step(x0, eps, alpha_bar_prev, sigma, noise)  # eq. 12
        return step_output(prev_sample, x0, was_numpy, return_dict)


class DDIMInverseScheduler(_CleanEnd):
    """DDIM inversion: the deterministic map from a clean sample x_0 to its noise x_T.

    ``timesteps`` run upwards (``set_timesteps(n)`` gives the DDIM schedule reversed). ``step``
    receives the model output evaluated at the *target* timestep ``t`` and the sample at the
    level below it, ``t - T // n`` ($\\bar\\alpha = 1$ or $\\bar\\alpha_0$ before the
    first step, per ``set_alpha_to_one``), as in the diffusers format. Sampling the result with
    :class:`DDIMScheduler` at eta = 0 and the same config and n reconstructs x_0 closely.

    Example:
        >>> import torch
        >>> inverse = DDIMInverseScheduler(num_train_timesteps=100, clip_sample=False)
        >>> inverse.set_timesteps(10)
        >>> x = torch.zeros(1, 3, 8, 8)
        >>> for t in inverse.timesteps:
        ...     eps = torch.ones_like(x)  # a model's noise prediction at t
        ...     x = inverse.step(eps, t, x).prev_sample
        >>> inverse.timesteps.tolist()[:3] == [0, 10, 20]
        True

    References:
        Song, Meng & Ermon 2020, arXiv:2010.02502 (eq. 12 with eta = 0 and section 4.3);
        Dhariwal & Nichol 2021, arXiv:2105.05233 (appendix F).
    """

    config_class = DDIMInverseSchedulerConfig
    config: DDIMInverseSchedulerConfig
    compatibles: ClassVar[tuple[str, ...]] = ("DDIMScheduler", "DDPMScheduler")
    timesteps_descending: ClassVar[bool] = False

    #: $\\bar\\alpha$ of the clean start: 1, or $\\bar\\alpha_0$ (where DDIM sampling ends).
    initial_alpha_cumprod = _CleanEnd.final_alpha_cumprod

    def current_timestep(self, timestep: int) -> int:
        """The level the sample is at when ``step`` moves it to ``timestep``.

        ``min(t - T // n, T - 1)`` after ``set_timesteps(n)``; the previous entry of an explicit
        (ascending) list, or -1 for its first entry.

        Raises:
            ValueError: no schedule set, or ``timestep`` not in an explicit list.
        """
        if self.num_inference_steps is None:
            raise ValueError("DDIMInverseScheduler.step needs a schedule: call set_timesteps()")
        if self.custom_timesteps:
            index = self._position.get(timestep)
            if index is None:
                raise ValueError(f"timestep {timestep} is not in the schedule set by set_timesteps")
            return self._timestep_list[index - 1] if index > 0 else -1
        step = self.config.num_train_timesteps // self.num_inference_steps
        return min(timestep - step, self.config.num_train_timesteps - 1)

    def step_tensors(
        self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, noise: StepNoise
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One inversion step: from the level below ``timestep`` up to ``timestep`` (``step``
        returns it as ``prev_sample``, named like every scheduler's output, though it is the
        noisier sample x_t, and ``pred_original_sample``).

        Args:
            model_output: (B, C, ...) the model output at ``timestep``.
            timestep: the target timestep t.
            sample: (B, C, ...) the sample at the level below t.
            noise: unused: inversion is deterministic.
        """
        del noise
        c = self.config
        alpha_bar_cur = self.alpha_bar(self.current_timestep(timestep))
        alpha_bar_next = self._alpha_bar[timestep]

        x0 = schedules.predict_x0(model_output, sample, alpha_bar_cur, c.prediction_type)
        eps = schedules.predict_eps(model_output, sample, alpha_bar_cur, c.prediction_type)
        if c.clip_sample:
            x0 = x0.clamp_(-c.clip_sample_range, c.clip_sample_range)
        return ddim_inverse_step(x0, eps, alpha_bar_next), x0
