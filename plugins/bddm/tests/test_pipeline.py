"""BDDMPipeline: loading through the registry, the call's options and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers_hub_bddm.diffwave import DiffWave
from diffusers_hub_bddm.mel import MelSpectrogram
from diffusers_hub_bddm.pipeline import BDDMPipeline
from diffusers_hub_bddm.scheduler import LJSPEECH_12_STEPS, BDDMScheduler

from diffusers_hub import DiffusionPipeline


@pytest.fixture(scope="module")
def small_pipeline() -> BDDMPipeline:
    torch.manual_seed(0)
    model = DiffWave(num_res_layers=2, res_channels=8, skip_channels=8, dilation_cycle=2)
    torch.nn.init.normal_(model.out_conv.weight, std=0.1)  # a zero head would hide everything
    scheduler = BDDMScheduler(noise_schedule=[1e-3, 0.05, 0.3])
    pipe = BDDMPipeline(diffwave=model, scheduler=scheduler, mel=MelSpectrogram())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _mel(pipe: BDDMPipeline, samples: int = 1000) -> torch.Tensor:
    assert pipe.mel is not None
    return pipe.mel(0.3 * torch.sin(torch.arange(samples) * 0.05))


def test_save_and_load_through_the_registry(small_pipeline: BDDMPipeline, tmp_path: Path) -> None:
    small_pipeline.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == "BDDMPipeline"
    assert index["diffwave"] == ["bddm", "DiffWave"]
    assert index["mel"] == ["bddm", "MelSpectrogram"]
    loaded = DiffusionPipeline.from_pretrained(tmp_path)
    assert isinstance(loaded, BDDMPipeline)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.scheduler.config.noise_schedule == [1e-3, 0.05, 0.3]
    mel = _mel(small_pipeline)
    a = small_pipeline(mel, generator=torch.manual_seed(3)).audios
    b = loaded(mel, generator=torch.manual_seed(3)).audios
    torch.testing.assert_close(a, b)


def test_call_shapes_types_and_options(small_pipeline: BDDMPipeline) -> None:
    mel = _mel(small_pipeline)  # (1, 80, 4)
    out = small_pipeline(mel, generator=torch.manual_seed(0))
    assert out.audios.shape == (1, 1, mel.shape[-1] * 256)
    assert out.sampling_rate == 22050
    assert float(out.audios.abs().max()) <= 1.0
    again = small_pipeline(mel[0], generator=torch.manual_seed(0))  # (80, frames) works too
    torch.testing.assert_close(out.audios, again.audios)
    other = small_pipeline(mel, generator=torch.manual_seed(1)).audios
    assert not torch.equal(out.audios, other)
    arr = small_pipeline(mel.numpy(), generator=torch.manual_seed(0), output_type="np").audios
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
    np.testing.assert_allclose(arr, out.audios.numpy(), atol=1e-6)
    (tuple_out,) = small_pipeline(mel, generator=torch.manual_seed(0), return_dict=False)
    torch.testing.assert_close(tuple_out, out.audios)
    seen: list[float] = []
    small_pipeline(
        mel,
        generator=torch.manual_seed(0),
        num_inference_steps=5,
        callback=lambda i, t, x: seen.append(t),
    )
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    seen.clear()
    small_pipeline(
        mel, noise_schedule=list(LJSPEECH_12_STEPS), callback=lambda i, t, x: seen.append(t)
    )
    assert len(seen) == 12


def test_call_errors(small_pipeline: BDDMPipeline) -> None:
    with pytest.raises(ValueError, match=r"\(B, 80, frames\)"):
        small_pipeline(torch.zeros(1, 40, 5))
    with pytest.raises(ValueError, match="output_type"):
        small_pipeline(torch.zeros(1, 80, 5), output_type="pil")


def test_docstring_examples() -> None:
    import doctest

    import diffusers_hub_bddm.pipeline as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
