"""Timestep embeddings: sinusoidal (DDPM/Transformer style), Gaussian Fourier features, and the MLP
that maps either one to the width the ResNet blocks consume."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from diffusers_hub.nn.activations import get_activation

__all__ = [
    "GaussianFourierProjection",
    "TimestepEmbedding",
    "Timesteps",
    "timestep_embedding",
]


def timestep_embedding(
    timesteps: Tensor,
    dim: int,
    *,
    flip_sin_to_cos: bool = False,
    freq_shift: float = 1.0,
    max_period: float = 10000.0,
    scale: float = 1.0,
) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps.

    With ``half = dim // 2`` the frequencies are ``w_k = exp(-ln(max_period) * k / (half - freq_shift))``
    for ``k = 0 .. half - 1`` and the embedding is ``[sin(t w), cos(t w)]`` (``[cos, sin]`` when
    ``flip_sin_to_cos``), zero-padded by one column when ``dim`` is odd. DDPM uses ``freq_shift=1``
    and ``[sin, cos]``; latent diffusion and GLIDE use ``freq_shift=0`` and ``[cos, sin]``.

    The table is computed in float32 whatever the input dtype; cast the result to the model dtype.

    Args:
        timesteps: (B,) timesteps, integer or float.
        dim: embedding width.
        flip_sin_to_cos: put the cosine half first.
        freq_shift: the shift in the frequency denominator (1 for DDPM, 0 for LDM/GLIDE).
        max_period: the longest period, ``10000`` as in the Transformer.
        scale: multiplies the arguments ``t * w``.

    Returns:
        (B, dim) float32 embedding.

    References:
        Vaswani et al. 2017, sec. 3.5 (arXiv:1706.03762); Ho et al. 2020, appendix B (arXiv:2006.11239).
    """
    if timesteps.ndim != 1:
        raise ValueError(f"timesteps must be a 1-D tensor, got shape {tuple(timesteps.shape)}")
    half = dim // 2
    # Evaluated as (-ln(P) * k) / (half - shift) in float32: the rounding the checkpoints were
    # trained with (a fused constant differs by ~1e-5 in t * w at t = 1000).
    exponent = -math.log(max_period) * torch.arange(
        half, dtype=torch.float32, device=timesteps.device
    )
    exponent = exponent / (half - freq_shift)
    args = timesteps.to(torch.float32)[:, None] * torch.exp(exponent)[None, :]
    if scale != 1.0:
        args = args * scale
    sin, cos = torch.sin(args), torch.cos(args)
    emb = torch.cat([cos, sin] if flip_sin_to_cos else [sin, cos], dim=-1)
    if dim % 2 == 1:
        emb = nn.functional.pad(emb, (0, 1))
    return emb


class Timesteps(nn.Module):
    """Module form of :func:`timestep_embedding` (no parameters).

    Args:
        num_channels: embedding width.
        flip_sin_to_cos: ``[cos, sin]`` order.
        downscale_freq_shift: the ``freq_shift`` of :func:`timestep_embedding`.
        scale: multiplies the arguments.

    Example:
        >>> Timesteps(32, False, 1)(torch.tensor([0, 10])).shape
        torch.Size([2, 32])
    """

    def __init__(
        self,
        num_channels: int,
        flip_sin_to_cos: bool,
        downscale_freq_shift: float,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.flip_sin_to_cos = flip_sin_to_cos
        self.downscale_freq_shift = downscale_freq_shift
        self.scale = scale

    def forward(self, timesteps: Tensor) -> Tensor:
        """(B,) timesteps -> (B, num_channels) float32 embedding."""
        return timestep_embedding(
            timesteps,
            self.num_channels,
            flip_sin_to_cos=self.flip_sin_to_cos,
            freq_shift=self.downscale_freq_shift,
            scale=self.scale,
        )


class GaussianFourierProjection(nn.Module):
    """Random Fourier features of the (log) noise level, as in score-based SDE models.

    ``out = [sin(2 pi x w), cos(2 pi x w)]`` with fixed random frequencies ``w ~ N(0, scale^2)``
    stored as the (non-trainable) parameter ``weight``; ``x = log(t)`` when ``log`` is true.

    Args:
        embedding_size: number of frequencies; the output has ``2 * embedding_size`` columns.
        scale: standard deviation of the frequencies.
        flip_sin_to_cos: ``[cos, sin]`` order.
        log: take the logarithm of the input first (inputs are noise levels sigma > 0).

    References:
        Tancik et al. 2020 (arXiv:2006.10739); Song et al. 2021, appendix C (arXiv:2011.13456).

    Example:
        >>> GaussianFourierProjection(8, scale=16.0)(torch.tensor([0.5, 2.0])).shape
        torch.Size([2, 16])
    """

    def __init__(
        self,
        embedding_size: int = 256,
        scale: float = 1.0,
        flip_sin_to_cos: bool = False,
        *,
        log: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(embedding_size) * scale, requires_grad=False)
        self.flip_sin_to_cos = flip_sin_to_cos
        self.log = log

    def forward(self, x: Tensor) -> Tensor:
        """(B,) noise levels -> (B, 2 * embedding_size) features in float32."""
        x = x.to(torch.float32)
        if self.log:
            x = torch.log(x)
        proj = x[:, None] * self.weight.to(torch.float32)[None, :] * (2 * math.pi)
        sin, cos = torch.sin(proj), torch.cos(proj)
        return torch.cat([cos, sin] if self.flip_sin_to_cos else [sin, cos], dim=-1)


class TimestepEmbedding(nn.Module):
    """Two-layer MLP ``linear_2(act(linear_1(x)))`` on a timestep embedding.

    Args:
        in_channels: width of the sinusoidal / Fourier features.
        time_embed_dim: hidden width (and output width unless ``out_dim``).
        act_fn: activation name (see :func:`~diffusers_hub.nn.activations.get_activation`).
        out_dim: output width; defaults to ``time_embed_dim``.

    Example:
        >>> TimestepEmbedding(32, 128)(torch.randn(2, 32)).shape
        torch.Size([2, 128])
    """

    def __init__(
        self,
        in_channels: int,
        time_embed_dim: int,
        act_fn: str = "silu",
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, time_embed_dim)
        self.act = get_activation(act_fn)
        self.linear_2 = nn.Linear(
            time_embed_dim, out_dim if out_dim is not None else time_embed_dim
        )

    def forward(self, sample: Tensor) -> Tensor:
        """(B, in_channels) -> (B, out_dim)."""
        out: Tensor = self.linear_2(self.act(self.linear_1(sample)))
        return out
