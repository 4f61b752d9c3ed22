"""The spatial transformer of LDM's UNet: self-attention, cross-attention on text, GEGLU feed-forward.

A feature map (B, C, H, W) is group-normalised, projected to ``heads * dim_head`` channels
(``proj_in``: a 1x1 convolution in the original checkpoints, a linear layer when
``use_linear_projection``), flattened into H*W tokens, passed through
:class:`BasicTransformerBlock` s, projected back (``proj_out``) and added to the input.

Key names equal diffusers': ``norm``, ``proj_in``, ``transformer_blocks.N.{norm1, attn1.{to_q, to_k,
to_v, to_out.0}, norm2, attn2.{...}, norm3, ff.net.0.proj, ff.net.2}``, ``proj_out``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from diffusers_hub.nn._kernels import linear_rows, memory_format_of
from diffusers_hub.nn.attention import Attention

__all__ = ["GEGLU", "BasicTransformerBlock", "FeedForward", "Transformer2DModel"]


class GEGLU(nn.Module):
    """Gated GELU: ``a * gelu(b)`` where ``[a, b] = proj(x)``.

    References:
        Shazeer, "GLU Variants Improve Transformer", arXiv:2002.05202 (eq. 6).
    """

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: Tensor) -> Tensor:
        """(..., dim_in) -> (..., dim_out)."""
        hidden, gate = linear_rows(x, self.proj.weight, self.proj.bias).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    """``net = [GEGLU(dim, 4 dim), Dropout, Linear(4 dim, dim)]``."""

    def __init__(self, dim: int, *, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim)])

    def forward(self, x: Tensor) -> Tensor:
        """(..., dim) -> (..., dim)."""
        geglu, dropout, out = self.net
        assert isinstance(out, nn.Linear)
        return linear_rows(dropout(geglu(x)), out.weight, out.bias)


def _attention(attn: Attention, x: Tensor, context: Tensor | None) -> Tensor:
    """Multi-head attention of the tokens ``x`` over ``context`` (or over themselves).

    The same math as ``attn(x, context)`` (``softmax(Q K^T / sqrt(d)) V``, eq. 1 of
    arXiv:1706.03762, then ``to_out``) with every projection written row-major, so the heads are
    strided views that ``scaled_dot_product_attention`` runs through its fused CPU kernel.

    Args:
        attn: the layer holding ``to_q, to_k, to_v, to_out`` (no group norm, no residual).
        x: (B, N, query_dim) queries.
        context: (B, M, cross_attention_dim) keys and values, or None for self-attention.

    Returns:
        (B, N, query_dim).
    """
    b, n, _ = x.shape
    source = x if context is None else context

    def heads(t: Tensor) -> Tensor:  # (B, L, heads * d) -> (B, heads, L, d)
        return t.view(b, t.shape[1], attn.heads, attn.dim_head).transpose(1, 2)

    q = heads(linear_rows(x, attn.to_q.weight, attn.to_q.bias))
    k = heads(linear_rows(source, attn.to_k.weight, attn.to_k.bias))
    v = heads(linear_rows(source, attn.to_v.weight, attn.to_v.bias))
    out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, attn.inner_dim)
    proj = attn.to_out[0]
    assert isinstance(proj, nn.Linear)
    result: Tensor = attn.to_out[1](linear_rows(out, proj.weight, proj.bias))
    return result


class BasicTransformerBlock(nn.Module):
    """Pre-LN transformer block: self-attention, cross-attention on the context, feed-forward.

    ``x = x + attn1(norm1(x))``; ``x = x + attn2(norm2(x), context)``; ``x = x + ff(norm3(x))``.
    With ``only_cross_attention`` the first attention also attends to the context.

    Args:
        dim: token channels (``heads * dim_head``).
        num_attention_heads: heads.
        attention_head_dim: channels per head.
        cross_attention_dim: channels of the context (``encoder_hidden_states``).
        dropout: dropout in attention outputs and the feed-forward.
        attention_bias: bias in ``to_q``, ``to_k``, ``to_v``.
        only_cross_attention: ``attn1`` is cross-attention too.
        norm_eps: LayerNorm epsilon.

    References:
        Rombach et al. 2021, Sec. 3.3 and appendix E.2 (arXiv:2112.10752).
    """

    def __init__(
        self,
        dim: int,
        num_attention_heads: int,
        attention_head_dim: int,
        *,
        cross_attention_dim: int,
        dropout: float = 0.0,
        attention_bias: bool = False,
        only_cross_attention: bool = False,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.only_cross_attention = only_cross_attention

        def attention(context_dim: int | None) -> Attention:
            return Attention(
                dim,
                cross_attention_dim=context_dim,
                heads=num_attention_heads,
                dim_head=attention_head_dim,
                dropout=dropout,
                bias=attention_bias,
            )

        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn1 = attention(cross_attention_dim if only_cross_attention else None)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn2 = attention(cross_attention_dim)
        self.norm3 = nn.LayerNorm(dim, eps=norm_eps)
        self.ff = FeedForward(dim, dropout=dropout)

    def forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor) -> Tensor:
        """Args: hidden_states (B, N, dim); encoder_hidden_states (B, M, cross_attention_dim).

        Returns:
            (B, N, dim).
        """
        x = hidden_states
        context = encoder_hidden_states if self.only_cross_attention else None
        x = x + _attention(self.attn1, self.norm1(x), context)
        x = x + _attention(self.attn2, self.norm2(x), encoder_hidden_states)
        out: Tensor = x + self.ff(self.norm3(x))
        return out


class Transformer2DModel(nn.Module):
    """Spatial transformer on a feature map, conditioned on a token sequence.

    Args:
        num_attention_heads: heads of every attention layer.
        attention_head_dim: channels per head; the inner width is their product.
        in_channels: channels of the feature map (and of the output).
        num_layers: transformer blocks.
        cross_attention_dim: channels of ``encoder_hidden_states``.
        norm_num_groups: groups of the input GroupNorm (eps 1e-6).
        use_linear_projection: ``proj_in``/``proj_out`` as linear layers instead of 1x1 convs.
        dropout, attention_bias, only_cross_attention, norm_eps: see :class:`BasicTransformerBlock`.

    References:
        Rombach et al. 2021, Sec. 3.3 (arXiv:2112.10752).

    Example:
        >>> import torch
        >>> t = Transformer2DModel(2, 8, 16, cross_attention_dim=12, norm_num_groups=4)
        >>> t(torch.randn(1, 16, 4, 4), torch.randn(1, 5, 12)).shape
        torch.Size([1, 16, 4, 4])
    """

    def __init__(
        self,
        num_attention_heads: int,
        attention_head_dim: int,
        in_channels: int,
        *,
        num_layers: int = 1,
        cross_attention_dim: int,
        norm_num_groups: int = 32,
        use_linear_projection: bool = False,
        dropout: float = 0.0,
        attention_bias: bool = False,
        only_cross_attention: bool = False,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        inner = num_attention_heads * attention_head_dim
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(norm_num_groups, in_channels, eps=1e-6)
        if use_linear_projection:
            self.proj_in: nn.Module = nn.Linear(in_channels, inner)
        else:
            self.proj_in = nn.Conv2d(in_channels, inner, kernel_size=1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(
                inner,
                num_attention_heads,
                attention_head_dim,
                cross_attention_dim=cross_attention_dim,
                dropout=dropout,
                attention_bias=attention_bias,
                only_cross_attention=only_cross_attention,
                norm_eps=norm_eps,
            )
            for _ in range(num_layers)
        )
        if use_linear_projection:
            self.proj_out: nn.Module = nn.Linear(inner, in_channels)
        else:
            self.proj_out = nn.Conv2d(inner, in_channels, kernel_size=1)

    def forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor) -> Tensor:
        """Args: hidden_states (B, C, H, W); encoder_hidden_states (B, M, cross_attention_dim).

        Returns:
            (B, C, H, W): the input plus the transformer's output.
        """
        b, c, h, w = hidden_states.shape
        # Both projections act on single pixels (a 1x1 convolution is a linear map of the
        # channels), so they run on the (B, H*W, C) tokens, row-major throughout.
        tokens = self.norm(hidden_states).permute(0, 2, 3, 1).reshape(b, h * w, c)
        x = linear_rows(tokens, *_matrix(self.proj_in))
        for block in self.transformer_blocks:
            x = block(x, encoder_hidden_states)
        x = linear_rows(x, *_matrix(self.proj_out)).view(b, h, w, c).permute(0, 3, 1, 2)
        return x.contiguous(memory_format=memory_format_of(hidden_states)) + hidden_states


def _matrix(layer: nn.Module) -> tuple[Tensor, Tensor | None]:
    """(weight (N, K), bias) of a linear layer or of a 1x1 convolution."""
    assert isinstance(layer, nn.Linear | nn.Conv2d)
    weight = layer.weight if layer.weight.ndim == 2 else layer.weight[:, :, 0, 0]
    return weight, layer.bias
