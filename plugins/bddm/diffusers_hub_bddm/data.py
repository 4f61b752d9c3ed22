"""Procedural audio for training and measuring the demo vocoder: one synthetic note per clip.

:class:`ToneDataset` draws each item from its own random stream, seeded by ``(seed, index)``, so
item i is the same in every process, epoch and worker, and nothing is read from disk. A note is a
fundamental ``f0`` (log-uniform in 110-880 Hz, A2 to A5) with 1-3 harmonics of decreasing
amplitude, an optional slow vibrato of a few cents, and a smooth attack and exponential decay,
scaled to a peak amplitude in [0.3, 0.9].

:func:`pitch_accuracy` measures a vocoder on held-out notes: the fraction of generated clips whose
:func:`dominant_frequency` lies within a tolerance (50 cents) of the fundamental of the note whose
mel spectrogram conditioned it. The notes are built so that the fundamental is always the
strongest spectral peak of the clean audio (accuracy 1.0); a clip whose strongest peak is a
harmonic (an octave error) or anything else counts as a miss, on purpose: the metric measures
whether the vocoder reproduces the conditioning pitch, and it is not made to forgive it.

References:
    Kong et al. 2021, DiffWave, arXiv:2009.09761; Lam et al. 2022, BDDM, arXiv:2203.13508.
    Smith & Serra 1987, PARSHL (quadratic interpolation of spectral peaks), ICMC.
"""

from __future__ import annotations

import argparse
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor
from torch.utils.data import Dataset

from diffusers_hub_bddm.mel import MelSpectrogram

__all__ = [
    "F0_RANGE",
    "Note",
    "ToneDataset",
    "add_note_arguments",
    "demo_phrase",
    "notes_from_arguments",
    "dominant_frequency",
    "pitch_accuracy",
]

#: Range of the fundamental in Hz (A2 to A5), drawn log-uniformly.
F0_RANGE: tuple[float, float] = (110.0, 880.0)
#: Range of the peak absolute amplitude of a clip.
PEAK_RANGE: tuple[float, float] = (0.3, 0.9)
_MAX_HARMONICS = 3
#: Each harmonic's amplitude is the previous one's times a factor in this range (< 1).
_HARMONIC_DECAY = (0.15, 0.6)
_ATTACK_SECONDS = (0.005, 0.03)
_DECAY_SECONDS = (0.15, 1.0)  # time constant of the exponential decay
_ONSET_FRACTION = 0.1  # the note starts within the first tenth of the clip
_VIBRATO_PROBABILITY = 0.5
_VIBRATO_RATE_HZ = (4.0, 7.0)
_VIBRATO_DEPTH_CENTS = (3.0, 15.0)


@dataclass(frozen=True)
class Note:
    """The random parameters of one :class:`ToneDataset` item.

    Attributes:
        f0: fundamental frequency in Hz.
        amplitudes: relative amplitude of harmonics 1, 2, ... (first 1.0, strictly decreasing).
        phases: start phase of each harmonic in radians.
        peak: peak absolute amplitude of the clip.
        onset: sample at which the note starts (silence before).
        attack: attack length in samples (a raised-cosine rise from 0 to 1).
        decay: time constant of the exponential decay in samples.
        vibrato_rate: vibrato frequency in Hz (0: no vibrato).
        vibrato_depth: vibrato depth in cents (peak deviation of the fundamental).
        vibrato_phase: vibrato start phase in radians.
    """

    f0: float
    amplitudes: tuple[float, ...]
    phases: tuple[float, ...]
    peak: float
    onset: int
    attack: int
    decay: float
    vibrato_rate: float
    vibrato_depth: float
    vibrato_phase: float


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


class ToneDataset(Dataset[tuple[Tensor, Tensor]]):
    """Synthetic notes and their log-mel spectrograms, generated on the fly.

    Item i is a deterministic function of ``(seed, i)``: its parameters (:meth:`note`) come from a
    random stream seeded with both, so any subset, order or worker split gives the same clips, and
    two seeds give disjoint-looking data sets (use another seed for a held-out set). An item is
    ``(audio, mel)``: the (1, L) float32 waveform in [-1, 1] and its (n_mels, L // hop + 1)
    float32 log-mel spectrogram; ``dataset.f0(i)`` is its fundamental.

    Args:
        num_items: number of items.
        num_samples: samples per clip L (more than ``n_fft // 2`` of the mel front end).
        sampling_rate: samples per second; must equal the mel front end's.
        seed: non-negative seed of the whole data set.
        f0_range: (lowest, highest) fundamental in Hz, drawn log-uniformly (default
            :data:`F0_RANGE`, A2 to A5).
        mel: the front end that computes the spectrograms (default: :class:`MelSpectrogram`
            with BDDM's LJSpeech settings).

    References:
        Kong et al. 2021, DiffWave, arXiv:2009.09761; Lam et al. 2022, BDDM, arXiv:2203.13508.

    Example:
        >>> data = ToneDataset(100, 4096, seed=0)
        >>> audio, mel = data[3]
        >>> tuple(audio.shape), tuple(mel.shape)
        ((1, 4096), (80, 17))
        >>> 110.0 <= data.f0(3) <= 880.0
        True
        >>> pitch_accuracy(audio, [data.f0(3)], data.sampling_rate)
        1.0
    """

    def __init__(
        self,
        num_items: int,
        num_samples: int,
        *,
        sampling_rate: int = 22050,
        seed: int = 0,
        f0_range: tuple[float, float] = F0_RANGE,
        mel: MelSpectrogram | None = None,
    ) -> None:
        low, high = (float(f) for f in f0_range)
        if not 0 < low <= high:
            raise ValueError(
                f"f0_range must be (low, high) with 0 < low <= high Hz; got {f0_range}"
            )
        if num_items < 1:
            raise ValueError(f"num_items must be at least 1; got {num_items}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative; got {seed}")
        if sampling_rate <= 2 * high:
            raise ValueError(
                f"sampling_rate must exceed twice the highest fundamental ({2 * high:g} "
                f"Hz); got {sampling_rate}"
            )
        self.mel = MelSpectrogram() if mel is None else mel
        if self.mel.sampling_rate != sampling_rate:
            raise ValueError(
                f"sampling_rate {sampling_rate} differs from the mel front end's "
                f"{self.mel.sampling_rate}; pass sampling_rate={self.mel.sampling_rate} or a "
                "matching MelSpectrogram"
            )
        min_samples = self.mel.config.n_fft // 2 + 1
        if num_samples < min_samples:
            raise ValueError(
                f"num_samples must be at least {min_samples} (n_fft // 2 + 1 of the mel front "
                f"end); got {num_samples}"
            )
        self.num_items = int(num_items)
        self.num_samples = int(num_samples)
        self.sampling_rate = int(sampling_rate)
        self.seed = int(seed)
        self.f0_range = (low, high)

    def __len__(self) -> int:
        return self.num_items

    def _index(self, index: int) -> int:
        i = operator.index(index)
        if i < 0:
            i += self.num_items
        if not 0 <= i < self.num_items:
            raise IndexError(f"index {index} out of range for {self.num_items} items")
        return i

    def note(self, index: int) -> Note:
        """The parameters of item ``index`` (cheap: no audio is synthesised)."""
        rng = np.random.default_rng([self.seed, self._index(index)])
        rate = self.sampling_rate
        f0 = math.exp(_uniform(rng, (math.log(self.f0_range[0]), math.log(self.f0_range[1]))))
        count = int(rng.integers(1, _MAX_HARMONICS + 1))
        amplitudes = [1.0]
        for _ in range(count - 1):
            amplitudes.append(amplitudes[-1] * _uniform(rng, _HARMONIC_DECAY))
        phases = tuple(float(p) for p in rng.uniform(0.0, 2 * math.pi, size=count))
        peak = _uniform(rng, PEAK_RANGE)
        onset = int(rng.integers(0, int(_ONSET_FRACTION * self.num_samples) + 1))
        attack = max(1, round(_uniform(rng, _ATTACK_SECONDS) * rate))
        decay = _uniform(rng, _DECAY_SECONDS) * rate
        vibrato = rng.uniform() < _VIBRATO_PROBABILITY
        vibrato_rate = _uniform(rng, _VIBRATO_RATE_HZ)
        vibrato_depth = _uniform(rng, _VIBRATO_DEPTH_CENTS)
        vibrato_phase = _uniform(rng, (0.0, 2 * math.pi))
        return Note(
            f0=f0,
            amplitudes=tuple(amplitudes),
            phases=phases,
            peak=peak,
            onset=onset,
            attack=attack,
            decay=decay,
            vibrato_rate=vibrato_rate if vibrato else 0.0,
            vibrato_depth=vibrato_depth if vibrato else 0.0,
            vibrato_phase=vibrato_phase,
        )

    def f0(self, index: int) -> float:
        """The fundamental frequency (Hz) of item ``index``: the pitch a vocoder should produce."""
        return self.note(index).f0

    def audio(self, index: int) -> Tensor:
        """The (1, L) float32 waveform of item ``index``, without its spectrogram."""
        note = self.note(index)
        rate = self.sampling_rate
        n = np.arange(self.num_samples, dtype=np.float64)
        # Instantaneous fundamental f0 * 2^(depth * sin(2 pi r t + phi) / 1200); its running sum
        # is the phase of the fundamental, and harmonic k runs at k times that phase.
        cents = note.vibrato_depth * np.sin(
            2 * math.pi * note.vibrato_rate * n / rate + note.vibrato_phase
        )
        frequency = note.f0 * np.exp2(cents / 1200.0)
        phase = 2 * math.pi * np.cumsum(frequency) / rate
        wave = np.zeros_like(n)
        for k, (amplitude, start) in enumerate(zip(note.amplitudes, note.phases), start=1):
            if k * note.f0 * 2 ** (_VIBRATO_DEPTH_CENTS[1] / 1200) >= 0.45 * rate:
                break  # never alias: drop harmonics near Nyquist at low sampling rates
            wave += amplitude * np.sin(k * phase + start)
        t = n - note.onset
        rise = 0.5 - 0.5 * np.cos(math.pi * np.clip(t / note.attack, 0.0, 1.0))
        fall = np.exp(-np.clip(t - note.attack, 0.0, None) / note.decay)
        wave *= np.where(t >= 0, rise * fall, 0.0)
        wave *= note.peak / max(float(np.abs(wave).max()), 1e-12)
        return torch.from_numpy(wave.astype(np.float32))[None]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        audio = self.audio(index)
        with torch.no_grad():
            mel = self.mel(audio)[0]
        return audio, mel

    def __repr__(self) -> str:
        return (
            f"ToneDataset(num_items={self.num_items}, num_samples={self.num_samples}, "
            f"sampling_rate={self.sampling_rate}, seed={self.seed}, "
            f"f0_range={self.f0_range})"
        )


def _as_clips(audio: Tensor | npt.ArrayLike) -> npt.NDArray[np.float64]:
    x = audio.detach().cpu().double().numpy() if isinstance(audio, Tensor) else np.asarray(audio)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[-1] < 4:
        raise ValueError(
            f"audio must be (L,), (B, L) or (B, 1, L) with L >= 4; got shape {tuple(x.shape)}"
        )
    return x


def _dominant_frequencies(
    clips: npt.NDArray[np.float64], sampling_rate: float, min_frequency: float
) -> npt.NDArray[np.float64]:
    length = clips.shape[-1]
    size = 1 << max(0, (4 * length - 1).bit_length())  # zero-pad 4x (at least): finer peak grid
    window = np.hanning(length)
    magnitude = np.abs(np.fft.rfft(clips * window, n=size, axis=-1))
    first = min(math.ceil(min_frequency * size / sampling_rate), magnitude.shape[-1] - 1)
    search = magnitude[:, first:]
    k = first + np.argmax(search, axis=-1)
    rows = np.arange(len(clips))
    # Quadratic interpolation of the log magnitude through the peak bin and its neighbours:
    # offset = (a - c) / (2 (a - 2 b + c)) bins, with a, b, c at k - 1, k, k + 1.
    inner = np.clip(k, 1, magnitude.shape[-1] - 2)
    tiny = np.finfo(np.float64).tiny
    a, b, c = (np.log(magnitude[rows, inner + d] + tiny) for d in (-1, 0, 1))
    curvature = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (a - c) / curvature, 0.0)
    offset = np.where(inner == k, np.clip(offset, -0.5, 0.5), 0.0)
    frequency = (k + offset) * sampling_rate / size
    silent = search.max(axis=-1) <= 1e-12 * max(1.0, float(np.abs(clips).max(initial=0.0)))
    return np.where(silent, np.nan, frequency)


def dominant_frequency(
    audio: Tensor | npt.ArrayLike,
    sampling_rate: float,
    *,
    min_frequency: float = 20.0,
) -> float | Tensor:
    """The frequency of the largest peak of a clip's magnitude spectrum.

    The clip is multiplied by a Hann window of its length and zero-padded to a power of two at
    least four times as long; the largest magnitude at or above ``min_frequency`` is located and
    refined by fitting a parabola through the log magnitudes of its bin and the two neighbours
    (exact for a Gaussian peak, within a few hundredths of a bin for a Hann window's main lobe).

    Args:
        audio: (L,) clip, or (B, L) / (B, 1, L) clips (tensor or array).
        sampling_rate: samples per second.
        min_frequency: bins below this frequency (Hz) are ignored, so that a DC offset or rumble
            is not reported as the pitch.

    Returns:
        The frequency in Hz: a float for an (L,) clip, a (B,) float64 tensor for a batch. NaN for a
        silent clip.

    References:
        Smith & Serra 1987, PARSHL, ICMC (quadratic interpolation of spectral peaks).

    Example:
        >>> t = torch.arange(22050) / 22050
        >>> round(dominant_frequency(torch.sin(2 * torch.pi * 440.3 * t), 22050), 1)
        440.3
    """
    single = np.ndim(audio) == 1
    frequencies = _dominant_frequencies(_as_clips(audio), float(sampling_rate), min_frequency)
    if single:
        return float(frequencies[0])
    return torch.from_numpy(frequencies)


def pitch_accuracy(
    generated: Tensor | npt.ArrayLike,
    f0s: Sequence[float] | Tensor | npt.ArrayLike,
    sampling_rate: float,
    tolerance_cents: float = 50.0,
) -> float:
    """The fraction of clips whose :func:`dominant_frequency` is within a tolerance of their f0.

    The distance is ``1200 |log2(f / f0)|`` cents; 50 cents is half a semitone. The dominant
    frequency must be the fundamental itself: a clip whose strongest peak is a harmonic (2 f0 is
    1200 cents away), noise, or silence counts as a miss. This is deliberate: the metric measures
    whether a vocoder reproduces the pitch of the conditioning mel, and the clean notes of
    :class:`ToneDataset` always score 1.0 (their fundamental is their strongest partial).

    Args:
        generated: (B, L) or (B, 1, L) clips (or one (L,) clip).
        f0s: (B,) expected fundamentals in Hz, e.g. ``[data.f0(i) for i in held_out]``.
        sampling_rate: samples per second of the clips.
        tolerance_cents: largest accepted distance in cents.

    Returns:
        The fraction of hits, in [0, 1].

    Example:
        >>> t = torch.arange(8192) / 22050
        >>> clips = torch.stack([torch.sin(2 * torch.pi * 220 * t), torch.sin(2 * torch.pi * 440 * t)])
        >>> pitch_accuracy(clips, [220.0, 220.0], 22050)  # the second is an octave too high
        0.5
    """
    clips = _as_clips(generated)
    expected = np.asarray(
        f0s.detach().cpu().double().numpy() if isinstance(f0s, Tensor) else f0s, dtype=np.float64
    ).reshape(-1)
    if expected.shape[0] != clips.shape[0]:
        raise ValueError(f"got {clips.shape[0]} clips but {expected.shape[0]} f0 values")
    if np.any(~(expected > 0)):
        raise ValueError("f0s must be positive frequencies in Hz")
    if not tolerance_cents > 0:
        raise ValueError(f"tolerance_cents must be positive; got {tolerance_cents}")
    found = _dominant_frequencies(clips, float(sampling_rate), 20.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = 1200.0 * np.abs(np.log2(found / expected))
    hits = cents <= tolerance_cents  # NaN (silence) compares False: a miss
    return float(np.mean(hits))


#: The built-in phrase: an arpeggio C4 E4 G4 C5 G4 E4 C4 (Hz), a quarter second per note.
DEMO_PHRASE_HZ: tuple[float, ...] = (261.63, 329.63, 392.0, 523.25, 392.0, 329.63, 261.63)


def demo_phrase(sampling_rate: int = 22050, note_seconds: float = 0.25) -> Tensor:
    """A short melody of synthetic notes: what a vocoder plays when given no input.

    Each note of :data:`DEMO_PHRASE_HZ` has three harmonics (1, 0.4, 0.15), a 10 ms raised-cosine
    attack and an exponential decay (time constant 0.2 s), peak 0.6; the notes follow each other
    without overlap.

    Args:
        sampling_rate: samples per second.
        note_seconds: length of each note.

    Returns:
        (L,) float32 waveform, ``L = len(DEMO_PHRASE_HZ) * round(note_seconds * sampling_rate)``.

    Example:
        >>> demo_phrase().shape
        torch.Size([38584])
    """
    length = round(note_seconds * sampling_rate)
    t = np.arange(length, dtype=np.float64) / sampling_rate
    attack = 0.01
    envelope = np.where(
        t < attack, 0.5 - 0.5 * np.cos(math.pi * t / attack), np.exp(-(t - attack) / 0.2)
    )
    notes = []
    for f0 in DEMO_PHRASE_HZ:
        wave = sum(a * np.sin(2 * math.pi * k * f0 * t) for k, a in ((1, 1.0), (2, 0.4), (3, 0.15)))
        wave = wave * envelope
        notes.append(0.6 * wave / np.abs(wave).max())
    return torch.from_numpy(np.concatenate(notes).astype(np.float32))


def add_note_arguments(
    parser: argparse.ArgumentParser, *, items: int, segment: int, seed: int, title: str
) -> None:
    """The command-line options of a :class:`ToneDataset`: ``--items`` (or ``--clips``),
    ``--segment``, ``--data-seed`` and ``--f0-range``, in a group called ``title``."""
    g = parser.add_argument_group(title)
    name = "--clips" if title.startswith("held-out") else "--items"
    g.add_argument(name, dest="items", type=int, default=items, help=f"notes ({items})")
    g.add_argument("--segment", type=int, default=segment, help=f"samples per note ({segment})")
    g.add_argument("--data-seed", type=int, default=seed, help=f"seed of the notes ({seed})")
    g.add_argument(
        "--f0-range",
        type=float,
        nargs=2,
        default=list(F0_RANGE),
        metavar=("LOW", "HIGH"),
        help="fundamentals in Hz, drawn log-uniformly (default %(default)s)",
    )


def notes_from_arguments(args: argparse.Namespace, mel: MelSpectrogram | None) -> ToneDataset:
    """The :class:`ToneDataset` that :func:`add_note_arguments`' options describe."""
    low, high = args.f0_range
    return ToneDataset(args.items, args.segment, seed=args.data_seed, f0_range=(low, high), mel=mel)
