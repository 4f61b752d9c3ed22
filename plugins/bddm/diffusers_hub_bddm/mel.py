"""The Tacotron 2-style log-mel front end that BDDM's vocoders are conditioned on.

A waveform at 22050 Hz is reflect-padded by ``n_fft // 2`` on both sides and cut into frames of
``n_fft`` = 1024 samples every ``hop_length`` = 256 samples; each frame is multiplied by a periodic
Hann window of ``win_length`` samples (zero-padded, centred, to ``n_fft``) and Fourier transformed.
The magnitude (not the power) of the one-sided spectrum is projected on 80 triangular mel filters
(Slaney's mel scale and area normalisation, librosa's defaults) between 0 and 8000 Hz, and the
natural log of the result, clamped from below at 1e-5, is the spectrogram. A clip of L samples has
``L // hop_length + 1`` frames.

Notation (Slaney's mel scale): below 1000 Hz, ``mel = f / (200 / 3)``; above it,
``mel = 15 + ln(f / 1000) / (ln(6.4) / 27)``. Filter m is a triangle over the FFT bin frequencies
with corners at the mel points ``m``, ``m + 1``, ``m + 2`` (``n_mels + 2`` points evenly spaced
on the mel scale from ``f_min`` to ``f_max``) and height ``2 / (f_{m+2} - f_m)`` (unit area in Hz).

References:
    Shen et al. 2018, Tacotron 2, arXiv:1712.05884 (80-band log-mel, 50 ms / 12.5 ms frames,
    125 Hz - 7.6 kHz; NVIDIA's implementation uses the settings here).
    Slaney 1998, Auditory Toolbox, Technical Report #1998-010, Interval Research (mel scale and
    filter normalisation).
    Lam et al. 2022, BDDM, arXiv:2203.13508 (LJSpeech configuration of the vocoders).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import Tensor

from diffusers_hub.config import ComponentConfig, ConfigMixin, PretrainedMixin

__all__ = [
    "MelSpectrogram",
    "MelSpectrogramConfig",
    "analysis_window",
    "hz_to_mel",
    "mel_filterbank",
    "mel_to_hz",
]

# Slaney's mel scale is linear below _BREAK_HZ with 200 / 3 Hz per mel (computed as * 3 / 200 and
# * 200 / 3 so that 1000 Hz <-> 15 mel is exact in floating point) and logarithmic above it, with
# _LOG_STEP in ln(Hz) per mel (6.4 = 6400 Hz / 1000 Hz spread over 27 mels).
_BREAK_HZ = 1000.0
_BREAK_MEL = 15.0
_LOG_STEP = math.log(6.4) / 27.0

FloatArray = npt.NDArray[np.float64]


def hz_to_mel(frequency: float | npt.ArrayLike) -> Any:
    """Slaney's mel value of a frequency (librosa's ``hz_to_mel(htk=False)``).

    Args:
        frequency: a frequency in Hz, or an array of them (any shape).

    Returns:
        A float for a scalar input, otherwise a float64 array of the input's shape.

    Example:
        >>> hz_to_mel(1000.0)
        15.0
    """
    f = np.asarray(frequency, dtype=np.float64)
    linear = f * 3.0 / 200.0
    safe = np.maximum(f, _BREAK_HZ)  # keeps log() away from 0 in the branch that is not taken
    logarithmic = _BREAK_MEL + np.log(safe / _BREAK_HZ) / _LOG_STEP
    mel = np.where(f >= _BREAK_HZ, logarithmic, linear)
    return float(mel) if mel.ndim == 0 else mel


def mel_to_hz(mel: float | npt.ArrayLike) -> Any:
    """The frequency of a Slaney mel value: the inverse of :func:`hz_to_mel`.

    Args:
        mel: a mel value, or an array of them (any shape).

    Returns:
        A float (Hz) for a scalar input, otherwise a float64 array of the input's shape.

    Example:
        >>> round(mel_to_hz(15.0 + 27.0), 6)
        6400.0
    """
    m = np.asarray(mel, dtype=np.float64)
    linear = m * 200.0 / 3.0
    logarithmic = _BREAK_HZ * np.exp(_LOG_STEP * (np.maximum(m, _BREAK_MEL) - _BREAK_MEL))
    f = np.where(m >= _BREAK_MEL, logarithmic, linear)
    return float(f) if f.ndim == 0 else f


def mel_filterbank(
    sampling_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
) -> Tensor:
    """Slaney-normalised triangular mel filters over the bins of a one-sided spectrum.

    Built in float64 from the definition: ``n_mels + 2`` points evenly spaced on the Slaney mel
    scale from ``f_min`` to ``f_max`` give the corners ``f_m <= f_{m+1} <= f_{m+2}`` (in Hz) of
    filter m, which rises linearly from 0 at ``f_m`` to its peak at ``f_{m+1}`` and falls back to 0
    at ``f_{m+2}``, evaluated at the bin frequencies ``linspace(0, sampling_rate / 2,
    n_fft // 2 + 1)``; each filter is scaled by ``2 / (f_{m+2} - f_m)`` so that its continuous
    area is 1 (librosa's ``norm="slaney"``). A filter narrower than the bin spacing can miss every
    bin and be all zero.

    Args:
        sampling_rate: samples per second of the analysed audio.
        n_fft: FFT size; the spectrum has ``n_fft // 2 + 1`` bins.
        n_mels: number of filters.
        f_min: lower edge of the first filter in Hz.
        f_max: upper edge of the last filter in Hz (``sampling_rate / 2`` when None).

    Returns:
        (n_mels, n_fft // 2 + 1) float32 tensor of non-negative weights.

    Raises:
        ValueError: a size is not positive or ``0 <= f_min < f_max <= sampling_rate / 2`` fails.

    References:
        Slaney 1998, Auditory Toolbox (Interval Research TR 1998-010); librosa.filters.mel.

    Example:
        >>> mel_filterbank(22050, 1024, 80, 0.0, 8000.0).shape
        torch.Size([80, 513])
    """
    nyquist = sampling_rate / 2
    f_max = nyquist if f_max is None else float(f_max)
    if sampling_rate <= 0 or n_fft <= 0 or n_mels <= 0:
        raise ValueError(
            f"sampling_rate, n_fft and n_mels must be positive; got {sampling_rate}, {n_fft}, "
            f"{n_mels}"
        )
    if not 0.0 <= f_min < f_max <= nyquist:
        raise ValueError(
            f"need 0 <= f_min < f_max <= sampling_rate / 2 = {nyquist}; got f_min={f_min}, "
            f"f_max={f_max}"
        )
    bins: FloatArray = np.linspace(0.0, nyquist, n_fft // 2 + 1)
    mels = np.linspace(hz_to_mel(float(f_min)), hz_to_mel(f_max), n_mels + 2)
    corners: FloatArray = np.asarray(mel_to_hz(mels), dtype=np.float64)
    lower, centre, upper = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    triangles = np.clip(np.minimum(rising, falling), 0.0, None)
    weights = triangles * (2.0 / (upper - lower))
    return torch.from_numpy(weights.astype(np.float32))


def analysis_window(
    win_length: int,
    n_fft: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The STFT's frame window: a periodic Hann window of ``win_length`` centred in ``n_fft``.

    ``w[n] = 0.5 - 0.5 cos(2 pi n / win_length)`` for ``n < win_length`` (the "periodic" or DFT-even
    Hann window, ``scipy.signal.get_window("hann", win_length)``), with
    ``(n_fft - win_length) // 2`` zeros before it and the rest after, as ``torch.stft`` pads a
    shorter window.

    Args:
        win_length: length of the Hann window (at most ``n_fft``).
        n_fft: length of the returned window (the frame length).
        dtype: floating dtype of the result.
        device: device of the result.

    Returns:
        (n_fft,) tensor.

    Example:
        >>> analysis_window(4, 8).tolist()
        [0.0, 0.0, 0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    if not 0 < win_length <= n_fft:
        raise ValueError(
            f"need 0 < win_length <= n_fft; got win_length={win_length}, n_fft={n_fft}"
        )
    hann = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    left = (n_fft - win_length) // 2
    window = torch.nn.functional.pad(hann, (left, n_fft - win_length - left))
    return window.to(device=device, dtype=dtype)


class MelSpectrogramConfig(ComponentConfig):
    """The settings of :class:`MelSpectrogram` (``feature_extractor_config.json``).

    The defaults are BDDM's LJSpeech front end (Tacotron 2's). Tacotron 2 / BDDM ``conf.yml``
    spellings (``filter_length``, ``n_mel_channels``, ``mel_fmin``, ``mel_fmax``) are read too.

    Attributes:
        sampling_rate: samples per second of the audio.
        n_fft: FFT size and frame length (``filter_length`` in Tacotron 2).
        hop_length: samples between the starts of consecutive frames.
        win_length: length of the Hann window, at most ``n_fft``.
        n_mels: mel bands.
        f_min: lower edge of the first mel filter in Hz.
        f_max: upper edge of the last mel filter in Hz, at most ``sampling_rate / 2``.
        clamp_min: floor of the mel magnitudes before the log (log(1e-5) = -11.51 for silence).
    """

    legacy_keys: ClassVar[dict[str, str]] = {
        "filter_length": "n_fft",
        "n_mel_channels": "n_mels",
        "mel_fmin": "f_min",
        "mel_fmax": "f_max",
        "sample_rate": "sampling_rate",
    }

    sampling_rate: int = Field(default=22050, gt=0)
    n_fft: int = Field(default=1024, gt=0)
    hop_length: int = Field(default=256, gt=0)
    win_length: int = Field(default=1024, gt=0, validate_default=True)
    n_mels: int = Field(default=80, gt=0)
    f_min: float = Field(default=0.0, ge=0.0)
    f_max: float = Field(default=8000.0, gt=0.0, validate_default=True)
    clamp_min: float = Field(default=1e-5, gt=0.0)

    # Each cross-field rule is checked on both of its fields: on the later one when the config is
    # built (the earlier one is in ``info.data`` then; ``validate_default`` covers a default later
    # field) and on either when a field is assigned.

    @field_validator("sampling_rate", "n_fft", "win_length", "f_min", "f_max")
    @classmethod
    def _in_order(cls, value: float, info: ValidationInfo) -> float:
        for lower, upper, scale, strict in _ORDER_RULES:
            if info.field_name not in (lower, upper):
                continue
            other = info.data.get(upper if info.field_name == lower else lower)
            if other is None:
                continue
            low, high = (value, other) if info.field_name == lower else (other, value)
            if low * scale > high or (strict and low * scale == high):
                factor = f"{scale} * " if scale != 1 else ""
                relation = "below" if strict else "at most"
                raise ValueError(
                    f"{factor}{lower} must be {relation} {upper}; got {lower} = {low:g} and "
                    f"{upper} = {high:g}"
                )
        return value


#: The cross-field rules of :class:`MelSpectrogramConfig`, ``(lower, upper, scale, strict)``:
#: ``scale * lower <= upper`` (``<`` when strict). The window fits the frame, the mel band is not
#: empty, and it ends at or below the Nyquist frequency.
_ORDER_RULES = (
    ("win_length", "n_fft", 1, False),
    ("f_min", "f_max", 1, True),
    ("f_max", "sampling_rate", 2, False),
)


class MelSpectrogram(ConfigMixin, PretrainedMixin):
    """Waveforms to the log-mel spectrograms that BDDM's DiffWave vocoders take.

    A processor: ``__call__`` computes, ``from_pretrained`` / ``save_pretrained`` read and write
    ``feature_extractor_config.json`` (a pipeline folder keeps it in ``mel/``; unknown keys are
    ignored with one warning that names them). Build it from a
    :class:`MelSpectrogramConfig`, a mapping, or the config's fields as keywords. The mel filters
    and the window are built once per device and dtype. The computation is differentiable.

    References:
        Shen et al. 2018, Tacotron 2, arXiv:1712.05884; Lam et al. 2022, BDDM, arXiv:2203.13508.

    Example:
        >>> mel = MelSpectrogram()
        >>> audio = 0.5 * torch.sin(2 * torch.pi * 440 * torch.arange(8192) / 22050)
        >>> spec = mel(audio)  # (B, n_mels, L // hop_length + 1)
        >>> tuple(spec.shape), spec.dtype
        ((1, 80, 33), torch.float32)
        >>> round(float(mel(torch.zeros(2, 1024)).max()), 4)  # silence: log(clamp_min)
        -11.5129
    """

    config_class = MelSpectrogramConfig
    config: MelSpectrogramConfig
    config_name: ClassVar[str] = "feature_extractor_config.json"
    default_subfolder: ClassVar[str | None] = "mel"
    #: The library named for this class in model_index.json: this plugin's package.
    hub_library: ClassVar[str] = "bddm"

    def __init__(
        self, config: MelSpectrogramConfig | Mapping[str, Any] | None = None, **fields: Any
    ) -> None:
        super().__init__(config, **fields)
        self._cache: dict[tuple[Any, ...], tuple[Tensor, Tensor]] = {}

    # -- loading and saving -------------------------------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write ``feature_extractor_config.json`` (``_class_name`` and the fields) atomically."""
        self.save_config(directory)

    # -- properties ---------------------------------------------------------------------------------

    @property
    def sampling_rate(self) -> int:
        """Samples per second of the audio this front end expects."""
        return self.config.sampling_rate

    @property
    def hop_length(self) -> int:
        """Audio samples per spectrogram frame."""
        return self.config.hop_length

    @property
    def n_mels(self) -> int:
        """Mel bands of the output."""
        return self.config.n_mels

    def num_frames(self, num_samples: int) -> int:
        """Frames of the spectrogram of a clip of ``num_samples`` samples (``L // hop + 1``)."""
        return num_samples // self.config.hop_length + 1

    # -- computation --------------------------------------------------------------------------------

    def _tables(self, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """The (n_mels, n_fft // 2 + 1) filterbank and the (n_fft,) window on device, dtype."""
        c = self.config
        key = (device, dtype, *c.to_dict().values())
        tables = self._cache.get(key)
        if tables is None:
            fb = mel_filterbank(c.sampling_rate, c.n_fft, c.n_mels, c.f_min, c.f_max)
            window = analysis_window(c.win_length, c.n_fft, dtype=dtype, device=device)
            tables = (fb.to(device=device, dtype=dtype), window)
            self._cache[key] = tables
        return tables

    def _as_batch(self, audio: Tensor | npt.ArrayLike) -> Tensor:
        x = audio if isinstance(audio, Tensor) else torch.as_tensor(np.asarray(audio))
        if not (x.is_floating_point()):
            raise TypeError(
                f"audio must be floating point in [-1, 1]; got {x.dtype} (divide integer PCM by "
                "its full scale, e.g. 32768 for int16)"
            )
        if x.ndim == 3 and x.shape[1] == 1:
            x = x[:, 0]
        elif x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise ValueError(f"audio must be (L,), (B, L) or (B, 1, L); got shape {tuple(x.shape)}")
        half = self.config.n_fft // 2
        if x.shape[-1] <= half:
            raise ValueError(
                f"audio of {x.shape[-1]} samples is too short: reflect padding by n_fft // 2 = "
                f"{half} needs more than {half} samples"
            )
        return x if x.dtype == torch.float64 else x.float()

    def magnitude_spectrogram(self, audio: Tensor | npt.ArrayLike) -> Tensor:
        """The STFT magnitude, before the mel projection.

        Args:
            audio: (L,), (B, L) or (B, 1, L) float waveform (tensor or array).

        Returns:
            (B, n_fft // 2 + 1, L // hop_length + 1) magnitudes, float32 (float64 for float64
            input), on the audio's device.
        """
        x = self._as_batch(audio)
        c = self.config
        _, window = self._tables(x.device, x.dtype)
        spec = torch.stft(
            x,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            win_length=c.n_fft,  # ``window`` is already the centred, zero-padded Hann window
            window=window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        return spec.abs()

    def __call__(self, audio: Tensor | npt.ArrayLike) -> Tensor:
        """Compute log-mel spectrograms.

        Args:
            audio: (L,), (B, L) or (B, 1, L) waveform in [-1, 1] at ``sampling_rate``, a float
                tensor (any device) or array; longer than ``n_fft // 2`` samples.

        Returns:
            (B, n_mels, L // hop_length + 1) float32 ``log(max(mel, clamp_min))`` on the audio's
            device.

        Raises:
            TypeError: the audio is not floating point.
            ValueError: the shape is not one of the above, or the clip is too short.
        """
        magnitude = self.magnitude_spectrogram(audio)
        fb, _ = self._tables(magnitude.device, magnitude.dtype)
        mel = torch.matmul(fb, magnitude)
        return torch.log(torch.clamp(mel, min=self.config.clamp_min)).float()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"MelSpectrogram(sampling_rate={c.sampling_rate}, n_fft={c.n_fft}, "
            f"hop_length={c.hop_length}, win_length={c.win_length}, n_mels={c.n_mels}, "
            f"f_min={c.f_min:g}, f_max={c.f_max:g})"
        )
