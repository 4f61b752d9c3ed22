"""Convolution and linear kernels that pick oneDNN on CPU.

PyTorch's CPU dispatch sends small convolutions (batch 1, small feature maps, 1x1 kernels) and every
``F.linear`` to its generic GEMM path; on CPUs where that BLAS runs a narrow vector code path (for
instance MKL on AMD processors) oneDNN is 1.5-3x faster for the same math. These helpers call oneDNN
directly for float32 CPU tensors when ``torch.backends.mkldnn`` is available and enabled, and fall back
to ``torch.nn.functional`` everywhere else (CUDA, half precision, meta tensors, other layouts).
Results equal the functional ops up to float rounding; gradients flow through both paths.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "AdaptiveConv2d",
    "Conv2d",
    "conv2d",
    "contiguous_state",
    "conv2d_adaptive",
    "conv2d_add_",
    "held",
    "hold_conv_weights",
    "linear",
    "linear_rows",
    "memory_format_of",
    "onednn_enabled",
    "onednn_layout",
    "upsample_nearest_conv",
    "use_adaptive_convs",
]

_MIN_LINEAR_ROWS = 32  # below this the call overhead outweighs the faster kernel
# oneDNN re-lays out the weights on every call; with a large weight and few output rows/pixels
# that copy costs more than the product, and a plain GEMM on the weights as stored is faster
# (measured on 2 AMD EPYC cores: a 1280-channel 3x3 convolution over 2 x 4 x 4 pixels takes 20 ms
# through oneDNN, 8 ms as im2col + GEMM).
_WEIGHT_BOUND_MAX_ROWS = 128
_WEIGHT_BOUND_MIN_NUMEL = 8 * 2**20
_ONEDNN_BUILT: bool = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]


def onednn_enabled(x: Tensor) -> bool:
    """Whether the oneDNN path applies to ``x`` (float32 on CPU with oneDNN enabled, eager mode).

    Under ``torch.compile`` the functional ops are traced instead (the direct oneDNN call has no
    meta kernel to trace), and the compiler picks its own CPU kernels.
    """
    return (
        x.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and x.dtype == torch.float32
        and not x.is_sparse
        and _ONEDNN_BUILT
        and bool(torch.backends.mkldnn.enabled)
    )


def memory_format_of(x: Tensor) -> torch.memory_format:
    """The memory format a 4-d ``x`` is dense in (``channels_last`` or ``contiguous_format``)."""
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def onednn_layout(x: Tensor) -> Tensor:
    """``x`` in the layout a UNet forward should run in: channels-last for oneDNN, else as is.

    oneDNN convolutions take and return channels-last (NHWC) maps as they are, while NCHW maps are
    reordered on the way in and out of every layer. A network whose input is channels-last keeps
    that layout through its convolutions, norms, activations, skip concatenations and attention.
    Pair it with :func:`hold_conv_weights`, or every convolution copies its kernel to match.

    Args:
        x: (B, C, H, W) feature map.

    Returns:
        ``x`` as a channels-last tensor when :func:`onednn_enabled`, else ``x`` unchanged.
    """
    if x.ndim == 4 and onednn_enabled(x):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def hold_conv_weights(module: nn.Module) -> nn.Module:
    """Store the kernels of every ``nn.Conv2d`` under ``module`` in the layout their device runs
    best: channels-last where :func:`onednn_enabled` (float32 on CPU), contiguous elsewhere.

    The parameters stay the same objects (only ``.data`` is re-laid), so optimizers and hooks
    keep working, and values and state-dict keys do not change. Call it after construction,
    loading and every device or dtype move (a model's ``_apply``). Returns ``module``.

    Register :func:`contiguous_state` as the module's state-dict post-hook so that ``state_dict()``
    still returns contiguous tensors. Measured with :func:`onednn_layout` inputs on the google/ddpm-cifar10-32 UNet, 2 CPU cores:
    batch 1 0.75x -> 0.69x the diffusers time, batch 8 0.90x -> 0.78x
    (``benchmarks/bench_unet.py``).
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d) and layer.weight.ndim == 4:
            weight = layer.weight
            layout = torch.channels_last if onednn_enabled(weight) else torch.contiguous_format
            if not weight.is_contiguous(memory_format=layout):
                weight.data = weight.data.contiguous(memory_format=layout)
    return module


def contiguous_state(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    """State-dict post-hook (``module.register_state_dict_post_hook``): the detached tensors under
    ``prefix`` come out contiguous, copying the channels-last kernels of :func:`hold_conv_weights`,
    so that ``state_dict()`` saves anywhere (``safetensors`` refuses non-contiguous tensors).
    Parameters themselves (``keep_vars=True``) are left as they are."""
    for key, value in state_dict.items():
        if (
            key.startswith(prefix)
            and isinstance(value, Tensor)
            and not isinstance(value, nn.Parameter)
            and not value.is_contiguous()
        ):
            state_dict[key] = value.contiguous()


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
    if (
        rows >= _MIN_LINEAR_ROWS
        and not _weight_bound(rows, weight)
        and onednn_enabled(x)
        and weight.dtype == x.dtype
    ):
        image = x.reshape(1, rows, 1, k).permute(0, 3, 1, 2)  # (1, K, rows, 1), channels-last
        kernel = weight[:, :, None, None].contiguous(memory_format=torch.channels_last)
        out = torch.mkldnn_convolution(image, kernel, bias, [0, 0], [1, 1], [1, 1], 1)
        out = out.permute(0, 2, 3, 1).reshape(*x.shape[:-1], weight.shape[0])
        return out if out.is_contiguous() else out.contiguous()
    return F.linear(x, weight, bias)


def _weight_bound(rows: int, weight: Tensor) -> bool:
    """Whether a product over ``rows`` rows (or output pixels) is bound by re-laying ``weight``."""
    return rows <= _WEIGHT_BOUND_MAX_ROWS and weight.numel() >= _WEIGHT_BOUND_MIN_NUMEL


def conv2d_adaptive(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride: int = 1, padding: int = 0
) -> Tensor:
    """:func:`conv2d`, except that a large kernel over few output pixels runs as im2col + GEMM.

    When the batch has at most 128 output pixels in all and the kernel at least 8 Mi weights
    (a 3x3 convolution of 1280 channels over the 4x4 or 8x8 maps at the bottom of a
    latent-diffusion UNet), the patches are unfolded (``F.unfold``) and multiplied by the kernel
    as stored, which avoids oneDNN's per-call copy of the weights.

    Args:
        x: (B, C_in, H, W) input.
        weight: (C_out, C_in, kH, kW) kernel.
        bias: (C_out,) or None.
        stride: stride of both spatial dims.
        padding: zero padding of both spatial dims.

    Returns:
        (B, C_out, H', W'), contiguous on the GEMM path, else as :func:`conv2d`.
    """
    if x.ndim == 4 and x.device.type == "cpu" and x.is_contiguous():
        b, _, h, w = x.shape
        kh, kw = weight.shape[-2:]
        h_out = (h + 2 * padding - kh) // stride + 1
        w_out = (w + 2 * padding - kw) // stride + 1
        if h_out > 0 and w_out > 0 and _weight_bound(b * h_out * w_out, weight):
            cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # (B, C_in kH kW, L)
            out = torch.matmul(weight.flatten(1), cols)  # (B, C_out, L)
            if bias is not None:
                out = out + bias[:, None]
            return out.view(b, weight.shape[0], h_out, w_out)
    return conv2d(x, weight, bias, stride, padding)


# module -> (key, *derived): tensors derived from a module's parameters, with the key (the
# versions and storages of those parameters and the input shape) they were made for. Held here:
# oneDNN's blocked copy of a convolution's own kernel (_PACKED) and of the phase kernels of its
# upsampling form (_PHASES).
_Held = weakref.WeakKeyDictionary[nn.Module, tuple[Any, ...]]
_PACKED: _Held = weakref.WeakKeyDictionary()
_PHASES: _Held = weakref.WeakKeyDictionary()


def held(
    cache: _Held,
    owner: nn.Module,
    x: Tensor,
    sources: tuple[Tensor | None, ...],
    derive: Callable[..., tuple[Any, ...]],
) -> tuple[Any, ...] | None:
    """``derive(*sources)``, made once per ``owner`` and reused while ``sources`` are unchanged.

    The result is kept in ``cache`` while gradients are off (``torch.no_grad``, as pipelines
    sample, or ``torch.inference_mode``: no autograd to feed) and made again when a source tensor
    changes (in-place update, ``.data`` swap) or the shape of ``x`` does. Returns None where
    holding does not apply: gradients on, an ``x`` that is not a channels-last float32 CPU map
    (:func:`onednn_enabled`), sources of another dtype or made under ``torch.inference_mode``.
    """
    if not (
        not torch.is_grad_enabled()
        and x.ndim == 4
        and onednn_enabled(x)
        and x.is_contiguous(memory_format=torch.channels_last)
        # an inference tensor (made under torch.inference_mode) has no version counter, so an
        # in-place change to it could not be seen: such parameters run the plain path
        and all(t is None or (t.dtype == x.dtype and not t.is_inference()) for t in sources)
    ):
        return None
    key = (
        *((None, None) if t is None else (t._version, t.data_ptr()) for t in sources),
        tuple(x.shape),
    )
    found = cache.get(owner)
    if found is None or found[0] != key:
        with torch.no_grad():
            cache[owner] = found = (key, *derive(*sources))
    return found[1:]


def _held_kernel(
    cache: _Held,
    layer: nn.Conv2d,
    x: Tensor,
    stride: int,
    padding: int,
    kernel: Callable[[Tensor, Tensor | None], tuple[Tensor, Tensor | None]],
) -> tuple[Tensor, Tensor | None] | None:
    """oneDNN's blocked copy of a kernel derived from ``layer``'s weights, held by :func:`held`.

    ``kernel(weight, bias) -> (kernel, bias)`` derives the kernel (the weights as they are for a
    plain convolution). Returns None where holding does not apply.
    """

    def blocked(weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        derived, bias = kernel(weight, bias)
        # the stub lacks the trailing input-size argument the kernel takes
        packed = torch._C._nn.mkldnn_reorder_conv2d_weight(  # type: ignore[call-arg]
            derived.contiguous().to_mkldnn(),
            [padding, padding],
            [stride, stride],
            [1, 1],
            1,
            list(x.shape),
        )
        return packed, bias

    found = held(cache, layer, x, (layer.weight, layer.bias), blocked)
    return None if found is None else (found[0], found[1])


def _as_stored(weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """The kernel a plain convolution holds: its own weight and bias."""
    return weight, bias


def _packed_conv(layer: nn.Conv2d, x: Tensor, stride: int, padding: int) -> Tensor | None:
    """The layer's convolution of the channels-last ``x`` with a kernel oneDNN re-laid out once.

    ``torch.mkldnn_convolution`` reorders the kernel into oneDNN's blocked layout on every call;
    :func:`_held_kernel` keeps the reordered copy instead. It costs one extra copy of each
    convolution kernel in memory. Measured on 2 AMD EPYC cores, batch 8: 128 channels over 32x32
    15.6 -> 12.7 ms, 256 over 16x16 15.7 -> 13.7 ms. Returns None where it does not apply.
    """
    held = _held_kernel(_PACKED, layer, x, stride, padding, _as_stored)
    if held is None:
        return None
    pad, step = [padding, padding], [stride, stride]
    out: Tensor = torch.ops.mkldnn._convolution_pointwise(
        x, held[0], held[1], pad, step, [1, 1], 1, "none", [], ""
    )
    return out


def _plain_geometry(layer: nn.Conv2d) -> tuple[int, int] | None:
    """(stride, padding) of a zero-padded, ungrouped, undilated ``layer`` with the same stride and
    padding on both axes (the convolutions oneDNN is called for directly), else None."""
    padding = layer.padding
    if (
        layer.groups == 1
        and layer.padding_mode == "zeros"
        and layer.dilation == (1, 1)
        and isinstance(padding, tuple)
        and padding[0] == padding[1]
        and layer.stride[0] == layer.stride[1]
    ):
        return layer.stride[0], int(padding[0])
    return None


def conv2d_add_(layer: nn.Conv2d, x: Tensor, out: Tensor) -> Tensor | None:
    """``out += layer(x)`` in one oneDNN pass (the convolution's binary add post-op), with the layer's
    held kernel: no tensor is allocated for the convolution's result, and no separate add runs.

    Applies where :func:`_packed_conv` does (gradients off, channels-last float32 on CPU, a plain
    convolution) and ``out`` is a channels-last tensor of the result's shape; returns ``out``, or
    None where it does not apply (then ``out`` is untouched).
    """
    geometry = _plain_geometry(layer)
    if geometry is None or not (
        out.dtype == x.dtype and out.is_contiguous(memory_format=torch.channels_last)
    ):
        return None
    stride, padding = geometry
    held = _held_kernel(_PACKED, layer, x, stride, padding, _as_stored)
    spatial = tuple(
        (size + 2 * padding - k) // stride + 1 for size, k in zip(x.shape[2:], layer.kernel_size)
    )
    if held is None or out.shape != (x.shape[0], layer.out_channels, *spatial):
        return None
    pad, step = [padding, padding], [stride, stride]
    result: Tensor = torch.ops.mkldnn._convolution_pointwise_.binary(
        out, x, held[0], held[1], pad, step, [1, 1], 1, "add", None, None, [], None
    )
    return result


def _phase_kernels(weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """The four 2x2 kernels that nearest 2x upsampling followed by ``weight`` (3x3) amounts to.

    Output row ``2i`` of the upsampled convolution reads input rows ``i - 1, i, i`` through kernel
    rows 0, 1, 2, so it is a 2-tap convolution with rows ``(w0, w1 + w2)`` at offsets -1 and 0;
    row ``2i + 1`` reads ``i, i, i + 1``: rows ``(w0 + w1, w2)`` at offsets 0 and 1. Columns fold
    the same way. Returns the (4 C_out, C_in, 2, 2) kernels of phases (row, column) = (0, 0),
    (0, 1), (1, 0), (1, 1) stacked along the output channels, and the bias repeated for each.
    """
    w0, w1, w2 = weight.unbind(2)
    rows = (torch.stack((w0, w1 + w2), 2), torch.stack((w0 + w1, w2), 2))
    phases = []
    for r in rows:
        c0, c1, c2 = r.unbind(3)
        phases += [torch.stack((c0, c1 + c2), 3), torch.stack((c0 + c1, c2), 3)]
    return torch.cat(phases, 0), None if bias is None else bias.repeat(4)


def upsample_nearest_conv(layer: nn.Conv2d, x: Tensor) -> Tensor | None:
    """``layer(F.interpolate(x, scale_factor=2, mode="nearest"))`` for a 3x3, stride-1, padding-1
    ``layer``, computed on ``x`` itself with 2.25x fewer multiply-adds.

    Each of the four output phases (even/odd row, even/odd column) is a 2x2 convolution of the
    low-resolution input (:func:`_phase_kernels`); the four run as one convolution with four
    times the output channels over the input padded by one, and are interleaved into the
    output. The sums of weights make it equal the upsample-then-convolve result to float
    rounding. Held and used like :func:`_packed_conv` (gradients off, channels-last float32 on
    CPU); returns None elsewhere. Measured on 2 AMD EPYC cores (one thread), batch 8, 256
    channels: 16x16 -> 32x32 198 -> 97 ms, 8x8 -> 16x16 47 -> 34 ms.
    """
    if not (
        layer.kernel_size == (3, 3)
        and layer.stride == (1, 1)
        and layer.padding == (1, 1)
        and layer.dilation == (1, 1)
        and layer.groups == 1
        and layer.padding_mode == "zeros"
    ):
        return None
    held = _held_kernel(_PHASES, layer, x, 1, 1, _phase_kernels)
    if held is None:
        return None
    b, _, h, w = x.shape
    c = layer.out_channels
    phases = torch.ops.mkldnn._convolution_pointwise(
        x, held[0], held[1], [1, 1], [1, 1], [1, 1], 1, "none", [], ""
    )  # (B, 4 C, H + 1, W + 1), channels-last
    out = torch.empty((b, c, 2 * h, 2 * w), dtype=x.dtype, memory_format=torch.channels_last)
    for index, (row, col) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        phase = phases[:, index * c : (index + 1) * c]
        out[:, :, row::2, col::2] = phase[:, :, row : row + h, col : col + w]
    return out


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state-dict keys) whose forward uses :func:`conv2d`
    when the layer is a plain zero-padded, ungrouped, undilated convolution, and a kernel
    re-laid out once (:func:`_packed_conv`) for channels-last inputs with gradients off."""

    _kernel = staticmethod(conv2d)

    def forward(self, input: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H', W')."""
        geometry = _plain_geometry(self)
        if geometry is not None:
            stride, padding = geometry
            packed = _packed_conv(self, input, stride, padding)
            if packed is not None:
                return packed
            return self._kernel(input, self.weight, self.bias, stride, padding)
        out: Tensor = nn.Conv2d.forward(self, input)
        return out


class AdaptiveConv2d(Conv2d):
    """:class:`Conv2d` (same parameters and state-dict keys) whose forward uses
    :func:`conv2d_adaptive` for plain zero-padded, ungrouped, undilated convolutions."""

    _kernel = staticmethod(conv2d_adaptive)


def use_adaptive_convs(module: nn.Module) -> nn.Module:
    """Turn every :class:`Conv2d` under ``module`` into an :class:`AdaptiveConv2d`, in place.

    Only the class changes (parameters, buffers and state-dict keys stay), so a model built from
    the shared blocks opts in after construction. Returns ``module``.
    """
    for layer in module.modules():
        if type(layer) is Conv2d:
            layer.__class__ = AdaptiveConv2d
    return module
