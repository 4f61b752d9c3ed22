"""Argument checks shared by pipelines, schedulers and the command line.

Each check raises ``ValueError`` (or ``TypeError`` for a value of the wrong type) with a message
that names the argument, the value and what is allowed, instead of the error torch or Python would
raise deep inside a call (``'NoneType' object is not iterable``, ``ZeroDivisionError``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["check_device", "check_float", "check_generator", "check_int"]


def check_int(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int if it is an integer in ``[minimum, maximum]``.

    Booleans and non-integral numbers (``2.5``) are refused, not truncated.

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: ``value`` is out of range.
    """
    integral = isinstance(value, numbers.Integral) or (
        hasattr(value, "item") and getattr(value, "ndim", 1) == 0 and float(value) == int(value)
    )
    if isinstance(value, bool) or not integral:
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        allowed = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {allowed}, got {number}")
    return number


def check_float(name: str, value: Any, *, minimum: float | None = None) -> float:
    """``value`` as a float if it is a finite real number (and at least ``minimum``).

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is NaN, infinite or below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {number}")
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def check_generator(generator: Any, batch_size: int, device: torch.device | str) -> None:
    """Check a ``generator`` argument: None, a ``torch.Generator``, or one per batch item.

    A CPU generator works for every device (noise is drawn on the CPU and moved); a generator on
    an accelerator must be on the device type the pipeline runs on.

    Raises:
        TypeError: ``generator`` is neither a generator nor a list of them (a string, a seed).
        ValueError: a list of the wrong length, or a generator on another device.
    """
    import torch

    if generator is None:
        return
    hint = "pass torch.Generator().manual_seed(seed), or a list with one generator per sample"
    if isinstance(generator, torch.Generator):
        generators: Sequence[Any] = [generator]
    elif isinstance(generator, list | tuple):
        if len(generator) != batch_size:
            raise ValueError(
                f"generator: got a list of {len(generator)} generators for {batch_size} samples; "
                f"{hint}"
            )
        generators = generator
    else:
        raise TypeError(f"generator must be a torch.Generator, got {generator!r}; {hint}")
    target = torch.device(device)
    for item in generators:
        if not isinstance(item, torch.Generator):
            raise TypeError(f"generator list holds {item!r}, not a torch.Generator; {hint}")
        if item.device.type not in ("cpu", target.type):
            raise ValueError(
                f"generator is on {item.device} but the pipeline runs on {target}; use a CPU "
                "generator (torch.Generator('cpu'), the same noise on every device) or one on "
                f"{target.type}"
            )


def check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` if this machine has it.

    Raises:
        ValueError: the name is not a device, or this torch build or machine lacks it (CUDA on a
            CPU-only build, ``cuda:3`` on a machine with two GPUs, MPS off Apple silicon).
    """
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device {device!r} is not a torch device; use cpu, cuda, cuda:N or mps ({exc})"
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: this machine has no usable CUDA GPU (torch "
                f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use cpu, or "
                "install a CUDA build of torch on a machine with an NVIDIA GPU"
            )
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(
                f"device {device!r}: this machine has {count} CUDA device"
                f"{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1})"
            )
    elif parsed.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device {device!r}: MPS is not available on this machine; use cpu")
    return parsed
