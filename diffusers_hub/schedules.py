"""Schedule math shared by every scheduler: betas, cumulative alphas, timestep spacings.

The betas and cumulative alphas are the float32 values that a diffusers-format
``scheduler_config.json`` defines: the betas are generated in float32 (``linear`` as a float32
``linspace``), each ``alpha = 1 - beta`` is rounded to float32, and the running product is
accumulated in float64 and rounded to float32, which is what the checkpoints on the Hub were trained
and sampled with. The values are returned as float64 arrays (each one exactly a float32) and the
formulas downstream are evaluated in float64; :func:`float32_values` gives the same rounding for
schedules built elsewhere, and :func:`step_alpha` the rounding of a step's alpha.

The helpers at the bottom (:func:`predict_x0`, :func:`predict_eps`, :func:`velocity`,
:func:`dynamic_threshold`) work on torch tensors and are the pieces every discrete-time scheduler
repeats: turning a model output into a prediction of the clean sample and of the noise.

Notation used throughout: ``alpha_bar_t`` is $\\bar\\alpha_t = \\prod_{s \\le t}(1 - \\beta_s)$;
a noisy sample is $x_t = \\sqrt{\\bar\\alpha_t} x_0 + \\sqrt{1 - \\bar\\alpha_t}\\,\\epsilon$.

References:
    Ho et al. 2020, "Denoising Diffusion Probabilistic Models", arXiv:2006.11239.
    Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models", arXiv:2102.09672.
    Salimans & Ho 2022, "Progressive Distillation for Fast Sampling", arXiv:2202.00512.
    Saharia et al. 2022, "Photorealistic Text-to-Image Diffusion Models" (Imagen), arXiv:2205.11487.
    Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", arXiv:2305.08891.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch

from diffusers_hub.checks import check_int

__all__ = [
    "BetaSchedule",
    "PredictionType",
    "TimestepSpacing",
    "alphas",
    "alphas_cumprod",
    "betas_for_alpha_bar",
    "betas_for_schedule",
    "cosine_alpha_bar",
    "dynamic_threshold",
    "eps_from_x0",
    "float32_values",
    "predict_eps",
    "predict_x0",
    "rescale_zero_terminal_snr",
    "spaced_timesteps",
    "step_alpha",
    "validate_timesteps",
    "velocity",
]

BetaSchedule = Literal["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"]
TimestepSpacing = Literal["leading", "trailing", "linspace"]
PredictionType = Literal["epsilon", "sample", "v_prediction"]

Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]
AlphaBar = float | torch.Tensor


# --------------------------------------------------------------------------------------------------
# Beta schedules
# --------------------------------------------------------------------------------------------------


def cosine_alpha_bar(t: float) -> float:
    """The cosine schedule's $\\bar\\alpha(t)$ for continuous ``t`` in [0, 1].

    References:
        eq. 17, arXiv:2102.09672 (offset s = 0.008).
    """
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2


def betas_for_alpha_bar(num_train_timesteps: int, max_beta: float = 0.999) -> Float64Array:
    """Betas that discretize :func:`cosine_alpha_bar` over ``num_train_timesteps`` steps.

    ``beta_i = min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta)``.

    Returns:
        (T,) float64 betas.

    References:
        eq. 17 and section 3.2, arXiv:2102.09672.
    """
    steps = num_train_timesteps
    betas = [
        min(1.0 - cosine_alpha_bar((i + 1) / steps) / cosine_alpha_bar(i / steps), max_beta)
        for i in range(steps)
    ]
    return np.asarray(betas, dtype=np.float64)


def float32_values(values: npt.ArrayLike) -> Float64Array:
    """``values`` rounded to the nearest float32, held in a float64 array."""
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def betas_for_schedule(
    schedule: str,
    num_train_timesteps: int,
    beta_start: float,
    beta_end: float,
    trained_betas: Sequence[float] | npt.ArrayLike | None = None,
) -> Float64Array:
    """The betas of a named schedule: float32 values, as the diffusers format generates them.

    Args:
        schedule: ``"linear"`` (evenly spaced betas, arXiv:2006.11239), ``"scaled_linear"`` (evenly
            spaced square roots of betas, as latent diffusion uses), ``"squaredcos_cap_v2"`` (the
            cosine schedule of arXiv:2102.09672 with betas capped at 0.999) or ``"sigmoid"``
            (``sigmoid(linspace(-6, 6)) * (beta_end - beta_start) + beta_start``).
        num_train_timesteps: T, the number of training timesteps.
        beta_start: beta of the first timestep (linear, scaled_linear, sigmoid).
        beta_end: beta of the last timestep (linear, scaled_linear, sigmoid).
        trained_betas: explicit betas; when given they win over ``schedule`` and must hold T values.

    Returns:
        (T,) float64 array of float32 values. The evenly spaced grids are float32 ``torch.linspace``
        grids (a point can differ from the rounded float64 grid by one float32 spacing); the
        cosine betas are computed in float64 and rounded.

    Raises:
        ValueError: unknown schedule, T < 1, or trained betas of the wrong length or range.
    """
    if num_train_timesteps < 1:
        raise ValueError(f"num_train_timesteps must be at least 1, got {num_train_timesteps}")
    if trained_betas is not None:
        betas = np.asarray(trained_betas, dtype=np.float64).reshape(-1)
        if betas.shape[0] != num_train_timesteps:
            raise ValueError(
                f"trained_betas holds {betas.shape[0]} values but num_train_timesteps is "
                f"{num_train_timesteps}; they must agree"
            )
        if not np.all((betas > 0) & (betas <= 1)):
            raise ValueError("trained_betas must lie in (0, 1]")
        return float32_values(betas)
    steps = num_train_timesteps
    f32 = torch.float32
    grid: torch.Tensor
    if schedule == "linear":
        grid = torch.linspace(beta_start, beta_end, steps, dtype=f32, device="cpu")
    elif schedule == "scaled_linear":
        grid = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=f32, device="cpu") ** 2
    elif schedule == "squaredcos_cap_v2":
        return float32_values(betas_for_alpha_bar(steps))
    elif schedule == "sigmoid":
        grid = torch.linspace(-6.0, 6.0, steps, dtype=f32, device="cpu").sigmoid()
        grid = grid * (beta_end - beta_start) + beta_start
    else:
        raise ValueError(
            f"unknown beta schedule {schedule!r}; allowed: linear, scaled_linear, "
            "squaredcos_cap_v2, sigmoid (or pass trained_betas)"
        )
    return grid.numpy().astype(np.float64)


def rescale_zero_terminal_snr(betas: Float64Array) -> Float64Array:
    """Rescale betas so that the last timestep has zero signal-to-noise ratio.

    Shifts and scales $\\sqrt{\\bar\\alpha_t}$ so that its last value is 0 and its first is
    unchanged, then converts back to betas (in float64, rounded to float32 at the end).

    Returns:
        (T,) float64 array of float32 betas; the last one equals 1.

    References:
        Algorithm 1, arXiv:2305.08891.
    """
    sqrt_ab: Float64Array = np.sqrt(alphas_cumprod(betas))
    first, last = sqrt_ab[0], sqrt_ab[-1]
    sqrt_ab = (sqrt_ab - last) * (first / (first - last))
    alpha_bar = sqrt_ab**2
    alphas = np.concatenate([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])
    return float32_values(1.0 - alphas)


def alphas(betas: Float64Array | Sequence[float]) -> Float64Array:
    """$\\alpha_t = 1 - \\beta_t$, each rounded to float32 (see the module notes).

    Args:
        betas: (T,) betas.

    Returns:
        (T,) float64 array of float32 values.
    """
    return float32_values(1.0 - float32_values(betas))


def alphas_cumprod(betas: Float64Array | Sequence[float]) -> Float64Array:
    """$\\bar\\alpha_t = \\prod_{s \\le t} \\alpha_s$: the float32 alphas multiplied in float64,
    each partial product rounded to float32 (see the module notes).

    Args:
        betas: (T,) betas.

    Returns:
        (T,) float64 array of float32 values.

    References:
        Section 2 (below eq. 4), arXiv:2006.11239.
    """
    return float32_values(np.cumprod(alphas(betas), dtype=np.float64))


def step_alpha(alpha_bar_t: float, alpha_bar_prev: float) -> float:
    """$\\alpha_{t|t'} = \\bar\\alpha_t / \\bar\\alpha_{t'}$, the signal kept from timestep t' to t,
    rounded to float32 like the schedule.

    Near t = 0 the step's beta ``1 - alpha`` is a difference of numbers close to 1, so its value
    follows from how the ratio is rounded: float32 rounding gives the value diffusers-format
    samplers use (with a float64 ratio a DDPM step near t = 0 moves by up to 8e-5).

    Args:
        alpha_bar_t: $\\bar\\alpha_t$ (a float32 value, as :func:`alphas_cumprod` returns).
        alpha_bar_prev: $\\bar\\alpha_{t'}$ for the earlier timestep t' (1.0 at the clean end).

    Returns:
        The ratio, a float32 value as a Python float.
    """
    return float(np.float32(alpha_bar_t) / np.float32(alpha_bar_prev))


# --------------------------------------------------------------------------------------------------
# Timestep spacings
# --------------------------------------------------------------------------------------------------


def spaced_timesteps(
    num_train_timesteps: int,
    num_inference_steps: int,
    spacing: str,
    steps_offset: int = 0,
) -> Int64Array:
    """The ``num_inference_steps`` timesteps a sampler visits, in descending order.

    With T training steps and n inference steps:

    - ``leading``: ``k * (T // n) + steps_offset`` for k = n-1, ..., 0 (latent diffusion uses
      ``steps_offset=1``: 50 steps give 981, 961, ..., 1);
    - ``trailing``: ``round(T - k * T / n) - 1`` for k = 0, ..., n-1 (always starts at T - 1);
    - ``linspace``: ``round`` of n evenly spaced points from T - 1 down to 0.

    Rounding is numpy's round-half-to-even, as in the diffusers format. Unlike a float ``arange``,
    ``trailing`` always returns exactly n timesteps.

    Returns:
        (n,) int64 timesteps, strictly descending for leading/trailing (linspace may repeat values
        only when n > T, which is rejected).

    Raises:
        ValueError: n outside [1, T], an unknown spacing, or a timestep outside [0, T) after the
            offset.

    References:
        Table 2, arXiv:2305.08891.
    """
    total = int(num_train_timesteps)
    n = check_int("num_inference_steps", num_inference_steps, minimum=-(2**63))
    if n < 1 or n > total:
        raise ValueError(
            f"num_inference_steps must be between 1 and num_train_timesteps={total}, got {n}"
        )
    if spacing == "leading":
        ratio = total // n
        timesteps = np.arange(n - 1, -1, -1, dtype=np.int64) * ratio + int(steps_offset)
    elif spacing == "trailing":
        # the points T, T - T/n, ... are generated as T + k * delta with the float64 increment
        # delta = (T - T/n) - T, the arithmetic of the diffusers format (it decides which of two
        # neighbours a point such as 937.5 rounds to)
        first = float(total)
        delta = (first - total / n) - first
        points = first + np.arange(n, dtype=np.float64) * delta
        timesteps = np.round(points).astype(np.int64) - 1
    elif spacing == "linspace":
        points = np.linspace(0.0, float(total - 1), n, dtype=np.float64)
        timesteps = np.round(points)[::-1].astype(np.int64)
    else:
        raise ValueError(
            f"unknown timestep spacing {spacing!r}; allowed: leading, trailing, linspace"
        )
    if timesteps.min() < 0 or timesteps.max() >= total:
        raise ValueError(
            f"{spacing} spacing with {n} steps and steps_offset={steps_offset} gives timesteps "
            f"from {timesteps.min()} to {timesteps.max()}, outside [0, {total}); lower "
            "steps_offset or num_inference_steps"
        )
    return np.ascontiguousarray(timesteps)


def validate_timesteps(
    timesteps: Sequence[int] | npt.ArrayLike | torch.Tensor,
    num_train_timesteps: int,
    *,
    descending: bool = True,
) -> Int64Array:
    """Check an explicit list of timesteps and return it as an int64 array.

    Args:
        timesteps: the timesteps a sampler should visit.
        num_train_timesteps: T; every timestep must lie in [0, T).
        descending: require strictly descending order (samplers) or strictly ascending order
            (inversion).

    Returns:
        (n,) int64 timesteps.

    Raises:
        ValueError: empty, not integers, not strictly monotonic in the required direction, or out
            of range.
    """
    if isinstance(timesteps, torch.Tensor):
        raw = timesteps.detach().cpu().numpy()
    else:
        raw = np.asarray(timesteps)
    raw = raw.reshape(-1)
    if raw.size == 0:
        raise ValueError("timesteps must not be empty")
    if raw.dtype.kind == "f":
        if not np.all(raw == np.round(raw)):
            raise ValueError(f"timesteps must be integers, got {raw.tolist()}")
    elif raw.dtype.kind not in "iu":
        raise ValueError(f"timesteps must be integers, got dtype {raw.dtype}")
    values = raw.astype(np.int64)
    diffs = np.diff(values)
    if descending and np.any(diffs >= 0):
        raise ValueError(f"timesteps must be strictly descending, got {values.tolist()}")
    if not descending and np.any(diffs <= 0):
        raise ValueError(f"timesteps must be strictly ascending, got {values.tolist()}")
    if values.min() < 0 or values.max() >= num_train_timesteps:
        raise ValueError(
            f"timesteps must lie in [0, {num_train_timesteps}), got {values.min()} to "
            f"{values.max()}"
        )
    return np.ascontiguousarray(values)


# --------------------------------------------------------------------------------------------------
# Predictions (torch)
# --------------------------------------------------------------------------------------------------


def predict_x0(
    model_output: torch.Tensor,
    sample: torch.Tensor,
    alpha_bar_t: AlphaBar,
    prediction_type: str,
) -> torch.Tensor:
    """The clean sample $\\hat x_0$ that a model output implies at noise level ``alpha_bar_t``.

    - epsilon: $\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\epsilon)/\\sqrt{\\bar\\alpha_t}$
      (eq. 15, arXiv:2006.11239);
    - sample: the output is $\\hat x_0$;
    - v_prediction: $\\hat x_0 = \\sqrt{\\bar\\alpha_t}\\,x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat v$
      (section 4, arXiv:2202.00512).

    Args:
        model_output: (B, C, ...) the network's output.
        sample: (B, C, ...) the noisy sample x_t.
        alpha_bar_t: a float, or a tensor broadcastable to the sample (per-item noise levels).
        prediction_type: ``"epsilon"``, ``"sample"`` or ``"v_prediction"``.

    Returns:
        (B, C, ...) a new tensor (never ``model_output`` itself).
    """
    if prediction_type == "epsilon":
        if isinstance(alpha_bar_t, float | int):
            sqrt_ab, sqrt_1m = math.sqrt(alpha_bar_t), math.sqrt(1.0 - alpha_bar_t)
            return torch.add(sample, model_output, alpha=-sqrt_1m).div_(sqrt_ab)
        return (sample - (1.0 - alpha_bar_t).sqrt() * model_output) / alpha_bar_t.sqrt()
    if prediction_type == "sample":
        return model_output.clone()
    if prediction_type == "v_prediction":
        if isinstance(alpha_bar_t, float | int):
            sqrt_ab, sqrt_1m = math.sqrt(alpha_bar_t), math.sqrt(1.0 - alpha_bar_t)
            return torch.add(sample * sqrt_ab, model_output, alpha=-sqrt_1m)
        return alpha_bar_t.sqrt() * sample - (1.0 - alpha_bar_t).sqrt() * model_output
    raise ValueError(
        f"unknown prediction_type {prediction_type!r}; allowed: epsilon, sample, v_prediction"
    )


def predict_eps(
    model_output: torch.Tensor,
    sample: torch.Tensor,
    alpha_bar_t: AlphaBar,
    prediction_type: str,
) -> torch.Tensor:
    """The noise $\\hat\\epsilon$ that a model output implies at noise level ``alpha_bar_t``.

    - epsilon: the output is $\\hat\\epsilon$;
    - sample: $\\hat\\epsilon = (x_t - \\sqrt{\\bar\\alpha_t}\\,\\hat x_0)/\\sqrt{1-\\bar\\alpha_t}$
      (eq. 4 of arXiv:2006.11239 solved for epsilon);
    - v_prediction: $\\hat\\epsilon = \\sqrt{\\bar\\alpha_t}\\,\\hat v + \\sqrt{1-\\bar\\alpha_t}\\,x_t$
      (section 4, arXiv:2202.00512).

    Args:
        model_output: (B, C, ...) the network's output.
        sample: (B, C, ...) the noisy sample x_t.
        alpha_bar_t: a float, or a tensor broadcastable to the sample.
        prediction_type: ``"epsilon"``, ``"sample"`` or ``"v_prediction"``.

    Returns:
        (B, C, ...) tensor (``model_output`` itself for epsilon).
    """
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "sample":
        return eps_from_x0(model_output, sample, alpha_bar_t)
    if prediction_type == "v_prediction":
        if isinstance(alpha_bar_t, float | int):
            sqrt_ab, sqrt_1m = math.sqrt(alpha_bar_t), math.sqrt(1.0 - alpha_bar_t)
            return torch.add(model_output * sqrt_ab, sample, alpha=sqrt_1m)
        return alpha_bar_t.sqrt() * model_output + (1.0 - alpha_bar_t).sqrt() * sample
    raise ValueError(
        f"unknown prediction_type {prediction_type!r}; allowed: epsilon, sample, v_prediction"
    )


def eps_from_x0(x0: torch.Tensor, sample: torch.Tensor, alpha_bar_t: AlphaBar) -> torch.Tensor:
    """$\\epsilon = (x_t - \\sqrt{\\bar\\alpha_t}\\,x_0)/\\sqrt{1-\\bar\\alpha_t}$ (eq. 4, arXiv:2006.11239).

    Args:
        x0: (B, C, ...) clean-sample estimate.
        sample: (B, C, ...) noisy sample x_t.
        alpha_bar_t: a float, or a tensor broadcastable to the sample.
    """
    if isinstance(alpha_bar_t, float | int):
        sqrt_ab, sqrt_1m = math.sqrt(alpha_bar_t), math.sqrt(1.0 - alpha_bar_t)
        return torch.add(sample, x0, alpha=-sqrt_ab).div_(sqrt_1m)
    return (sample - alpha_bar_t.sqrt() * x0) / (1.0 - alpha_bar_t).sqrt()


def velocity(x0: torch.Tensor, noise: torch.Tensor, alpha_bar_t: AlphaBar) -> torch.Tensor:
    """The v-prediction target $v = \\sqrt{\\bar\\alpha_t}\\,\\epsilon - \\sqrt{1-\\bar\\alpha_t}\\,x_0$.

    Args:
        x0: (B, C, ...) clean samples.
        noise: (B, C, ...) the noise epsilon.
        alpha_bar_t: a float, or a tensor broadcastable to the samples (per-item levels).

    Returns:
        (B, C, ...) velocity.

    References:
        Section 4, arXiv:2202.00512.
    """
    if isinstance(alpha_bar_t, float | int):
        return torch.add(noise * math.sqrt(alpha_bar_t), x0, alpha=-math.sqrt(1.0 - alpha_bar_t))
    return alpha_bar_t.sqrt() * noise - (1.0 - alpha_bar_t).sqrt() * x0


def dynamic_threshold(x0: torch.Tensor, ratio: float, max_value: float) -> torch.Tensor:
    """Imagen's dynamic thresholding of a predicted clean sample.

    Per batch item, ``s`` is the ``ratio`` quantile of ``|x0|``, clamped to [1, ``max_value``];
    ``x0`` is clipped to [-s, s] and divided by s. With ``s = 1`` this is plain clipping to [-1, 1].
    Half-precision inputs are thresholded in float32 and cast back.

    Args:
        x0: (B, ...) predicted clean samples.
        ratio: the percentile, e.g. 0.995.
        max_value: the largest threshold s.

    Returns:
        (B, ...) thresholded samples, same dtype as ``x0``.

    References:
        Section 2.3, arXiv:2205.11487.
    """
    dtype = x0.dtype
    work = x0 if dtype in (torch.float32, torch.float64) else x0.float()
    flat = work.reshape(work.shape[0], -1)
    s = torch.quantile(flat.abs(), ratio, dim=1)
    s = torch.clamp(s, min=1.0, max=max_value).unsqueeze(1)
    out = torch.clamp(flat, -s, s) / s
    return out.reshape(x0.shape).to(dtype)
