"""The first-stage autoencoders of latent diffusion: ``AutoencoderKL`` and ``VQModel``.

Both map images (B, 3, H, W) in [-1, 1] to latents (B, c, H/f, W/f) with ``f = 2 ** (len(
block_out_channels) - 1)`` and back. The KL model's encoder predicts a diagonal Gaussian
(mean and log-variance); the VQ model's decoder snaps its input to the nearest codebook vector
(``quantize.embedding``) before decoding. Config keys and state-dict names equal diffusers'; old
checkpoints with ``query/key/value/proj_attn`` mid-block attention names load through
:meth:`remap_state_dict`.

Memory options: :meth:`enable_slicing` decodes a batch one image at a time, and
:meth:`enable_tiling` decodes a large latent in overlapping tiles blended linearly across the
overlap, keeping only two rows of decoded tiles alive (peak memory follows the tile size, not the
image size).

References:
    Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models",
    arXiv:2112.10752 (Sec. 3.1 and appendix G); Kingma & Welling, arXiv:1312.6114 (KL term);
    van den Oord et al., "Neural Discrete Representation Learning", arXiv:1711.00937 (eq. 3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    SampleSize,
    Vocabulary,
    check_divides,
)
from diffusers_hub.modeling import ModelMixin
from diffusers_hub.nn.attention import remap_legacy_attention_keys
from diffusers_hub.nn.unet_blocks import DownEncoderBlock2D, UNetMidBlock2D, UpDecoderBlock2D
from diffusers_hub.noise import randn_tensor

__all__ = [
    "AutoencoderKL",
    "AutoencoderKLConfig",
    "AutoencoderKLOutput",
    "Decoder",
    "DecoderOutput",
    "DiagonalGaussianDistribution",
    "Encoder",
    "VQEncoderOutput",
    "VQModel",
    "VQModelConfig",
    "VectorQuantizer",
]


# -- outputs and distributions -------------------------------------------------------------------


class DiagonalGaussianDistribution:
    """``N(mean, diag(exp(logvar)))`` from the encoder's moments (log-variance clamped to [-30, 20]).

    Args:
        parameters: (B, 2c, h, w) mean and log-variance stacked along channels.
        deterministic: zero variance (``sample`` returns the mean).
    """

    def __init__(self, parameters: Tensor, deterministic: bool = False) -> None:
        self.parameters = parameters
        self.mean, logvar = torch.chunk(parameters, 2, dim=1)
        self.logvar = torch.clamp(logvar, -30.0, 20.0)
        self.deterministic = deterministic
        if deterministic:
            self.std = torch.zeros_like(self.mean)
            self.var = torch.zeros_like(self.mean)
        else:
            self.std = torch.exp(0.5 * self.logvar)
            self.var = torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | list[torch.Generator] | None = None) -> Tensor:
        """``mean + std * eps`` with ``eps ~ N(0, I)`` drawn from ``generator`` (reparameterisation)."""
        eps = randn_tensor(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + self.std * eps

    def mode(self) -> Tensor:
        """The mean (the most likely latent)."""
        return self.mean

    def kl(self, other: DiagonalGaussianDistribution | None = None) -> Tensor:
        """KL(self || other) per batch item, ``other`` = N(0, I) when None (arXiv:1312.6114, app. B).

        Returns:
            (B,) summed over channels and pixels.
        """
        if self.deterministic:
            return torch.zeros(self.mean.shape[0], device=self.mean.device, dtype=self.mean.dtype)
        dims = [1, 2, 3]
        if other is None:
            return 0.5 * torch.sum(self.mean.pow(2) + self.var - 1.0 - self.logvar, dim=dims)
        return 0.5 * torch.sum(
            (self.mean - other.mean).pow(2) / other.var
            + self.var / other.var
            - 1.0
            - self.logvar
            + other.logvar,
            dim=dims,
        )

    def nll(self, sample: Tensor, dims: tuple[int, ...] = (1, 2, 3)) -> Tensor:
        """Negative log-likelihood of ``sample`` under the distribution, summed over ``dims``."""
        if self.deterministic:
            return torch.zeros(self.mean.shape[0], device=self.mean.device, dtype=self.mean.dtype)
        return 0.5 * torch.sum(
            math.log(2.0 * math.pi) + self.logvar + (sample - self.mean).pow(2) / self.var,
            dim=list(dims),
        )


@dataclass
class AutoencoderKLOutput:
    """``encode`` result of :class:`AutoencoderKL`; ``output[0]`` is ``latent_dist``."""

    latent_dist: DiagonalGaussianDistribution

    def __getitem__(self, index: int) -> DiagonalGaussianDistribution:
        return (self.latent_dist,)[index]


@dataclass
class VQEncoderOutput:
    """``encode`` result of :class:`VQModel`: the unquantised latents (B, c, h, w)."""

    latents: Tensor

    def __getitem__(self, index: int) -> Tensor:
        return (self.latents,)[index]


@dataclass
class DecoderOutput:
    """``decode`` result: ``sample`` (B, out_channels, H, W); VQ adds the commitment loss."""

    sample: Tensor
    commit_loss: Tensor | None = None

    def __getitem__(self, index: int) -> Tensor | None:
        return (self.sample, self.commit_loss)[index]


# -- encoder / decoder ----------------------------------------------------------------------------


def _mid_block(config: _AutoencoderConfig) -> UNetMidBlock2D:
    """The mid block of encoder and decoder: one-head self-attention between two ResNets."""
    top = config.block_out_channels[-1]
    return UNetMidBlock2D(
        top,
        None,
        resnet_eps=1e-6,
        resnet_act_fn=config.act_fn,
        resnet_groups=config.norm_num_groups,
        attention_head_dim=top,
        add_attention=config.mid_block_add_attention,
    )


class Encoder(nn.Module):
    """``conv_in``, ``DownEncoderBlock2D`` s, ``UNetMidBlock2D`` (one-head attention), GroupNorm,
    SiLU, ``conv_out`` to ``latent_channels`` (doubled for mean and log-variance with
    ``double_z``).

    Args:
        config: the autoencoder's config.
        double_z: predict mean and log-variance (the KL model).
    """

    def __init__(self, config: _AutoencoderConfig, *, double_z: bool) -> None:
        super().__init__()
        c, channels = config, config.block_out_channels
        self.conv_in = nn.Conv2d(c.in_channels, channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            DownEncoderBlock2D(
                channels[max(i - 1, 0)],
                channels[i],
                num_layers=c.layers_per_block,
                resnet_act_fn=c.act_fn,
                resnet_groups=c.norm_num_groups,
                add_downsample=i < len(channels) - 1,
                downsample_padding=0,
            )
            for i in range(len(channels))
        )
        self.mid_block = _mid_block(c)
        self.conv_norm_out = nn.GroupNorm(c.norm_num_groups, channels[-1], eps=1e-6)
        self.conv_act = nn.SiLU()
        latent = 2 * c.latent_channels if double_z else c.latent_channels
        self.conv_out = nn.Conv2d(channels[-1], latent, 3, padding=1)

    def forward(self, sample: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, [2x] latent_channels, H / f, W / f)."""
        h = self.conv_in(sample)
        for block in self.down_blocks:
            h = block(h)
        h = self.mid_block(h)
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))


class Decoder(nn.Module):
    """``conv_in``, ``UNetMidBlock2D``, ``UpDecoderBlock2D`` s (``layers_per_block + 1`` ResNets),
    GroupNorm, SiLU, ``conv_out`` to ``out_channels``.

    Args:
        config: the autoencoder's config.
    """

    def __init__(self, config: _AutoencoderConfig) -> None:
        super().__init__()
        c, channels = config, config.block_out_channels[::-1]
        self.conv_in = nn.Conv2d(c.latent_channels, channels[0], 3, padding=1)
        self.mid_block = _mid_block(c)
        self.up_blocks = nn.ModuleList(
            UpDecoderBlock2D(
                channels[max(i - 1, 0)],
                channels[i],
                num_layers=c.layers_per_block + 1,
                resnet_act_fn=c.act_fn,
                resnet_groups=c.norm_num_groups,
                add_upsample=i < len(channels) - 1,
            )
            for i in range(len(channels))
        )
        self.conv_norm_out = nn.GroupNorm(c.norm_num_groups, channels[-1], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(channels[-1], c.out_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        """(B, latent_channels, h, w) -> (B, out_channels, h * f, w * f)."""
        h = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            h = block(h)
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook lookup with the straight-through gradient (arXiv:1711.00937).

    Args:
        num_embeddings: codebook size.
        embedding_dim: channels of a code.
        beta: commitment-loss weight.
        legacy: the loss of the released checkpoints, which weights the codebook term by ``beta``.
    """

    #: Rows of the distance matrix computed at once (bounds memory for large latents).
    chunk_rows: ClassVar[int] = 16384

    def __init__(
        self, num_embeddings: int, embedding_dim: int, beta: float = 0.25, legacy: bool = True
    ) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.beta = beta
        self.legacy = legacy
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        if not self.embedding.weight.is_meta:
            nn.init.uniform_(self.embedding.weight, -1.0 / num_embeddings, 1.0 / num_embeddings)

    def indices(self, z: Tensor) -> Tensor:
        """Index of the nearest code (Euclidean) for each pixel: (B, c, h, w) -> (B, h, w)."""
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        codes = self.embedding.weight
        parts = [
            torch.argmin(torch.cdist(rows, codes), dim=1) for rows in flat.split(self.chunk_rows)
        ]
        return torch.cat(parts).view(b, h, w)

    def lookup(self, indices: Tensor) -> Tensor:
        """Codes for (B, h, w) indices as a (B, c, h, w) map."""
        return self.embedding(indices).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Quantise ``z`` (B, c, h, w).

        Returns:
            ``(z_q, loss, indices)``: the quantised map with straight-through gradients, the
            codebook + commitment loss (eq. 3, arXiv:1711.00937) and the (B, h, w) indices.
        """
        idx = self.indices(z)
        z_q = self.lookup(idx)
        codebook = torch.mean((z_q - z.detach()) ** 2)
        commit = torch.mean((z_q.detach() - z) ** 2)
        loss = commit + self.beta * codebook if self.legacy else self.beta * commit + codebook
        z_q = z + (z_q - z).detach()
        return z_q, loss, idx


# -- shared base: slicing and tiling ---------------------------------------------------------------


def cross_fade(before: Tensor, after: Tensor, extent: int, dim: int) -> None:
    """Cross-fade the first ``extent`` rows (``dim=2``) or columns (``dim=3``) of ``after`` with
    the last ones of ``before``, in place.

    Index ``y`` of the overlap becomes ``before[-extent + y] * (1 - y / extent) + after[y] * y /
    extent``.
    """
    extent = min(before.shape[dim], after.shape[dim], extent)
    if extent <= 0:
        return
    shape = [1] * after.ndim
    shape[dim] = extent
    ramp = torch.arange(extent, dtype=torch.float64) / extent
    w_after = ramp.to(after.dtype).to(after.device).view(shape)
    w_before = (1.0 - ramp).to(after.dtype).to(after.device).view(shape)
    head = after.narrow(dim, 0, extent)
    head.copy_(before.narrow(dim, before.shape[dim] - extent, extent) * w_before + head * w_after)


def tiled_apply(
    x: Tensor,
    fn: Callable[[Tensor], Tensor],
    *,
    tile_in: int,
    tile_out: int,
    overlap: float,
) -> Tensor:
    """Apply a resolution-scaling ``fn`` to overlapping tiles of ``x`` and blend the results.

    Tiles of ``tile_in`` pixels start every ``int(tile_in * (1 - overlap))`` pixels; each output tile
    (``tile_out`` pixels for a full tile) is cross-faded with its upper and left neighbours over
    ``int(tile_out * overlap)`` pixels and cropped to ``tile_out - blend`` pixels. Only the previous
    row of output tiles is kept, so memory is bounded by the tile size, not the image size.

    Args:
        x: (B, C, H, W) input (latents for decoding, pixels for encoding).
        fn: maps a (B, C, h, w) tile to (B, C', h * s, w * s).
        tile_in: tile size in input pixels.
        tile_out: tile size in output pixels (``tile_in * s``).
        overlap: fraction of a tile shared with the next one.

    Returns:
        (B, C', H', W') the blended result.
    """
    stride = max(int(tile_in * (1 - overlap)), 1)
    blend = int(tile_out * overlap)
    limit = tile_out - blend
    previous: list[Tensor] | None = None
    rows: list[Tensor] = []
    for i in range(0, x.shape[2], stride):
        current: list[Tensor] = []
        pieces: list[Tensor] = []
        for j in range(0, x.shape[3], stride):
            tile = fn(x[:, :, i : i + tile_in, j : j + tile_in])
            if previous is not None:
                cross_fade(previous[len(current)], tile, blend, dim=2)
            if current:
                cross_fade(current[-1], tile, blend, dim=3)
            current.append(tile)
            pieces.append(tile[:, :, :limit, :limit])
        rows.append(torch.cat(pieces, dim=3))
        previous = current
    return torch.cat(rows, dim=2)


class _LatentAutoencoder(ModelMixin):
    """Common parts of the two autoencoders: legacy key renaming, slicing, tiling."""

    default_subfolder: ClassVar[str | None] = "vqvae"

    def __init__(self, config: Any = None, **fields: Any) -> None:
        super().__init__(config, **fields)
        self.use_slicing = False
        self.use_tiling = False
        size = self.config.sample_size  # type: ignore[attr-defined]
        size = size[0] if isinstance(size, list | tuple) else size
        self.tile_sample_min_size = int(size)
        self.tile_overlap_factor = 0.25

    @property
    def scale_factor_spatial(self) -> int:
        """Pixels per latent pixel along each side: ``2 ** (len(block_out_channels) - 1)``."""
        return 2 ** (len(self.config.block_out_channels) - 1)  # type: ignore[attr-defined]

    @property
    def tile_latent_min_size(self) -> int:
        return int(self.tile_sample_min_size / self.scale_factor_spatial)

    @classmethod
    def remap_state_dict(
        cls, state_dict: dict[str, Tensor], config: ComponentConfig
    ) -> dict[str, Tensor]:
        """Rename pre-0.13 mid-block attention keys (``query``/``key``/``value``/``proj_attn``)."""
        return remap_legacy_attention_keys(state_dict)

    def enable_slicing(self) -> None:
        """Decode (and encode) a batch one image at a time: peak memory of a batch of one."""
        self.use_slicing = True

    def disable_slicing(self) -> None:
        self.use_slicing = False

    def enable_tiling(self, tile_sample_size: int | None = None, overlap: float = 0.25) -> None:
        """Decode (and encode) images larger than one tile in overlapping, blended tiles.

        Args:
            tile_sample_size: tile size in pixels (``sample_size`` when None); a multiple of the
                spatial factor.
            overlap: fraction of a tile shared with its neighbour (0 <= overlap < 1).
        """
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if tile_sample_size is not None:
            if tile_sample_size % self.scale_factor_spatial:
                raise ValueError(
                    f"tile_sample_size {tile_sample_size} must be a multiple of "
                    f"{self.scale_factor_spatial}"
                )
            self.tile_sample_min_size = int(tile_sample_size)
        self.tile_overlap_factor = overlap
        self.use_tiling = True

    def disable_tiling(self) -> None:
        self.use_tiling = False

    def _tiled(self, fn: Callable[[Tensor], Tensor], x: Tensor, *, decoding: bool) -> Tensor:
        """``fn`` on ``x``, in overlapping tiles when tiling is on and ``x`` exceeds one tile."""
        t_in = self.tile_latent_min_size if decoding else self.tile_sample_min_size
        t_out = self.tile_sample_min_size if decoding else self.tile_latent_min_size
        if self.use_tiling and (x.shape[-1] > t_in or x.shape[-2] > t_in):
            return tiled_apply(
                x, fn, tile_in=t_in, tile_out=t_out, overlap=self.tile_overlap_factor
            )
        return fn(x)

    def _run(self, fn: Callable[[Tensor], Tensor], x: Tensor, *, decoding: bool) -> Tensor:
        """``fn`` over the batch, one image at a time when slicing is on, tiled when enabled."""
        if self.use_slicing and x.shape[0] > 1:
            return torch.cat([self._tiled(fn, part, decoding=decoding) for part in x.split(1)])
        return self._tiled(fn, x, decoding=decoding)


# -- AutoencoderKL --------------------------------------------------------------------------------


class _AutoencoderConfig(ComponentConfig):
    """The fields both autoencoders' ``config.json`` share (see :class:`AutoencoderKLConfig`)."""

    in_channels: Channels = 3
    out_channels: Channels = 3
    down_block_types: tuple[Literal["DownEncoderBlock2D"], ...] = ("DownEncoderBlock2D",)
    up_block_types: tuple[Literal["UpDecoderBlock2D"], ...] = ("UpDecoderBlock2D",)
    block_out_channels: tuple[Channels, ...] = Field(default=(64,), min_length=1)
    layers_per_block: Count = 1
    act_fn: Activation = "silu"
    latent_channels: Channels = 4
    norm_num_groups: Count = 32
    sample_size: SampleSize | tuple[SampleSize, SampleSize] = 32
    mid_block_add_attention: bool = True

    @model_validator(mode="after")
    def _check_levels(self) -> _AutoencoderConfig:
        levels = (self.block_out_channels, self.down_block_types, self.up_block_types)
        if len({len(v) for v in levels}) != 1:
            raise ValueError(
                "block_out_channels, down_block_types and up_block_types must have the same "
                f"length, got {', '.join(str(len(v)) for v in levels)}"
            )
        check_divides(
            self.norm_num_groups, "norm_num_groups", {"block_out_channels": self.block_out_channels}
        )
        return self


class AutoencoderKLConfig(_AutoencoderConfig):
    """Fields of an ``AutoencoderKL`` ``config.json``.

    Attributes:
        in_channels, out_channels: image channels.
        down_block_types, up_block_types: ``DownEncoderBlock2D`` / ``UpDecoderBlock2D`` per level.
        block_out_channels: channels per level; ``len - 1`` halvings of the resolution.
        layers_per_block: ResNets per encoder block (decoder blocks have one more).
        act_fn: ResNet activation.
        latent_channels: channels of the latent.
        norm_num_groups: GroupNorm groups.
        sample_size: training image size (also the default tile size).
        mid_block_add_attention: self-attention in the mid blocks.
        scaling_factor: latents are multiplied by it before diffusion (0.18215 for KL-f8).
        shift_factor, latents_mean, latents_std, force_upcast: recorded for pipelines.
        use_quant_conv, use_post_quant_conv: the 1x1 convolutions around the latent.
    """

    scaling_factor: float = Field(default=0.18215, gt=0.0)
    shift_factor: float | None = None
    latents_mean: tuple[float, ...] | None = None
    latents_std: tuple[float, ...] | None = None
    force_upcast: bool = True
    use_quant_conv: bool = True
    use_post_quant_conv: bool = True


class AutoencoderKL(_LatentAutoencoder):
    """KL-regularised autoencoder: images <-> diagonal-Gaussian latents.

    References:
        Rombach et al. 2021, Sec. 3.1 (arXiv:2112.10752); Kingma & Welling 2013 (arXiv:1312.6114).

    Example:
        >>> import torch
        >>> vae = AutoencoderKL(block_out_channels=(8, 16), norm_num_groups=4,
        ...                     down_block_types=("DownEncoderBlock2D",) * 2,
        ...                     up_block_types=("UpDecoderBlock2D",) * 2)
        >>> z = vae.encode(torch.randn(1, 3, 16, 16)).latent_dist.mode()
        >>> z.shape, vae.decode(z).sample.shape
        (torch.Size([1, 4, 8, 8]), torch.Size([1, 3, 16, 16]))
    """

    config_class = AutoencoderKLConfig
    config: AutoencoderKLConfig

    def __init__(self, config: AutoencoderKLConfig | dict[str, Any] | None = None, **fields: Any):
        super().__init__(config, **fields)
        c = self.config
        self.encoder = Encoder(c, double_z=True)
        self.decoder = Decoder(c)
        lat = c.latent_channels
        self.quant_conv = nn.Conv2d(2 * lat, 2 * lat, 1) if c.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(lat, lat, 1) if c.use_post_quant_conv else None

    def _encode_pixels(self, x: Tensor) -> Tensor:
        h = self.encoder(x)
        return self.quant_conv(h) if self.quant_conv is not None else h

    def _decode_latents(self, z: Tensor) -> Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)

    def encode(self, x: Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple[Any, ...]:
        """Encode images (B, in_channels, H, W) in [-1, 1].

        Returns:
            ``latent_dist``: a :class:`DiagonalGaussianDistribution` over (B, latent_channels,
            H / f, W / f) latents (unscaled: multiply by ``scaling_factor`` for diffusion).
        """
        moments = self._run(self._encode_pixels, x, decoding=False)
        dist = DiagonalGaussianDistribution(moments)
        return AutoencoderKLOutput(dist) if return_dict else (dist,)

    def decode(self, z: Tensor, return_dict: bool = True) -> DecoderOutput | tuple[Tensor]:
        """Decode unscaled latents (B, latent_channels, h, w) to images (B, out_channels, h f, w f)."""
        sample = self._run(self._decode_latents, z, decoding=True)
        return DecoderOutput(sample) if return_dict else (sample,)

    def forward(
        self,
        sample: Tensor,
        sample_posterior: bool = False,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> DecoderOutput | tuple[Tensor]:
        """Reconstruct: encode, take the posterior mode (or a sample), decode."""
        dist = DiagonalGaussianDistribution(self._run(self._encode_pixels, sample, decoding=False))
        z = dist.sample(generator) if sample_posterior else dist.mode()
        return self.decode(z, return_dict=return_dict)


# -- VQModel --------------------------------------------------------------------------------------


class VQModelConfig(_AutoencoderConfig):
    """Fields of a ``VQModel`` ``config.json``.

    Attributes:
        latent_channels: channels of the latent (3 here, 4 for the KL model).
        num_vq_embeddings: codebook size (8192 for VQ-f4 of celebahq).
        vq_embed_dim: channels of a code (``latent_channels`` when None).
        scaling_factor: latent scale used by pipelines. Defaults to 1.0, the value of the LDM
            VQ checkpoints; diffusers defaults a missing key to 0.18215 (files saved here always
            write it, so both libraries read the same value).
        norm_type: only ``"group"``.
        lookup_from_codebook: only False (decode takes latents, not indices).
        Other fields: as in :class:`AutoencoderKLConfig`.
    """

    latent_channels: Channels = 3
    num_vq_embeddings: Vocabulary = 256
    vq_embed_dim: Channels | None = None
    scaling_factor: float = Field(default=1.0, gt=0.0)
    norm_type: Literal["group"] = "group"
    lookup_from_codebook: Literal[False] = False
    force_upcast: bool = False


class VQModel(_LatentAutoencoder):
    """Vector-quantised autoencoder (VQ-GAN first stage); quantisation happens in ``decode``.

    References:
        Rombach et al. 2021, Sec. 3.1 (arXiv:2112.10752); van den Oord et al. 2017
        (arXiv:1711.00937).

    Example:
        >>> import torch
        >>> vq = VQModel(block_out_channels=(8, 16), norm_num_groups=4, num_vq_embeddings=32,
        ...              down_block_types=("DownEncoderBlock2D",) * 2,
        ...              up_block_types=("UpDecoderBlock2D",) * 2)
        >>> vq.decode(vq.encode(torch.randn(1, 3, 16, 16)).latents).sample.shape
        torch.Size([1, 3, 16, 16])
    """

    config_class = VQModelConfig
    config: VQModelConfig

    def __init__(self, config: VQModelConfig | dict[str, Any] | None = None, **fields: Any):
        super().__init__(config, **fields)
        c = self.config
        self.encoder = Encoder(c, double_z=False)
        embed_dim = c.vq_embed_dim if c.vq_embed_dim is not None else c.latent_channels
        self.quant_conv = nn.Conv2d(c.latent_channels, embed_dim, 1)
        self.quantize = VectorQuantizer(c.num_vq_embeddings, embed_dim, beta=0.25)
        self.post_quant_conv = nn.Conv2d(embed_dim, c.latent_channels, 1)
        self.decoder = Decoder(c)

    def _encode_pixels(self, x: Tensor) -> Tensor:
        return self.quant_conv(self.encoder(x))

    def _decode_quantized(self, h: Tensor) -> Tensor:
        return self.decoder(self.post_quant_conv(self.quantize(h)[0]))

    def _decode_unquantized(self, h: Tensor) -> Tensor:
        return self.decoder(self.post_quant_conv(h))

    def encode(self, x: Tensor, return_dict: bool = True) -> VQEncoderOutput | tuple[Tensor]:
        """Encode images to unquantised latents (B, vq_embed_dim, H / f, W / f)."""
        h = self._run(self._encode_pixels, x, decoding=False)
        return VQEncoderOutput(h) if return_dict else (h,)

    def decode(
        self, h: Tensor, force_not_quantize: bool = False, return_dict: bool = True
    ) -> DecoderOutput | tuple[Tensor, Tensor | None]:
        """Quantise ``h`` to the nearest codes (unless ``force_not_quantize``) and decode.

        Args:
            h: (B, vq_embed_dim, h, w) latents.
            force_not_quantize: decode ``h`` as it is.

        Returns:
            ``sample`` (B, out_channels, h f, w f) and ``commit_loss``: the quantisation loss
            (a scalar) when the batch is decoded in one piece, zeros (B,) without quantisation,
            None when decoded in slices or tiles.
        """
        loss: Tensor | None
        if force_not_quantize:
            sample = self._run(self._decode_unquantized, h, decoding=True)
            loss = torch.zeros(h.shape[0], device=h.device, dtype=h.dtype)
        elif self.use_slicing or self.use_tiling:
            sample = self._run(self._decode_quantized, h, decoding=True)
            loss = None
        else:
            quant, loss, _ = self.quantize(h)
            sample = self.decoder(self.post_quant_conv(quant))
        return DecoderOutput(sample, loss) if return_dict else (sample, loss)

    def forward(
        self, sample: Tensor, return_dict: bool = True
    ) -> DecoderOutput | tuple[Tensor, Tensor | None]:
        """Reconstruct: encode, quantise, decode."""
        latents = self._run(self._encode_pixels, sample, decoding=False)
        return self.decode(latents, return_dict=return_dict)
