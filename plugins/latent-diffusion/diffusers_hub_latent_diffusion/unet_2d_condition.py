"""The text-conditional UNet of latent diffusion (``UNet2DConditionModel`` in the diffusers format).

Down path: ``CrossAttnDownBlock2D`` (ResNet blocks each followed by a spatial transformer that
cross-attends to ``encoder_hidden_states``) and ``DownBlock2D``; a ``UNetMidBlock2DCrossAttn``
bottleneck; the mirrored up path with skip connections. Config keys and state-dict names equal
diffusers' ``UNet2DConditionModel`` for the options latent diffusion uses; other options are
accepted at their default values and rejected with a :class:`ConfigError` otherwise.

``attention_head_dim`` keeps its historical meaning: when the config has no
``num_attention_heads`` it is the number of heads (8 in CompVis/ldm-text2im-large-256), and each
head has ``channels // heads`` channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from diffusers_hub.config import (
    Activation,
    Channels,
    ComponentConfig,
    Count,
    Features,
    SampleSize,
    check_divides,
)
from diffusers_hub.modeling import ModelMixin
from diffusers_hub.nn._kernels import use_adaptive_convs
from diffusers_hub.nn.activations import get_activation
from diffusers_hub.nn.embeddings import TimestepEmbedding, timestep_embedding
from diffusers_hub.nn.resnet import ResnetBlock2D
from diffusers_hub.nn.sampling import Downsample2D, Upsample2D
from diffusers_hub.nn.unet_blocks import DownBlock2D, UpBlock2D
from diffusers_hub_latent_diffusion.transformer_2d import Transformer2DModel

__all__ = [
    "CrossAttnDownBlock2D",
    "CrossAttnUpBlock2D",
    "UNet2DConditionModel",
    "UNet2DConditionModelConfig",
    "UNet2DConditionOutput",
    "UNetMidBlock2DCrossAttn",
]

TimeScaleShift = Literal["default", "scale_shift"]
DownType = Literal["CrossAttnDownBlock2D", "DownBlock2D"]
UpType = Literal["CrossAttnUpBlock2D", "UpBlock2D"]

#: Options of diffusers' UNet2DConditionModel that this implementation accepts only at these values.
_FIXED_OPTIONS: dict[str, Any] = {
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "dual_cross_attention": False,
    "class_embed_type": None,
    "addition_embed_type": None,
    "addition_time_embed_dim": None,
    "num_class_embeds": None,
    "upcast_attention": False,
    "time_embedding_type": "positional",
    "time_embedding_act_fn": None,
    "timestep_post_act": None,
    "time_cond_proj_dim": None,
    "projection_class_embeddings_input_dim": None,
    "attention_type": "default",
    "class_embeddings_concat": False,
    "cross_attention_norm": None,
    "reverse_transformer_layers_per_block": None,
}


class UNet2DConditionModelConfig(ComponentConfig):
    """Fields of ``unet/config.json`` (defaults: diffusers' defaults = the LDM/SD layout).

    Attributes:
        sample_size: latent height/width the model was trained at (32 for text2im-256).
        in_channels, out_channels: latent channels (4).
        center_input_sample: map the input from [0, 1] to [-1, 1] first.
        flip_sin_to_cos, freq_shift: the sinusoidal timestep embedding's layout.
        down_block_types, up_block_types: block names per resolution.
        mid_block_type: ``"UNetMidBlock2DCrossAttn"`` or None (no bottleneck block).
        only_cross_attention: the first attention of each transformer block attends to the text.
        block_out_channels: channels per resolution.
        layers_per_block: ResNet blocks per down block (up blocks have one more).
        downsample_padding: padding of the stride-2 convolutions.
        mid_block_scale_factor: output divisor of the mid block's ResNets.
        dropout: ResNet dropout.
        act_fn: activation of ResNets and the time MLP.
        norm_num_groups: GroupNorm groups.
        norm_eps: GroupNorm epsilon of ResNets and the output norm.
        cross_attention_dim: channels of ``encoder_hidden_states`` (1280 for LDMBert), or per block.
        transformer_layers_per_block: transformer blocks per spatial transformer.
        attention_head_dim: heads (historical meaning, when ``num_attention_heads`` is None).
        num_attention_heads: heads, when set; then ``attention_head_dim`` is ignored.
        use_linear_projection: ``proj_in``/``proj_out`` as linear layers instead of 1x1 convs.
        resnet_time_scale_shift: ``"default"`` or ``"scale_shift"``.
        time_embedding_dim: width of the time MLP (``4 * block_out_channels[0]`` when None).
        conv_in_kernel, conv_out_kernel: kernel sizes of the input and output convolutions.
    """

    obsolete_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "mid_block_only_cross_attention",
            "resnet_skip_time_act",
            "resnet_out_scale_factor",
            "addition_embed_type_num_heads",
        }
    )

    sample_size: SampleSize | tuple[SampleSize, SampleSize] | None = None
    in_channels: Channels = 4
    out_channels: Channels = 4
    center_input_sample: bool = False
    flip_sin_to_cos: bool = True
    freq_shift: int = Field(default=0, ge=0, le=1)
    down_block_types: tuple[DownType, ...] = (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    )
    mid_block_type: Literal["UNetMidBlock2DCrossAttn"] | None = "UNetMidBlock2DCrossAttn"
    up_block_types: tuple[UpType, ...] = (
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    )
    only_cross_attention: bool | tuple[bool, ...] = False
    block_out_channels: tuple[Channels, ...] = Field(default=(320, 640, 1280, 1280), min_length=1)
    layers_per_block: Count | tuple[Count, ...] = 2
    downsample_padding: int = Field(default=1, ge=0, le=1)
    mid_block_scale_factor: float = 1.0
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    act_fn: Activation = "silu"
    norm_num_groups: Count = 32
    norm_eps: float = Field(default=1e-5, gt=0.0)
    cross_attention_dim: Features | tuple[Features, ...] = 1280
    transformer_layers_per_block: Count | tuple[Count, ...] = 1
    attention_head_dim: Channels | tuple[Channels, ...] = 8
    num_attention_heads: Count | tuple[Count, ...] | None = None
    use_linear_projection: bool = False
    resnet_time_scale_shift: TimeScaleShift = "default"
    time_embedding_dim: Features | None = None
    conv_in_kernel: int = Field(default=3, ge=1, le=15)
    conv_out_kernel: int = Field(default=3, ge=1, le=15)

    # Accepted for file compatibility; only the default value is supported.
    encoder_hid_dim: int | None = None
    encoder_hid_dim_type: str | None = None
    dual_cross_attention: bool = False
    class_embed_type: str | None = None
    addition_embed_type: str | None = None
    addition_time_embed_dim: int | None = None
    num_class_embeds: int | None = None
    upcast_attention: bool = False
    time_embedding_type: str = "positional"
    time_embedding_act_fn: str | None = None
    timestep_post_act: str | None = None
    time_cond_proj_dim: int | None = None
    projection_class_embeddings_input_dim: int | None = None
    attention_type: str = "default"
    class_embeddings_concat: bool = False
    cross_attention_norm: str | None = None
    reverse_transformer_layers_per_block: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> UNet2DConditionModelConfig:
        for name, default in _FIXED_OPTIONS.items():
            value = getattr(self, name)
            if value != default:
                raise ValueError(
                    f"{name}={value!r} is not supported by diffusers-hub's UNet2DConditionModel "
                    f"(only {default!r}); it is not used by latent diffusion checkpoints"
                )
        n = len(self.block_out_channels)
        if len(self.down_block_types) != n or len(self.up_block_types) != n:
            raise ValueError(
                "down_block_types, up_block_types and block_out_channels must have the same "
                f"length, got {len(self.down_block_types)}, {len(self.up_block_types)}, {n}"
            )
        for name in (
            "only_cross_attention",
            "layers_per_block",
            "cross_attention_dim",
            "transformer_layers_per_block",
            "attention_head_dim",
            "num_attention_heads",
        ):
            value = getattr(self, name)
            if isinstance(value, tuple) and len(value) != n:
                raise ValueError(f"{name} must have one entry per block ({n}), got {len(value)}")
        if self.conv_in_kernel % 2 == 0 or self.conv_out_kernel % 2 == 0:
            raise ValueError("conv_in_kernel and conv_out_kernel must be odd")
        check_divides(
            self.norm_num_groups, "norm_num_groups", {"block_out_channels": self.block_out_channels}
        )
        heads = (
            "num_attention_heads" if self.num_attention_heads is not None else "attention_head_dim"
        )
        for channels, count in zip(self.block_out_channels, self.heads_per_block(), strict=True):
            if channels % count:
                raise ValueError(
                    f"{heads}={count} (attention heads) must divide the block's channels "
                    f"{channels} (block_out_channels {self.block_out_channels})"
                )
        return self

    def per_block(self, name: str) -> list[Any]:
        """The value of ``name`` for each of the ``len(block_out_channels)`` blocks."""
        value = getattr(self, name)
        n = len(self.block_out_channels)
        return list(value) if isinstance(value, tuple) else [value] * n

    def heads_per_block(self) -> list[int]:
        """Attention heads per block: ``num_attention_heads`` or, historically, ``attention_head_dim``."""
        return self.per_block(
            "num_attention_heads" if self.num_attention_heads is not None else "attention_head_dim"
        )


@dataclass
class UNet2DConditionOutput:
    """Output of :class:`UNet2DConditionModel`; ``output[0]`` is ``sample``.

    Attributes:
        sample: (B, out_channels, H, W) the prediction (noise for epsilon-prediction models).
    """

    sample: Tensor

    def __getitem__(self, index: int) -> Tensor:
        return (self.sample,)[index]


def _resnet(
    in_channels: int,
    out_channels: int,
    temb_channels: int,
    *,
    eps: float,
    groups: int,
    dropout: float,
    act_fn: str,
    time_scale_shift: TimeScaleShift,
    output_scale_factor: float = 1.0,
) -> ResnetBlock2D:
    return ResnetBlock2D(
        in_channels,
        out_channels,
        temb_channels=temb_channels,
        groups=groups,
        eps=eps,
        dropout=dropout,
        non_linearity=act_fn,
        time_embedding_norm=time_scale_shift,
        output_scale_factor=output_scale_factor,
    )


def _transformer(
    channels: int,
    heads: int,
    *,
    layers: int,
    cross_attention_dim: int,
    groups: int,
    use_linear_projection: bool,
    only_cross_attention: bool,
) -> Transformer2DModel:
    if channels % heads:
        raise ValueError(f"{channels} channels cannot be split into {heads} attention heads")
    return Transformer2DModel(
        heads,
        channels // heads,
        channels,
        num_layers=layers,
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=groups,
        use_linear_projection=use_linear_projection,
        only_cross_attention=only_cross_attention,
    )


class CrossAttnDownBlock2D(nn.Module):
    """``num_layers`` x (ResNet, spatial transformer), then an optional stride-2 convolution.

    Args:
        in_channels, out_channels: channels in and of every layer.
        temb_channels: time-embedding width.
        num_layers: ResNet + transformer pairs.
        num_attention_heads: heads of the transformers (``out_channels // heads`` per head).
        cross_attention_dim: channels of the text features.
        transformer_layers: transformer blocks per spatial transformer.
        add_downsample, downsample_padding: the ``downsamplers.0`` convolution.
        resnet_eps, resnet_groups, resnet_act_fn, dropout, resnet_time_scale_shift: ResNet options.
        use_linear_projection, only_cross_attention: transformer options.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        *,
        num_layers: int = 1,
        num_attention_heads: int = 1,
        cross_attention_dim: int = 1280,
        transformer_layers: int = 1,
        add_downsample: bool = True,
        downsample_padding: int = 1,
        resnet_eps: float = 1e-6,
        resnet_groups: int = 32,
        resnet_act_fn: str = "silu",
        dropout: float = 0.0,
        resnet_time_scale_shift: TimeScaleShift = "default",
        use_linear_projection: bool = False,
        only_cross_attention: bool = False,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            _resnet(
                in_channels if i == 0 else out_channels,
                out_channels,
                temb_channels,
                eps=resnet_eps,
                groups=resnet_groups,
                dropout=dropout,
                act_fn=resnet_act_fn,
                time_scale_shift=resnet_time_scale_shift,
            )
            for i in range(num_layers)
        )
        self.attentions = nn.ModuleList(
            _transformer(
                out_channels,
                num_attention_heads,
                layers=transformer_layers,
                cross_attention_dim=cross_attention_dim,
                groups=resnet_groups,
                use_linear_projection=use_linear_projection,
                only_cross_attention=only_cross_attention,
            )
            for _ in range(num_layers)
        )
        self.downsamplers: nn.ModuleList | None = None
        if add_downsample:
            self.downsamplers = nn.ModuleList(
                [Downsample2D(out_channels, use_conv=True, padding=downsample_padding)]
            )

    def forward(
        self, hidden_states: Tensor, temb: Tensor, encoder_hidden_states: Tensor
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """(B, C_in, H, W) -> (output, skip connections for the up path)."""
        skips: tuple[Tensor, ...] = ()
        for resnet, attn in zip(self.resnets, self.attentions):
            hidden_states = attn(resnet(hidden_states, temb), encoder_hidden_states)
            skips += (hidden_states,)
        if self.downsamplers is not None:
            for down in self.downsamplers:
                hidden_states = down(hidden_states)
            skips += (hidden_states,)
        return hidden_states, skips


class CrossAttnUpBlock2D(nn.Module):
    """``num_layers`` x (concat skip, ResNet, spatial transformer), then optional 2x upsampling.

    Args:
        in_channels: channels of the deepest skip connection this block consumes.
        prev_output_channel: channels of the incoming features.
        out_channels: channels of every layer.
        Other arguments: as in :class:`CrossAttnDownBlock2D`; ``add_upsample`` adds
        ``upsamplers.0`` (nearest 2x + 3x3 convolution).
    """

    def __init__(
        self,
        in_channels: int,
        prev_output_channel: int,
        out_channels: int,
        temb_channels: int,
        *,
        num_layers: int = 1,
        num_attention_heads: int = 1,
        cross_attention_dim: int = 1280,
        transformer_layers: int = 1,
        add_upsample: bool = True,
        resnet_eps: float = 1e-6,
        resnet_groups: int = 32,
        resnet_act_fn: str = "silu",
        dropout: float = 0.0,
        resnet_time_scale_shift: TimeScaleShift = "default",
        use_linear_projection: bool = False,
        only_cross_attention: bool = False,
    ) -> None:
        super().__init__()
        resnets = []
        for i in range(num_layers):
            skip = in_channels if i == num_layers - 1 else out_channels
            running = prev_output_channel if i == 0 else out_channels
            resnets.append(
                _resnet(
                    running + skip,
                    out_channels,
                    temb_channels,
                    eps=resnet_eps,
                    groups=resnet_groups,
                    dropout=dropout,
                    act_fn=resnet_act_fn,
                    time_scale_shift=resnet_time_scale_shift,
                )
            )
        self.resnets = nn.ModuleList(resnets)
        self.attentions = nn.ModuleList(
            _transformer(
                out_channels,
                num_attention_heads,
                layers=transformer_layers,
                cross_attention_dim=cross_attention_dim,
                groups=resnet_groups,
                use_linear_projection=use_linear_projection,
                only_cross_attention=only_cross_attention,
            )
            for _ in range(num_layers)
        )
        self.upsamplers: nn.ModuleList | None = None
        if add_upsample:
            self.upsamplers = nn.ModuleList([Upsample2D(out_channels, use_conv=True)])

    def forward(
        self,
        hidden_states: Tensor,
        res_hidden_states_tuple: tuple[Tensor, ...],
        temb: Tensor,
        encoder_hidden_states: Tensor,
        upsample_size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Consume ``len(resnets)`` skip connections (last first); returns (B, C_out, H', W')."""
        skips = res_hidden_states_tuple
        for resnet, attn in zip(self.resnets, self.attentions):
            hidden_states = torch.cat([hidden_states, skips[-1]], dim=1)
            skips = skips[:-1]
            hidden_states = attn(resnet(hidden_states, temb), encoder_hidden_states)
        if self.upsamplers is not None:
            for up in self.upsamplers:
                hidden_states = up(hidden_states, upsample_size)
        return hidden_states


class UNetMidBlock2DCrossAttn(nn.Module):
    """``resnets.0``, then ``num_layers`` x (spatial transformer, ResNet) at constant channels."""

    def __init__(
        self,
        in_channels: int,
        temb_channels: int,
        *,
        num_layers: int = 1,
        num_attention_heads: int = 1,
        cross_attention_dim: int = 1280,
        transformer_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_groups: int = 32,
        resnet_act_fn: str = "silu",
        dropout: float = 0.0,
        resnet_time_scale_shift: TimeScaleShift = "default",
        output_scale_factor: float = 1.0,
        use_linear_projection: bool = False,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            _resnet(
                in_channels,
                in_channels,
                temb_channels,
                eps=resnet_eps,
                groups=resnet_groups,
                dropout=dropout,
                act_fn=resnet_act_fn,
                time_scale_shift=resnet_time_scale_shift,
                output_scale_factor=output_scale_factor,
            )
            for _ in range(num_layers + 1)
        )
        self.attentions = nn.ModuleList(
            _transformer(
                in_channels,
                num_attention_heads,
                layers=transformer_layers,
                cross_attention_dim=cross_attention_dim,
                groups=resnet_groups,
                use_linear_projection=use_linear_projection,
                only_cross_attention=False,
            )
            for _ in range(num_layers)
        )

    def forward(self, hidden_states: Tensor, temb: Tensor, encoder_hidden_states: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        hidden_states = self.resnets[0](hidden_states, temb)
        for attn, resnet in zip(self.attentions, self.resnets[1:]):
            hidden_states = resnet(attn(hidden_states, encoder_hidden_states), temb)
        return hidden_states


class UNet2DConditionModel(ModelMixin):
    """Noise-prediction UNet conditioned on a timestep and a sequence of text features.

    References:
        Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models",
        arXiv:2112.10752 (Sec. 3.3, eq. 3: eps_theta(z_t, t, tau_theta(y))).

    Example:
        >>> import torch
        >>> unet = UNet2DConditionModel(
        ...     block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        ...     up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
        ...     cross_attention_dim=16, attention_head_dim=2, norm_num_groups=8)
        >>> unet(torch.randn(1, 4, 8, 8), 10, torch.randn(1, 7, 16)).sample.shape
        torch.Size([1, 4, 8, 8])
    """

    config_class = UNet2DConditionModelConfig
    config: UNet2DConditionModelConfig
    default_subfolder: ClassVar[str | None] = "unet"

    def __init__(
        self, config: UNet2DConditionModelConfig | dict[str, Any] | None = None, **fields: Any
    ) -> None:
        super().__init__(config, **fields)
        c = self.config
        channels = list(c.block_out_channels)
        n = len(channels)
        heads = c.heads_per_block()
        layers = c.per_block("layers_per_block")
        cross_dims = c.per_block("cross_attention_dim")
        t_layers = c.per_block("transformer_layers_per_block")
        only_cross = c.per_block("only_cross_attention")
        common: dict[str, Any] = {
            "resnet_eps": c.norm_eps,
            "resnet_groups": c.norm_num_groups,
            "resnet_act_fn": c.act_fn,
            "dropout": c.dropout,
            "resnet_time_scale_shift": c.resnet_time_scale_shift,
        }
        xattn: dict[str, Any] = {"use_linear_projection": c.use_linear_projection}

        self.conv_in = nn.Conv2d(
            c.in_channels, channels[0], c.conv_in_kernel, padding=(c.conv_in_kernel - 1) // 2
        )
        time_embed_dim = c.time_embedding_dim or channels[0] * 4
        self.time_embedding = TimestepEmbedding(channels[0], time_embed_dim, act_fn=c.act_fn)

        self.down_blocks = nn.ModuleList()
        out_ch = channels[0]
        for i, kind in enumerate(c.down_block_types):
            in_ch, out_ch = out_ch, channels[i]
            last = i == n - 1
            block: nn.Module
            if kind == "CrossAttnDownBlock2D":
                block = CrossAttnDownBlock2D(
                    in_ch,
                    out_ch,
                    time_embed_dim,
                    num_layers=layers[i],
                    num_attention_heads=heads[i],
                    cross_attention_dim=cross_dims[i],
                    transformer_layers=t_layers[i],
                    add_downsample=not last,
                    downsample_padding=c.downsample_padding,
                    only_cross_attention=only_cross[i],
                    **common,
                    **xattn,
                )
            else:
                block = DownBlock2D(
                    in_ch,
                    out_ch,
                    time_embed_dim,
                    num_layers=layers[i],
                    add_downsample=not last,
                    downsample_padding=c.downsample_padding,
                    **common,
                )
            self.down_blocks.append(block)

        self.mid_block: UNetMidBlock2DCrossAttn | None = None
        if c.mid_block_type is not None:
            self.mid_block = UNetMidBlock2DCrossAttn(
                channels[-1],
                time_embed_dim,
                num_attention_heads=heads[-1],
                cross_attention_dim=cross_dims[-1],
                transformer_layers=t_layers[-1],
                output_scale_factor=c.mid_block_scale_factor,
                **common,
                **xattn,
            )

        self.up_blocks = nn.ModuleList()
        rev = list(reversed(channels))
        rev_heads, rev_layers = list(reversed(heads)), list(reversed(layers))
        rev_cross, rev_t = list(reversed(cross_dims)), list(reversed(t_layers))
        rev_only = list(reversed(only_cross))
        out_ch = rev[0]
        for i, up_kind in enumerate(c.up_block_types):
            prev_ch, out_ch = out_ch, rev[i]
            in_ch = rev[min(i + 1, n - 1)]
            last = i == n - 1
            if up_kind == "CrossAttnUpBlock2D":
                block = CrossAttnUpBlock2D(
                    in_ch,
                    prev_ch,
                    out_ch,
                    time_embed_dim,
                    num_layers=rev_layers[i] + 1,
                    num_attention_heads=rev_heads[i],
                    cross_attention_dim=rev_cross[i],
                    transformer_layers=rev_t[i],
                    add_upsample=not last,
                    only_cross_attention=rev_only[i],
                    **common,
                    **xattn,
                )
            else:
                block = UpBlock2D(
                    in_ch,
                    prev_ch,
                    out_ch,
                    time_embed_dim,
                    num_layers=rev_layers[i] + 1,
                    add_upsample=not last,
                    **common,
                )
            self.up_blocks.append(block)

        self.conv_norm_out = nn.GroupNorm(c.norm_num_groups, channels[0], eps=c.norm_eps)
        self.conv_act = get_activation(c.act_fn)
        self.conv_out = nn.Conv2d(
            channels[0], c.out_channels, c.conv_out_kernel, padding=(c.conv_out_kernel - 1) // 2
        )
        # The 1280-channel convolutions over the 4x4 and 8x8 maps of the deepest levels are bound
        # by their weights' size: run them as im2col + GEMM (see conv2d_adaptive).
        use_adaptive_convs(self)

    def forward(
        self,
        sample: Tensor,
        timestep: Tensor | float | int,
        encoder_hidden_states: Tensor,
        return_dict: bool = True,
    ) -> UNet2DConditionOutput | tuple[Tensor]:
        """Predict the noise in ``sample`` at ``timestep`` given the text features.

        Args:
            sample: (B, in_channels, H, W) noisy latents.
            timestep: a scalar or (B,) timesteps.
            encoder_hidden_states: (B, M, cross_attention_dim) text features.
            return_dict: a :class:`UNet2DConditionOutput` (default) or a 1-tuple.

        Returns:
            ``sample``: (B, out_channels, H, W).
        """
        c = self.config
        batch = sample.shape[0]
        t = torch.as_tensor(timestep, device=sample.device)
        if t.ndim == 0:
            t = t[None]
        t = t.expand(batch)
        # Sinusoidal features (eq. in Vaswani et al. 2017 sec. 3.5), then the time MLP.
        t_emb = timestep_embedding(
            t, c.block_out_channels[0], flip_sin_to_cos=c.flip_sin_to_cos, freq_shift=c.freq_shift
        ).to(sample.dtype)
        emb = self.time_embedding(t_emb)

        # Odd latent sizes: upsample to the skip connection's size rather than by 2.
        factor = 2 ** sum(1 for b in self.up_blocks if b.upsamplers is not None)
        forward_size = any(s % factor for s in sample.shape[-2:])

        if c.center_input_sample:
            sample = 2 * sample - 1.0
        h = self.conv_in(sample)
        skips: tuple[Tensor, ...] = (h,)
        for down in self.down_blocks:
            if isinstance(down, CrossAttnDownBlock2D):
                h, res = down(h, emb, encoder_hidden_states)
            else:
                h, res = down(h, emb)
            skips += res

        if self.mid_block is not None:
            h = self.mid_block(h, emb, encoder_hidden_states)

        for i, up in enumerate(self.up_blocks):
            count = len(up.resnets)  # type: ignore[arg-type]
            res, skips = skips[-count:], skips[:-count]
            size = None
            if forward_size and i < len(self.up_blocks) - 1:
                size = tuple(skips[-1].shape[2:])
            if isinstance(up, CrossAttnUpBlock2D):
                h = up(h, res, emb, encoder_hidden_states, size)
            else:
                h = up(h, res, emb, size)

        h = self.conv_out(self.conv_act(self.conv_norm_out(h)))
        return UNet2DConditionOutput(h) if return_dict else (h,)
