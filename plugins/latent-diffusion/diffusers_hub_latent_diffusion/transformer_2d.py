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
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    """``net = [GEGLU(dim, 4 dim), Dropout, Linear(4 dim, dim)]``."""

    def __init__(self, dim: int, *, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim)])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.net:
            x = layer(x)
        return x


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
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn1 = Attention(
            dim,
            cross_attention_dim=cross_attention_dim if only_cross_attention else None,
            heads=num_attention_heads,
            dim_head=attention_head_dim,
            dropout=dropout,
            bias=attention_bias,
        )
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn2 = Attention(
            dim,
            cross_attention_dim=cross_attention_dim,
            heads=num_attention_heads,
            dim_head=attention_head_dim,
            dropout=dropout,
            bias=attention_bias,
        )
        self.norm3 = nn.LayerNorm(dim, eps=norm_eps)
        self.ff = FeedForward(dim, dropout=dropout)

    def forward(self, hidden_states: Tensor, encoder_hidden_states: Tensor) -> Tensor:
        """Args: hidden_states (B, N, dim); encoder_hidden_states (B, M, cross_attention_dim).

        Returns:
            (B, N, dim).
        """
        x = hidden_states
        context = encoder_hidden_states if self.only_cross_attention else None
        x = x + self.attn1(self.norm1(x), context)
        x = x + self.attn2(self.norm2(x), encoder_hidden_states)
        return x + self.ff(self.norm3(x))


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
        b, _, h, w = hidden_states.shape
        residual = hidden_states
        x = self.norm(hidden_states)
        if self.use_linear_projection:
            x = self.proj_in(x.permute(0, 2, 3, 1).reshape(b, h * w, -1))
        else:
            x = self.proj_in(x)
            x = x.permute(0, 2, 3, 1).reshape(b, h * w, -1)
        for block in self.transformer_blocks:
            x = block(x, encoder_hidden_states)
        if self.use_linear_projection:
            x = self.proj_out(x).reshape(b, h, w, -1).permute(0, 3, 1, 2)
        else:
            x = self.proj_out(x.reshape(b, h, w, -1).permute(0, 3, 1, 2))
        return x + residual
