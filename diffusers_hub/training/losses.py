"""Training objectives: random timesteps, noised samples, regression target, the loss call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ForwardFn",
    "LossFn",
    "NoiseScheduler",
    "default_forward",
    "diffusion_loss_inputs",
    "loss_terms",
    "noise_prediction_loss",
    "noise_prediction_objective",
    "sample_timesteps",
    "split_batch",
]


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


#: Runs the model: ``(model, x_t, t, labels) -> prediction``.
ForwardFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
#: One step's objective: ``(model, batch on the device, scheduler, generator) -> scalar loss``,
#: or a mapping with the scalar ``"loss"`` and further scalar terms to log beside it.
LossFn = Callable[[nn.Module, Any, Any, torch.Generator], torch.Tensor | Mapping[str, torch.Tensor]]


# -- the model call and the objective ----------------------------------------------------------------------------------


def default_forward(
    model: nn.Module, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None
) -> torch.Tensor:
    """Call ``model(x_t, t)`` (with ``class_labels=labels`` when given) and return the tensor.

    Accepts models that return a tensor, a tuple whose first item is the prediction, or an output
    object with a ``sample`` attribute (``UNet2DOutput``).
    """
    out = model(x_t, t) if labels is None else model(x_t, t, class_labels=labels)
    if isinstance(out, torch.Tensor):
        return out
    sample = getattr(out, "sample", None)
    if isinstance(sample, torch.Tensor):
        return sample
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(
        f"cannot read a prediction from a model output of type {type(out).__name__}; "
        "pass forward_fn= to train()"
    )


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, labels or None) from a collated batch.

    Args:
        batch: an image tensor (B, C, H, W), an ``(images, labels)`` pair, or a dict with
            ``images`` (or ``pixel_values``) and optionally ``labels`` (or ``class_labels``).

    Returns:
        The (B, C, H, W) images and the (B,) labels (None when the batch has none), on the
        images' device.
    """
    if isinstance(batch, torch.Tensor):
        return batch, None
    images: Any = None
    labels: Any = None
    if isinstance(batch, tuple | list) and len(batch) == 2:
        images, labels = batch
    elif isinstance(batch, dict):
        labels = batch.get("labels", batch.get("class_labels"))
        images = batch.get("images", batch.get("pixel_values"))
    if isinstance(images, torch.Tensor):
        return images, None if labels is None else torch.as_tensor(labels, device=images.device)
    raise TypeError(
        "a training batch must be an image tensor, an (images, labels) pair, or a dict with "
        f"'images' (and 'labels'); got {type(batch).__name__}"
    )


def noise_prediction_objective(forward_fn: ForwardFn | None = None) -> LossFn:
    """The DDPM objective as a ``LossFn``: noise the batch, predict the target, take the MSE.

    Args:
        forward_fn: how to call the model (default ``default_forward``).

    Returns:
        ``loss(model, batch, scheduler, generator)``: draws ``t`` and ``eps`` with ``generator``,
        and returns ``|| forward_fn(model, x_t, t, labels) - target ||^2`` (float32 mean).

    References:
        Algorithm 1 and eq. 14, Ho et al. 2020, arXiv:2006.11239.
    """
    forward = forward_fn or default_forward

    def loss(
        model: nn.Module, batch: Any, scheduler: Any, generator: torch.Generator
    ) -> torch.Tensor:
        images, labels = split_batch(batch)
        x_t, t, target = diffusion_loss_inputs(scheduler, images, generator=generator)
        return noise_prediction_loss(forward(model, x_t, t, labels), target)

    return loss


def loss_terms(out: torch.Tensor | Mapping[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """``[("loss", total), (name, term), ...]`` from what a loss returned, all float32 scalars."""
    named = [("loss", out)] if isinstance(out, torch.Tensor) else []
    if isinstance(out, Mapping):
        named = list(out.items())
    if "loss" not in dict(named):
        raise TypeError('a loss must return a scalar tensor or a mapping with a "loss" entry')
    named.sort(key=lambda item: item[0] != "loss")  # the total first, the rest in order
    terms = [(name, torch.as_tensor(value).float()) for name, value in named]
    for name, value in terms:
        if value.ndim != 0:
            raise ValueError(f"the loss term {name!r} must be a scalar, got {tuple(value.shape)}")
    return terms
