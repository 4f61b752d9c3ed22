"""Exponential moving average (EMA) of a model's weights, with the usual decay warmup."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["EMAModel", "ema_decay"]


def ema_decay(step: int, max_decay: float, *, warmup: bool = True) -> float:
    """The EMA decay to use for the update that follows optimizer step ``step``.

    With warmup the decay grows as ``(1 + step) / (10 + step)`` until it reaches ``max_decay``, so
    the average forgets the random initialisation quickly at the start of training.

    Args:
        step: number of EMA updates done before this one (0 for the first).
        max_decay: the decay reached after warmup, in [0, 1].
        warmup: use the ``(1 + step) / (10 + step)`` ramp; otherwise always ``max_decay``.

    Returns:
        The decay d of ``shadow <- d * shadow + (1 - d) * weights``.

    References:
        The ramp of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``, used by the DDPM
        reference code (Ho et al. 2020, arXiv:2006.11239, appendix B: EMA decay 0.9999).
    """
    if not 0.0 <= max_decay <= 1.0:
        raise ValueError(f"max_decay must lie in [0, 1], got {max_decay}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if not warmup:
        return max_decay
    return min(max_decay, (1.0 + step) / (10.0 + step))


class EMAModel:
    """A shadow copy of a model whose floating-point weights follow an exponential moving average.

    The shadow is a full copy of the module (same class, same config), so it can be evaluated or
    saved with ``save_pretrained`` directly. Floating-point parameters and buffers are averaged;
    integer buffers (counters) are copied.

    Args:
        model: the model being trained (unwrapped, not the DDP wrapper).
        decay: the decay after warmup (``ema_decay``'s ``max_decay``).
        warmup: ramp the decay up from 0.1 (see ``ema_decay``).

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2)
        >>> ema = EMAModel(net, decay=0.999)
        >>> with torch.no_grad():
        ...     _ = net.weight.add_(1.0)
        >>> ema.update(net)  # first update: decay 0.1
        >>> ema.num_updates
        1
    """

    def __init__(self, model: nn.Module, *, decay: float = 0.9999, warmup: bool = True) -> None:
        ema_decay(0, decay, warmup=warmup)  # validates decay
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.shadow: nn.Module = copy.deepcopy(model)
        self.shadow.eval()
        self.shadow.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next ``update`` will use."""
        return ema_decay(self.num_updates, self.decay, warmup=self.warmup)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow towards ``model``'s current weights: ``s <- d s + (1 - d) w``."""
        d = self.current_decay()
        model_state = model.state_dict()
        for name, shadow in self.shadow.state_dict().items():
            value = model_state[name]
            if shadow.is_floating_point():
                # s + (1 - d) (w - s) = d s + (1 - d) w
                shadow.lerp_(value.to(dtype=shadow.dtype, device=shadow.device), 1.0 - d)
            else:
                shadow.copy_(value)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s weights with the averaged ones."""
        model.load_state_dict(self.shadow.state_dict())

    def to(self, device: torch.device | str) -> EMAModel:
        """Move the shadow to ``device``; returns self."""
        self.shadow.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights, the update count and the decay settings."""
        return {
            "shadow": self.shadow.state_dict(),
            "num_updates": self.num_updates,
            "decay": self.decay,
            "warmup": self.warmup,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.shadow.load_state_dict(state["shadow"])
        self.num_updates = int(state["num_updates"])
        self.decay = float(state["decay"])
        self.warmup = bool(state["warmup"])
