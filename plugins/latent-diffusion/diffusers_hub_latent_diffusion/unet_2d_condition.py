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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

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
from diffusers_hub.nn.unet_blocks import UNetMidBlock2DCrossAttn, block_class
from diffusers_hub_latent_diffusion.transformer_2d import Transformer2DModel

__all__ = ["UNet2DConditionModel", "UNet2DConditionModelConfig", "UNet2DConditionOutput"]

TimeScaleShift = Literal["default", "scale_shift"]
DownType = Literal["CrossAttnDownBlock2D", "DownBlock2D"]
UpType = Literal["CrossAttnUpBlock2D", "UpBlock2D"]
DOWN_BLOCK_TYPES: tuple[str, ...] = get_args(DownType)
UP_BLOCK_TYPES: tuple[str, ...] = get_args(UpType)

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


def _transformer(
    heads: int,
    *,
    layers: int,
    cross_attention_dim: int,
    groups: int,
    use_linear_projection: bool,
    only_cross_attention: bool = False,
) -> Callable[[int], Transformer2DModel]:
    """The spatial transformers of one UNet level: ``heads`` heads of ``channels // heads``."""

    def build(channels: int) -> Transformer2DModel:
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

    return build


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

        def transformer(level: int, only: bool) -> Callable[[int], Transformer2DModel]:
            return _transformer(
                heads[level],
                layers=t_layers[level],
                cross_attention_dim=cross_dims[level],
                groups=c.norm_num_groups,
                use_linear_projection=c.use_linear_projection,
                only_cross_attention=only,
            )

        self.conv_in = nn.Conv2d(
            c.in_channels, channels[0], c.conv_in_kernel, padding=(c.conv_in_kernel - 1) // 2
        )
        time_embed_dim = c.time_embedding_dim or channels[0] * 4
        self.time_embedding = TimestepEmbedding(channels[0], time_embed_dim, act_fn=c.act_fn)
        common: dict[str, Any] = {
            "temb_channels": time_embed_dim,
            "resnet_eps": c.norm_eps,
            "resnet_groups": c.norm_num_groups,
            "resnet_act_fn": c.act_fn,
            "dropout": c.dropout,
            "resnet_time_scale_shift": c.resnet_time_scale_shift,
        }

        self.down_blocks = nn.ModuleList()
        for i, kind in enumerate(c.down_block_types):
            self.down_blocks.append(
                block_class(kind, "down", DOWN_BLOCK_TYPES)(
                    channels[max(i - 1, 0)],
                    channels[i],
                    num_layers=layers[i],
                    add_downsample=i < n - 1,
                    downsample_padding=c.downsample_padding,
                    transformer=transformer(i, only_cross[i]),
                    **common,
                )
            )

        self.mid_block: UNetMidBlock2DCrossAttn | None = None
        if c.mid_block_type is not None:
            self.mid_block = UNetMidBlock2DCrossAttn(
                channels[-1],
                output_scale_factor=c.mid_block_scale_factor,
                transformer=transformer(n - 1, False),
                **common,
            )

        self.up_blocks = nn.ModuleList()
        for i, up_kind in enumerate(c.up_block_types):
            level = n - 1 - i  # the down level this up block mirrors
            self.up_blocks.append(
                block_class(up_kind, "up", UP_BLOCK_TYPES)(
                    channels[max(level - 1, 0)],
                    channels[min(level + 1, n - 1)],
                    channels[level],
                    num_layers=layers[level] + 1,
                    add_upsample=i < n - 1,
                    transformer=transformer(level, only_cross[level]),
                    **common,
                )
            )

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
            h, res = down(h, emb, encoder_hidden_states)
            skips += res

        if self.mid_block is not None:
            h = self.mid_block(h, emb, encoder_hidden_states)

        for i, up in enumerate(self.up_blocks):
            count = len(up.resnets)  # type: ignore[arg-type]
            res, skips = skips[-count:], skips[:-count]
            size = None
            if forward_size and i < len(self.up_blocks) - 1:
                size = tuple(skips[-1].shape[2:])
            h = up(h, res, emb, size, encoder_hidden_states)

        h = self.conv_out(self.conv_act(self.conv_norm_out(h)))
        return UNet2DConditionOutput(h) if return_dict else (h,)
