"""Random noise that a seed reproduces on every device."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["randn_tensor"]


def randn_tensor(
    shape: Sequence[int],
    *,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Standard normal noise of ``shape``, drawn on the generator's device, then moved.

    Drawing on the generator's device (a CPU generator draws on the CPU) makes a seed give the same
    noise whatever ``device`` the result goes to. Half-precision noise is drawn in float32 and then
    rounded, so a seed also gives the same noise (up to rounding) in fp16 and bf16 as in fp32.

    Args:
        shape: the output shape, batch first.
        generator: one generator, or a list with one generator per batch item.
        device: where the result goes (the generator's device when None).
        dtype: the result's dtype (float32 when None).

    Returns:
        (shape) tensor on ``device``.
    """
    shape = tuple(int(s) for s in shape)
    dtype = dtype or torch.float32
    if isinstance(generator, Sequence) and not isinstance(generator, torch.Generator):
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
