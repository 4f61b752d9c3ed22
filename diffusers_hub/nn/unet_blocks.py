"""The down, mid and up blocks of the diffusion UNets and autoencoders, with the constructor
arguments and state-dict key names of the diffusers format (``resnets.j``, ``attentions.j``,
``downsamplers.0``, ``upsamplers.0``)."""

from __future__ import annotations

from typing import Literal, TypedDict

import torch
from torch import Tensor, nn

from diffusers_hub.nn.attention import Attention
from diffusers_hub.nn.resnet import ResnetBlock2D
from diffusers_hub.nn.sampling import Downsample2D, Upsample2D

__all__ = [
    "DOWN_BLOCK_TYPES",
    "UP_BLOCK_TYPES",
    "AttnDownBlock2D",
    "AttnUpBlock2D",
    "DownBlock2D",
    "DownEncoderBlock2D",
    "ResnetDownsampleBlock2D",
    "ResnetUpsampleBlock2D",
    "UNetMidBlock2D",
    "UpBlock2D",
    "UpDecoderBlock2D",
    "get_down_block",
    "get_up_block",
]

TimeScaleShift = Literal["default", "scale_shift"]
ResampleType = Literal["conv", "resnet"]


class _BlockKwargs(TypedDict):
    num_layers: int
    in_channels: int
    out_channels: int
    temb_channels: int | None
    dropout: float
    resnet_eps: float
    resnet_act_fn: str
    resnet_groups: int
    resnet_time_scale_shift: TimeScaleShift


class _UpBlockKwargs(_BlockKwargs):
    prev_output_channel: int


def _spatial_attention(
    channels: int, attention_head_dim: int | None, eps: float, groups: int | None, scale: float
) -> Attention:
    """The self-attention of the UNet blocks: ``channels // attention_head_dim`` heads of width
    ``attention_head_dim`` (one head of width ``channels`` when None), with GroupNorm, biases and
    a residual connection."""
    head_dim = channels if attention_head_dim is None else attention_head_dim
    return Attention(
        channels,
        heads=max(channels // head_dim, 1),
        dim_head=head_dim,
        bias=True,
        norm_num_groups=groups,
        eps=eps,
        residual_connection=True,
        rescale_output_factor=scale,
    )


def _resnet_stack(
    in_channels: int,
    out_channels: int,
    temb_channels: int | None,
    num_layers: int,
    *,
    eps: float,
    groups: int,
    dropout: float,
    time_scale_shift: TimeScaleShift,
    act_fn: str,
    output_scale_factor: float,
    skip_time_act: bool = False,
) -> nn.ModuleList:
    return nn.ModuleList(
        ResnetBlock2D(
            in_channels if i == 0 else out_channels,
            out_channels,
            temb_channels=temb_channels,
            groups=groups,
            eps=eps,
            dropout=dropout,
            non_linearity=act_fn,
            time_embedding_norm=time_scale_shift,
            output_scale_factor=output_scale_factor,
            skip_time_act=skip_time_act,
        )
        for i in range(num_layers)
    )


def _up_resnet_stack(
    in_channels: int,
    prev_output_channel: int,
    out_channels: int,
    temb_channels: int | None,
    num_layers: int,
    *,
    eps: float,
    groups: int,
    dropout: float,
    time_scale_shift: TimeScaleShift,
    act_fn: str,
    output_scale_factor: float,
    skip_time_act: bool = False,
) -> nn.ModuleList:
    """ResNets of an up block: resnet i takes the running features (``prev_output_channel`` for
    the first, ``out_channels`` after) concatenated with one skip connection (``in_channels`` for
    the last, ``out_channels`` for the others)."""
    blocks = []
    for i in range(num_layers):
        skip = in_channels if i == num_layers - 1 else out_channels
        running = prev_output_channel if i == 0 else out_channels
        blocks.append(
            ResnetBlock2D(
                running + skip,
                out_channels,
                temb_channels=temb_channels,
                groups=groups,
                eps=eps,
                dropout=dropout,
                non_linearity=act_fn,
                time_embedding_norm=time_scale_shift,
                output_scale_factor=output_scale_factor,
                skip_time_act=skip_time_act,
            )
        )
    return nn.ModuleList(blocks)


def _resample_resnet(
    channels: int,
    temb_channels: int | None,
    *,
    up: bool,
    eps: float,
    groups: int,
    dropout: float,
    time_scale_shift: TimeScaleShift,
    act_fn: str,
    output_scale_factor: float,
    skip_time_act: bool = False,
) -> ResnetBlock2D:
    return ResnetBlock2D(
        channels,
        channels,
        temb_channels=temb_channels,
        groups=groups,
        eps=eps,
        dropout=dropout,
        non_linearity=act_fn,
        time_embedding_norm=time_scale_shift,
        output_scale_factor=output_scale_factor,
        skip_time_act=skip_time_act,
        up=up,
        down=not up,
    )


def _pop_skip(
    hidden_states: Tensor, skips: tuple[Tensor, ...]
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Concatenate the last skip connection to ``hidden_states`` along channels."""
    return torch.cat([hidden_states, skips[-1]], dim=1), skips[:-1]


class DownBlock2D(nn.Module):
    """``num_layers`` ResNet blocks, then an optional stride-2 convolution.

    Args:
        in_channels: input channels.
        out_channels: channels of every ResNet block.
        temb_channels: time-embedding width.
        dropout: ResNet dropout.
        num_layers: number of ResNet blocks.
        resnet_eps: GroupNorm epsilon.
        resnet_time_scale_shift: ``"default"`` or ``"scale_shift"``.
        resnet_act_fn: activation name.
        resnet_groups: GroupNorm groups.
        resnet_pre_norm: accepted for config compatibility (always pre-norm).
        output_scale_factor: ResNet output divisor.
        add_downsample: end with ``downsamplers.0``.
        downsample_padding: 1, or 0 for the pad-right-bottom DDPM layout.

    Example:
        >>> block = DownBlock2D(16, 32, 64, num_layers=2, resnet_groups=8)
        >>> h, skips = block(torch.randn(1, 16, 8, 8), torch.randn(1, 64))
        >>> h.shape, len(skips)
        (torch.Size([1, 32, 4, 4]), 3)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int | None,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        resnet_pre_norm: bool = True,
        output_scale_factor: float = 1.0,
        add_downsample: bool = True,
        downsample_padding: int = 1,
    ) -> None:
        super().__init__()
        self.resnets = _resnet_stack(
            in_channels,
            out_channels,
            temb_channels,
            num_layers,
            eps=resnet_eps,
            groups=resnet_groups,
            dropout=dropout,
            time_scale_shift=resnet_time_scale_shift,
            act_fn=resnet_act_fn,
            output_scale_factor=output_scale_factor,
        )
        self.downsamplers: nn.ModuleList | None = None
        if add_downsample:
            self.downsamplers = nn.ModuleList(
                [Downsample2D(out_channels, use_conv=True, padding=downsample_padding)]
            )

    def forward(
        self, hidden_states: Tensor, temb: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """(B, C_in, H, W) -> (output, skip connections for the up path)."""
        skips: tuple[Tensor, ...] = ()
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, temb)
            skips += (hidden_states,)
        if self.downsamplers is not None:
            for down in self.downsamplers:
                hidden_states = down(hidden_states)
            skips += (hidden_states,)
        return hidden_states, skips


class AttnDownBlock2D(nn.Module):
    """ResNet blocks each followed by self-attention, then an optional downsampler.

    The other arguments (in_channels, out_channels, temb_channels, dropout, num_layers, resnet_eps,
    resnet_time_scale_shift, resnet_act_fn, resnet_groups, resnet_pre_norm, output_scale_factor,
    downsample_padding) are those of :class:`DownBlock2D`.

    Args:
        attention_head_dim: channels per head (None: one head over all channels).
        downsample_type: ``"conv"``, ``"resnet"`` (a ResNet block with average pooling) or None.
        add_downsample: False drops the downsampler whatever ``downsample_type`` says.

    Example:
        >>> block = AttnDownBlock2D(16, 32, 64, resnet_groups=8, attention_head_dim=8)
        >>> block(torch.randn(1, 16, 8, 8), torch.randn(1, 64))[0].shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int | None,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        resnet_pre_norm: bool = True,
        attention_head_dim: int | None = 1,
        output_scale_factor: float = 1.0,
        downsample_padding: int = 1,
        downsample_type: ResampleType | None = "conv",
        add_downsample: bool = True,
    ) -> None:
        super().__init__()
        self.resnets = _resnet_stack(
            in_channels,
            out_channels,
            temb_channels,
            num_layers,
            eps=resnet_eps,
            groups=resnet_groups,
            dropout=dropout,
            time_scale_shift=resnet_time_scale_shift,
            act_fn=resnet_act_fn,
            output_scale_factor=output_scale_factor,
        )
        self.attentions = nn.ModuleList(
            _spatial_attention(
                out_channels, attention_head_dim, resnet_eps, resnet_groups, output_scale_factor
            )
            for _ in range(num_layers)
        )
        self.downsample_type = downsample_type if add_downsample else None
        self.downsamplers: nn.ModuleList | None = None
        if self.downsample_type == "conv":
            self.downsamplers = nn.ModuleList(
                [Downsample2D(out_channels, use_conv=True, padding=downsample_padding)]
            )
        elif self.downsample_type == "resnet":
            self.downsamplers = nn.ModuleList(
                [
                    _resample_resnet(
                        out_channels,
                        temb_channels,
                        up=False,
                        eps=resnet_eps,
                        groups=resnet_groups,
                        dropout=dropout,
                        time_scale_shift=resnet_time_scale_shift,
                        act_fn=resnet_act_fn,
                        output_scale_factor=output_scale_factor,
                    )
                ]
            )
        elif self.downsample_type is not None:
            raise ValueError(f"unknown downsample_type {downsample_type!r}; allowed: conv, resnet")

    def forward(
        self, hidden_states: Tensor, temb: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """(B, C_in, H, W) -> (output, skip connections for the up path)."""
        skips: tuple[Tensor, ...] = ()
        for resnet, attn in zip(self.resnets, self.attentions):
            hidden_states = attn(resnet(hidden_states, temb))
            skips += (hidden_states,)
        if self.downsamplers is not None:
            for down in self.downsamplers:
                if self.downsample_type == "resnet":
                    hidden_states = down(hidden_states, temb)
                else:
                    hidden_states = down(hidden_states)
            skips += (hidden_states,)
        return hidden_states, skips


class ResnetDownsampleBlock2D(nn.Module):
    """Like :class:`DownBlock2D` but downsampling with a ResNet block (``down=True``).

    The other arguments (in_channels, out_channels, temb_channels, dropout, num_layers, resnet_eps,
    resnet_time_scale_shift, resnet_act_fn, resnet_groups, resnet_pre_norm, output_scale_factor,
    add_downsample) are those of :class:`DownBlock2D`.

    Args:
        skip_time_act: feed the time embedding to the projections without activation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int | None,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        resnet_pre_norm: bool = True,
        output_scale_factor: float = 1.0,
        add_downsample: bool = True,
        skip_time_act: bool = False,
    ) -> None:
        super().__init__()
        self.resnets = _resnet_stack(
            in_channels,
            out_channels,
            temb_channels,
            num_layers,
            eps=resnet_eps,
            groups=resnet_groups,
            dropout=dropout,
            time_scale_shift=resnet_time_scale_shift,
            act_fn=resnet_act_fn,
            output_scale_factor=output_scale_factor,
            skip_time_act=skip_time_act,
        )
        self.downsamplers: nn.ModuleList | None = None
        if add_downsample:
            self.downsamplers = nn.ModuleList(
                [
                    _resample_resnet(
                        out_channels,
                        temb_channels,
                        up=False,
                        eps=resnet_eps,
                        groups=resnet_groups,
                        dropout=dropout,
                        time_scale_shift=resnet_time_scale_shift,
                        act_fn=resnet_act_fn,
                        output_scale_factor=output_scale_factor,
                        skip_time_act=skip_time_act,
                    )
                ]
            )

    def forward(
        self, hidden_states: Tensor, temb: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """(B, C_in, H, W) -> (output, skip connections for the up path)."""
        skips: tuple[Tensor, ...] = ()
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, temb)
            skips += (hidden_states,)
        if self.downsamplers is not None:
            for down in self.downsamplers:
                hidden_states = down(hidden_states, temb)
            skips += (hidden_states,)
        return hidden_states, skips


class DownEncoderBlock2D(nn.Module):
    """The encoder block of the autoencoders: ResNet blocks without time embedding, then an
    optional downsampler. ``forward(x) -> x`` (no skip connections).

    The other arguments (in_channels, out_channels, dropout, num_layers, resnet_eps,
    resnet_time_scale_shift, resnet_act_fn, resnet_groups, resnet_pre_norm, output_scale_factor,
    add_downsample, downsample_padding) are those of :class:`DownBlock2D`.

    Args:

    Example:
        >>> DownEncoderBlock2D(8, 16, resnet_groups=4)(torch.randn(1, 8, 8, 8)).shape
        torch.Size([1, 16, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        resnet_pre_norm: bool = True,
        output_scale_factor: float = 1.0,
        add_downsample: bool = True,
        downsample_padding: int = 1,
    ) -> None:
        super().__init__()
        self.resnets = _resnet_stack(
            in_channels,
            out_channels,
            None,
            num_layers,
            eps=resnet_eps,
            groups=resnet_groups,
            dropout=dropout,
            time_scale_shift=resnet_time_scale_shift,
            act_fn=resnet_act_fn,
            output_scale_factor=output_scale_factor,
        )
        self.downsamplers: nn.ModuleList | None = None
        if add_downsample:
            self.downsamplers = nn.ModuleList(
                [Downsample2D(out_channels, use_conv=True, padding=downsample_padding)]
            )

    def forward(self, hidden_states: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H', W')."""
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, None)
        if self.downsamplers is not None:
            for down in self.downsamplers:
                hidden_states = down(hidden_states)
        return hidden_states


class UNetMidBlock2D(nn.Module):
    """``resnets.0``, then ``num_layers`` times (self-attention, ResNet): the UNet bottleneck, and
    the autoencoders' mid block when ``temb_channels`` is None.

    Args:
        in_channels: channels (kept throughout).
        temb_channels: time-embedding width, or None.
        dropout: ResNet dropout.
        num_layers: number of attention + ResNet pairs.
        resnet_eps: GroupNorm epsilon.
        resnet_time_scale_shift: ``"default"`` or ``"scale_shift"``.
        resnet_act_fn: activation name.
        resnet_groups: GroupNorm groups; None means ``min(in_channels // 4, 32)``.
        attn_groups: GroupNorm groups of the attention; None means ``resnet_groups`` with
            ``"default"`` and no attention norm with ``"scale_shift"`` (the diffusers rule).
        resnet_pre_norm: accepted for config compatibility.
        add_attention: False builds the ResNets only.
        attention_head_dim: channels per head (None: one head).
        output_scale_factor: divisor of the ResNet and attention outputs.

    Example:
        >>> mid = UNetMidBlock2D(32, 64, resnet_groups=8, attention_head_dim=8)
        >>> mid(torch.randn(1, 32, 4, 4), torch.randn(1, 64)).shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        temb_channels: int | None,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int | None = 32,
        attn_groups: int | None = None,
        resnet_pre_norm: bool = True,
        add_attention: bool = True,
        attention_head_dim: int | None = 1,
        output_scale_factor: float = 1.0,
    ) -> None:
        super().__init__()
        groups = resnet_groups if resnet_groups is not None else min(in_channels // 4, 32)
        if attn_groups is None and resnet_time_scale_shift == "default":
            attn_groups = groups
        self.add_attention = add_attention
        self.resnets = _resnet_stack(
            in_channels,
            in_channels,
            temb_channels,
            num_layers + 1,
            eps=resnet_eps,
            groups=groups,
            dropout=dropout,
            time_scale_shift=resnet_time_scale_shift,
            act_fn=resnet_act_fn,
            output_scale_factor=output_scale_factor,
        )
        self.attentions = nn.ModuleList(
            _spatial_attention(
                in_channels, attention_head_dim, resnet_eps, attn_groups, output_scale_factor
            )
            for _ in range(num_layers if add_attention else 0)
        )

    def forward(self, hidden_states: Tensor, temb: Tensor | None = None) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        hidden_states = self.resnets[0](hidden_states, temb)
        for i, resnet in enumerate(self.resnets[1:]):
            if self.add_attention:
                hidden_states = self.attentions[i](hidden_states)
            hidden_states = resnet(hidden_states, temb)
        return hidden_states


class UpBlock2D(nn.Module):
    """``num_layers`` ResNet blocks, each fed the running features concatenated with one skip
    connection, then an optional nearest 2x upsampling + 3x3 convolution.

    The other arguments (temb_channels, dropout, num_layers, resnet_eps, resnet_time_scale_shift,
    resnet_act_fn, resnet_groups, resnet_pre_norm, output_scale_factor) are those of
    :class:`DownBlock2D`.

    Args:
        in_channels: channels of the deepest skip connection this block consumes (the last one).
        prev_output_channel: channels of the incoming features.
        out_channels: channels of every ResNet block.
        resolution_idx: accepted for config compatibility (FreeU index; unused).
        add_upsample: end with ``upsamplers.0``.

    Example:
        >>> block = UpBlock2D(16, 32, 16, 64, num_layers=1, resnet_groups=8)
        >>> block(torch.randn(1, 32, 4, 4), (torch.randn(1, 16, 4, 4),), torch.randn(1, 64)).shape
        torch.Size([1, 16, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        prev_output_channel: int,
        out_channels: int,
        temb_channels: int | None,
        resolution_idx: int | None = None,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        resnet_pre_norm: bool = True,
        output_scale_factor: float = 1.0,
        add_upsample: bool = True,
    ) -> None:
        super().__init__()
        self.resolution_idx = resolution_idx
        self.resnets = _up_resnet_stack(
            in_channels,
            prev_output_channel,
            out_channels,
            temb_channels,
            num_layers,
            eps=resnet_eps,
            groups=resnet_groups,
            dropout=dropout,
            time_scale_shift=resnet_time_scale_shift,
            act_fn=resnet_act_fn,
            output_scale_factor=output_scale_factor,
        )
        self.upsamplers: nn.ModuleList | None = None
        if add_upsample:
            self.upsamplers = nn.ModuleList([Upsample2D(out_channels, use_conv=True)])

    def forward(
        self,
        hidden_states: Tensor,
        res_hidden_states_tuple: tuple[Tensor, ...],
        temb: Tensor | None = None,
        upsample_size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Consume ``len(resnets)`` skip connections (last first) and return (B, C_out, H', W')."""
        skips = res_hidden_states_tuple
        for resnet in self.resnets:
            hidden_states, skips = _pop_skip(hidden_states, skips)
            hidden_states = resnet(hidden_states, temb)
        if self.upsamplers is not None:
            for up in self.upsamplers:
                hidden_states = up(hidden_states, upsample_size)
        return hidden_states


class AttnUpBlock2D(nn.Module):
    """:class:`UpBlock2D` with self-attention after every ResNet block.

    The other arguments (in_channels, prev_output_channel, out_channels, temb_channels,
    resolution_idx, dropout, num_layers, resnet_eps, resnet_time_scale_shift, resnet_act_fn,
    resnet_groups, resnet_pre_norm, output_scale_factor) are those of :class:`UpBlock2D`.

    Args:
        attention_head_dim: channels per head (None: one head).
        upsample_type: ``"conv"``, ``"resnet"`` (ResNet block with nearest upsampling) or None.
        add_upsample: False drops the upsampler whatever ``upsample_type`` says.
    """

    def __init__(
        self,
        in_channels: int,
        prev_output_channel: int,
        out_channels: int,
        temb_channels: int | None,
        resolution_idx: int | None = None,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        resnet_pre_norm: bool = True,
        attention_head_dim: int | None = 1,
        output_scale_factor: float = 1.0,
        upsample_type: ResampleType | None = "conv",
        add_upsample: bool = True,
    ) -> None:
        super().__init__()
        self.resolution_idx = resolution_idx
        self.resnets = _up_resnet_stack(
            in_channels,
            prev_output_channel,
            out_channels,
            temb_channels,
            num_layers,
            eps=resnet_eps,
            groups=resnet_groups,
            dropout=dropout,
            time_scale_shift=resnet_time_scale_shift,
            act_fn=resnet_act_fn,
            output_scale_factor=output_scale_factor,
        )
        self.attentions = nn.ModuleList(
            _spatial_attention(
                out_channels, attention_head_dim, resnet_eps, resnet_groups, output_scale_factor
            )
            for _ in range(num_layers)
        )
        self.upsample_type = upsample_type if add_upsample else None
        self.upsamplers: nn.ModuleList | None = None
        if self.upsample_type == "conv":
            self.upsamplers = nn.ModuleList([Upsample2D(out_channels, use_conv=True)])
        elif self.upsample_type == "resnet":
            self.upsamplers = nn.ModuleList(
                [
                    _resample_resnet(
                        out_channels,
                        temb_channels,
                        up=True,
                        eps=resnet_eps,
                        groups=resnet_groups,
                        dropout=dropout,
                        time_scale_shift=resnet_time_scale_shift,
                        act_fn=resnet_act_fn,
                        output_scale_factor=output_scale_factor,
                    )
                ]
            )
        elif self.upsample_type is not None:
            raise ValueError(f"unknown upsample_type {upsample_type!r}; allowed: conv, resnet")

    def forward(
        self,
        hidden_states: Tensor,
        res_hidden_states_tuple: tuple[Tensor, ...],
        temb: Tensor | None = None,
        upsample_size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Consume ``len(resnets)`` skip connections (last first) and return (B, C_out, H', W')."""
        skips = res_hidden_states_tuple
        for resnet, attn in zip(self.resnets, self.attentions):
            hidden_states, skips = _pop_skip(hidden_states, skips)
            hidden_states = attn(resnet(hidden_states, temb))
        if self.upsamplers is not None:
            for up in self.upsamplers:
                if self.upsample_type == "resnet":
                    hidden_states = up(hidden_states, temb)
                else:
                    hidden_states = up(hidden_states, upsample_size)
        return hidden_states


class ResnetUpsampleBlock2D(nn.Module):
    """Like :class:`UpBlock2D` but upsampling with a ResNet block (``up=True``).

    The other arguments (in_channels, prev_output_channel, out_channels, temb_channels,
    resolution_idx, dropout, num_layers, resnet_eps, resnet_time_scale_shift, resnet_act_fn,
    resnet_groups, resnet_pre_norm, output_scale_factor, add_upsample) are those of
    :class:`UpBlock2D`.

    Args:
        skip_time_act: feed the time embedding to the projections without activation.
    """

    def __init__(
        self,
        in_channels: int,
        prev_output_channel: int,
        out_channels: int,
        temb_channels: int | None,
        resolution_idx: int | None = None,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        resnet_pre_norm: bool = True,
        output_scale_factor: float = 1.0,
        add_upsample: bool = True,
        skip_time_act: bool = False,
    ) -> None:
        super().__init__()
        self.resolution_idx = resolution_idx
        self.resnets = _up_resnet_stack(
            in_channels,
            prev_output_channel,
            out_channels,
            temb_channels,
            num_layers,
            eps=resnet_eps,
            groups=resnet_groups,
            dropout=dropout,
            time_scale_shift=resnet_time_scale_shift,
            act_fn=resnet_act_fn,
            output_scale_factor=output_scale_factor,
            skip_time_act=skip_time_act,
        )
        self.upsamplers: nn.ModuleList | None = None
        if add_upsample:
            self.upsamplers = nn.ModuleList(
                [
                    _resample_resnet(
                        out_channels,
                        temb_channels,
                        up=True,
                        eps=resnet_eps,
                        groups=resnet_groups,
                        dropout=dropout,
                        time_scale_shift=resnet_time_scale_shift,
                        act_fn=resnet_act_fn,
                        output_scale_factor=output_scale_factor,
                        skip_time_act=skip_time_act,
                    )
                ]
            )

    def forward(
        self,
        hidden_states: Tensor,
        res_hidden_states_tuple: tuple[Tensor, ...],
        temb: Tensor | None = None,
        upsample_size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Consume ``len(resnets)`` skip connections (last first) and return (B, C_out, H', W')."""
        skips = res_hidden_states_tuple
        for resnet in self.resnets:
            hidden_states, skips = _pop_skip(hidden_states, skips)
            hidden_states = resnet(hidden_states, temb)
        if self.upsamplers is not None:
            for up in self.upsamplers:
                hidden_states = up(hidden_states, temb)
        return hidden_states


class UpDecoderBlock2D(nn.Module):
    """The decoder block of the autoencoders: ResNet blocks (time embedding optional), then an
    optional nearest 2x upsampling + convolution.

    The other arguments (dropout, num_layers, resnet_eps, resnet_time_scale_shift, resnet_act_fn,
    resnet_groups, resnet_pre_norm, output_scale_factor) are those of :class:`DownBlock2D`.

    Args:
        in_channels: input channels.
        out_channels: channels of every ResNet block.
        resolution_idx: accepted for config compatibility.
        add_upsample: end with ``upsamplers.0``.
        temb_channels: time-embedding width, usually None.

    Example:
        >>> UpDecoderBlock2D(16, 8, resnet_groups=4)(torch.randn(1, 16, 4, 4)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        resolution_idx: int | None = None,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        resnet_pre_norm: bool = True,
        output_scale_factor: float = 1.0,
        add_upsample: bool = True,
        temb_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.resolution_idx = resolution_idx
        self.resnets = _resnet_stack(
            in_channels,
            out_channels,
            temb_channels,
            num_layers,
            eps=resnet_eps,
            groups=resnet_groups,
            dropout=dropout,
            time_scale_shift=resnet_time_scale_shift,
            act_fn=resnet_act_fn,
            output_scale_factor=output_scale_factor,
        )
        self.upsamplers: nn.ModuleList | None = None
        if add_upsample:
            self.upsamplers = nn.ModuleList([Upsample2D(out_channels, use_conv=True)])

    def forward(self, hidden_states: Tensor, temb: Tensor | None = None) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H', W')."""
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, temb)
        if self.upsamplers is not None:
            for up in self.upsamplers:
                hidden_states = up(hidden_states)
        return hidden_states


DOWN_BLOCK_TYPES = ("DownBlock2D", "AttnDownBlock2D", "ResnetDownsampleBlock2D")
UP_BLOCK_TYPES = ("UpBlock2D", "AttnUpBlock2D", "ResnetUpsampleBlock2D")


def get_down_block(
    down_block_type: str,
    *,
    num_layers: int,
    in_channels: int,
    out_channels: int,
    temb_channels: int | None,
    add_downsample: bool,
    resnet_eps: float,
    resnet_act_fn: str,
    resnet_groups: int,
    attention_head_dim: int | None = None,
    downsample_padding: int = 1,
    resnet_time_scale_shift: TimeScaleShift = "default",
    downsample_type: ResampleType = "conv",
    dropout: float = 0.0,
) -> nn.Module:
    """Build a down block of a UNet2DModel by its config name (a ``UNetRes`` prefix is ignored).

    Raises:
        ValueError: unknown block type; the message lists the known ones.
    """
    name = down_block_type.removeprefix("UNetRes")
    common: _BlockKwargs = {
        "num_layers": num_layers,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "temb_channels": temb_channels,
        "dropout": dropout,
        "resnet_eps": resnet_eps,
        "resnet_act_fn": resnet_act_fn,
        "resnet_groups": resnet_groups,
        "resnet_time_scale_shift": resnet_time_scale_shift,
    }
    if name == "DownBlock2D":
        return DownBlock2D(
            **common, add_downsample=add_downsample, downsample_padding=downsample_padding
        )
    if name == "AttnDownBlock2D":
        return AttnDownBlock2D(
            **common,
            attention_head_dim=attention_head_dim,
            downsample_padding=downsample_padding,
            downsample_type=downsample_type if add_downsample else None,
        )
    if name == "ResnetDownsampleBlock2D":
        return ResnetDownsampleBlock2D(**common, add_downsample=add_downsample)
    raise ValueError(
        f"unknown down block type {down_block_type!r}; allowed: {', '.join(DOWN_BLOCK_TYPES)}"
    )


def get_up_block(
    up_block_type: str,
    *,
    num_layers: int,
    in_channels: int,
    out_channels: int,
    prev_output_channel: int,
    temb_channels: int | None,
    add_upsample: bool,
    resnet_eps: float,
    resnet_act_fn: str,
    resnet_groups: int,
    attention_head_dim: int | None = None,
    resnet_time_scale_shift: TimeScaleShift = "default",
    upsample_type: ResampleType = "conv",
    dropout: float = 0.0,
) -> nn.Module:
    """Build an up block of a UNet2DModel by its config name (a ``UNetRes`` prefix is ignored).

    Raises:
        ValueError: unknown block type; the message lists the known ones.
    """
    name = up_block_type.removeprefix("UNetRes")
    common: _UpBlockKwargs = {
        "num_layers": num_layers,
        "in_channels": in_channels,
        "prev_output_channel": prev_output_channel,
        "out_channels": out_channels,
        "temb_channels": temb_channels,
        "dropout": dropout,
        "resnet_eps": resnet_eps,
        "resnet_act_fn": resnet_act_fn,
        "resnet_groups": resnet_groups,
        "resnet_time_scale_shift": resnet_time_scale_shift,
    }
    if name == "UpBlock2D":
        return UpBlock2D(**common, add_upsample=add_upsample)
    if name == "AttnUpBlock2D":
        return AttnUpBlock2D(
            **common,
            attention_head_dim=attention_head_dim,
            upsample_type=upsample_type if add_upsample else None,
        )
    if name == "ResnetUpsampleBlock2D":
        return ResnetUpsampleBlock2D(**common, add_upsample=add_upsample)
    raise ValueError(
        f"unknown up block type {up_block_type!r}; allowed: {', '.join(UP_BLOCK_TYPES)}"
    )
