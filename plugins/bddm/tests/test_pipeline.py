"""BDDMPipeline: loading through the registry, the call's options and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers_hub_bddm.diffwave import DiffWave
from diffusers_hub_bddm.hooks import DEMO_FOLDER
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


def test_tacotron2_mel_convention_numpy_and_batches(small_pipeline: BDDMPipeline) -> None:
    # what NVIDIA's Tacotron 2 returns: (B, 80, frames) natural-log mels, often float16 numpy
    mel = _mel(small_pipeline, 2000)
    batch = np.concatenate([mel.numpy(), mel.numpy()]).astype(np.float16)
    out = small_pipeline(batch, generator=torch.manual_seed(0)).audios
    assert out.shape == (2, 1, mel.shape[-1] * 256)
    half = mel.numpy()[0].astype(np.float16)
    single = small_pipeline(half, generator=torch.manual_seed(0)).audios
    same = small_pipeline(torch.from_numpy(half).float(), generator=torch.manual_seed(0)).audios
    torch.testing.assert_close(single, same)


def test_vocode_audio_round_trip(small_pipeline: BDDMPipeline) -> None:
    wave = 0.4 * np.sin(np.arange(3000) * 2 * np.pi * 330 / 22050).astype(np.float32)
    out = small_pipeline.vocode_audio(wave, generator=torch.manual_seed(0))
    assert out.audios.shape == (1, 1, 3000)  # cropped to the input
    same = small_pipeline(_mel_of(small_pipeline, wave), generator=torch.manual_seed(0)).audios
    torch.testing.assert_close(out.audios, same[..., :3000])
    # another rate is resampled to the vocoder's first
    slow = small_pipeline.vocode_audio(wave[::2], sampling_rate=11025)
    assert slow.audios.shape == (1, 1, 3000)
    torch.testing.assert_close(
        small_pipeline.analyse(wave[::2], 11025).shape, small_pipeline.analyse(wave).shape
    )
    with pytest.raises(ValueError, match="not both"):
        small_pipeline(_mel_of(small_pipeline, wave), audio=wave)
    with pytest.raises(ValueError, match="NaN"):
        small_pipeline.vocode_audio(np.full(100, np.nan))


def _mel_of(pipe: BDDMPipeline, wave: np.ndarray) -> torch.Tensor:
    assert pipe.mel is not None
    return pipe.mel(torch.from_numpy(wave))


def test_no_input_vocodes_the_builtin_phrase(small_pipeline: BDDMPipeline) -> None:
    from diffusers_hub_bddm.data import demo_phrase

    out = small_pipeline(generator=torch.manual_seed(0), num_inference_steps=2)
    assert out.audios.shape[-1] == _mel_of(small_pipeline, demo_phrase().numpy()).shape[-1] * 256


def test_generate_mel_and_wav(small_pipeline: BDDMPipeline, tmp_path: Path) -> None:
    from scipy.io import wavfile

    from diffusers_hub.cli import main as cli_main

    small_pipeline.save_pretrained(tmp_path / "voc")
    mel = _mel(small_pipeline, 2000)
    np.save(tmp_path / "mel.npy", mel.numpy())
    args = ["generate", "bddm", "--model", str(tmp_path / "voc"), "--steps", "2"]
    assert (
        cli_main([*args, "--mel", str(tmp_path / "mel.npy"), "--out", str(tmp_path / "a.wav")]) == 0
    )
    rate, data = wavfile.read(tmp_path / "a.wav")
    assert rate == 22050 and data.shape == (mel.shape[-1] * 256,)
    pcm = (0.5 * np.sin(np.arange(4410) * 0.1) * 32767).astype(np.int16)
    wavfile.write(tmp_path / "in.wav", 22050, pcm)
    assert (
        cli_main([*args, "--wav", str(tmp_path / "in.wav"), "--out", str(tmp_path / "b.wav")]) == 0
    )
    assert wavfile.read(tmp_path / "b.wav")[1].shape == (4410,)
    (tmp_path / "bad.wav").write_text("not audio")
    assert (
        cli_main([*args, "--wav", str(tmp_path / "bad.wav"), "--out", str(tmp_path / "c.wav")]) != 0
    )


def test_temperature_of_the_call_and_of_the_scheduler_folder(
    small_pipeline: BDDMPipeline, tmp_path: Path
) -> None:
    from scipy.io import wavfile

    from diffusers_hub.cli import main as cli_main

    mel = _mel(small_pipeline)
    full = small_pipeline(mel, generator=torch.manual_seed(5)).audios
    cold = small_pipeline(mel, temperature=0.0, generator=torch.manual_seed(5)).audios
    assert not torch.allclose(full, cold)
    # at temperature 0 only the starting noise is random: the step noise is not used
    gen = torch.Generator().manual_seed(5)
    start = torch.randn(1, 1, mel.shape[-1] * 256, generator=gen)
    assert small_pipeline.scheduler.schedule is not None
    x = start
    for t in small_pipeline.scheduler.timesteps:
        eps = small_pipeline.diffwave(x, t, mel).sample
        x = small_pipeline.scheduler.step(eps, t, x, generator=torch.manual_seed(99)).prev_sample
    torch.testing.assert_close(cold, x.clamp(-1.0, 1.0))
    # a saved scheduler's temperature is the pipeline's default; the call overrides it
    scheduler = BDDMScheduler(noise_schedule=[1e-3, 0.05, 0.3], temperature=0.0)
    parts = {"diffwave": small_pipeline.diffwave, "mel": small_pipeline.mel}
    BDDMPipeline(scheduler=scheduler, **parts).save_pretrained(tmp_path / "cold")
    loaded = BDDMPipeline.from_pretrained(tmp_path / "cold")
    loaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(loaded(mel, generator=torch.manual_seed(5)).audios, cold)
    torch.testing.assert_close(
        loaded(mel, temperature=1.0, generator=torch.manual_seed(5)).audios, full
    )
    # and the command line passes --temperature on
    np.save(tmp_path / "mel.npy", mel.numpy())
    args = [
        "generate",
        "bddm",
        "--model",
        str(tmp_path / "cold"),
        "--mel",
        str(tmp_path / "mel.npy"),
    ]
    assert (
        cli_main([*args, "--seed", "5", "--temperature", "1", "--out", str(tmp_path / "t1.wav")])
        == 0
    )
    np.testing.assert_allclose(wavfile.read(tmp_path / "t1.wav")[1], full[0, 0].numpy(), atol=1e-6)


def test_generate_runs_the_shipped_demo(tmp_path: Path) -> None:
    from scipy.io import wavfile

    from diffusers_hub.cli import main as cli_main

    out = tmp_path / "phrase.wav"
    assert cli_main(["generate", "bddm", "--steps", "2", "--out", str(out)]) == 0
    rate, data = wavfile.read(out)
    assert rate == 22050 and data.dtype == np.float32
    assert data.shape[0] > 22050 and 0 < float(np.abs(data).max()) <= 1.0
    demo = DiffusionPipeline.from_pretrained(DEMO_FOLDER)
    assert isinstance(demo, BDDMPipeline) and demo.schedule_net is not None
