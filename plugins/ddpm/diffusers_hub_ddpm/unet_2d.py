"""UNet2DModel: the noise-prediction UNet of DDPM (Ho et al. 2020) in the diffusers format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from diffusers_hub.config import (
    Channels,
    ComponentConfig,
    Count,
    Features,
    SampleSize,
    TrainTimesteps,
    Vocabulary,
    check_divides,
)
from diffusers_hub.modeling import ModelMixin, SampleOutput
from diffusers_hub.nn import (
    GaussianFourierProjection,
    TimestepEmbedding,
    Timesteps,
    UNetMidBlock2D,
    block_class,
    get_activation,
    remap_legacy_attention_keys,
)
from diffusers_hub.nn._kernels import (
    contiguous_state,
    hold_conv_weights,
    memory_format_of,
    onednn_layout,
)

__all__ = ["UNet2DModel", "UNet2DModelConfig", "UNet2DOutput"]

#: The block types of UNet2DModel configs (a ``UNetRes`` prefix is accepted too).
DOWN_BLOCK_TYPES = ("DownBlock2D", "AttnDownBlock2D", "ResnetDownsampleBlock2D")
UP_BLOCK_TYPES = ("UpBlock2D", "AttnUpBlock2D", "ResnetUpsampleBlock2D")


#: The ``config.json`` of the google/ddpm-cifar10-32 UNet (35,746,307 parameters); the tests and
#: benchmarks build their models from it.
CIFAR10_CONFIG: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [128, 256, 256, 256],
    "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "act_fn": "silu",
    "attention_head_dim": None,
    "norm_num_groups": 32,
    "norm_eps": 1e-6,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "downsample_padding": 0,
    "mid_block_scale_factor": 1,
    "center_input_sample": False,
    "time_embedding_type": "positional",
}


class UNet2DModelConfig(ComponentConfig):
    """The ``config.json`` of a diffusers-format ``UNet2DModel`` (same keys and defaults).

    ``attention_head_dim`` is the width of one attention head (None: one head over all channels).
    ``time_embedding_dim`` defaults to ``4 * block_out_channels[0]``.
    """

    legacy_keys: ClassVar[dict[str, str]] = {
        "resolution": "sample_size",
        "image_size": "sample_size",
        "out_ch": "out_channels",
        "num_res_blocks": "layers_per_block",
    }

    sample_size: SampleSize | tuple[SampleSize, SampleSize] | None = None
    in_channels: Channels = 3
    out_channels: Channels = 3
    center_input_sample: bool = False
    time_embedding_type: Literal["positional", "fourier", "learned"] = "positional"
    time_embedding_dim: Features | None = None
    freq_shift: int = Field(default=0, ge=0, le=1)
    flip_sin_to_cos: bool = True
    down_block_types: tuple[str, ...] = (
        "DownBlock2D",
        "AttnDownBlock2D",
        "AttnDownBlock2D",
        "AttnDownBlock2D",
    )
    mid_block_type: Literal["UNetMidBlock2D"] | None = "UNetMidBlock2D"
    up_block_types: tuple[str, ...] = (
        "AttnUpBlock2D",
        "AttnUpBlock2D",
        "AttnUpBlock2D",
        "UpBlock2D",
    )
    block_out_channels: tuple[Channels, ...] = Field(default=(224, 448, 672, 896), min_length=1)
    layers_per_block: Count = 2
    mid_block_scale_factor: float = 1.0
    downsample_padding: int = Field(default=1, ge=0, le=1)
    downsample_type: Literal["conv", "resnet"] = "conv"
    upsample_type: Literal["conv", "resnet"] = "conv"
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    act_fn: Literal["silu", "swish", "mish", "gelu", "relu"] = "silu"
    attention_head_dim: Channels | None = 8
    norm_num_groups: Count = 32
    attn_norm_num_groups: Count | None = None
    norm_eps: float = Field(default=1e-5, gt=0.0)
    resnet_time_scale_shift: Literal["default", "scale_shift"] = "default"
    add_attention: bool = True
    class_embed_type: Literal["timestep", "identity"] | None = None
    num_class_embeds: Vocabulary | None = None
    num_train_timesteps: TrainTimesteps | None = None

    @model_validator(mode="after")
    def _check_structure(self) -> UNet2DModelConfig:
        levels = len(self.block_out_channels)
        if len(self.down_block_types) != levels or len(self.up_block_types) != levels:
            raise ValueError(
                "down_block_types, up_block_types and block_out_channels must have the same "
                f"length; got {len(self.down_block_types)}, {len(self.up_block_types)} and {levels}"
            )
        for name in self.down_block_types:
            block_class(name, "down", DOWN_BLOCK_TYPES)
        for name in self.up_block_types:
            block_class(name, "up", UP_BLOCK_TYPES)
        if self.time_embedding_type == "learned" and self.num_train_timesteps is None:
            raise ValueError("time_embedding_type 'learned' needs num_train_timesteps")
        channels = {"block_out_channels": self.block_out_channels}
        check_divides(self.norm_num_groups, "norm_num_groups", channels)
        if self.attn_norm_num_groups is not None:
            check_divides(self.attn_norm_num_groups, "attn_norm_num_groups", channels)
        return self


@dataclass
class UNet2DOutput(SampleOutput):
    """The output of :class:`UNet2DModel`; unpacks and indexes like ``(sample,)``.

    Attributes:
        sample: (B, out_channels, H, W) model prediction (noise, x0 or v).
    """


class UNet2DModel(ModelMixin):
    """The DDPM UNet: ResNet blocks with optional self-attention at chosen resolutions, a
    sinusoidal (or Fourier) timestep embedding, and optional class conditioning.

    ``forward(x_t, t)`` predicts the noise (or x0 / v, depending on training) for a noisy sample.
    Built from a :class:`UNet2DModelConfig`; state-dict keys equal those of the diffusers-format
    checkpoints (google/ddpm-cifar10-32 has 35,746,307 parameters here as there).

    References:
        Ho, Jain, Abbeel. Denoising Diffusion Probabilistic Models, appendix B. arXiv:2006.11239.

    Example:
        >>> unet = UNet2DModel(
        ...     sample_size=16, block_out_channels=(32, 64), norm_num_groups=8,
        ...     down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        ...     up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        ... )
        >>> unet(torch.randn(2, 3, 16, 16), 10).sample.shape
        torch.Size([2, 3, 16, 16])
    """

    config_class = UNet2DModelConfig
    config: UNet2DModelConfig

    def __init__(self, config: UNet2DModelConfig | dict[str, Any] | None = None, **fields: Any):
        super().__init__(config, **fields)
        c = self.config
        channels = c.block_out_channels
        time_embed_dim = c.time_embedding_dim or 4 * channels[0]
        head_dim = c.attention_head_dim

        self.conv_in = nn.Conv2d(c.in_channels, channels[0], 3, padding=1)

        self.time_proj: nn.Module
        if c.time_embedding_type == "fourier":
            self.time_proj = GaussianFourierProjection(channels[0], scale=16.0)
            timestep_input_dim = 2 * channels[0]
        elif c.time_embedding_type == "learned":
            assert c.num_train_timesteps is not None  # checked by the config
            self.time_proj = nn.Embedding(c.num_train_timesteps, channels[0])
            timestep_input_dim = channels[0]
        else:
            self.time_proj = Timesteps(channels[0], c.flip_sin_to_cos, c.freq_shift)
            timestep_input_dim = channels[0]
        self.time_embedding = TimestepEmbedding(timestep_input_dim, time_embed_dim)

        self.class_embedding: nn.Module | None = None
        if c.class_embed_type is None and c.num_class_embeds is not None:
            self.class_embedding = nn.Embedding(c.num_class_embeds, time_embed_dim)
        elif c.class_embed_type == "timestep":
            self.class_embedding = TimestepEmbedding(timestep_input_dim, time_embed_dim)
        elif c.class_embed_type == "identity":
            self.class_embedding = nn.Identity()

        # Arguments every block takes (diffusers' names); each block reads the ones it uses.
        common: dict[str, Any] = {
            "temb_channels": time_embed_dim,
            "dropout": c.dropout,
            "resnet_eps": c.norm_eps,
            "resnet_act_fn": c.act_fn,
            "resnet_groups": c.norm_num_groups,
            "resnet_time_scale_shift": c.resnet_time_scale_shift,
        }
        self.down_blocks = nn.ModuleList()
        out_ch = channels[0]
        for i, block_type in enumerate(c.down_block_types):
            in_ch, out_ch = out_ch, channels[i]
            self.down_blocks.append(
                block_class(block_type, "down")(
                    in_ch,
                    out_ch,
                    num_layers=c.layers_per_block,
                    add_downsample=i < len(channels) - 1,
                    attention_head_dim=head_dim if head_dim is not None else out_ch,
                    downsample_padding=c.downsample_padding,
                    downsample_type=c.downsample_type,
                    **common,
                )
            )

        self.mid_block: UNetMidBlock2D | None = None
        if c.mid_block_type is not None:
            self.mid_block = UNetMidBlock2D(
                channels[-1],
                output_scale_factor=c.mid_block_scale_factor,
                attention_head_dim=head_dim if head_dim is not None else channels[-1],
                attn_groups=c.attn_norm_num_groups,
                add_attention=c.add_attention,
                **common,
            )

        self.up_blocks = nn.ModuleList()
        reversed_channels = channels[::-1]
        out_ch = reversed_channels[0]
        for i, block_type in enumerate(c.up_block_types):
            prev_ch, out_ch = out_ch, reversed_channels[i]
            self.up_blocks.append(
                block_class(block_type, "up")(
                    reversed_channels[min(i + 1, len(channels) - 1)],
                    prev_ch,
                    out_ch,
                    num_layers=c.layers_per_block + 1,
                    add_upsample=i < len(channels) - 1,
                    attention_head_dim=head_dim if head_dim is not None else out_ch,
                    upsample_type=c.upsample_type,
                    **common,
                )
            )

        self.conv_norm_out = nn.GroupNorm(c.norm_num_groups, channels[0], eps=c.norm_eps)
        self.conv_act = get_activation("silu")
        self.conv_out = nn.Conv2d(channels[0], c.out_channels, 3, padding=1)
        hold_conv_weights(self)
        self.register_state_dict_post_hook(contiguous_state)

    # -- memory layout: on CPU the forward runs channels-last (see onednn_layout) ----------------

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> UNet2DModel:
        super()._apply(fn, recurse)
        hold_conv_weights(self)
        return self

    def _fill_from_state_dict(self, state: dict[str, Tensor], source: str) -> None:
        super()._fill_from_state_dict(state, source)
        hold_conv_weights(self)

    # -- properties used by pipelines and the seed-style examples ------------------------------------

    @property
    def in_channels(self) -> int:
        """Channels of the samples the model denoises."""
        return self.config.in_channels

    @property
    def out_channels(self) -> int:
        """Channels of the prediction."""
        return self.config.out_channels

    @property
    def sample_size(self) -> int | tuple[int, int] | None:
        """Training resolution (int or (H, W)); ``config.sample_size``."""
        return self.config.sample_size

    @property
    def resolution(self) -> int | tuple[int, int] | None:
        """Alias of :attr:`sample_size` (the seed's name)."""
        return self.config.sample_size

    @classmethod
    def remap_state_dict(
        cls, state_dict: dict[str, Tensor], config: ComponentConfig
    ) -> dict[str, Tensor]:
        """Rename legacy attention weights (``query``/``key``/``value``/``proj_attn``)."""
        return remap_legacy_attention_keys(state_dict)

    # -- forward -----------------------------------------------------------------------------------

    def _timesteps(self, timestep: Tensor | float | int, sample: Tensor) -> Tensor:
        """The timestep(s) as a (1,) tensor (one for the whole batch) or a (B,) tensor, on the
        sample's device."""
        batch = sample.shape[0]
        if isinstance(timestep, Tensor):
            t = timestep.to(sample.device)
        elif isinstance(timestep, bool):
            raise TypeError("timestep must be a number or a tensor, not bool")
        elif isinstance(timestep, int):
            t = torch.tensor(timestep, dtype=torch.long, device=sample.device)
        else:
            t = torch.tensor(float(timestep), dtype=torch.float32, device=sample.device)
        if t.ndim == 0:
            t = t[None]
        if t.ndim != 1 or t.shape[0] not in (1, batch):
            raise ValueError(
                f"timestep must be a scalar or have shape ({batch},), got {tuple(t.shape)}"
            )
        return t

    def forward(
        self,
        sample: Tensor,
        timestep: Tensor | float | int,
        class_labels: Tensor | None = None,
        return_dict: bool = True,
    ) -> UNet2DOutput | tuple[Tensor]:
        """Predict from a noisy sample.

        Args:
            sample: (B, in_channels, H, W) noisy sample x_t.
            timestep: int, float, 0-d or (B,) tensor; broadcast over the batch.
            class_labels: (B,) class indices (or embeddings for ``class_embed_type="identity"``),
                required when the model has a class embedding.
            return_dict: return :class:`UNet2DOutput` (else a 1-tuple).

        Returns:
            (B, out_channels, H, W) prediction in ``UNet2DOutput.sample``.
        """
        c = self.config
        if c.center_input_sample:
            sample = 2 * sample - 1.0
        # A timestep shared by the batch (the sampling loops') is embedded once, as one row that
        # the resnets broadcast: fewer rows through the time MLP and every time_emb_proj, and a
        # sample's embedding that does not depend on the batch size.
        timesteps = self._timesteps(timestep, sample)
        dtype = self.conv_in.weight.dtype
        if class_labels is not None and timesteps.shape[0] != sample.shape[0]:
            timesteps = timesteps.expand(sample.shape[0])

        t_emb = self.time_proj(timesteps).to(dtype)
        emb = self.time_embedding(t_emb)
        if self.class_embedding is not None:
            if class_labels is None:
                raise ValueError("this UNet is class-conditional: pass class_labels")
            if c.class_embed_type == "timestep":
                class_labels = self.time_proj(class_labels).to(dtype)
            emb = emb + self.class_embedding(class_labels).to(dtype)
        elif class_labels is not None:
            raise ValueError("class_labels given, but the UNet has no class embedding")

        layout = memory_format_of(sample)
        h = self.conv_in(onednn_layout(sample))
        skips: tuple[Tensor, ...] = (h,)
        for down in self.down_blocks:
            h, res = down(h, emb)
            skips += res
        if self.mid_block is not None:
            h = self.mid_block(h, emb)
        for up in self.up_blocks:
            resnets = up.resnets
            assert isinstance(resnets, nn.ModuleList)
            n = len(resnets)
            h = up(h, skips[-n:], emb)
            skips = skips[:-n]

        h = self.conv_act(self.conv_norm_out(h))
        out: Tensor = self.conv_out(h).contiguous(memory_format=layout)
        if c.time_embedding_type == "fourier":
            out = out / timesteps.reshape(-1, 1, 1, 1)
        if not return_dict:
            return (out,)
        return UNet2DOutput(sample=out)
