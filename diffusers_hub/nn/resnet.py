"""The ResNet block of the diffusion UNets (keys ``norm1, conv1, time_emb_proj, norm2, conv2,
conv_shortcut``)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffusers_hub.nn._kernels import Conv2d, conv2d_add_, upsample_nearest_conv
from diffusers_hub.nn.activations import get_activation
from diffusers_hub.nn.sampling import Downsample2D, Upsample2D

__all__ = ["ResnetBlock2D", "apply_activation"]


def apply_activation(act: nn.Module, x: Tensor, *, inplace: bool = False) -> Tensor:
    """Apply ``act`` to ``x``, overwriting ``x`` when ``inplace`` and the activation allows it.

    In-place SiLU saves one full-size allocation per call; use it only on temporaries that no
    autograd graph needs.
    """
    if isinstance(act, nn.SiLU):
        return F.silu(x, inplace=inplace)
    if isinstance(act, nn.ReLU):
        return F.relu(x, inplace=inplace)
    out: Tensor = act(x)
    return out


class ResnetBlock2D(nn.Module):
    """Pre-activation ResNet block with a timestep-embedding injection.

    ``h = conv1(act(norm1(x)))``; the embedding ``e = time_emb_proj(act(temb))`` is added to ``h``
    (``time_embedding_norm="default"``) or applied after ``norm2`` as a scale and shift
    (``"scale_shift"``: ``norm2(h) * (1 + s) + b``, the AdaGN of improved DDPM);
    ``out = (shortcut(x) + conv2(dropout(act(norm2(h))))) / output_scale_factor``.

    Args:
        in_channels: input channels.
        out_channels: output channels; defaults to ``in_channels``.
        temb_channels: width of the time embedding, or None for blocks without one (autoencoders).
        groups: GroupNorm groups of ``norm1``.
        groups_out: GroupNorm groups of ``norm2``; defaults to ``groups``.
        eps: GroupNorm epsilon.
        dropout: dropout probability before ``conv2``.
        non_linearity: activation name (``silu``/``swish``, ``mish``, ``gelu``, ``relu``).
        time_embedding_norm: ``"default"`` (add) or ``"scale_shift"``.
        output_scale_factor: the sum is divided by this.
        use_in_shortcut: force (or forbid) the 1x1 ``conv_shortcut``; by default it exists when
            the channel count changes.
        up: nearest 2x upsampling of both paths after the first activation.
        down: 2x2 average-pool downsampling of both paths after the first activation.
        skip_time_act: feed ``temb`` to ``time_emb_proj`` without the activation.
        conv_shortcut_bias: bias of the 1x1 shortcut convolution.
        conv_2d_out_channels: output channels of ``conv2`` (and the block); defaults to
            ``out_channels``.

    References:
        He et al. 2016 (arXiv:1603.05027); Ho et al. 2020, appendix B (arXiv:2006.11239);
        Dhariwal & Nichol 2021, sec. 3 (AdaGN, arXiv:2105.05233).

    Example:
        >>> block = ResnetBlock2D(16, 32, temb_channels=64, groups=8)
        >>> block(torch.randn(2, 16, 8, 8), torch.randn(2, 64)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        temb_channels: int | None = 512,
        groups: int = 32,
        groups_out: int | None = None,
        eps: float = 1e-6,
        dropout: float = 0.0,
        non_linearity: str = "silu",
        time_embedding_norm: Literal["default", "scale_shift"] = "default",
        output_scale_factor: float = 1.0,
        use_in_shortcut: bool | None = None,
        *,
        up: bool = False,
        down: bool = False,
        skip_time_act: bool = False,
        conv_shortcut_bias: bool = True,
        conv_2d_out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if time_embedding_norm not in ("default", "scale_shift"):
            raise ValueError(
                f"unknown time_embedding_norm {time_embedding_norm!r}; allowed: default, scale_shift"
            )
        out_channels = in_channels if out_channels is None else out_channels
        final_channels = conv_2d_out_channels or out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.time_embedding_norm = time_embedding_norm
        self.output_scale_factor = output_scale_factor
        self.skip_time_act = skip_time_act
        self.up = up
        self.down = down

        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj: nn.Linear | None = None
        if temb_channels is not None:
            factor = 2 if time_embedding_norm == "scale_shift" else 1
            self.time_emb_proj = nn.Linear(temb_channels, factor * out_channels)
        self.norm2 = nn.GroupNorm(groups_out or groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = Conv2d(out_channels, final_channels, 3, padding=1)
        self.nonlinearity = get_activation(non_linearity)

        self.resample: nn.Module | None = None
        if up:
            self.resample = Upsample2D(in_channels, use_conv=False)
        elif down:
            self.resample = Downsample2D(in_channels, use_conv=False)

        if use_in_shortcut is None:
            use_in_shortcut = in_channels != final_channels
        self.conv_shortcut: Conv2d | None = None
        if use_in_shortcut:
            self.conv_shortcut = Conv2d(in_channels, final_channels, 1, bias=conv_shortcut_bias)

    def forward(self, input_tensor: Tensor, temb: Tensor | None = None) -> Tensor:
        """Apply the block.

        Args:
            input_tensor: (B, C_in, H, W).
            temb: (B, temb_channels) time embedding, or None when the block has no projection.

        Returns:
            (B, C_out, H', W') with ``H' = 2H`` (``up``), ``H / 2`` (``down``) or ``H``.
        """
        # Temporaries are overwritten in place when no autograd graph records them.
        inplace = not torch.is_grad_enabled()
        x = input_tensor
        h = self.norm1(x)
        h = apply_activation(self.nonlinearity, h, inplace=inplace)
        if self.resample is not None:
            x = self.resample(x)
        # nearest 2x then conv1 as one convolution of the small map, where it applies
        fused = upsample_nearest_conv(self.conv1, h) if self.up else None
        if fused is not None:
            h = fused
        else:
            h = h if self.resample is None else self.resample(h)
            h = self.conv1(h)

        emb: Tensor | None = None
        if self.time_emb_proj is not None:
            if temb is None:
                raise ValueError("this ResnetBlock2D has a time_emb_proj and needs temb")
            t = temb if self.skip_time_act else apply_activation(self.nonlinearity, temb)
            emb = self.time_emb_proj(t)[:, :, None, None]

        if self.time_embedding_norm == "scale_shift":
            if emb is None:
                raise ValueError("time_embedding_norm='scale_shift' needs temb")
            scale, shift = emb.chunk(2, dim=1)
            h = self.norm2(h)
            h = torch.addcmul(shift, h, 1 + scale)  # eq. AdaGN: norm(h) * (1 + s) + b
        else:
            if emb is not None:
                h = h.add_(emb) if inplace else h + emb
            h = self.norm2(h)
        h = apply_activation(self.nonlinearity, h, inplace=inplace)
        h = self.dropout(h)
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        # a shortcut's output is ours to overwrite: conv2 adds its result into it in one pass
        into_shortcut = self.conv_shortcut is not None and inplace
        out = conv2d_add_(self.conv2, h, x) if into_shortcut else None
        if out is None:
            conv_out: Tensor = self.conv2(h)
            out = conv_out.add_(x) if inplace else conv_out + x
        if self.output_scale_factor != 1.0:
            out = out.div_(self.output_scale_factor) if inplace else out / self.output_scale_factor
        return out
