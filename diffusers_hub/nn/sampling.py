"""2x spatial down- and upsampling layers of the UNets (``downsamplers.0.conv``, ``upsamplers.0.conv``)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from diffusers_hub.nn._kernels import Conv2d, upsample_nearest_conv

__all__ = ["Downsample2D", "Upsample2D"]


class Downsample2D(nn.Module):
    """Halve the resolution with a stride-2 3x3 convolution, or 2x2 average pooling.

    ``padding=0`` reproduces the DDPM TensorFlow layout: pad right and bottom by one, then a
    stride-2 convolution without padding.

    Args:
        channels: input channels.
        use_conv: convolution (with weights ``conv``) instead of average pooling.
        out_channels: output channels (convolution only); defaults to ``channels``.
        padding: convolution padding (0 or 1).

    Example:
        >>> Downsample2D(8, use_conv=True, padding=0)(torch.randn(1, 8, 16, 16)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(
        self,
        channels: int,
        use_conv: bool = False,
        out_channels: int | None = None,
        padding: int = 1,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.padding = padding
        self.conv: nn.Module
        if use_conv:
            self.conv = Conv2d(channels, self.out_channels, 3, stride=2, padding=padding)
        else:
            if self.out_channels != channels:
                raise ValueError("average-pool downsampling cannot change the channel count")
            self.conv = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, hidden_states: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C_out, H / 2, W / 2)."""
        if self.use_conv and self.padding == 0:
            hidden_states = F.pad(hidden_states, (0, 1, 0, 1))
        out: Tensor = self.conv(hidden_states)
        return out


class Upsample2D(nn.Module):
    """Double the resolution with nearest-neighbour interpolation, optionally followed by a 3x3
    convolution (``conv``).

    With gradients off (``torch.no_grad``, ``torch.inference_mode``) on channels-last CPU maps,
    interpolation and convolution run as one convolution of the low-resolution map
    (:func:`~diffusers_hub.nn._kernels.upsample_nearest_conv`: 2.25x fewer multiply-adds, equal to
    float rounding).

    Args:
        channels: input channels.
        use_conv: apply the 3x3 convolution after upsampling.
        out_channels: output channels of the convolution; defaults to ``channels``.

    Example:
        >>> Upsample2D(8, use_conv=True)(torch.randn(1, 8, 4, 4)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(
        self, channels: int, use_conv: bool = False, out_channels: int | None = None
    ) -> None:
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.conv: Conv2d | None = (
            Conv2d(channels, self.out_channels, 3, padding=1) if use_conv else None
        )

    def forward(self, hidden_states: Tensor, output_size: tuple[int, int] | None = None) -> Tensor:
        """(B, C, H, W) -> (B, C_out, 2H, 2W), or ``output_size`` when given."""
        doubled = output_size is None or tuple(output_size) == (
            2 * hidden_states.shape[-2],
            2 * hidden_states.shape[-1],
        )
        if self.conv is not None and doubled:
            fused = upsample_nearest_conv(self.conv, hidden_states)
            if fused is not None:
                return fused
        if output_size is None:
            hidden_states = F.interpolate(hidden_states, scale_factor=2.0, mode="nearest")
        else:
            hidden_states = F.interpolate(hidden_states, size=output_size, mode="nearest")
        if self.conv is not None:
            hidden_states = self.conv(hidden_states)
        return hidden_states
