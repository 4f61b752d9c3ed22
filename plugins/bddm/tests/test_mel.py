"""MelSpectrogram: Slaney mel scale and filters from their definitions, the STFT against a direct
DFT, shapes, silence, and the feature_extractor_config.json round trip."""

from __future__ import annotations

import doctest
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers_hub_bddm import mel as mel_module
from diffusers_hub_bddm.mel import (
    MelSpectrogram,
    MelSpectrogramConfig,
    analysis_window,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)

from diffusers_hub.errors import ConfigError
from diffusers_hub.hub import HubError
from diffusers_hub.protocols import satisfies

SR, N_FFT, HOP, N_MELS, F_MAX = 22050, 1024, 256, 80, 8000.0
BIN_HZ = SR / N_FFT


def _sine(freq: float, length: int, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(length, dtype=torch.float64) / SR
    return (amplitude * torch.sin(2 * math.pi * freq * t)).float()


def _centres(n_mels: int = N_MELS, f_min: float = 0.0, f_max: float = F_MAX) -> np.ndarray:
    return np.asarray(mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)))


# -- the Slaney mel scale -----------------------------------------------------------------------


def test_slaney_scale_known_values() -> None:
    assert hz_to_mel(1000.0) == 15.0
    assert mel_to_hz(15.0) == 1000.0
    assert hz_to_mel(0.0) == 0.0
    assert hz_to_mel(200.0) == pytest.approx(3.0)  # linear: 200 / 3 Hz per mel
    assert hz_to_mel(500.0) == pytest.approx(7.5)
    # logarithmic: 27 mels per factor 6.4 above 1000 Hz
    assert hz_to_mel(6400.0) == pytest.approx(42.0)
    assert hz_to_mel(1000.0 * 6.4**2) == pytest.approx(69.0)
    assert mel_to_hz(42.0) == pytest.approx(6400.0)
    assert isinstance(hz_to_mel(440.0), float)


def test_slaney_scale_round_trip_and_monotone() -> None:
    hz = np.concatenate([np.linspace(0.0, 2000.0, 401), np.geomspace(1.0, 11025.0, 300)])
    mels = hz_to_mel(hz)
    assert mels.shape == hz.shape
    np.testing.assert_allclose(mel_to_hz(mels), hz, rtol=1e-12, atol=1e-9)
    ordered = np.sort(hz)
    assert np.all(np.diff(hz_to_mel(ordered)) >= 0)
    for value in (0.0, 123.4, 999.999, 1000.0, 1000.001, 4321.0, 11025.0):
        assert mel_to_hz(hz_to_mel(value)) == pytest.approx(value, rel=1e-12, abs=1e-9)
    # continuous at the break point
    assert hz_to_mel(1000.0 - 1e-9) == pytest.approx(hz_to_mel(1000.0 + 1e-9), abs=1e-9)


# -- the filterbank -----------------------------------------------------------------------------


def test_filterbank_shape_and_support() -> None:
    fb = mel_filterbank(SR, N_FFT, N_MELS, 0.0, F_MAX)
    assert fb.shape == (N_MELS, N_FFT // 2 + 1)
    assert fb.dtype == torch.float32
    assert torch.all(fb >= 0)
    bins = np.linspace(0.0, SR / 2, N_FFT // 2 + 1)
    assert torch.all(fb[:, bins > F_MAX] == 0)
    assert torch.all(fb.sum(dim=1) > 0)  # no empty band with the default settings
    # f_min: nothing below it
    high = mel_filterbank(SR, N_FFT, 40, 300.0, 5000.0)
    assert torch.all(high[:, (bins < 300.0) | (bins > 5000.0)] == 0)


def test_filterbank_rows_are_triangles_peaking_at_their_centres() -> None:
    fb = mel_filterbank(SR, N_FFT, N_MELS, 0.0, F_MAX).double().numpy()
    corners = _centres()
    bins = np.arange(N_FFT // 2 + 1) * BIN_HZ
    for m, row in enumerate(fb):
        lower, centre, upper = corners[m], corners[m + 1], corners[m + 2]
        support = np.flatnonzero(row)
        assert np.all(np.diff(support) == 1), f"band {m}: support not contiguous"
        assert np.all((bins[support] > lower) & (bins[support] < upper))
        peak = int(np.argmax(row))
        assert abs(bins[peak] - centre) <= BIN_HZ, f"band {m}: peak off its centre"
        rising, falling = row[: peak + 1], row[peak:]
        assert np.all(np.diff(rising) >= 0) and np.all(np.diff(falling) <= 0)
        # Slaney norm: the triangle's apex (reached only if a bin sits on the centre) is 2 / width.
        assert row.max() <= 2.0 / (upper - lower) + 1e-9
        # Linear on each side: the ramps have the slopes of the definition.
        up = support[bins[support] <= centre]
        if len(up) >= 2:
            slope = np.diff(row[up]) / BIN_HZ
            np.testing.assert_allclose(slope, 2.0 / (upper - lower) / (centre - lower), rtol=1e-5)


def test_filterbank_area_normalisation_linear_region_exact() -> None:
    """In the linear region (f_min = 0) band m spans [m h, (m + 2) h] with h = delta * 200 / 3
    Hz, delta the mel spacing; with the Slaney norm it is max(0, 1 - |f - (m + 1) h| / h) / h,
    whose sum over the bins times the bin spacing is worked out here from that closed form."""
    fb = mel_filterbank(SR, N_FFT, N_MELS, 0.0, F_MAX).double().numpy()
    delta = (15.0 + 27.0 * math.log(F_MAX / 1000.0) / math.log(6.4)) / (N_MELS + 1)
    h = delta * 200.0 / 3.0
    bins = np.arange(N_FFT // 2 + 1) * BIN_HZ
    linear_rows = [m for m in range(N_MELS) if (m + 2) * h <= 1000.0]
    assert len(linear_rows) == 25
    for m in linear_rows:
        expected_row = np.clip(1.0 - np.abs(bins - (m + 1) * h) / h, 0.0, None) / h
        np.testing.assert_allclose(fb[m], expected_row, rtol=1e-5, atol=1e-9)
        expected_area = float(expected_row.sum() * BIN_HZ)
        assert fb[m].sum() * BIN_HZ == pytest.approx(expected_area, rel=1e-5)
        assert expected_area == pytest.approx(1.0, abs=0.07)  # a coarse Riemann sum of area 1


def test_filterbank_area_is_one_on_a_fine_grid() -> None:
    """Each filter has unit area in Hz: with fine bins the Riemann sum converges to it."""
    n_fft = 2**16
    fb = mel_filterbank(SR, n_fft, N_MELS, 0.0, F_MAX).double()
    areas = fb.sum(dim=1) * (SR / n_fft)
    torch.testing.assert_close(areas, torch.ones(N_MELS, dtype=torch.float64), atol=1e-3, rtol=0)


def test_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=F_MAX)
    np.testing.assert_allclose(mel_filterbank(SR, N_FFT, N_MELS, 0.0, F_MAX), ref, atol=1e-7)


@pytest.mark.parametrize(
    "args",
    [(0, 1024, 80, 0.0, 8000.0), (22050, 1024, 80, 9000.0, 8000.0), (16000, 512, 40, 0, 9e3)],
)
def test_filterbank_rejects_bad_arguments(args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError):
        mel_filterbank(*args)


# -- the window and the STFT --------------------------------------------------------------------


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def test_window_is_a_centred_periodic_hann() -> None:
    np.testing.assert_allclose(
        analysis_window(1024, 1024, dtype=torch.float64), _periodic_hann(1024)
    )
    padded = analysis_window(800, 1024, dtype=torch.float64).numpy()
    assert padded.shape == (1024,)
    np.testing.assert_allclose(padded[112:912], _periodic_hann(800), atol=1e-15)
    assert np.all(padded[:112] == 0) and np.all(padded[912:] == 0)
    with pytest.raises(ValueError, match="win_length"):
        analysis_window(2048, 1024)


def test_window_matches_scipy() -> None:
    signal = pytest.importorskip("scipy.signal")
    ref = signal.get_window("hann", 1024, fftbins=True)
    np.testing.assert_allclose(analysis_window(1024, 1024, dtype=torch.float64), ref, atol=1e-15)


@pytest.mark.parametrize("win_length", [1024, 800])
def test_stft_matches_direct_dft(win_length: int) -> None:
    """One frame at a time: reflect-pad, cut, window, and an explicit DFT sum in numpy."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, size=3001)
    mel = MelSpectrogram(win_length=win_length)
    magnitude = mel.magnitude_spectrogram(torch.from_numpy(x))[0].numpy()
    log_mel = mel(torch.from_numpy(x))[0].double().numpy()
    frames = len(x) // HOP + 1
    assert magnitude.shape == (N_FFT // 2 + 1, frames)
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    left = (N_FFT - win_length) // 2
    window = np.zeros(N_FFT)
    window[left : left + win_length] = _periodic_hann(win_length)
    k = np.arange(N_FFT // 2 + 1)[:, None]
    n = np.arange(N_FFT)[None, :]
    basis = np.exp(-2j * np.pi * k * n / N_FFT)
    fb = mel_filterbank(SR, N_FFT, N_MELS, 0.0, F_MAX).double().numpy()
    for t in (0, 1, frames // 2, frames - 1):
        segment = padded[t * HOP : t * HOP + N_FFT] * window
        expected = np.abs(basis @ segment)
        np.testing.assert_allclose(magnitude[:, t], expected, rtol=1e-6, atol=1e-8)
        expected_log_mel = np.log(np.maximum(fb @ expected, 1e-5))
        np.testing.assert_allclose(log_mel[:, t], expected_log_mel, rtol=1e-5, atol=1e-5)


# -- the processor ------------------------------------------------------------------------------


def test_sine_peaks_in_the_nearest_band() -> None:
    mel = MelSpectrogram()
    spec = mel(_sine(440.0, 8192))
    centres = _centres()[1:-1]
    nearest = int(np.argmin(np.abs(centres - 440.0)))
    assert int(spec[0].mean(dim=1).argmax()) == nearest
    # every interior frame peaks there too
    assert torch.all(spec[0, :, 2:-2].argmax(dim=0) == nearest)
    # a louder sine: larger log-mel by log(gain) where the spectrum is above the floor
    louder = mel(_sine(440.0, 8192, amplitude=0.5 * math.e))
    assert float((louder - spec)[0, nearest, 4:-4].mean()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("length", [513, 1000, 4096, 8192, 22050])
def test_number_of_frames(length: int) -> None:
    mel = MelSpectrogram()
    assert mel(torch.zeros(length)).shape == (1, N_MELS, length // HOP + 1)
    assert mel.num_frames(length) == length // HOP + 1


def test_silence_is_log_clamp_min() -> None:
    spec = MelSpectrogram()(torch.zeros(3, 2048))
    assert torch.all(spec == torch.log(torch.tensor(1e-5, dtype=torch.float32)))
    spec = MelSpectrogram(clamp_min=1e-3)(torch.zeros(2048))
    torch.testing.assert_close(spec, torch.full_like(spec, math.log(1e-3)))


def test_batch_shapes_and_numpy_input() -> None:
    mel = MelSpectrogram()
    rng = np.random.default_rng(1)
    batch = rng.uniform(-0.5, 0.5, size=(3, 4096))
    frames = 4096 // HOP + 1
    from_numpy = mel(batch)
    assert from_numpy.shape == (3, N_MELS, frames) and from_numpy.dtype == torch.float32
    from_tensor = mel(torch.from_numpy(batch).float())
    assert from_tensor.dtype == torch.float32
    torch.testing.assert_close(from_numpy, from_tensor, atol=1e-4, rtol=1e-4)
    channel = mel(torch.from_numpy(batch).float()[:, None])
    torch.testing.assert_close(channel, from_tensor)
    single = mel(torch.from_numpy(batch[1]).float())
    assert single.shape == (1, N_MELS, frames)
    torch.testing.assert_close(single[0], from_tensor[1], atol=1e-5, rtol=1e-5)
    assert mel(batch[1].astype(np.float32)).shape == (1, N_MELS, frames)


def test_bad_inputs_are_refused() -> None:
    mel = MelSpectrogram()
    with pytest.raises(TypeError, match="floating point"):
        mel(torch.zeros(2048, dtype=torch.int16))
    with pytest.raises(ValueError, match="shape"):
        mel(torch.zeros(2, 2, 2048))
    with pytest.raises(ValueError, match="too short"):
        mel(torch.zeros(512))


def test_gradient_flows() -> None:
    audio = 0.1 * torch.randn(1, 2048, generator=torch.Generator().manual_seed(0))
    audio.requires_grad_()
    (grad,) = torch.autograd.grad(MelSpectrogram()(audio).sum(), audio)
    assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0


def test_config_changes_are_picked_up() -> None:
    mel = MelSpectrogram()
    audio = _sine(440.0, 4096)
    before = mel(audio)
    mel.config.n_mels = 40
    after = mel(audio)
    assert after.shape == (1, 40, before.shape[-1])
    torch.testing.assert_close(after, MelSpectrogram(n_mels=40)(audio))


def test_properties_and_protocol() -> None:
    mel = MelSpectrogram(sampling_rate=16000, hop_length=200, f_max=7600.0)
    assert mel.sampling_rate == 16000 and mel.hop_length == 200 and mel.n_mels == 80
    assert satisfies("processor", MelSpectrogram)
    assert satisfies("processor", mel)
    assert "hop_length=200" in repr(mel)


# -- config and files ---------------------------------------------------------------------------


def test_defaults_are_the_bddm_ljspeech_front_end() -> None:
    c = MelSpectrogramConfig()
    assert (c.sampling_rate, c.n_fft, c.hop_length, c.win_length) == (22050, 1024, 256, 1024)
    assert (c.n_mels, c.f_min, c.f_max, c.clamp_min) == (80, 0.0, 8000.0, 1e-5)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"win_length": 2048}, "win_length"),
        ({"n_fft": 512}, "win_length"),
        ({"f_max": 12000.0}, "f_max"),
        ({"sampling_rate": 8000}, "f_max"),
        ({"f_min": 8000.0}, "f_max"),
        ({"hop_length": 0}, "hop_length"),
        ({"n_mels": -3}, "n_mels"),
        ({"clamp_min": 0.0}, "clamp_min"),
        ({"f_min": -1.0}, "f_min"),
    ],
)
def test_invalid_config_names_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        MelSpectrogram(**fields)


def test_assignment_is_validated() -> None:
    config = MelSpectrogramConfig()
    with pytest.raises(ValueError, match="win_length"):
        config.n_fft = 512
    with pytest.raises(ValueError, match="f_max"):
        config.sampling_rate = 8000
    assert config.n_fft == 1024 and config.sampling_rate == 22050


def test_unknown_constructor_field_is_an_error() -> None:
    with pytest.raises(TypeError, match="n_mel_bins"):
        MelSpectrogram(n_mel_bins=80)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    mel = MelSpectrogram(n_mels=64, hop_length=200, win_length=800, f_min=50.0, f_max=7600.0)
    mel.save_pretrained(tmp_path / "fe")
    files = sorted(p.name for p in (tmp_path / "fe").iterdir())
    assert files == ["feature_extractor_config.json"]  # no temporary file left behind
    data = json.loads((tmp_path / "fe" / "feature_extractor_config.json").read_text())
    assert data["_class_name"] == "MelSpectrogram"
    assert data["n_mels"] == 64 and data["win_length"] == 800 and data["f_max"] == 7600.0
    loaded = MelSpectrogram.from_pretrained(tmp_path / "fe")
    assert loaded.config == mel.config
    audio = _sine(300.0, 3000)
    torch.testing.assert_close(loaded(audio), mel(audio))
    # saving again over the folder replaces the file
    MelSpectrogram().save_pretrained(tmp_path / "fe")
    assert MelSpectrogram.from_pretrained(tmp_path / "fe").config == MelSpectrogramConfig()


def test_pipeline_folder_layout(tmp_path: Path) -> None:
    MelSpectrogram(n_mels=40).save_pretrained(tmp_path / "mel")
    assert MelSpectrogram.from_pretrained(tmp_path).config.n_mels == 40  # default subfolder mel/
    assert MelSpectrogram.from_pretrained(tmp_path, subfolder="mel").config.n_mels == 40
    with pytest.raises(HubError, match="feature_extractor_config.json"):
        MelSpectrogram.from_pretrained(tmp_path, subfolder="other")


def test_loading_ignores_unknown_keys_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "feature_extractor_config.json"
    path.write_text(
        json.dumps({"_class_name": "MelSpectrogram", "n_mels": 64, "foo": 1, "bar": [2]}),
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING):
        mel = MelSpectrogram.from_pretrained(tmp_path)
    assert mel.config.n_mels == 64
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "bar" in warnings[0].getMessage() and "foo" in warnings[0].getMessage()


def test_loading_tacotron2_spellings(tmp_path: Path) -> None:
    conf = {"filter_length": 2048, "n_mel_channels": 100, "mel_fmin": 30.0, "mel_fmax": 9000.0}
    (tmp_path / "feature_extractor_config.json").write_text(json.dumps(conf), encoding="utf-8")
    c = MelSpectrogram.from_pretrained(tmp_path).config
    assert (c.n_fft, c.n_mels, c.f_min, c.f_max) == (2048, 100, 30.0, 9000.0)


def test_invalid_file_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "feature_extractor_config.json"
    path.write_text(json.dumps({"win_length": 4096}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"feature_extractor_config\.json.*'win_length'"):
        MelSpectrogram.from_pretrained(tmp_path)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(mel_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 6 and result.failed == 0
