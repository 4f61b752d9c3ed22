"""Random noise that a seed reproduces on every device: the one place noise is drawn.

A torch generator draws on its own device (a CPU generator draws on the CPU), so a seed gives the
same noise whatever device the result goes to; half-precision noise is drawn in float32 and then
rounded, so a seed also gives the same noise (up to rounding) in fp16 and bf16 as in fp32. A numpy
generator draws float64 noise on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["GeneratorLike", "randn_tensor", "step_noise"]

#: A noise source: a torch generator, a list of them (one per batch item), or a numpy generator.
GeneratorLike = torch.Generator | list[torch.Generator] | np.random.Generator | None


def randn_tensor(
    shape: Sequence[int],
    *,
    generator: torch.Generator | Sequence[torch.Generator] | np.random.Generator | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Standard normal noise of ``shape``, drawn on the generator's device, then moved.

    Args:
        shape: the output shape, batch first.
        generator: one generator, a list with one torch generator per batch item, or a numpy
            generator.
        device: where the result goes (the generator's device when None).
        dtype: the result's dtype (float32 when None).

    Returns:
        (shape) tensor on ``device``.

    Raises:
        ValueError: a list of generators whose length is not the batch size.
    """
    shape = tuple(int(s) for s in shape)
    dtype = dtype or torch.float32
    if isinstance(generator, np.random.Generator):
        drawn = torch.from_numpy(generator.standard_normal(shape))
        return drawn.to(device=device or "cpu", dtype=dtype)
    if isinstance(generator, Sequence):
        if len(generator) != shape[0]:
            raise ValueError(
                f"got {len(generator)} generators for a batch of {shape[0]}: pass one generator "
                "per batch item, or a single generator"
            )
        parts = [
            randn_tensor((1, *shape[1:]), generator=g, device=device, dtype=dtype)
            for g in generator
        ]
        return torch.cat(parts, dim=0)
    draw_device = generator.device if generator is not None else torch.device(device or "cpu")
    draw_dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    noise = torch.randn(shape, generator=generator, device=draw_device, dtype=draw_dtype)
    return noise.to(device=device or draw_device, dtype=dtype)


def step_noise(
    generator: GeneratorLike,
    variance_noise: torch.Tensor | npt.NDArray[Any] | None,
    like: torch.Tensor,
) -> torch.Tensor:
    """The noise a stochastic ``step`` adds, shaped, placed and typed like ``like``:
    ``variance_noise`` when given, else drawn from ``generator`` (:func:`randn_tensor`).

    Raises:
        ValueError: both ``generator`` and ``variance_noise`` were given.
    """
    if variance_noise is not None and generator is not None:
        raise ValueError("pass either generator or variance_noise, not both")
    if variance_noise is None:
        return randn_tensor(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    if isinstance(variance_noise, np.ndarray):
        variance_noise = torch.from_numpy(np.array(variance_noise))
    return variance_noise.to(device=like.device, dtype=like.dtype)
