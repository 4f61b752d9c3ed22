"""DiffWave: the mel-conditioned score network of BDDM's vocoders (Kong 2021, Lam 2022).

A WaveNet-like stack of residual layers with dilated convolutions predicts the noise
$\\epsilon_\\theta(x_t, t, \\text{mel})$ in a noisy waveform. Every layer adds a projection of
the shared diffusion-step embedding before its dilated convolution and the mel spectrogram,
upsampled to the audio rate by the layer's own transposed convolutions, after it; a gated
activation feeds a residual and a skip branch. The original trains with weight normalisation;
here the weights are plain (the converter in :mod:`diffusers_hub_bddm.convert` folds the
normalisation in), and the network computes the same function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.nn import functional as F

from diffusers_hub.config import LIMITS, Channels, ComponentConfig, Count, Features
from diffusers_hub.modeling import ModelMixin, SampleOutput
from diffusers_hub.nn import TimestepEmbedding, timestep_embedding

__all__ = [
    "DiffWave",
    "DiffWaveConfig",
    "DiffWaveOutput",
    "DiffWaveResidualLayer",
    "deepen",
    "upsample_frames",
    "upsampled_length",
    "widen",
]


class DiffWaveConfig(ComponentConfig):
    """The ``config.json`` of a :class:`DiffWave` (field names as in BDDM's ``conf.yml``).

    The defaults are those of BDDM's released LJSpeech and VCTK vocoders.

    Attributes:
        in_channels: channels of the waveform (1).
        out_channels: channels of the predicted noise (1).
        res_channels: width of the residual stream.
        skip_channels: width of the skip branch and of the output head.
        num_res_layers: residual layers.
        dilation_cycle: layer n dilates by ``2 ** (n % dilation_cycle)``.
        diffusion_step_embed_dim_in: width of the sinusoidal step embedding (even, >= 4).
        diffusion_step_embed_dim_mid: hidden width of the step-embedding MLP.
        diffusion_step_embed_dim_out: output width of the step-embedding MLP.
        n_mels: mel bands of the conditioning spectrogram.
        upsample_scales: time strides of the mel upsampler's transposed convolutions; their
            product is the hop length (audio samples per mel frame).
        mel_offset: the spectrogram enters the upsamplers as ``(mel - mel_offset) * mel_scale``.
            The release uses the raw log-mel (0 and 1); an affine map of the input is the same
            function class (it folds into the first upsampler's weights and bias), but centring
            the log-mel (about -11.5 in silence, +2 at peaks) lets a small network use its
            conditioning from the first steps of training.
        mel_scale: see ``mel_offset`` (positive).
    """

    in_channels: Channels = 1
    out_channels: Channels = 1
    res_channels: Channels = 128
    skip_channels: Channels = 128
    num_res_layers: Count = 30
    dilation_cycle: int = Field(default=10, ge=1, le=20)
    diffusion_step_embed_dim_in: int = Field(default=128, ge=4, le=LIMITS["features"])
    diffusion_step_embed_dim_mid: Features = 512
    diffusion_step_embed_dim_out: Features = 512
    n_mels: Channels = 80
    upsample_scales: list[Annotated[int, Field(le=64)]] = Field(
        default_factory=lambda: [16, 16], min_length=1, max_length=8
    )
    mel_offset: float = 0.0
    mel_scale: float = Field(default=1.0, gt=0.0)

    @model_validator(mode="after")
    def _check_structure(self) -> DiffWaveConfig:
        if self.diffusion_step_embed_dim_in % 2:
            raise ValueError(
                "diffusion_step_embed_dim_in must be even (sine and cosine halves); got "
                f"{self.diffusion_step_embed_dim_in}"
            )
        bad = [s for s in self.upsample_scales if s < 1]
        if bad:
            raise ValueError(
                f"upsample_scales must be positive integers (strides); got {self.upsample_scales}"
            )
        return self


@dataclass
class DiffWaveOutput(SampleOutput):
    """The output of :class:`DiffWave`; unpacks and indexes like ``(sample,)``.

    Attributes:
        sample: (B, out_channels, L) predicted noise.
    """


def upsampled_length(frames: int, scales: list[int]) -> int:
    """Samples that :class:`DiffWave`'s mel upsampler makes of ``frames`` mel frames.

    Each stage is a transposed convolution of kernel ``2 s``, stride ``s`` and padding ``s // 2``
    along time, so it maps n frames to ``(n - 1) s - 2 (s // 2) + 2 s`` (``n s`` for even s).
    """
    for s in scales:
        frames = (frames - 1) * s - 2 * (s // 2) + 2 * s
    return frames


def upsample_frames(cond: Tensor, layer: nn.ConvTranspose2d) -> Tensor:
    """``layer(cond)`` for one of DiffWave's upsamplers, computed as two matmuls and an overlap-add.

    A 1-to-1 channel ``ConvTranspose2d`` of kernel (3, 2s), stride (1, s) and padding (1, p) puts
    each input frame, filtered across 3 neighbouring bands, into 2 s output samples that overlap
    the next frame's by s. So output block n (s samples) is frame n's 3 neighbouring bands times
    the kernel's first s taps plus frame n - 1's times its last s taps: two (3, s) matmuls. The
    bands are stacked in reverse order because a transposed convolution scatters where a
    convolution gathers, and p samples are cut from both ends. Same numbers and gradients as the
    module, about twice as fast for a whole DiffWave step on CPU, where PyTorch's single-channel
    transposed convolution is slow.

    Args:
        cond: (B, 1, M, N) spectrogram (or the previous upsampler's output).
        layer: the upsampler whose weights and geometry are used.

    Returns:
        (B, 1, M, (N - 1) s - 2 p + 2 s), as ``layer(cond)``.
    """
    (taps_f, taps_t), (stride_f, s), (pad_f, p) = layer.kernel_size, layer.stride, layer.padding
    if (taps_f, taps_t, stride_f, pad_f) != (3, 2 * s, 1, 1) or layer.in_channels != 1:
        return layer(cond)  # another geometry: let the module compute it
    batch, _, bands, frames = cond.shape
    # (B, M, N, 3): bands f - 1, f, f + 1 of each frame (zero beyond the edges).
    padded = F.pad(cond[:, 0], (0, 0, 1, 1))
    neighbours = torch.stack([padded[:, 2:], padded[:, 1:-1], padded[:, :-2]], dim=-1)
    # Frame n's block of s output samples: its own taps 0..s-1 plus frame n - 1's taps s..2s-1.
    weight = layer.weight[0, 0]
    own = F.pad(neighbours, (0, 0, 0, 1)) @ weight[:, :s]  # frames 0..N-1, then an empty one
    previous = F.pad(neighbours, (0, 0, 1, 0)) @ weight[:, s:]  # an empty frame, then 0..N-1
    blocks = own + previous
    out = blocks.reshape(batch, 1, bands, (frames + 1) * s)[..., p : (frames + 1) * s - p]
    return out if layer.bias is None else out + layer.bias


class DiffWaveResidualLayer(nn.Module):
    """One residual layer: step projection, dilated convolution, mel conditioning, gated unit.

    Args:
        res_channels: width C of the residual stream.
        skip_channels: width of the skip output.
        dilation: dilation of the kernel-3 convolution.
        embed_dim: width of the shared step embedding.
        n_mels: mel bands M.
        upsample_scales: strides of the layer's own mel upsampler.
    """

    def __init__(
        self,
        res_channels: int,
        skip_channels: int,
        dilation: int,
        embed_dim: int,
        n_mels: int,
        upsample_scales: list[int],
    ) -> None:
        super().__init__()
        self.res_channels = res_channels
        self.step_projection = nn.Linear(embed_dim, res_channels)
        self.dilated_conv = nn.Conv1d(
            res_channels, 2 * res_channels, 3, dilation=dilation, padding=dilation
        )
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(1, 1, (3, 2 * s), stride=(1, s), padding=(1, s // 2))
            for s in upsample_scales
        )
        self.mel_conv = nn.Conv1d(n_mels, 2 * res_channels, 1)
        self.res_conv = nn.Conv1d(res_channels, res_channels, 1)
        self.skip_conv = nn.Conv1d(res_channels, skip_channels, 1)

    def forward(self, x: Tensor, mel: Tensor, step_embedding: Tensor) -> tuple[Tensor, Tensor]:
        """Advance the residual stream by one layer.

        Args:
            x: (B, C, L) residual stream.
            mel: (B, 1, M, frames) mel spectrogram with a singleton channel axis.
            step_embedding: (B, embed_dim) the shared step embedding.

        Returns:
            ((B, C, L) next residual stream, (B, skip_channels, L) skip output).
        """
        length = x.shape[-1]
        h = x + self.step_projection(step_embedding)[:, :, None]
        h = self.dilated_conv(h)
        cond = mel
        for upsample in self.upsample:
            cond = F.leaky_relu(upsample_frames(cond, upsample), 0.4)
        cond = cond.squeeze(1)[:, :, :length]
        h = h + self.mel_conv(cond)
        c = self.res_channels
        out = torch.tanh(h[:, :c]) * torch.sigmoid(h[:, c:])
        residual = (x + self.res_conv(out)) * math.sqrt(0.5)
        return residual, self.skip_conv(out)


class DiffWave(ModelMixin):
    """DiffWave's score network: the noise in a waveform given its mel spectrogram and step.

    ``forward(x_t, t, mel)`` predicts $\\epsilon_\\theta$. The step may be fractional: BDDM's
    short schedules query the network at continuous steps between the T = 200 training steps.
    With the default config (BDDM's released vocoders) the network has 6,890,941 parameters,
    the original's 6,914,297 less the 23,356 weight-norm gains folded into the weights.

    References:
        Kong, Ping, Huang, Zhao, Catanzaro. DiffWave: A Versatile Diffusion Model for Audio
        Synthesis. ICLR 2021, arXiv:2009.09761 (section 3, figure 2).
        Lam, Wang, Su, Yu. BDDM: Bilateral Denoising Diffusion Models for Fast and High-Quality
        Speech Synthesis. ICLR 2022, arXiv:2203.13508.

    Example:
        >>> model = DiffWave(
        ...     res_channels=16, skip_channels=16, num_res_layers=4, dilation_cycle=2,
        ...     diffusion_step_embed_dim_mid=32, diffusion_step_embed_dim_out=32,
        ...     n_mels=8, upsample_scales=[4, 4],
        ... )
        >>> model.hop_length
        16
        >>> mel = torch.randn(2, 8, 5)  # 5 frames: up to 5 * 16 = 80 samples
        >>> model(torch.randn(2, 1, 70), 12.5, mel).sample.shape
        torch.Size([2, 1, 70])
    """

    config_class = DiffWaveConfig
    config: DiffWaveConfig
    default_subfolder = "diffwave"
    #: the library name written into ``model_index.json`` (no diffusers class exists)
    hub_library = "bddm"

    def __init__(self, config: DiffWaveConfig | dict[str, Any] | None = None, **fields: Any):
        super().__init__(config, **fields)
        c = self.config
        self.init_conv = nn.Conv1d(c.in_channels, c.res_channels, 1)
        self.step_embedding = TimestepEmbedding(
            c.diffusion_step_embed_dim_in,
            c.diffusion_step_embed_dim_mid,
            act_fn="silu",
            out_dim=c.diffusion_step_embed_dim_out,
        )
        self.residual_layers = nn.ModuleList(
            DiffWaveResidualLayer(
                c.res_channels,
                c.skip_channels,
                2 ** (n % c.dilation_cycle),
                c.diffusion_step_embed_dim_out,
                c.n_mels,
                c.upsample_scales,
            )
            for n in range(c.num_res_layers)
        )
        self.final_conv = nn.Conv1d(c.skip_channels, c.skip_channels, 1)
        self.out_conv = nn.Conv1d(c.skip_channels, c.out_channels, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming-normal convolutions and a zero output head, as in the original."""
        for module in self.modules():
            if isinstance(module, nn.Conv1d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(module.weight)
        nn.init.zeros_(self.out_conv.weight)
        assert self.out_conv.bias is not None
        nn.init.zeros_(self.out_conv.bias)

    # -- properties -------------------------------------------------------------------------------

    @property
    def hop_length(self) -> int:
        """Audio samples per mel frame: the product of ``upsample_scales``."""
        return math.prod(self.config.upsample_scales)

    def upsampled_length(self, frames: int) -> int:
        """Samples the mel upsampler makes of ``frames`` frames (the longest audio it covers)."""
        return upsampled_length(frames, self.config.upsample_scales)

    # -- forward ----------------------------------------------------------------------------------

    def _timesteps(self, timestep: Tensor | float | int, sample: Tensor) -> Tensor:
        """The step(s) as a float (B,) tensor on the sample's device."""
        batch = sample.shape[0]
        if isinstance(timestep, Tensor):
            t = timestep.to(sample.device)
        elif isinstance(timestep, bool):
            raise TypeError("timestep must be a number or a tensor, not bool")
        else:
            t = torch.tensor(float(timestep), device=sample.device)
        if t.ndim == 2 and t.shape[1] == 1:  # the original's (B, 1) layout
            t = t[:, 0]
        if t.ndim == 0:
            t = t[None]
        if t.ndim != 1 or t.shape[0] not in (1, batch):
            raise ValueError(
                f"timestep must be a scalar or have shape ({batch},), got {tuple(t.shape)}"
            )
        return t.expand(batch)

    def _check_inputs(self, sample: Tensor, mel: Tensor) -> None:
        c = self.config
        if sample.ndim != 3 or sample.shape[1] != c.in_channels:
            raise ValueError(
                f"sample must be (B, {c.in_channels}, L) audio; got shape {tuple(sample.shape)}"
            )
        if mel.ndim != 3 or mel.shape[1] != c.n_mels:
            raise ValueError(
                f"mel_spectrogram must be (B, {c.n_mels}, frames); got shape {tuple(mel.shape)}"
            )
        if mel.shape[0] != sample.shape[0]:
            raise ValueError(
                f"batch sizes differ: sample has {sample.shape[0]} items, mel_spectrogram "
                f"{mel.shape[0]}"
            )
        frames, length = mel.shape[-1], sample.shape[-1]
        covered = self.upsampled_length(frames)
        if covered < length:
            raise ValueError(
                f"mel_spectrogram too short: its {frames} frames upsample to {covered} samples "
                f"but the sample has {length}; give at least {math.ceil(length / self.hop_length)} "
                f"frames (hop length {self.hop_length})"
            )

    def forward(
        self,
        sample: Tensor,
        timestep: Tensor | float | int,
        mel_spectrogram: Tensor,
        return_dict: bool = True,
    ) -> DiffWaveOutput | tuple[Tensor]:
        """Predict the noise in a noisy waveform.

        Args:
            sample: (B, in_channels, L) noisy audio x_t.
            timestep: diffusion step t: int, float (continuous steps allowed), 0-d or (B,)
                tensor; broadcast over the batch.
            mel_spectrogram: (B, n_mels, frames) conditioning; upsampled to
                ``frames * hop_length`` samples (at least L) and cropped to L.
            return_dict: return :class:`DiffWaveOutput` (else a 1-tuple).

        Returns:
            (B, out_channels, L) predicted noise in ``DiffWaveOutput.sample``.

        Raises:
            ValueError: wrong channel counts, batch sizes that differ, a spectrogram too short
                for the audio, or a timestep of the wrong shape.
        """
        c = self.config
        self._check_inputs(sample, mel_spectrogram)
        t = self._timesteps(timestep, sample)
        dtype = self.init_conv.weight.dtype

        # Sinusoids exp(-k ln(1e4) / (half - 1)), [sin, cos] order, then two swish layers
        # (DiffWave, section 3 and appendix A).
        emb = timestep_embedding(t, c.diffusion_step_embed_dim_in, freq_shift=1).to(dtype)
        emb = F.silu(self.step_embedding(emb))

        x = F.relu(self.init_conv(sample))
        mel = mel_spectrogram[:, None]
        if c.mel_offset != 0.0 or c.mel_scale != 1.0:
            mel = (mel - c.mel_offset) * c.mel_scale
        skips: Tensor | None = None
        for layer in self.residual_layers:
            x, skip = layer(x, mel, emb)
            skips = skip if skips is None else skips + skip
        assert skips is not None  # the config has at least one layer
        h = skips * math.sqrt(1.0 / c.num_res_layers)
        out: Tensor = self.out_conv(F.relu(self.final_conv(h)))
        if not return_dict:
            return (out,)
        return DiffWaveOutput(sample=out)


def deepen(source: DiffWave, num_res_layers: int) -> DiffWave:
    """A deeper DiffWave that computes exactly what ``source`` computes, to train on from there.

    Every layer and head of ``source`` is copied; the new residual layers (appended after the
    existing ones, their dilations continuing the cycle) keep their random dilated, step and mel
    weights but start with zero residual and skip projections, so they add nothing until
    training moves them; the skip sum's scale $\\sqrt{1 / N}$ changes with N, and ``final_conv``'s
    weights are multiplied by $\\sqrt{N_{new} / N_{old}}$ to undo that (a ReLU follows, which is
    positively homogeneous). The zero projections still get gradients, since the gated units
    behind them are not zero: the new layers learn from the first step (as zero-initialised
    branches do in ResNets and ControlNet).

    Args:
        source: the trained network.
        num_res_layers: layers of the result (more than ``source`` has).

    Returns:
        A new :class:`DiffWave` whose config is ``source``'s with ``num_res_layers`` replaced, on
        ``source``'s device and dtype.

    Raises:
        ValueError: ``num_res_layers`` is not more than ``source``'s.

    References:
        Chen, Goodfellow, Shlens 2016, Net2Net (function-preserving growth), arXiv:1511.05641.

    Example:
        >>> small = DiffWave(res_channels=8, skip_channels=8, num_res_layers=2, dilation_cycle=2,
        ...                  diffusion_step_embed_dim_mid=16, diffusion_step_embed_dim_out=16,
        ...                  n_mels=4, upsample_scales=[2, 2])
        >>> deeper = deepen(small, 4)
        >>> x, mel = torch.randn(1, 1, 12), torch.randn(1, 4, 3)
        >>> torch.allclose(deeper(x, 7, mel).sample, small(x, 7, mel).sample, atol=1e-6)
        True
    """
    old = source.config.num_res_layers
    if num_res_layers <= old:
        raise ValueError(
            f"deepen: num_res_layers must be more than the source's {old}; got {num_res_layers}"
        )
    weight = source.init_conv.weight
    grown = DiffWave({**source.config.to_dict(), "num_res_layers": num_res_layers})
    grown.to(device=weight.device, dtype=weight.dtype)
    missing = grown.load_state_dict(source.state_dict(), strict=False).missing_keys
    assert all(key.startswith("residual_layers.") for key in missing), missing
    with torch.no_grad():
        grown.final_conv.weight.mul_(math.sqrt(num_res_layers / old))
        for layer in list(grown.residual_layers)[old:]:
            assert isinstance(layer, DiffWaveResidualLayer)
            for projection in (layer.res_conv, layer.skip_conv):
                nn.init.zeros_(projection.weight)
                assert projection.bias is not None
                nn.init.zeros_(projection.bias)
    return grown


def widen(source: DiffWave, res_channels: int, skip_channels: int | None = None) -> DiffWave:
    """A wider DiffWave (more residual and skip channels) that computes exactly what ``source``
    computes, to train on from there.

    Every weight of ``source`` is copied into the first channels of the wider network (a gated
    unit's tanh and sigmoid halves each keep their channels). The new channels keep their fresh
    random weights wherever they only feed other new channels; the weights that would carry them
    into the old computation start at zero: the old gated units' and old residual channels'
    weights from new residual channels, the old skip channels' weights from new gated units, and
    the head's weights from new skip and hidden channels. So nothing new changes the output until
    training moves those zeros, and they get gradients from the first step, since the new
    channels behind them are not zero.

    Args:
        source: the trained network.
        res_channels: residual channels of the result (at least ``source``'s).
        skip_channels: skip channels of the result (at least ``source``'s; default
            ``source``'s).

    Returns:
        A new :class:`DiffWave` whose config is ``source``'s with the widths replaced, on
        ``source``'s device and dtype.

    Raises:
        ValueError: a width is smaller than ``source``'s, or neither is larger.

    References:
        Chen, Goodfellow, Shlens 2016, Net2Net (function-preserving growth), arXiv:1511.05641.

    Example:
        >>> layers = {"num_res_layers": 2, "dilation_cycle": 2, "upsample_scales": [2, 2]}
        >>> small = DiffWave(res_channels=8, skip_channels=8, n_mels=4, **layers)
        >>> wider = widen(small, 12, 10)
        >>> wider.config.res_channels, wider.config.skip_channels
        (12, 10)
        >>> x, mel = torch.randn(1, 1, 12), torch.randn(1, 4, 3)
        >>> torch.allclose(wider(x, 7, mel).sample, small(x, 7, mel).sample, atol=1e-6)
        True
    """
    c, s = source.config.res_channels, source.config.skip_channels
    skip_channels = s if skip_channels is None else skip_channels
    if res_channels < c or skip_channels < s or (res_channels, skip_channels) == (c, s):
        raise ValueError(
            f"widen: the source has {c} residual and {s} skip channels; neither width may be "
            f"smaller and one must be larger (got {res_channels} and {skip_channels})"
        )
    weight = source.init_conv.weight
    fields = {"res_channels": res_channels, "skip_channels": skip_channels}
    grown = DiffWave({**source.config.to_dict(), **fields})
    grown.to(device=weight.device, dtype=weight.dtype)
    # rows of a gated unit's input (tanh half, then sigmoid half) that the old channels keep
    gate_rows = torch.cat([torch.arange(c), torch.arange(res_channels, res_channels + c)])
    with torch.no_grad():
        grown.step_embedding.load_state_dict(source.step_embedding.state_dict())
        # (layer of the grown network, layer of the source, the grown layer's rows it fills)
        pairs: list[tuple[Any, Any, Any]] = [
            (grown.init_conv, source.init_conv, slice(0, c)),
            (grown.final_conv, source.final_conv, slice(0, s)),
            (grown.out_conv, source.out_conv, slice(None)),
        ]
        for new, src in zip(grown.residual_layers, source.residual_layers, strict=True):
            assert isinstance(new, DiffWaveResidualLayer) and isinstance(src, DiffWaveResidualLayer)
            new.upsample.load_state_dict(src.upsample.state_dict())
            pairs += [
                (new.step_projection, src.step_projection, slice(0, c)),
                (new.dilated_conv, src.dilated_conv, gate_rows),
                (new.mel_conv, src.mel_conv, gate_rows),
                (new.res_conv, src.res_conv, slice(0, c)),
                (new.skip_conv, src.skip_conv, slice(0, s)),
            ]
        for new, src, rows in pairs:
            # the filled rows read nothing from the new input channels; other rows stay random
            new.weight[rows] = 0.0
            new.weight[(rows, *(slice(0, n) for n in src.weight.shape[1:]))] = src.weight
            new.bias[rows] = src.bias
    return grown
