"""BDDM's schedule network: a GALR network that proposes the next noise level from a noisy clip.

The schedule network $\\sigma_\\phi$ of a bilateral denoising diffusion model looks at a noisy
waveform $x_n$ (at noise scale $\\hat\\alpha_n$) and returns a ratio in (0, 1); the beta of that
step is the ratio times a bound that keeps the schedule valid:

$$\\hat\\beta_n = \\min\\{\\hat\\beta_{n+1},\\, 1 - \\hat\\alpha_n^2\\}\\;\\sigma_\\phi(x_n).$$

Run backwards from a start $(\\hat\\alpha_N, \\hat\\beta_N)$, alternately with the score
network's reverse step, it yields a whole schedule (see
:meth:`~diffusers_hub_bddm.scheduler.BDDMScheduler.search`). The network is the release's GALR
(globally attentive, locally recurrent; Lam et al. 2021): a strided convolutional encoder cuts
the waveform into half-overlapping frames, the frames into half-overlapping segments; each block
runs a bidirectional LSTM inside every segment and multi-head attention across segments (on a
few learned projections of the segment axis), and a gated head averages everything into one
logit per clip. Module and parameter names follow the release, so that the ``schedule_net.*``
entries of its ``DiffWave_GALR.pkl`` load as they are (``convert bddm``).

References:
    Lam, Wang, Su, Yu. BDDM: Bilateral Denoising Diffusion Models for Fast and High-Quality
    Speech Synthesis. ICLR 2022, arXiv:2203.13508 (section 3.2, eq. 11; appendix: GALR).
    Lam, Wang, Su, Yu. Sandglasset / GALR: Effective Low-Cost Time-Domain Speech Separation
    with Globally Attentive Locally Recurrent Networks. SLT 2021, arXiv:2101.05014 (section 2.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.nn import functional as F

from diffusers_hub.config import ComponentConfig
from diffusers_hub.modeling import ModelMixin

__all__ = [
    "BDDMScheduleNetwork",
    "BDDMScheduleNetworkConfig",
    "ScheduleNetworkOutput",
    "sinusoidal_positions",
]


class BDDMScheduleNetworkConfig(ComponentConfig):
    """The ``config.json`` of a :class:`BDDMScheduleNetwork` (names as in BDDM's ``conf.yml``).

    The defaults are those of the release's LJSpeech and VCTK schedule networks.

    Attributes:
        blocks: GALR blocks.
        input_dim: width of the encoded frames.
        hidden_dim: hidden units of each direction of the local LSTM.
        window_length: samples per encoder frame (frames overlap by half; even, >= 2).
        segment_size: frames per segment (segments overlap by half; even, >= 2).
        low_dim: learned projections of the segment axis that the attention runs on.
        attention_heads: heads of the global attention (divides ``input_dim``).
        attention_dropout: dropout of the attention while training.
        max_segments: longest run of segments the positional encoding covers.
    """

    blocks: int = Field(default=1, ge=1)
    input_dim: int = Field(default=128, ge=1)
    hidden_dim: int = Field(default=128, ge=1)
    window_length: int = Field(default=8, ge=2)
    segment_size: int = Field(default=64, ge=2)
    low_dim: int = Field(default=8, ge=1)
    attention_heads: int = Field(default=8, ge=1)
    attention_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    max_segments: int = Field(default=5000, ge=1)

    @model_validator(mode="after")
    def _check_structure(self) -> BDDMScheduleNetworkConfig:
        if self.window_length % 2 or self.segment_size % 2:
            raise ValueError(
                "window_length and segment_size must be even (half-overlapping frames and "
                f"segments); got {self.window_length} and {self.segment_size}"
            )
        if self.input_dim % self.attention_heads:
            raise ValueError(
                f"attention_heads ({self.attention_heads}) must divide input_dim ({self.input_dim})"
            )
        return self


@dataclass
class ScheduleNetworkOutput:
    """The output of :class:`BDDMScheduleNetwork`.

    Attributes:
        beta: (B,) the proposed $\\hat\\beta_n$.
        ratio: (B,) $\\sigma_\\phi(x_n)$ in (0, 1).
    """

    beta: Tensor
    ratio: Tensor


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """(length, 1, dim) Transformer positional encodings: sin on even, cos on odd channels.

    Channel pair k runs at frequency ``exp(-2k ln(1e4) / dim)`` (Vaswani et al. 2017, 3.5).
    """
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(1e4) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
    return table[:, None]


class _Encoder(nn.Module):
    """A strided convolution of the raw waveform into half-overlapping frames, then ReLU."""

    def __init__(self, dim: int, window: int) -> None:
        super().__init__()
        self.enc_conv = nn.Conv1d(1, dim, window, stride=window // 2, bias=False)

    def forward(self, signals: Tensor) -> Tensor:
        """(B, T) waveform -> (B, dim, frames)."""
        return F.relu(self.enc_conv(signals[:, None]))


class _LocalRecurrence(nn.Module):
    """A bidirectional LSTM with learned initial states and a linear projection back to ``dim``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(dim, hidden, 1, batch_first=True, bidirectional=True)
        self.cell_init = nn.Parameter(torch.rand(1, 1, hidden))
        self.hidden_init = nn.Parameter(torch.rand(1, 1, hidden))
        self.proj = nn.Linear(2 * hidden, dim)

    def forward(self, segments: Tensor) -> Tensor:
        """(N, K, dim) sequences -> (N, K, dim)."""
        n = segments.shape[0]
        state = (self.hidden_init.repeat(2, n, 1), self.cell_init.repeat(2, n, 1))
        out, _ = self.rnn(segments, state)
        projected: Tensor = self.proj(out)
        return projected


class _AttentionLayer(nn.Module):
    """Multi-head self-attention, then ``LayerNorm(out + dropout(out))`` (as the release)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(S, N, dim) -> (S, N, dim)."""
        out, _ = self.attn(x, x, x, need_weights=False)
        normed: Tensor = self.norm(out + self.dropout(out))
        return normed


class _GlobalAttention(nn.Module):
    """LayerNorm, sinusoidal positional encoding, one attention layer across segments."""

    def __init__(self, dim: int, heads: int, dropout: float, max_segments: int) -> None:
        super().__init__()
        self.max_segments = max_segments
        self.attn_in_norm = nn.LayerNorm(dim)
        self.attn_layer = nn.ModuleList([_AttentionLayer(dim, heads, dropout)])

    def forward(self, x: Tensor) -> Tensor:
        """(S, N, dim) -> (S, N, dim)."""
        if x.shape[0] > self.max_segments:
            raise ValueError(
                f"the clip has {x.shape[0]} segments but the positional encoding covers "
                f"{self.max_segments} (max_segments); use shorter clips or raise max_segments"
            )
        positions = sinusoidal_positions(x.shape[0], x.shape[-1]).to(x)
        out: Tensor = self.attn_in_norm(x) + positions
        for layer in self.attn_layer:
            out = layer(out)
        return out


class _GALRBlock(nn.Module):
    """Local LSTM inside segments, then attention across segments, each with a residual."""

    def __init__(self, config: BDDMScheduleNetworkConfig) -> None:
        super().__init__()
        c = config
        self.low_dim = c.low_dim
        self.local_rnn = _LocalRecurrence(c.input_dim, c.hidden_dim)
        self.local_norm = nn.GroupNorm(1, c.input_dim)
        self.global_rnn = _GlobalAttention(
            c.input_dim, c.attention_heads, c.attention_dropout, c.max_segments
        )
        self.global_norm = nn.GroupNorm(1, c.input_dim)
        self.ld_map = nn.Linear(c.segment_size, c.low_dim)
        self.ld_inv_map = nn.Linear(c.low_dim, c.segment_size)

    def forward(self, segments: Tensor) -> Tensor:
        """(B, D, K, S) segments (K frames each) -> (B, D, K, S)."""
        b, d, k, s = segments.shape
        local = segments.transpose(1, 3).reshape(b * s, k, d)
        local = self.local_rnn(local).view(b, s, k, d).transpose(1, 3)
        segments = segments + self.local_norm(local)

        # attention across the S segments, on low_dim projections of each segment's K frames
        across = self.ld_map(segments.permute(3, 1, 0, 2))  # (S, D, B, low)
        across = across.permute(0, 3, 2, 1).reshape(s, self.low_dim * b, d)
        across = self.global_rnn(across).view(s, self.low_dim, b, d)
        across = self.ld_inv_map(across.permute(0, 3, 2, 1))  # (S, D, B, K)
        result: Tensor = segments + self.global_norm(across.permute(2, 1, 3, 0))
        return result


class _RatioNetwork(nn.Module):
    """Encoder, bottleneck, GALR blocks and the gated head: one ratio in (0, 1) per clip."""

    def __init__(self, config: BDDMScheduleNetworkConfig) -> None:
        super().__init__()
        c = config
        self.window = c.window_length
        self.segment = c.segment_size
        self.encoder = _Encoder(c.input_dim, c.window_length)
        self.bottleneck = nn.Conv1d(c.input_dim, c.input_dim, 1, bias=False)
        self.blocks = nn.ModuleList(_GALRBlock(c) for _ in range(c.blocks))
        self.block_gate = nn.Sequential(nn.PReLU(), nn.Conv2d(c.input_dim, 1, 1))

    @staticmethod
    def _pad(x: Tensor, size: int) -> Tensor:
        # right-pad so that the half-overlapping windows tile exactly, then half a window
        # either side (the release pads a whole window when it already tiles)
        hop = size // 2
        rest = size - (hop + x.shape[-1] % size) % size
        return F.pad(x, (hop, hop + rest))

    def forward(self, signals: Tensor) -> Tensor:
        """(B, T) -> (B,) ratios."""
        frames = self.bottleneck(self.encoder(self._pad(signals, self.window)))
        frames = self._pad(frames, self.segment)
        b, d, _ = frames.shape
        hop = self.segment // 2
        left = frames[:, :, :-hop].reshape(b, d, -1, self.segment)
        right = frames[:, :, hop:].reshape(b, d, -1, self.segment)
        # interleave: segment 2i starts at frame i * K, segment 2i + 1 half a segment later
        segments = torch.cat([left, right], dim=-1).reshape(b, d, -1, self.segment)
        segments = segments.transpose(2, 3)  # (B, D, K, S)
        for block in self.blocks:
            segments = block(segments)
        logits = self.block_gate(segments)  # (B, 1, K, S)
        return torch.sigmoid(logits.mean(dim=(1, 2, 3)))


class BDDMScheduleNetwork(ModelMixin):
    """The schedule network $\\sigma_\\phi$ of BDDM: the next beta from a noisy clip.

    ``forward(x_n, beta_next, noise_scale)`` returns
    $\\hat\\beta_n = \\min\\{\\hat\\beta_{n+1}, 1 - \\hat\\alpha_n^2\\}\\,\\sigma_\\phi(x_n)$ for
    a clip ``x_n`` at noise scale $\\hat\\alpha_n$ given the beta $\\hat\\beta_{n+1}$ of the
    noisier step. With the default config (the release's) it has 383,050 parameters.

    References:
        Lam et al. 2022, BDDM, arXiv:2203.13508 (eq. 11, section 3.2); Lam et al. 2021, GALR,
        arXiv:2101.05014.

    Example:
        >>> net = BDDMScheduleNetwork(input_dim=16, hidden_dim=8, segment_size=8, low_dim=2,
        ...                           attention_heads=2)
        >>> x = torch.randn(2, 1, 1000)
        >>> out = net(x, beta_next=torch.tensor([0.3, 0.05]), noise_scale=0.5)
        >>> out.beta.shape, bool((out.beta < torch.tensor([0.3, 0.05])).all())
        (torch.Size([2]), True)
    """

    config_class = BDDMScheduleNetworkConfig
    config: BDDMScheduleNetworkConfig
    default_subfolder = "schedule_net"
    #: the library name written into ``model_index.json`` (no diffusers class exists)
    hub_library = "bddm"

    def __init__(
        self, config: BDDMScheduleNetworkConfig | dict[str, Any] | None = None, **fields: Any
    ) -> None:
        super().__init__(config, **fields)
        self.ratio_nn = _RatioNetwork(self.config)

    def forward(
        self,
        sample: Tensor,
        beta_next: Tensor | float,
        noise_scale: Tensor | float,
    ) -> ScheduleNetworkOutput:
        """Propose the beta of the step at ``sample``'s noise level.

        Args:
            sample: (B, 1, L) or (B, L) noisy waveforms $x_n$.
            beta_next: $\\hat\\beta_{n+1}$, a float or (B,) tensor.
            noise_scale: $\\hat\\alpha_n$ of ``sample``, a float or (B,) tensor.

        Returns:
            A :class:`ScheduleNetworkOutput` with (B,) ``beta`` and ``ratio``.

        Raises:
            ValueError: a sample that is not (B, 1, L) or (B, L).
        """
        if sample.ndim == 3 and sample.shape[1] == 1:
            sample = sample[:, 0]
        if sample.ndim != 2:
            raise ValueError(f"sample must be (B, 1, L) or (B, L); got {tuple(sample.shape)}")
        dtype, device = sample.dtype, sample.device
        batch = sample.shape[0]
        beta_bound = torch.as_tensor(beta_next, dtype=dtype, device=device).reshape(-1)
        scale = torch.as_tensor(noise_scale, dtype=dtype, device=device).reshape(-1)
        bound = torch.minimum(beta_bound.expand(batch), 1.0 - scale.expand(batch) ** 2)
        ratio = self.ratio_nn(sample)
        return ScheduleNetworkOutput(beta=bound * ratio, ratio=ratio)
