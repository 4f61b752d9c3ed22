"""GLIDEUNetModel: the text-conditional ADM UNet of GLIDE, base (64 px) and upsampler (256 px).

The module tree is the release's (openai/glide-text2im ``Text2ImUNet``), so ``base.pt`` and
``upsample.pt`` load with ``load_state_dict(..., strict=True)``: ``time_embed.{0,2}``,
``input_blocks.N.M``, ``middle_block.{0,1,2}``, ``output_blocks.N.M``, ``out.{0,2}``, the
text transformer ``transformer.resblocks.N.*``, ``token_embedding``, ``positional_embedding``,
``padding_embedding``, ``final_ln`` and ``transformer_proj``. Residual blocks keep the
release's ``in_layers`` / ``emb_layers`` / ``out_layers`` / ``skip_connection`` names; attention
blocks keep ``norm`` / ``qkv`` / ``encoder_kv`` / ``proj_out`` (1x1 ``Conv1d`` weights).

References:
    Nichol et al. 2021, "GLIDE", arXiv:2112.10741; Dhariwal & Nichol 2021, "Diffusion Models Beat
    GANs on Image Synthesis", arXiv:2105.05233 (the ADM UNet: scale-shift norm, BigGAN up/down
    blocks, 64-channel heads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from diffusers_hub_ddpm.unet_2d import UNet2DOutput as GLIDEUNetOutput
from pydantic import Field, model_validator
from torch import Tensor, nn

from diffusers_hub.config import ComponentConfig
from diffusers_hub.modeling import ModelMixin
from diffusers_hub.nn import timestep_embedding
from diffusers_hub_glide.text_transformer import GLIDETextTransformer, LayerNorm32

__all__ = [
    "AttentionBlock",
    "GLIDEUNetModel",
    "GLIDEUNetModelConfig",
    "GLIDEUNetOutput",
    "GroupNorm32",
    "ResBlock",
    "TextEncoding",
]


class GLIDEUNetModelConfig(ComponentConfig):
    """The ``config.json`` of a :class:`GLIDEUNetModel`; defaults are the release's base model.

    Attributes:
        sample_size: image side in pixels (64 base, 256 upsampler).
        in_channels: input channels; for the upsampler this counts the noisy image and the
            upsampled low-resolution image together (6).
        out_channels: 6 = noise (3) + learned-range variance interpolation (3).
        model_channels: base width (192).
        channel_mult: width multiplier per resolution level ((1, 2, 3, 4) base,
            (1, 1, 2, 2, 4, 4) upsampler).
        num_res_blocks: residual blocks per level (3 base, 2 upsampler).
        attention_resolutions: pixel resolutions with attention blocks (32, 16, 8).
        num_heads: heads when ``num_head_channels`` is -1.
        num_head_channels: channels per head (64); -1 uses ``num_heads``.
        num_heads_upsample: heads in the decoder when ``num_head_channels`` is -1 (-1: same).
        dropout: dropout inside residual blocks (0.1 in training).
        use_scale_shift_norm: AdaGN ``norm(h) * (1 + scale) + shift`` (else ``h + emb``).
        resblock_updown: down/upsample inside residual blocks (else strided conv / nearest+conv).
        conv_resample: learned convolutions in the stand-alone Down/Upsample layers.
        norm_num_groups: GroupNorm groups (32 in the release).
        text_ctx: number of text tokens (128).
        xf_width: text transformer width (512).
        xf_layers: text transformer blocks (16).
        xf_heads: text transformer heads (8).
        xf_final_ln: LayerNorm after the last block.
        xf_padding: replace padded positions by a learned ``padding_embedding`` (needs the mask).
        vocab_size: token embedding rows (50257 for the GPT-2 BPE).
    """

    legacy_keys: ClassVar[dict[str, str]] = {
        "image_size": "sample_size",
        "num_channels": "model_channels",
    }

    sample_size: int = Field(default=64, ge=1)
    in_channels: int = Field(default=3, ge=1)
    out_channels: int = Field(default=6, ge=1)
    model_channels: int = Field(default=192, ge=1)
    channel_mult: tuple[int, ...] = (1, 2, 3, 4)
    num_res_blocks: int = Field(default=3, ge=1)
    attention_resolutions: tuple[int, ...] = (32, 16, 8)
    num_heads: int = Field(default=1, ge=1)
    num_head_channels: int = 64
    num_heads_upsample: int = -1
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    use_scale_shift_norm: bool = True
    resblock_updown: bool = True
    conv_resample: bool = True
    norm_num_groups: int = Field(default=32, ge=1)
    text_ctx: int = Field(default=128, ge=1)
    xf_width: int = Field(default=512, ge=1)
    xf_layers: int = Field(default=16, ge=0)
    xf_heads: int = Field(default=8, ge=1)
    xf_final_ln: bool = True
    xf_padding: bool = True
    vocab_size: int = Field(default=50257, ge=1)

    @model_validator(mode="after")
    def _check_structure(self) -> GLIDEUNetModelConfig:
        if not self.channel_mult:
            raise ValueError("channel_mult must name at least one level, e.g. (1, 2, 3, 4)")
        widths = {self.model_channels * m for m in self.channel_mult}
        for width in sorted(widths):
            if width % self.norm_num_groups:
                raise ValueError(
                    f"channel width {width} (model_channels x channel_mult) is not divisible by "
                    f"norm_num_groups={self.norm_num_groups}"
                )
            if self.num_head_channels != -1 and width % self.num_head_channels:
                raise ValueError(
                    f"channel width {width} is not divisible by num_head_channels="
                    f"{self.num_head_channels}"
                )
        if self.xf_width % self.xf_heads:
            raise ValueError(
                f"xf_width={self.xf_width} is not divisible by xf_heads={self.xf_heads}"
            )
        lowest = self.sample_size // 2 ** (len(self.channel_mult) - 1)
        if lowest < 1 or self.sample_size % 2 ** (len(self.channel_mult) - 1):
            raise ValueError(
                f"sample_size={self.sample_size} cannot be halved {len(self.channel_mult) - 1} "
                "times (one per channel_mult level after the first)"
            )
        for res in self.attention_resolutions:
            if res < 1 or self.sample_size % res:
                raise ValueError(
                    f"attention resolution {res} does not divide sample_size={self.sample_size}"
                )
        return self

    @property
    def attention_downsample_rates(self) -> frozenset[int]:
        """The downsample factors (``sample_size // resolution``) that carry attention."""
        return frozenset(self.sample_size // r for r in self.attention_resolutions)


@dataclass
class TextEncoding:
    """The text features that condition the UNet.

    Attributes:
        xf_proj: (B, 4 * model_channels) projection of the last token, added to the time embedding.
        xf_out: (B, xf_width, text_ctx) all tokens, the extra keys/values of every attention block.
    """

    xf_proj: Tensor
    xf_out: Tensor


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the input and weight dtypes (fp16/bf16 safe)."""

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)


class Downsample(nn.Module):
    """Halve H and W: a stride-2 3x3 conv (``op``) or 2x2 average pooling."""

    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        self.op: nn.Module = (
            nn.Conv2d(channels, channels, 3, stride=2, padding=1)
            if use_conv
            else nn.AvgPool2d(kernel_size=2, stride=2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)  # type: ignore[no-any-return]


class Upsample(nn.Module):
    """Double H and W by nearest-neighbour interpolation, then an optional 3x3 ``conv``."""

    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if use_conv else None

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return x if self.conv is None else self.conv(x)


class ResBlock(nn.Module):
    """ADM residual block with AdaGN and optional up/down-sampling (BigGAN style).

    ``h = conv(silu(norm(x)))`` (resampled between the activation and the conv when ``up`` or
    ``down``); then ``silu(norm(h) * (1 + scale) + shift)`` with ``(scale, shift)`` from the
    embedding (or ``silu(norm(h + emb))``), dropout and a zero-initialised conv; plus the skip.

    Args:
        channels: input channels.
        emb_channels: width of the time(+text) embedding.
        out_channels: output channels (default ``channels``).
        dropout: dropout before the last conv.
        use_scale_shift_norm: AdaGN (else the embedding is added).
        groups: GroupNorm groups.
        up: upsample (nearest, 2x) inside the block.
        down: downsample (average pooling, 2x) inside the block.

    References:
        Dhariwal & Nichol 2021, arXiv:2105.05233, section 3 (AdaGN, BigGAN residual resampling).
    """

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        out_channels: int | None = None,
        *,
        dropout: float = 0.0,
        use_scale_shift_norm: bool = True,
        groups: int = 32,
        up: bool = False,
        down: bool = False,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            GroupNorm32(groups, channels),
            nn.SiLU(),
            nn.Conv2d(channels, out_channels, 3, padding=1),
        )
        self.resample: nn.Module | None = None
        if up:
            self.resample = Upsample(channels, use_conv=False)
        elif down:
            self.resample = Downsample(channels, use_conv=False)
        self.emb_layers = nn.Sequential(
            nn.SiLU(),
            nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels),
        )
        self.out_layers = nn.Sequential(
            GroupNorm32(groups, out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection: nn.Module = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """x: (B, C, H, W); emb: (B, emb_channels) -> (B, out_channels, H', W')."""
        norm_act, conv = self.in_layers[:2], self.in_layers[2]
        h = norm_act(x)
        if self.resample is not None:
            h, x = self.resample(h), self.resample(x)
        h = conv(h)
        emb_out = self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        norm, rest = self.out_layers[0], self.out_layers[1:]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = norm(h) * (1 + scale) + shift
        else:
            h = norm(h + emb_out)
        return self.skip_connection(x) + rest(h)  # type: ignore[no-any-return]


class AttentionBlock(nn.Module):
    """Spatial self-attention with optional text keys/values (``encoder_kv``).

    ``qkv`` (a 1x1 ``Conv1d``) gives (B, 3C, HW), laid out per head: reshaped to
    (B * heads, 3 * ch, HW), each head holds its q, k, v in that order. ``encoder_kv`` maps the
    text features (B, xf_width, L) to per-head (k, v) that are put *in front of* the image's own
    keys and values. Softmax of ``(q / ch^{1/4}) . (k / ch^{1/4})``, i.e. ``q . k / sqrt(ch)``.

    Args:
        channels: C.
        num_heads: heads when ``num_head_channels`` is -1.
        num_head_channels: channels per head (-1: use ``num_heads``).
        encoder_channels: text feature width (None: no cross-attention).
        groups: GroupNorm groups.

    References:
        Nichol et al. 2021, arXiv:2112.10741, section 2.3 (text tokens as extra attention context).
    """

    def __init__(
        self,
        channels: int,
        *,
        num_heads: int = 1,
        num_head_channels: int = -1,
        encoder_channels: int | None = None,
        groups: int = 32,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads if num_head_channels == -1 else channels // num_head_channels
        self.norm = GroupNorm32(groups, channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.encoder_kv = (
            nn.Conv1d(encoder_channels, channels * 2, 1) if encoder_channels is not None else None
        )
        self.proj_out = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: Tensor, encoder_out: Tensor | None = None) -> Tensor:
        """x: (B, C, H, W); encoder_out: (B, xf_width, L) -> (B, C, H, W)."""
        b, c, height, width = x.shape
        heads = self.num_heads
        ch = c // heads
        qkv = self.qkv(self.norm(x).reshape(b, c, -1))  # (B, 3C, T)
        q, k, v = qkv.reshape(b, heads, 3 * ch, -1).transpose(2, 3).split(ch, dim=-1)
        if encoder_out is not None and self.encoder_kv is not None:
            ekv = self.encoder_kv(encoder_out).to(q.dtype)  # (B, 2C, L)
            ek, ev = ekv.reshape(b, heads, 2 * ch, -1).transpose(2, 3).split(ch, dim=-1)
            k = torch.cat([ek, k], dim=2)
            v = torch.cat([ev, v], dim=2)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, T, ch)
        out = out.transpose(2, 3).reshape(b, c, -1)
        return x + self.proj_out(out).reshape(b, c, height, width)


class TimestepEmbedSequential(nn.Sequential):
    """A sequence whose residual blocks get the embedding and attention blocks the text."""

    def forward(  # type: ignore[override]
        self, x: Tensor, emb: Tensor, encoder_out: Tensor | None = None
    ) -> Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, AttentionBlock):
                x = layer(x, encoder_out)
            else:
                x = layer(x)
        return x


class GLIDEUNetModel(ModelMixin):
    """GLIDE's text-conditional UNet (64 px base or, with ``in_channels = 6``, the upsampler).

    The prompt's tokens go through the text transformer (token + positional embedding, padded
    positions replaced by ``padding_embedding``, pre-LN blocks, ``final_ln``); the last token's
    feature, projected by ``transformer_proj``, is added to the timestep embedding, and all
    tokens are extra keys/values of every attention block. The output has the noise in its first
    half of channels and the learned-range variance values in the second.

    At the release configs this model has 385,030,726 (base) and 398,361,286 (upsampler)
    parameters, as ``base.pt`` and ``upsample.pt`` do.

    Example:
        >>> unet = GLIDEUNetModel(
        ...     sample_size=8, model_channels=32, channel_mult=(1, 2), num_res_blocks=1,
        ...     attention_resolutions=(4,), num_head_channels=16, text_ctx=6, xf_width=32,
        ...     xf_layers=1, xf_heads=2, vocab_size=50,
        ... )
        >>> tokens = torch.tensor([[3, 4, 49, 49, 49, 49]])
        >>> mask = tokens != 49
        >>> unet(torch.randn(1, 3, 8, 8), 10, tokens=tokens, mask=mask).sample.shape
        torch.Size([1, 6, 8, 8])

    References:
        Nichol et al. 2021, "GLIDE", arXiv:2112.10741; Dhariwal & Nichol 2021, arXiv:2105.05233.
    """

    config_class = GLIDEUNetModelConfig
    config: GLIDEUNetModelConfig
    #: The library named for this class in model_index.json.
    hub_library: ClassVar[str] = "glide"

    def __init__(
        self, config: GLIDEUNetModelConfig | dict[str, Any] | None = None, **fields: Any
    ) -> None:
        super().__init__(config, **fields)
        c = self.config
        mc = c.model_channels
        emb_dim = 4 * mc
        groups = c.norm_num_groups
        attention_at = c.attention_downsample_rates
        heads_up = c.num_heads if c.num_heads_upsample == -1 else c.num_heads_upsample

        def res(channels: int, out: int | None = None, **kw: bool) -> ResBlock:
            return ResBlock(
                channels,
                emb_dim,
                out,
                dropout=c.dropout,
                use_scale_shift_norm=c.use_scale_shift_norm,
                groups=groups,
                **kw,
            )

        def attn(channels: int, heads: int) -> AttentionBlock:
            return AttentionBlock(
                channels,
                num_heads=heads,
                num_head_channels=c.num_head_channels,
                encoder_channels=c.xf_width,
                groups=groups,
            )

        self.time_embed = nn.Sequential(
            nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )

        ch = input_ch = c.channel_mult[0] * mc
        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(nn.Conv2d(c.in_channels, ch, 3, padding=1))]
        )
        skip_channels = [ch]
        ds = 1
        for level, mult in enumerate(c.channel_mult):
            for _ in range(c.num_res_blocks):
                layers: list[nn.Module] = [res(ch, mult * mc)]
                ch = mult * mc
                if ds in attention_at:
                    layers.append(attn(ch, c.num_heads))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_channels.append(ch)
            if level != len(c.channel_mult) - 1:
                down = (
                    res(ch, ch, down=True) if c.resblock_updown else Downsample(ch, c.conv_resample)
                )
                self.input_blocks.append(TimestepEmbedSequential(down))
                skip_channels.append(ch)
                ds *= 2

        self.middle_block = TimestepEmbedSequential(res(ch), attn(ch, c.num_heads), res(ch))

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(c.channel_mult))):
            for i in range(c.num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), mc * mult)]
                ch = mc * mult
                if ds in attention_at:
                    layers.append(attn(ch, heads_up))
                if level and i == c.num_res_blocks:
                    layers.append(
                        res(ch, ch, up=True) if c.resblock_updown else Upsample(ch, c.conv_resample)
                    )
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(
            GroupNorm32(groups, ch), nn.SiLU(), nn.Conv2d(input_ch, c.out_channels, 3, padding=1)
        )
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

        # The text side, at the top level of the module tree as in the release.
        self.transformer = GLIDETextTransformer(c.xf_width, c.xf_layers, c.xf_heads)
        self.final_ln = LayerNorm32(c.xf_width) if c.xf_final_ln else None
        self.token_embedding = nn.Embedding(c.vocab_size, c.xf_width)
        self.positional_embedding = nn.Parameter(torch.empty(c.text_ctx, c.xf_width))
        self.padding_embedding = (
            nn.Parameter(torch.empty(c.text_ctx, c.xf_width)) if c.xf_padding else None
        )
        self.transformer_proj = nn.Linear(c.xf_width, emb_dim)
        if not self.positional_embedding.is_meta:
            nn.init.normal_(self.positional_embedding, std=0.01)
            if self.padding_embedding is not None:
                nn.init.normal_(self.padding_embedding, std=0.01)

    # -- text ----------------------------------------------------------------------------------

    def encode_text(self, tokens: Tensor, mask: Tensor | None = None) -> TextEncoding:
        """Text features of (B, text_ctx) ``tokens``; ``mask`` (B, text_ctx) is True on real tokens.

        Padded positions (mask False) get ``padding_embedding`` instead of their token and
        position embeddings; there is no attention mask.

        Raises:
            ValueError: wrong token length, or no mask for a model with ``xf_padding``.
        """
        c = self.config
        if tokens.ndim != 2 or tokens.shape[1] != c.text_ctx:
            raise ValueError(
                f"tokens must have shape (B, {c.text_ctx}) (text_ctx), got {tuple(tokens.shape)}; "
                "pad them with the tokenizer"
            )
        dtype = self.transformer_proj.weight.dtype
        x = self.token_embedding(tokens.long()) + self.positional_embedding[None]
        if self.padding_embedding is not None:
            if mask is None:
                raise ValueError(
                    "this GLIDE model replaces padding by padding_embedding and needs mask= "
                    "(B, text_ctx), True on real tokens; the tokenizer returns it"
                )
            if tuple(mask.shape) != tuple(tokens.shape):
                raise ValueError(
                    f"mask shape {tuple(mask.shape)} != tokens shape {tuple(tokens.shape)}"
                )
            x = torch.where(mask.bool()[..., None], x, self.padding_embedding[None])
        xf = self.transformer(x.to(dtype))
        if self.final_ln is not None:
            xf = self.final_ln(xf)
        return TextEncoding(xf_proj=self.transformer_proj(xf[:, -1]), xf_out=xf.permute(0, 2, 1))

    # -- forward -------------------------------------------------------------------------------

    def forward(
        self,
        sample: Tensor,
        timestep: Tensor | float | int,
        tokens: Tensor | None = None,
        mask: Tensor | None = None,
        low_res: Tensor | None = None,
        text: TextEncoding | None = None,
        return_dict: bool = True,
    ) -> GLIDEUNetOutput | tuple[Tensor]:
        """Predict noise and variance values for a noisy image.

        Args:
            sample: (B, C, H, W) noisy image x_t.
            timestep: (B,) or scalar timestep(s) of the 1000-step training schedule.
            tokens: (B, text_ctx) token ids (padded by the tokenizer).
            mask: (B, text_ctx) True (or 1) on real tokens.
            low_res: (B, C_low, h, w) the low-resolution image (upsampler only), resized here
                bilinearly to (H, W) and concatenated to ``sample``.
            text: precomputed :meth:`encode_text` features instead of ``tokens`` / ``mask``.
            return_dict: a :class:`GLIDEUNetOutput` (else a 1-tuple).

        Returns:
            (B, out_channels, H, W): noise, then the variance values in [-1, 1] (learned range).
        """
        c = self.config
        x = sample
        if low_res is not None:
            up = F.interpolate(low_res, x.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([x, up.to(x.dtype)], dim=1)
        if x.shape[1] != c.in_channels:
            hint = " (the upsampler also needs low_res=)" if low_res is None else ""
            raise ValueError(
                f"GLIDEUNetModel expects {c.in_channels} input channels, got {x.shape[1]}{hint}"
            )
        if text is None:
            if tokens is None:
                raise ValueError("GLIDEUNetModel needs tokens= (and mask=) or text=")
            text = self.encode_text(tokens, mask)
        t = torch.as_tensor(timestep, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb_dtype = self.time_embed[0].weight.dtype
        emb = self.time_embed(
            timestep_embedding(t, c.model_channels, flip_sin_to_cos=True, freq_shift=0).to(
                emb_dtype
            )
        )
        emb = emb + text.xf_proj.to(emb.dtype)
        xf_out = text.xf_out
        dtype = self.input_blocks[0][0].weight.dtype
        h = x.to(dtype)
        skips = []
        for block in self.input_blocks:
            h = block(h, emb, xf_out)
            skips.append(h)
        h = self.middle_block(h, emb, xf_out)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb, xf_out)
        out = self.out(h).to(sample.dtype)
        return GLIDEUNetOutput(out) if return_dict else (out,)
