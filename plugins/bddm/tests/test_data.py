"""ToneDataset: deterministic, in range, cheap; dominant_frequency and pitch_accuracy measure
pitch and nothing kinder."""

from __future__ import annotations

import doctest
import math
import time

import numpy as np
import pytest
import torch
from diffusers_hub_bddm import data as data_module
from diffusers_hub_bddm.data import ToneDataset, dominant_frequency, pitch_accuracy
from diffusers_hub_bddm.mel import MelSpectrogram
from torch.utils.data import DataLoader

SR = 22050
L = 4096


def _sine(freq: float, length: int = L, phase: float = 0.0) -> torch.Tensor:
    t = torch.arange(length, dtype=torch.float64) / SR
    return torch.sin(2 * math.pi * freq * t + phase).float()


@pytest.fixture(scope="module")
def dataset() -> ToneDataset:
    return ToneDataset(64, L, seed=0)


# -- the data set -------------------------------------------------------------------------------


def test_items_are_deterministic(dataset: ToneDataset) -> None:
    audio, mel = dataset[5]
    _ = dataset[7]  # another item in between changes nothing
    again_audio, again_mel = dataset[5]
    assert torch.equal(audio, again_audio) and torch.equal(mel, again_mel)
    fresh_audio, fresh_mel = ToneDataset(64, L, seed=0)[5]
    assert torch.equal(audio, fresh_audio) and torch.equal(mel, fresh_mel)
    # the item depends on (seed, index) only, not on the size of the data set
    assert torch.equal(ToneDataset(10, L, seed=0)[5][0], audio)
    assert dataset.f0(5) == ToneDataset(10, L, seed=0).f0(5)
    assert torch.equal(dataset[-1][0], dataset[63][0])


def test_seeds_and_items_differ(dataset: ToneDataset) -> None:
    other = ToneDataset(64, L, seed=1)
    assert not torch.equal(dataset[5][0], other[5][0])
    assert dataset.f0(5) != other.f0(5)
    f0s = [dataset.f0(i) for i in range(len(dataset))]
    assert len(set(f0s)) == len(f0s)
    assert not torch.equal(dataset[0][0], dataset[1][0])


def test_shapes_dtypes_and_ranges(dataset: ToneDataset) -> None:
    frames = L // 256 + 1
    for i in range(0, 64, 7):
        audio, mel = dataset[i]
        assert audio.shape == (1, L) and audio.dtype == torch.float32
        assert mel.shape == (80, frames) and mel.dtype == torch.float32
        assert torch.isfinite(mel).all() and torch.isfinite(audio).all()
        peak = float(audio.abs().max())
        assert 0.3 <= peak <= 0.9
        assert peak == pytest.approx(dataset.note(i).peak, rel=1e-6)
        torch.testing.assert_close(mel, MelSpectrogram()(audio)[0])


def test_note_parameters(dataset: ToneDataset) -> None:
    notes = [ToneDataset(400, L, seed=3).note(i) for i in range(400)]
    f0s = np.array([n.f0 for n in notes])
    assert np.all((f0s >= 110.0) & (f0s <= 880.0))
    # log-uniform: about a third of the notes in each octave
    octaves = np.histogram(np.log2(f0s / 110.0), bins=[0, 1, 2, 3])[0]
    assert np.all(octaves > 90), octaves
    counts = {len(n.amplitudes) for n in notes}
    assert counts == {1, 2, 3}
    for n in notes:
        assert n.amplitudes[0] == 1.0
        assert all(a > b > 0 for a, b in zip(n.amplitudes, n.amplitudes[1:]))
        assert 0.3 <= n.peak <= 0.9
    with_vibrato = sum(n.vibrato_depth > 0 for n in notes)
    assert 100 < with_vibrato < 300
    assert all(n.vibrato_depth <= 15.0 for n in notes)


def test_the_note_starts_smoothly(dataset: ToneDataset) -> None:
    for i in range(10):
        audio = dataset.audio(i)[0]
        note = dataset.note(i)
        assert torch.all(audio[: note.onset] == 0)
        # raised-cosine attack: the first samples after the onset are tiny
        assert float(audio[note.onset : note.onset + 2].abs().max()) < 1e-3


def test_data_loader_batches(dataset: ToneDataset) -> None:
    audio, mel = next(iter(DataLoader(dataset, batch_size=4)))
    assert audio.shape == (4, 1, L) and mel.shape == (4, 80, L // 256 + 1)


def test_items_are_cheap() -> None:
    data = ToneDataset(1000, 8192, seed=0)
    data[0]
    start = time.perf_counter()
    for i in range(1, 51):
        data[i]
    assert (time.perf_counter() - start) / 50 < 0.025  # a few ms each at most (about 0.5 ms here)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="num_items"):
        ToneDataset(0, L)
    with pytest.raises(ValueError, match="num_samples"):
        ToneDataset(4, 256)
    with pytest.raises(ValueError, match="seed"):
        ToneDataset(4, L, seed=-1)
    with pytest.raises(ValueError, match="sampling_rate"):
        ToneDataset(4, L, sampling_rate=16000)  # the default mel front end is 22050 Hz
    with pytest.raises(IndexError):
        ToneDataset(4, L)[4]


def test_custom_mel_front_end() -> None:
    mel = MelSpectrogram(sampling_rate=16000, n_mels=40, hop_length=200, f_max=7600.0)
    data = ToneDataset(4, 3200, sampling_rate=16000, mel=mel)
    audio, spec = data[0]
    assert audio.shape == (1, 3200) and spec.shape == (40, 17)
    assert pitch_accuracy(audio, [data.f0(0)], 16000) == 1.0


# -- pitch measurement --------------------------------------------------------------------------


@pytest.mark.parametrize("length", [4096, 22050])
@pytest.mark.parametrize("freq", [440.0, 110.7, 873.2])
def test_dominant_frequency_of_a_sine(freq: float, length: int) -> None:
    for phase in (0.0, 1.0, 2.5):
        found = dominant_frequency(_sine(freq, length, phase), SR)
        assert isinstance(found, float)
        assert found == pytest.approx(freq, abs=1.0)


def test_dominant_frequency_interpolates_between_bins() -> None:
    """The zero-padded FFT grid is 22050 / 16384 = 1.35 Hz here; the parabola gets far closer."""
    freqs = np.linspace(200.0, 1500.0, 23)
    t = np.arange(L) / SR
    clips = np.sin(2 * np.pi * freqs[:, None] * t + 0.7)
    found = dominant_frequency(clips, SR)
    assert isinstance(found, torch.Tensor)
    np.testing.assert_allclose(found.numpy(), freqs, atol=0.02)


def test_dominant_frequency_batches_and_edges() -> None:
    clips = torch.stack([_sine(440.0), 0.1 * _sine(1000.0) + 0.05 * _sine(3000.0)])
    found = dominant_frequency(clips, SR)
    assert isinstance(found, torch.Tensor) and found.shape == (2,)
    torch.testing.assert_close(
        found, torch.tensor([440.0, 1000.0], dtype=torch.float64), atol=1.0, rtol=0
    )
    from_array = dominant_frequency(clips[:, None].numpy(), SR)
    assert isinstance(from_array, torch.Tensor) and from_array.shape == (2,)
    # a DC offset is not a pitch
    assert dominant_frequency(0.8 + 0.2 * _sine(440.0), SR) == pytest.approx(440.0, abs=1.0)
    assert math.isnan(dominant_frequency(torch.zeros(L), SR))
    with pytest.raises(ValueError, match="shape"):
        dominant_frequency(torch.zeros(2, 2, L), SR)


def test_pitch_accuracy_is_one_on_clean_notes(dataset: ToneDataset) -> None:
    audio = torch.stack([dataset[i][0] for i in range(len(dataset))])
    f0s = [dataset.f0(i) for i in range(len(dataset))]
    assert pitch_accuracy(audio, f0s, SR) == 1.0
    assert pitch_accuracy(audio[:, 0], torch.tensor(f0s), SR, tolerance_cents=25.0) == 1.0


def test_pitch_accuracy_is_near_zero_on_noise(dataset: ToneDataset) -> None:
    noise = 0.5 * torch.randn(len(dataset), L, generator=torch.Generator().manual_seed(0))
    f0s = [dataset.f0(i) for i in range(len(dataset))]
    assert pitch_accuracy(noise, f0s, SR) <= 0.05
    assert pitch_accuracy(torch.zeros(len(dataset), L), f0s, SR) == 0.0  # silence misses


def test_pitch_accuracy_counts_octave_errors_and_detuning_as_misses() -> None:
    f0 = 220.0
    octave_up = _sine(2 * f0)
    strong_second = 0.3 * _sine(f0) + 0.7 * _sine(2 * f0)
    assert pitch_accuracy(torch.stack([octave_up, strong_second]), [f0, f0], SR) == 0.0
    detuned = _sine(f0 * 2 ** (40 / 1200))  # 40 cents sharp
    assert pitch_accuracy(detuned[None], [f0], SR) == 1.0
    assert pitch_accuracy(detuned[None], [f0], SR, tolerance_cents=30.0) == 0.0
    flat = _sine(f0 * 2 ** (-60 / 1200))
    assert pitch_accuracy(flat[None], [f0], SR) == 0.0
    clips = torch.stack([_sine(f0), octave_up, _sine(330.0), _sine(500.0)])
    assert pitch_accuracy(clips, [f0, f0, 330.0, 330.0], SR) == 0.5


def test_pitch_accuracy_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="f0"):
        pitch_accuracy(torch.zeros(2, L), [440.0], SR)
    with pytest.raises(ValueError, match="positive"):
        pitch_accuracy(torch.zeros(1, L), [0.0], SR)
    with pytest.raises(ValueError, match="tolerance_cents"):
        pitch_accuracy(torch.zeros(1, L), [440.0], SR, tolerance_cents=0.0)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(data_module)
    assert result.attempted >= 5 and result.failed == 0
