"""Noise-prediction training objective: random timesteps, noised samples, regression target."""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F

__all__ = ["NoiseScheduler", "diffusion_loss_inputs", "noise_prediction_loss", "sample_timesteps"]


class NoiseScheduler(Protocol):
    """What the training loop needs from a scheduler (every ``SchedulerMixin`` has it)."""

    @property
    def config(self) -> Any:
        """A config with ``num_train_timesteps``."""

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> Any:
        """q(x_t | x_0): the noised samples (a tensor)."""

    def training_target(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> Any:
        """What the model should predict (eps, x0 or v; a tensor)."""


def sample_timesteps(
    batch_size: int,
    num_train_timesteps: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Training timesteps drawn uniformly from {0, ..., T - 1}.

    Args:
        batch_size: B.
        num_train_timesteps: T.
        generator: the random source (its device is where the draw happens).
        device: the output device.

    Returns:
        (B,) int64 timesteps.

    References:
        Algorithm 1 (t ~ Uniform({1, ..., T})), Ho et al. 2020, arXiv:2006.11239.
    """
    draw_device = generator.device if generator is not None else torch.device(device or "cpu")
    t = torch.randint(
        0, num_train_timesteps, (batch_size,), generator=generator, device=draw_device
    )
    return t.to(device) if device is not None else t


def diffusion_loss_inputs(
    scheduler: NoiseScheduler,
    x0: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw noise and timesteps for a batch and build the model input and regression target.

    Args:
        scheduler: the noise scheduler (``add_noise``, ``training_target``).
        x0: (B, C, H, W) clean samples in [-1, 1].
        generator: the random source for the noise and the timesteps.

    Returns:
        ``(x_t, t, target)``: (B, C, H, W) noised samples, (B,) timesteps and the (B, C, H, W)
        target for the scheduler's prediction type.

    References:
        Algorithm 1, Ho et al. 2020, arXiv:2006.11239: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps.
    """
    draw_device = generator.device if generator is not None else x0.device
    noise = torch.randn(x0.shape, generator=generator, device=draw_device, dtype=x0.dtype)
    noise = noise.to(x0.device)
    t = sample_timesteps(
        x0.shape[0],
        int(scheduler.config.num_train_timesteps),
        generator=generator,
        device=x0.device,
    )
    x_t = scheduler.add_noise(x0, noise, t)
    target = scheduler.training_target(x0, noise, t)
    if not isinstance(x_t, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("the scheduler returned non-tensors for tensor inputs")
    return x_t, t, target


def noise_prediction_loss(model_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The simple objective: mean squared error between the model output and the target.

    Args:
        model_output: (B, C, H, W) the model's prediction (cast to float32).
        target: (B, C, H, W) the scheduler's training target.

    Returns:
        Scalar loss.

    References:
        eq. 14 (L_simple), Ho et al. 2020, arXiv:2006.11239.
    """
    if model_output.shape != target.shape:
        raise ValueError(
            f"model output shape {tuple(model_output.shape)} differs from the training target "
            f"shape {tuple(target.shape)}; a model with a learned variance (2x channels) needs "
            "a loss that also trains the variance"
        )
    return F.mse_loss(model_output.float(), target.float())
