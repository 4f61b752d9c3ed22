"""The seed document's user examples (docs/examples/*.py) run as users would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from diffusers_hub import registry

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def run_example(name: str, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def demo_folder() -> str:
    try:
        return registry.demo_checkpoint("ddpm")
    except Exception as exc:  # the demo weights are part of the ddpm plugin
        pytest.fail(f"the ddpm demo weights are missing: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize("script", ["seed_ddpm_loop.py", "seed_ddim_loop.py", "seed_pipeline.py"])
def test_ddpm_seed_examples_on_demo_weights(tmp_path, script) -> None:
    out = tmp_path / "test.png"
    run_example(script, demo_folder(), str(out))
    with PIL.Image.open(out) as image:
        pixels = np.unique(np.asarray(image)).size
        shape = image.size
    size = registry.model("UNet2DModel").from_pretrained(demo_folder()).config.sample_size
    assert shape == (size, size)
    assert pixels > 4  # a picture, not a flat fill


@pytest.mark.slow
def test_bddm_seed_example(tmp_path) -> None:
    """The seed's text-to-speech call shape, on a small vocoder folder built with this library:
    a mel spectrogram in, a WAV file out."""
    from diffusers_hub_bddm.diffwave import DiffWave
    from diffusers_hub_bddm.mel import MelSpectrogram
    from diffusers_hub_bddm.pipeline import BDDMPipeline
    from diffusers_hub_bddm.scheduler import LJSPEECH_12_STEPS, BDDMScheduler
    from scipy.io import wavfile

    torch.manual_seed(0)
    model = DiffWave(num_res_layers=2, res_channels=8, skip_channels=8, dilation_cycle=2)
    torch.nn.init.normal_(model.out_conv.weight, std=0.1)
    scheduler = BDDMScheduler(noise_schedule=list(LJSPEECH_12_STEPS))
    BDDMPipeline(diffwave=model, scheduler=scheduler, mel=MelSpectrogram()).save_pretrained(
        tmp_path / "vocoder"
    )
    out = tmp_path / "generated_audio.wav"
    run_example("seed_bddm_vocoder.py", str(tmp_path / "vocoder"), "-", str(out))
    rate, data = wavfile.read(out)
    assert rate == 22050
    assert data.dtype == np.float32 and data.ndim == 1
    assert data.shape[0] >= int(0.9 * 22050)  # three 0.3 s notes
    assert float(np.abs(data).mean()) > 0.01 and float(np.abs(data).max()) <= 1.0
