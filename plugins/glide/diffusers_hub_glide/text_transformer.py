"""The text transformer of GLIDE: pre-LN bidirectional blocks over BPE token features.

Module names equal the release's (``resblocks.N.{ln_1, attn.c_qkv, attn.c_proj, ln_2, mlp.c_fc,
mlp.c_proj}``), so the ``transformer.*`` keys of ``base.pt`` / ``upsample.pt`` load unchanged.
The token, positional and padding embeddings, ``final_ln`` and ``transformer_proj`` belong to the
UNet (:class:`~diffusers_hub_glide.unet.GLIDEUNetModel`), where the release keeps them.

References:
    Nichol et al. 2021, "GLIDE", arXiv:2112.10741 (section 2.3 and appendix A);
    Radford et al. 2021, "CLIP", arXiv:2103.00020 (the block layout).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GLIDETextTransformer", "LayerNorm32", "TextAttention", "TextBlock", "TextMLP"]


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input and weight dtypes (fp16/bf16 safe)."""

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        out = F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)
        return out.to(x.dtype)


class TextAttention(nn.Module):
    """Multi-head self-attention with one fused ``c_qkv`` projection, laid out per head.

    ``c_qkv`` gives (B, L, 3W); viewed as (B, L, heads, 3W/heads), each head's slice holds its
    q, k and v in that order (OpenAI's layout, not the q|k|v blocks of most libraries).

    Args:
        width: W, the feature width.
        heads: number of heads (W divisible by it).
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"text transformer width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.c_qkv = nn.Linear(width, width * 3)
        self.c_proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        """(B, L, W) -> (B, L, W); every token attends to every token (no mask)."""
        b, length, width = x.shape
        qkv = self.c_qkv(x).view(b, length, self.heads, 3 * width // self.heads)
        q, k, v = qkv.transpose(1, 2).chunk(3, dim=-1)  # each (B, heads, L, W/heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.c_proj(out.transpose(1, 2).reshape(b, length, width))


class TextMLP(nn.Module):
    """``c_proj(gelu(c_fc(x)))`` with a 4x hidden width."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, width * 4)
        self.c_proj = nn.Linear(width * 4, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class TextBlock(nn.Module):
    """A pre-LN residual block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = TextAttention(width, heads)
        self.ln_1 = LayerNorm32(width)
        self.mlp = TextMLP(width)
        self.ln_2 = LayerNorm32(width)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GLIDETextTransformer(nn.Module):
    """A stack of :class:`TextBlock` (the release's ``Transformer``, registered as ``transformer``).

    Args:
        width: feature width (512 in the release).
        layers: number of blocks (16).
        heads: attention heads per block (8).

    Example:
        >>> import torch
        >>> xf = GLIDETextTransformer(width=16, layers=2, heads=2)
        >>> xf(torch.randn(1, 5, 16)).shape
        torch.Size([1, 5, 16])

    References:
        Nichol et al. 2021, arXiv:2112.10741, appendix A.
    """

    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(TextBlock(width, heads) for _ in range(layers))

    def forward(self, x: Tensor) -> Tensor:
        """(B, L, W) token features -> (B, L, W)."""
        for block in self.resblocks:
            x = block(x)
        return x
