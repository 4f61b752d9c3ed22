"""Convolution and linear kernels that pick oneDNN on CPU.

PyTorch's CPU dispatch sends small convolutions (batch 1, small feature maps, 1x1 kernels) and every
``F.linear`` to its generic GEMM path; on CPUs where that BLAS runs a narrow vector code path (for
instance MKL on AMD processors) oneDNN is 1.5-3x faster for the same math. These helpers call oneDNN
directly for float32 CPU tensors when ``torch.backends.mkldnn`` is available and enabled, and fall back
to ``torch.nn.functional`` everywhere else (CUDA, half precision, meta tensors, other layouts).
Results equal the functional ops up to float rounding; gradients flow through both paths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Conv2d", "conv2d", "linear", "linear_rows", "onednn_enabled"]

_MIN_LINEAR_ROWS = 32  # below this the call overhead outweighs the faster kernel
_ONEDNN_BUILT: bool = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]


def onednn_enabled(x: Tensor) -> bool:
    """Whether the oneDNN path applies to ``x`` (float32 on CPU with oneDNN enabled)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not x.is_sparse
        and _ONEDNN_BUILT
        and bool(torch.backends.mkldnn.enabled)
    )


def conv2d(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride: int = 1, padding: int = 0
) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` through oneDNN when it applies.

    Args:
        x: (B, C_in, H, W) input (contiguous or channels-last).
        weight: (C_out, C_in, kH, kW) kernel.
        bias: (C_out,) or None.
        stride: stride of both spatial dims.
        padding: zero padding of both spatial dims.

    Returns:
        (B, C_out, H', W') in the memory format of ``x``.
    """
    if onednn_enabled(x) and weight.dtype == x.dtype and x.ndim == 4:
        return torch.mkldnn_convolution(
            x, weight, bias, [padding, padding], [stride, stride], [1, 1], 1
        )
    return F.conv2d(x, weight, bias, stride, padding)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)``, run as a 1x1 oneDNN convolution when it applies.

    Args:
        x: (..., K) input.
        weight: (N, K).
        bias: (N,) or None.

    Returns:
        (..., N).
    """
    k = x.shape[-1]
    rows = x.numel() // k if k else 0
    if rows >= _MIN_LINEAR_ROWS and onednn_enabled(x) and weight.dtype == x.dtype:
        flat = x.reshape(rows, k).contiguous()
        # (rows, K) seen as a channels-last (1, K, rows, 1) image; the output is channels-last too.
        out = torch.mkldnn_convolution(
            flat.t()[None, :, :, None],
            weight[:, :, None, None],
            bias,
            [0, 0],
            [1, 1],
            [1, 1],
            1,
        )
        return out.permute(0, 2, 3, 1).reshape(*x.shape[:-1], weight.shape[0])
    return F.linear(x, weight, bias)


def linear_rows(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)`` through oneDNN, returning a contiguous (row-major) result.

    The rows of ``x`` are presented to oneDNN as the pixels of a channels-last (1, K, rows, 1)
    image and the kernel as a channels-last (N, K, 1, 1) filter, so the 1x1 convolution writes
    channels-last, i.e. the (rows, N) matrix row by row. Unlike :func:`linear`, whose result is
    laid out column by column, the output can be split into attention heads that
    ``scaled_dot_product_attention`` accepts for its fused CPU kernel, and elementwise ops on it
    run on contiguous memory.

    Args:
        x: (..., K) input.
        weight: (N, K).
        bias: (N,) or None.

    Returns:
        (..., N), contiguous.
    """
    k = x.shape[-1]
    rows = x.numel() // k if k else 0
    if rows >= _MIN_LINEAR_ROWS and onednn_enabled(x) and weight.dtype == x.dtype:
        image = x.reshape(1, rows, 1, k).permute(0, 3, 1, 2)  # (1, K, rows, 1), channels-last
        kernel = weight[:, :, None, None].contiguous(memory_format=torch.channels_last)
        out = torch.mkldnn_convolution(image, kernel, bias, [0, 0], [1, 1], [1, 1], 1)
        out = out.permute(0, 2, 3, 1).reshape(*x.shape[:-1], weight.shape[0])
        return out if out.is_contiguous() else out.contiguous()
    return F.linear(x, weight, bias)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state-dict keys) whose forward uses :func:`conv2d`
    when the layer is a plain zero-padded, ungrouped, undilated convolution."""

    def forward(self, input: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H', W')."""
        plain = (
            self.groups == 1
            and self.padding_mode == "zeros"
            and self.dilation == (1, 1)
            and isinstance(self.padding, tuple)
            and self.padding[0] == self.padding[1]
            and self.stride[0] == self.stride[1]
        )
        if plain:
            return conv2d(input, self.weight, self.bias, self.stride[0], int(self.padding[0]))
        out: Tensor = super().forward(input)
        return out
