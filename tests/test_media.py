"""The sample files of ``generate`` and ``sample``: atomic writes, WAV and PNG round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from diffusers_hub import media
from diffusers_hub.errors import DiffusersHubError


def test_atomic_path_keeps_the_old_file_when_the_write_fails(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), media.atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_wav_round_trip_and_integer_pcm(tmp_path: Path) -> None:
    wave = torch.linspace(-1.5, 1.5, 64)[None]  # (channels, samples), beyond [-1, 1] at the ends
    media.write_wav(tmp_path / "a.wav", wave, 8000)
    rate, back = media.read_wav(tmp_path / "a.wav")
    assert rate == 8000 and back.dtype == np.float32
    np.testing.assert_array_equal(back, np.clip(wave[0].numpy(), -1, 1))
    stereo = np.array([[-32768, 0], [32767, 16384]], dtype=np.int16)
    wavfile.write(tmp_path / "b.wav", 100, stereo)
    _, mono = media.read_wav(tmp_path / "b.wav")
    np.testing.assert_allclose(mono, [(-1.0 + 0.0) / 2, (1.0 + 0.5) / 2], atol=1e-4)
    (tmp_path / "c.wav").write_bytes(b"RIFF....")
    with pytest.raises(DiffusersHubError, match=r"c\.wav: cannot be read as a WAV file"):
        media.read_wav(tmp_path / "c.wav")


def test_images_to_uint8_png_and_grid(tmp_path: Path) -> None:
    nchw = torch.rand(4, 3, 5, 6)
    images = media.to_uint8_images(nchw)
    assert images.shape == (4, 5, 6, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, media.to_uint8_images(nchw.permute(0, 2, 3, 1).numpy()))
    media.write_image(tmp_path / "one.png", images[0])
    np.testing.assert_array_equal(media.read_png(tmp_path / "one.png"), images[0])
    media.write_image(tmp_path / "grid.png", images)  # 2 x 2 cells with 1 px gaps
    assert media.read_png(tmp_path / "grid.png").shape == (2 * 5 + 1, 2 * 6 + 1, 3)
    gray = media.to_uint8_images(np.ones((2, 4, 4, 1)))
    media.write_image(tmp_path / "gray.png", gray[0])
    assert media.read_png(tmp_path / "gray.png").shape == (4, 4)
    with pytest.raises(DiffusersHubError, match="cannot save images of shape"):
        media.to_uint8_images(np.zeros((2, 2)))
