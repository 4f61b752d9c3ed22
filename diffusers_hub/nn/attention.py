"""Multi-head (self- or cross-) attention on feature maps and token sequences, and the renaming of
legacy attention weight names."""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffusers_hub.nn._kernels import conv2d, held, linear, memory_format_of

__all__ = ["Attention", "remap_legacy_attention_keys"]

# Attention -> (key, (C + C_out, C, 1, 1) folded projection kernel, its bias): see
# Attention._fold_projections
_FOLDED: weakref.WeakKeyDictionary[nn.Module, tuple[object, ...]] = weakref.WeakKeyDictionary()


class Attention(nn.Module):
    """Scaled dot-product attention with the ``to_q, to_k, to_v, to_out.0`` projections.

    ``softmax(Q K^T / sqrt(d)) V`` per head through
    :func:`torch.nn.functional.scaled_dot_product_attention`, with ``Q = to_q(x)`` and
    ``K, V = to_k(c), to_v(c)`` where the context ``c`` is ``encoder_hidden_states`` (cross-attention)
    or ``x`` itself. A feature map (B, C, H, W) is treated as the sequence of its H*W pixels and
    returned in the same shape; ``group_norm`` (when configured) normalizes ``x`` first, and
    ``residual_connection`` adds the block input back. One-head self-attention on a channels-last
    float32 CPU map with gradients off runs its four projections folded into two
    (:meth:`_fold_projections`), equal up to float rounding.

    Args:
        query_dim: channels of the queries (and of the output).
        cross_attention_dim: channels of ``encoder_hidden_states``; None for self-attention.
        heads: number of heads.
        dim_head: width of one head; defaults to ``query_dim // heads``.
        dropout: dropout after the output projection (``to_out.1``).
        bias: bias in ``to_q``, ``to_k``, ``to_v``.
        out_bias: bias in ``to_out.0``.
        norm_num_groups: groups of the input GroupNorm ``group_norm``; None for no norm.
        eps: GroupNorm epsilon.
        residual_connection: return ``input + attention(input)``.
        rescale_output_factor: the result is divided by this.

    References:
        Vaswani et al. 2017, eq. 1 (arXiv:1706.03762); Ho et al. 2020, appendix B (arXiv:2006.11239).

    Example:
        >>> attn = Attention(32, heads=4, bias=True, norm_num_groups=8, residual_connection=True)
        >>> attn(torch.randn(2, 32, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
        >>> cross = Attention(32, cross_attention_dim=16, heads=2, dim_head=8)
        >>> cross(torch.randn(2, 10, 32), torch.randn(2, 7, 16)).shape
        torch.Size([2, 10, 32])
    """

    def __init__(
        self,
        query_dim: int,
        *,
        cross_attention_dim: int | None = None,
        heads: int = 1,
        dim_head: int | None = None,
        dropout: float = 0.0,
        bias: bool = False,
        out_bias: bool = True,
        norm_num_groups: int | None = None,
        eps: float = 1e-5,
        residual_connection: bool = False,
        rescale_output_factor: float = 1.0,
    ) -> None:
        super().__init__()
        if heads < 1:
            raise ValueError(f"heads must be >= 1, got {heads}")
        if dim_head is None:
            if query_dim % heads:
                raise ValueError(f"query_dim {query_dim} is not divisible by heads {heads}")
            dim_head = query_dim // heads
        self.heads = heads
        self.dim_head = dim_head
        self.inner_dim = heads * dim_head
        self.query_dim = query_dim
        self.cross_attention_dim = cross_attention_dim
        self.residual_connection = residual_connection
        self.rescale_output_factor = rescale_output_factor
        context_dim = cross_attention_dim if cross_attention_dim is not None else query_dim

        self.group_norm: nn.GroupNorm | None = None
        if norm_num_groups is not None:
            self.group_norm = nn.GroupNorm(norm_num_groups, query_dim, eps=eps)
        self.to_q = nn.Linear(query_dim, self.inner_dim, bias=bias)
        self.to_k = nn.Linear(context_dim, self.inner_dim, bias=bias)
        self.to_v = nn.Linear(context_dim, self.inner_dim, bias=bias)
        self.to_out = nn.ModuleList(
            [nn.Linear(self.inner_dim, query_dim, bias=out_bias), nn.Dropout(dropout)]
        )

    def forward(
        self,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Attend.

        Args:
            hidden_states: (B, C, H, W) feature map or (B, N, C) sequence.
            encoder_hidden_states: (B, M, cross_attention_dim) context; None for self-attention.
            attention_mask: boolean (True = attend) or additive float mask broadcastable to
                (B, heads, N, M).

        Returns:
            A tensor shaped like ``hidden_states``.
        """
        if hidden_states.ndim == 4:
            out = self._attend_spatial(hidden_states, encoder_hidden_states, attention_mask)
        elif hidden_states.ndim == 3:
            x = hidden_states
            if self.group_norm is not None:
                x = self.group_norm(x.transpose(1, 2)).transpose(1, 2)
            out = self._attend_sequence(x, encoder_hidden_states, attention_mask)
        else:
            raise ValueError(
                f"Attention expects (B, C, H, W) or (B, N, C) input, got {tuple(hidden_states.shape)}"
            )
        if self.residual_connection:
            out = out.add_(hidden_states) if not torch.is_grad_enabled() else out + hidden_states
        if self.rescale_output_factor != 1.0:
            out = out / self.rescale_output_factor
        return out

    @property
    def _out_projection(self) -> nn.Linear:
        layer = self.to_out[0]
        assert isinstance(layer, nn.Linear)
        return layer

    def _heads(self, x: Tensor) -> Tensor:
        """(B, N, heads * d) -> (B, heads, N, d)."""
        return x.view(x.shape[0], x.shape[1], self.heads, self.dim_head).transpose(1, 2)

    def _sdpa(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """Attention of (B, heads, N, d) queries over (B, heads, M, d) keys and values."""
        if mask is not None and mask.ndim == 3:
            mask = mask[:, None]  # (B, N, M) -> (B, 1, N, M)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # eq. 1, arXiv:1706.03762

    def _attend_sequence(self, x: Tensor, context: Tensor | None, mask: Tensor | None) -> Tensor:
        """(B, N, C) normalized queries -> (B, N, query_dim) projected attention output."""
        context = x if context is None else context
        q = self._heads(linear(x, self.to_q.weight, self.to_q.bias))
        k = self._heads(linear(context, self.to_k.weight, self.to_k.bias))
        v = self._heads(linear(context, self.to_v.weight, self.to_v.bias))
        out = self._sdpa(q, k, v, mask).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        proj = self._out_projection
        projected: Tensor = self.to_out[1](linear(out, proj.weight, proj.bias))
        return projected

    def _attend_spatial(
        self, hidden: Tensor, context: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        """(B, C, H, W) map -> (B, query_dim, H, W) projected attention output, in the memory
        format of the input; self-attention projects q, k and v with one fused 1x1 convolution."""
        b, c, height, width = hidden.shape
        x = self.group_norm(hidden) if self.group_norm is not None else hidden
        if context is not None:
            seq = x.permute(0, 2, 3, 1).reshape(b, height * width, c)
            out = self._attend_sequence(seq, context, mask)
            return (
                out.view(b, height, width, c)
                .permute(0, 3, 1, 2)
                .contiguous(memory_format=memory_format_of(hidden))
            )
        if mask is None and self.heads == 1:
            projections = (self.to_q, self.to_k, self.to_v, self._out_projection)
            sources = tuple(t for layer in projections for t in (layer.weight, layer.bias))
            folded = held(_FOLDED, self, x, sources, self._fold_projections)
            if folded is not None:
                return self._attend_folded(x, folded[0], folded[1])
        weight = torch.cat([self.to_q.weight, self.to_k.weight, self.to_v.weight])
        bias = None
        if self.to_q.bias is not None and self.to_k.bias is not None and self.to_v.bias is not None:
            bias = torch.cat([self.to_q.bias, self.to_k.bias, self.to_v.bias])
        qkv = conv2d(x, weight[:, :, None, None], bias)  # (B, 3 * inner, H, W)
        qkv = qkv.flatten(2).view(b, 3, self.heads, self.dim_head, height * width)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # (B, heads, HW, d)
        out = self._sdpa(q, k, v, mask)
        if memory_format_of(hidden) == torch.channels_last:
            out = out.transpose(1, 2).reshape(b, height, width, self.inner_dim).permute(0, 3, 1, 2)
        else:
            out = out.permute(0, 1, 3, 2).reshape(b, self.inner_dim, height, width)
        proj = self._out_projection
        projected: Tensor = self.to_out[1](conv2d(out, proj.weight[:, :, None, None], proj.bias))
        return projected

    @staticmethod
    def _fold_projections(
        wq: Tensor,
        bq: Tensor | None,
        wk: Tensor,
        bk: Tensor | None,
        wv: Tensor,
        bv: Tensor | None,
        wo: Tensor,
        bo: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """One-head self-attention's four projections folded into two, applied to ``x`` at once.

        The score of query ``i`` on key ``j`` is ``(Wq x_i + bq) . (Wk x_j + bk)``; the terms
        without ``x_j`` are the same for every key and cancel in the softmax, leaving
        ``(Wk^T Wq x_i + Wk^T bq) . x_j``: the keys are ``x`` itself. The output
        ``Wo (sum_j p_ij (Wv x_j + bv)) + bo`` is ``sum_j p_ij (Wo Wv x_j + Wo bv + bo)`` since the
        weights ``p_ij`` sum to one: the values carry the output projection. Returns the
        ((C + C_out), C, 1, 1) kernel of ``(Wk^T Wq; Wo Wv)``, channels-last, and its bias.
        """
        del bk  # cancels in the softmax
        wide = torch.float64  # the products are formed once, in double precision
        q_weight = wk.to(wide).t() @ wq.to(wide)
        q_bias = (
            torch.zeros(wq.shape[1], dtype=wide) if bq is None else wk.to(wide).t() @ bq.to(wide)
        )
        v_weight = wo.to(wide) @ wv.to(wide)
        v_bias = torch.zeros(wo.shape[0], dtype=wide) if bv is None else wo.to(wide) @ bv.to(wide)
        if bo is not None:
            v_bias = v_bias + bo.to(wide)
        kernel = torch.cat([q_weight, v_weight]).to(wq.dtype)[:, :, None, None]
        bias = torch.cat([q_bias, v_bias]).to(wq.dtype)
        return kernel.contiguous(memory_format=torch.channels_last), bias

    def _attend_folded(self, x: Tensor, kernel: Tensor, bias: Tensor) -> Tensor:
        """(B, C, H, W) channels-last normalized map -> (B, C_out, H, W) attention output with
        the projections of :meth:`_fold_projections`: 2 C^2 multiply-adds per pixel for the
        projections where the four take 4 C^2."""
        b, c, height, width = x.shape
        tokens = conv2d(x, kernel, bias).permute(0, 2, 3, 1).view(b, 1, height * width, -1)
        keys = x.permute(0, 2, 3, 1).view(b, 1, height * width, c)
        q, v = tokens[..., :c], tokens[..., c:]
        out = F.scaled_dot_product_attention(q, keys, v, scale=self.dim_head**-0.5)
        out = out.view(b, height, width, v.shape[-1]).permute(0, 3, 1, 2)
        folded: Tensor = self.to_out[1](out)
        return folded


_LEGACY_PROJECTIONS = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
_LEGACY_KEY = re.compile(
    r"^(?P<prefix>(?:.*\.)?)(?P<name>query|key|value|proj_attn)\.(?P<param>weight|bias)$"
)


def remap_legacy_attention_keys(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename the attention weights of checkpoints saved before diffusers 0.13.

    Old ``AttentionBlock`` modules stored ``query``, ``key``, ``value`` and ``proj_attn``; today
    they are ``to_q``, ``to_k``, ``to_v`` and ``to_out.0``. In blocks that carry such names the
    old norm spelling ``norm`` becomes ``group_norm``, and 1x1-convolution weights
    (C_out, C_in, 1, 1) are squeezed to linear weights. Keys of other modules are untouched, so
    the function is safe on any state dict (already-converted ones included) and on shards.

    Args:
        state_dict: parameter name -> tensor.

    Returns:
        A new dict with the renamed keys (insertion order kept).

    Example:
        >>> import torch
        >>> sd = {"mid_block.attentions.0.query.weight": torch.zeros(4, 4)}
        >>> list(remap_legacy_attention_keys(sd))
        ['mid_block.attentions.0.to_q.weight']
    """
    prefixes = set()
    for key in state_dict:
        match = _LEGACY_KEY.match(key)
        if match:
            prefixes.add(match.group("prefix"))
    if not prefixes:
        return dict(state_dict)
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        match = _LEGACY_KEY.match(key)
        if match and match.group("prefix") in prefixes:
            prefix, param = match.group("prefix"), match.group("param")
            if param == "weight" and value.ndim == 4 and value.shape[2:] == (1, 1):
                value = value[:, :, 0, 0]
            out[f"{prefix}{_LEGACY_PROJECTIONS[match.group('name')]}.{param}"] = value
            continue
        for prefix in prefixes:
            if key in (f"{prefix}norm.weight", f"{prefix}norm.bias"):
                key = f"{prefix}group_norm.{key.rsplit('.', 1)[1]}"
                break
        out[key] = value
    return out
