"""The down, mid and up blocks of the diffusion UNets and autoencoders.

One parametrised block, :class:`UNetBlock2D`, builds every level: a stack of ResNet blocks, each
optionally followed by an attention layer (self-attention, or a cross-attention transformer that
the caller supplies), then an optional 2x resampler. Each block type name of the diffusers format
(``DownBlock2D``, ``CrossAttnUpBlock2D``, ``UNetMidBlock2D``, ...) is a one-line declaration of
its role, attention and resampler, with diffusers' constructor arguments and state-dict key names
(``resnets.j``, ``attentions.j``, ``downsamplers.0``, ``upsamplers.0``).

References:
    Ho et al. 2020, appendix B (arXiv:2006.11239); Rombach et al. 2021, Sec. 3.3
    (arXiv:2112.10752).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from diffusers_hub.nn.attention import Attention
from diffusers_hub.nn.resnet import ResnetBlock2D
from diffusers_hub.nn.sampling import Downsample2D, Upsample2D

__all__ = [
    "AttnDownBlock2D",
    "AttnUpBlock2D",
    "CrossAttnDownBlock2D",
    "CrossAttnUpBlock2D",
    "DownBlock2D",
    "DownEncoderBlock2D",
    "ResnetDownsampleBlock2D",
    "ResnetUpsampleBlock2D",
    "UNetBlock2D",
    "UNetMidBlock2D",
    "UNetMidBlock2DCrossAttn",
    "UpBlock2D",
    "UpDecoderBlock2D",
    "block_class",
]

TimeScaleShift = Literal["default", "scale_shift"]
ResampleType = Literal["conv", "resnet"]
BlockRole = Literal["down", "mid", "up"]
#: Builds the attention layer of a block for the given channel count; it is called as
#: ``layer(hidden_states, context)``.
AttentionFactory = Callable[[int], nn.Module]
#: The self-attention of the blocks: over the pixels, with biases, and added to its input.
_spatial_attention = partial(Attention, bias=True, residual_connection=True)


class UNetBlock2D(nn.Module):
    """One level of a UNet or autoencoder: ResNets with optional attention and resampling.

    A subclass declares what it is with class keywords: ``role`` (``"down"``: ResNets at
    ``out_channels`` then an optional downsampler; ``"up"``: the same with an upsampler, each
    ResNet also taking one skip connection when ``skips``; ``"mid"``: ``resnets.0`` then
    ``num_layers`` (attention, ResNet) pairs at constant width), ``attention`` (None, ``"self"``
    or ``"cross"``: the ``transformer`` argument builds the layers) and ``resample`` (the
    resampler kind; None lets ``downsample_type`` / ``upsample_type`` choose). Down blocks with
    ``skips`` return ``(hidden_states, skip connections)``.

    The channel arguments may be given positionally in diffusers' order for the block type
    (:meth:`positional`): ``(in_channels, out_channels, temb_channels)`` for down blocks,
    ``(in_channels, temb_channels)`` for mid blocks, ``(in_channels, prev_output_channel,
    out_channels, temb_channels)`` for up blocks with skip connections.

    Args:
        in_channels: input channels (of the deepest skip connection, for up blocks).
        out_channels: channels of every ResNet; mid blocks keep ``in_channels``.
        temb_channels: time-embedding width, or None (autoencoders).
        prev_output_channel: channels of the incoming features (up blocks with skips).
        num_layers: ResNet blocks (attention + ResNet pairs after the first, for mid blocks).
        dropout: ResNet dropout.
        resnet_eps: GroupNorm epsilon of ResNets and attention.
        resnet_time_scale_shift: ``"default"`` (add) or ``"scale_shift"`` (AdaGN).
        resnet_act_fn: activation name.
        resnet_groups: GroupNorm groups; None means ``min(in_channels // 4, 32)``.
        resnet_pre_norm: accepted for config compatibility (always pre-norm).
        output_scale_factor: divisor of ResNet and self-attention outputs.
        skip_time_act: feed the time embedding to the ResNet projections without activation.
        add_downsample: end a down block with its downsampler.
        add_upsample: end an up block with its upsampler.
        downsample_padding: 1, or 0 for the pad-right-bottom DDPM layout.
        downsample_type: ``"conv"`` or ``"resnet"``, where the block type leaves it open.
        upsample_type: likewise for up blocks.
        attention_head_dim: channels per self-attention head (None: one head).
        attn_groups: GroupNorm groups of mid-block self-attention; None means ``resnet_groups``
            with ``"default"`` and no norm with ``"scale_shift"`` (the diffusers rule).
        add_attention: False drops the attention of a mid block.
        resolution_idx: accepted for config compatibility (FreeU index; unused).
        transformer: builds a block's cross-attention layer from its channel count.

    Example:
        >>> block = AttnDownBlock2D(16, 32, 64, num_layers=2, resnet_groups=8, attention_head_dim=8)
        >>> h, skips = block(torch.randn(1, 16, 8, 8), torch.randn(1, 64))
        >>> h.shape, len(skips)
        (torch.Size([1, 32, 4, 4]), 3)
    """

    role: ClassVar[BlockRole] = "down"
    attention: ClassVar[Literal["self", "cross"] | None] = None
    resample: ClassVar[ResampleType | None] = "conv"
    skips: ClassVar[bool] = True

    def __init_subclass__(
        cls,
        *,
        role: BlockRole,
        attention: Literal["self", "cross"] | None = None,
        resample: ResampleType | None = "conv",
        skips: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.role, cls.attention, cls.resample, cls.skips = role, attention, resample, skips

    def __init__(
        self,
        in_channels: int,
        *args: int | None,
        out_channels: int | None = None,
        temb_channels: int | None = None,
        prev_output_channel: int | None = None,
        num_layers: int = 1,
        dropout: float = 0.0,
        resnet_eps: float = 1e-6,
        resnet_time_scale_shift: TimeScaleShift = "default",
        resnet_act_fn: str = "swish",
        resnet_groups: int | None = 32,
        resnet_pre_norm: bool = True,
        output_scale_factor: float = 1.0,
        skip_time_act: bool = False,
        add_downsample: bool = True,
        add_upsample: bool = True,
        downsample_padding: int = 1,
        downsample_type: ResampleType | None = "conv",
        upsample_type: ResampleType | None = "conv",
        attention_head_dim: int | None = 1,
        attn_groups: int | None = None,
        add_attention: bool = True,
        resolution_idx: int | None = None,
        transformer: AttentionFactory | None = None,
    ) -> None:
        super().__init__()
        role = self.role
        names = self.positional()
        if len(args) > len(names):
            raise TypeError(
                f"{type(self).__name__}() takes the channel arguments in_channels, "
                f"{', '.join(names)} positionally; pass the others by keyword"
            )
        given = dict(zip(names, args))
        temb_channels = given.get("temb_channels", temb_channels)
        prev_output_channel = given.get("prev_output_channel", prev_output_channel)
        out = given.get("out_channels", out_channels)
        out = in_channels if out is None or role == "mid" else out
        groups = resnet_groups if resnet_groups is not None else min(in_channels // 4, 32)
        self.resolution_idx = resolution_idx

        # ResnetBlock2D's arguments, from the block's (diffusers') names for them
        options: dict[str, Any] = {
            "temb_channels": temb_channels,
            "groups": groups,
            "eps": resnet_eps,
            "dropout": dropout,
            "non_linearity": resnet_act_fn,
            "time_embedding_norm": resnet_time_scale_shift,
            "output_scale_factor": output_scale_factor,
            "skip_time_act": skip_time_act,
        }

        def resnet(c_in: int, up: bool = False, down: bool = False) -> ResnetBlock2D:
            return ResnetBlock2D(c_in, out, **options, up=up, down=down)

        self.resnets = nn.ModuleList(
            resnet(c)
            for c in self._resnet_inputs(in_channels, out, prev_output_channel, num_layers)
        )

        self.attentions = nn.ModuleList()
        if self.attention == "cross":
            if transformer is None:
                raise ValueError(f"{type(self).__name__} needs a transformer factory")
            self.attentions.extend(transformer(out) for _ in range(num_layers))
        elif self.attention == "self" and (add_attention or role != "mid"):
            if attn_groups is None and (role != "mid" or resnet_time_scale_shift == "default"):
                attn_groups = groups
            head_dim = out if attention_head_dim is None else attention_head_dim
            self.attentions.extend(
                _spatial_attention(
                    out,
                    heads=max(out // head_dim, 1),
                    dim_head=head_dim,
                    norm_num_groups=attn_groups,
                    eps=resnet_eps,
                    rescale_output_factor=output_scale_factor,
                )
                for _ in range(num_layers)
            )

        kind = self.resample or (downsample_type if role == "down" else upsample_type)
        wanted = add_downsample if role == "down" else add_upsample
        self.downsamplers: nn.ModuleList | None = None
        self.upsamplers: nn.ModuleList | None = None
        if role != "mid" and wanted and kind is not None:
            layer: nn.Module
            if kind == "resnet":
                layer = resnet(out, up=role == "up", down=role == "down")
            elif kind != "conv":
                raise ValueError(f"unknown {role}sample type {kind!r}; allowed: conv, resnet")
            elif role == "down":
                layer = Downsample2D(out, use_conv=True, padding=downsample_padding)
            else:
                layer = Upsample2D(out, use_conv=True)
            setattr(self, f"{role}samplers", nn.ModuleList([layer]))

    @classmethod
    def positional(cls) -> tuple[str, ...]:
        """The channel arguments after ``in_channels`` in diffusers' positional order."""
        if cls.role == "mid":
            return ("temb_channels",)
        if cls.role == "up" and cls.skips:
            return ("prev_output_channel", "out_channels", "temb_channels")
        return ("out_channels", "temb_channels")

    def _resnet_inputs(
        self, in_channels: int, out: int, prev_output_channel: int | None, num_layers: int
    ) -> list[int]:
        """Input channels of each ResNet; up blocks with skips add one skip connection each."""
        if self.role == "mid":
            return [in_channels] * (num_layers + 1)
        if self.role == "down" or not self.skips:
            return [in_channels] + [out] * (num_layers - 1)
        if prev_output_channel is None:
            raise ValueError(f"{type(self).__name__} needs prev_output_channel")
        return [
            (prev_output_channel if i == 0 else out) + (in_channels if i == num_layers - 1 else out)
            for i in range(num_layers)
        ]

    def run(
        self,
        hidden_states: Tensor,
        temb: Tensor | None = None,
        context: Tensor | None = None,
        skips: tuple[Tensor, ...] | None = None,
        upsample_size: tuple[int, int] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Apply the block to (B, C_in, H, W) features.

        Args:
            hidden_states: (B, C_in, H, W).
            temb: (B, temb_channels) time embedding, or None.
            context: (B, M, D) ``encoder_hidden_states`` that cross-attention layers attend to.
            skips: skip connections an up block consumes, last first.
            upsample_size: output size of the upsampler instead of 2x.

        Returns:
            (B, C_out, H', W') and the output of every ResNet (and of the resampler).
        """
        h = hidden_states
        outputs: tuple[Tensor, ...] = ()
        attentions = self.attentions if len(self.attentions) else None
        mid = self.role == "mid"
        for i, resnet in enumerate(self.resnets):
            if mid and i and attentions is not None:
                h = attentions[i - 1](h, context)
            if skips:
                h, skips = torch.cat([h, skips[-1]], dim=1), skips[:-1]
            h = resnet(h, temb)
            if not mid and attentions is not None:
                h = attentions[i](h, context)
            outputs += (h,)
        for layer in self.downsamplers or self.upsamplers or ():
            if isinstance(layer, ResnetBlock2D):
                h = layer(h, temb)
            elif isinstance(layer, Upsample2D):
                h = layer(h, upsample_size)
            else:
                h = layer(h)
            outputs += (h,)
        return h, outputs

    def forward(
        self, hidden_states: Tensor, temb: Tensor | None = None, context: Tensor | None = None
    ) -> Any:
        """(B, C_in, H, W) -> (B, C_out, H', W'); down blocks with skips also return the skip
        connections for the up path. ``context`` is what cross-attention layers attend to."""
        h, outputs = self.run(hidden_states, temb, context)
        return (h, outputs) if self.role == "down" and self.skips else h


class _SkipUpBlock2D(UNetBlock2D, role="up"):
    """Up blocks that consume ``len(resnets)`` skip connections, last first."""

    def forward(  # type: ignore[override]
        self,
        hidden_states: Tensor,
        res_hidden_states_tuple: tuple[Tensor, ...],
        temb: Tensor | None = None,
        upsample_size: tuple[int, int] | None = None,
        context: Tensor | None = None,
    ) -> Tensor:
        """(B, prev_output_channel, H, W) and the skips -> (B, C_out, H', W')."""
        return self.run(hidden_states, temb, context, res_hidden_states_tuple, upsample_size)[0]


class DownBlock2D(UNetBlock2D, role="down"):
    """``num_layers`` ResNet blocks, then an optional stride-2 convolution."""


class AttnDownBlock2D(UNetBlock2D, role="down", attention="self", resample=None):
    """ResNet blocks each followed by self-attention, then a ``downsample_type`` downsampler."""


class CrossAttnDownBlock2D(UNetBlock2D, role="down", attention="cross"):
    """ResNet blocks each followed by a spatial transformer that attends to the context
    (``transformer`` builds it), then an optional stride-2 convolution."""


class ResnetDownsampleBlock2D(UNetBlock2D, role="down", resample="resnet"):
    """:class:`DownBlock2D` that downsamples with a ResNet block (2x2 average pooling)."""


class DownEncoderBlock2D(UNetBlock2D, role="down", skips=False):
    """The encoder block of the autoencoders: ResNets (usually without time embedding), then an
    optional downsampler; ``forward(x) -> x``.

    Example:
        >>> DownEncoderBlock2D(8, 16, resnet_groups=4)(torch.randn(1, 8, 8, 8)).shape
        torch.Size([1, 16, 4, 4])
    """


class UNetMidBlock2D(UNetBlock2D, role="mid", attention="self"):
    """``resnets.0``, then ``num_layers`` x (self-attention, ResNet): the UNet bottleneck, and
    the autoencoders' mid block when ``temb_channels`` is None.

    Example:
        >>> mid = UNetMidBlock2D(32, 64, resnet_groups=8, attention_head_dim=8)
        >>> mid(torch.randn(1, 32, 4, 4), torch.randn(1, 64)).shape
        torch.Size([1, 32, 4, 4])
    """


class UNetMidBlock2DCrossAttn(UNetBlock2D, role="mid", attention="cross"):
    """``resnets.0``, then ``num_layers`` x (spatial transformer, ResNet) at constant width."""


class UpBlock2D(_SkipUpBlock2D, role="up"):
    """ResNets on the running features concatenated with one skip connection each, then an
    optional nearest 2x upsampling + 3x3 convolution.

    Example:
        >>> block = UpBlock2D(16, 32, 16, 64, resnet_groups=8)
        >>> block(torch.randn(1, 32, 4, 4), (torch.randn(1, 16, 4, 4),), torch.randn(1, 64)).shape
        torch.Size([1, 16, 8, 8])
    """


class AttnUpBlock2D(_SkipUpBlock2D, role="up", attention="self", resample=None):
    """:class:`UpBlock2D` with self-attention after every ResNet and an ``upsample_type``
    upsampler."""


class CrossAttnUpBlock2D(_SkipUpBlock2D, role="up", attention="cross"):
    """:class:`UpBlock2D` with a spatial transformer (``transformer``) after every ResNet."""


class ResnetUpsampleBlock2D(_SkipUpBlock2D, role="up", resample="resnet"):
    """:class:`UpBlock2D` that upsamples with a ResNet block (nearest 2x)."""


class UpDecoderBlock2D(UNetBlock2D, role="up", skips=False):
    """The decoder block of the autoencoders: ResNets without skip connections, then an
    optional nearest 2x upsampling + convolution.

    Example:
        >>> UpDecoderBlock2D(16, 8, resnet_groups=4)(torch.randn(1, 16, 4, 4)).shape
        torch.Size([1, 8, 8, 8])
    """


_BLOCKS: dict[str, type[UNetBlock2D]] = {
    cls.__name__: cls
    for cls in (
        DownBlock2D,
        AttnDownBlock2D,
        CrossAttnDownBlock2D,
        ResnetDownsampleBlock2D,
        DownEncoderBlock2D,
        UNetMidBlock2D,
        UNetMidBlock2DCrossAttn,
        UpBlock2D,
        AttnUpBlock2D,
        CrossAttnUpBlock2D,
        ResnetUpsampleBlock2D,
        UpDecoderBlock2D,
    )
}


def block_class(
    name: str, role: BlockRole, allowed: tuple[str, ...] | None = None
) -> type[UNetBlock2D]:
    """The block class of a config's block type name (a ``UNetRes`` prefix is ignored).

    Args:
        name: a diffusers block type name, e.g. ``"AttnDownBlock2D"``.
        role: the role the config slot needs (``"down"``, ``"mid"`` or ``"up"``).
        allowed: the names a model supports (default: every block of that role).

    Raises:
        ValueError: unknown name or wrong role; the message lists the allowed names.
    """
    names = allowed or tuple(n for n, c in _BLOCKS.items() if c.role == role)
    cls = _BLOCKS.get(name.removeprefix("UNetRes"))
    if cls is None or cls.__name__ not in names:
        raise ValueError(f"unsupported {role} block type {name!r}; allowed: {', '.join(names)}")
    return cls
