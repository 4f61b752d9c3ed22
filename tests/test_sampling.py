"""The sharded sampler: partitions, per-sample seeds, bit-identical sets across world and batch
sizes (one process vs two gloo ranks), kill-and-resume, conditioning, per-rank failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from diffusers_hub import registry
from diffusers_hub.media import read_png
from diffusers_hub.sampling import (
    MANIFEST,
    SampleJob,
    SamplingError,
    rank_batches,
    sample,
    sample_generator,
    sample_seed,
)

STEPS = 8  # the DDPM demo: 16x16 digits; a few steps keep every run short


def _pngs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_png(p) for p in sorted(folder.glob("0*.png"))}


def _torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={nproc}", "-m", "diffusers_hub", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.parametrize(("n", "batch", "world"), [(7, 2, 2), (10, 3, 4), (5, 5, 3), (1, 8, 2)])
def test_rank_shares_partition_the_indices(n: int, batch: int, world: int) -> None:
    shares = [rank_batches(n, batch, r, world) for r in range(world)]
    indices = sorted(i for share in shares for b in share for i in b)
    assert indices == list(range(n))
    # A batch's members do not depend on the world size.
    assert sorted(b.start for s in shares for b in s) == list(range(0, n, batch))


def test_per_sample_seeds_are_distinct_and_stable() -> None:
    seeds = {sample_seed(s, i) for s in range(4) for i in range(50)}
    assert len(seeds) == 200
    assert sample_seed(3, 7) == sample_seed(3, 7) < 2**64
    a = torch.randn(4, generator=sample_generator(0, 5))
    assert torch.equal(a, torch.randn(4, generator=sample_generator(0, 5)))


N, SEED = 7, 4


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One process, batch 3, batch-invariant: the set the other runs must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    job = SampleJob(
        "ddpm",
        N,
        out,
        batch_size=3,
        seed=SEED,
        num_inference_steps=STEPS,
        npz=True,
        batch_invariant=True,
        progress=False,
    )
    result = sample(job)
    assert result == {
        "written": N,
        "rank": 0,
        "world_size": 1,
        "grid": str(out / "grid.png"),
        "npz": str(out / "samples.npz"),
    }
    return out


def _sample_args(out: Path, batch: int) -> list[str]:
    return [
        "sample",
        "ddpm",
        "--num-samples",
        str(N),
        "--out-dir",
        str(out),
        "--batch-size",
        str(batch),
        "--seed",
        str(SEED),
        "--steps",
        str(STEPS),
        "--npz",
        "--batch-invariant",
    ]


def _assert_same_set(got: Path, expected: Path) -> None:
    a, b = _pngs(expected), _pngs(got)
    assert list(a) == [f"{i:06d}.png" for i in range(N)] and list(a) == list(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    npz_a, npz_b = np.load(expected / "samples.npz"), np.load(got / "samples.npz")
    assert np.array_equal(npz_a["arr_0"], npz_b["arr_0"])


@pytest.mark.slow
def test_one_process_and_two_gloo_ranks_give_the_same_bits(reference: Path, tmp_path: Path) -> None:
    """Batch 3 in one process vs batch 5 on two gloo ranks (one thread each): same PNG bits."""
    proc = _torchrun(_sample_args(tmp_path, 5))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "rank 0 of 2 drew 5 now" in proc.stdout  # batch 0 (5 samples) on rank 0, 5-6 on 1
    assert "sampling (2 ranks)" in proc.stderr
    _assert_same_set(tmp_path, reference)
    pngs = _pngs(reference)
    arr = np.load(reference / "samples.npz")["arr_0"]
    assert arr.shape == (N, 16, 16, 3) and arr.dtype == np.uint8
    assert np.array_equal(arr[..., 0], np.stack(list(pngs.values())))  # grayscale -> RGB
    assert len({a.tobytes() for a in pngs.values()}) == N  # all different samples
    assert read_png(reference / "grid.png").shape == (3 * 16 + 2, 3 * 16 + 2)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_set(reference: Path, tmp_path: Path) -> None:
    """SIGKILL once the first file is there, restart: the same set as the uninterrupted run."""
    cmd = [sys.executable, "-m", "diffusers_hub", *_sample_args(tmp_path, 2)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # generous: the start-up of a loaded shared machine
    while not list(tmp_path.glob("0*.png")) and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    before = _pngs(tmp_path)  # every file there is whole (PIL reads it)
    assert 1 <= len(before) < N, "the run was not killed mid-way"
    restart = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    assert restart.returncode == 0, restart.stderr[-3000:]
    assert f"drew {N - len(before) // 2 * 2} now" in restart.stdout, restart.stdout
    assert "sample/s" in restart.stderr or "s/sample" in restart.stderr  # the progress bar
    assert not list(tmp_path.glob(".*tmp*"))
    _assert_same_set(tmp_path, reference)


def test_a_folder_of_another_run_is_refused(tmp_path: Path) -> None:
    job = SampleJob("ddpm", 2, tmp_path, batch_size=2, num_inference_steps=2, progress=False)
    sample(job)
    assert sample(job)["written"] == 0  # resumed: nothing left to draw
    other = SampleJob("ddpm", 2, tmp_path, batch_size=2, seed=9, num_inference_steps=2)
    with pytest.raises(SamplingError, match=rf"{MANIFEST}: .*seed was 0, now 9"):
        sample(other)
    with pytest.raises(SamplingError, match="pass --prompts FILE"):
        sample(SampleJob("latent-diffusion", 1, tmp_path / "ldm"))


@pytest.mark.slow
def test_text_pipeline_takes_prompt_i_and_generator_i(tmp_path: Path) -> None:
    prompts = ("a red circle", "a blue square")
    job = SampleJob(
        "latent-diffusion",
        2,
        tmp_path,
        batch_size=2,
        prompts=prompts,
        seed=2,
        num_inference_steps=2,
        guidance_scale=2.0,
        batch_invariant=True,
        progress=False,
    )
    sample(job)
    pipe = registry.pipeline("latent-diffusion").from_pretrained(
        registry.demo_checkpoint("latent-diffusion")
    )
    pipe.set_progress_bar_config(disable=True)
    got = _pngs(tmp_path)
    for i in range(2):
        image = pipe(
            prompt=[prompts[i % 2]],
            generator=[sample_generator(2, i)],
            num_inference_steps=2,
            guidance_scale=2.0,
            output_type="pil",
        ).images[0]
        assert np.array_equal(np.asarray(image), got[f"{i:06d}.png"]), i


def _tiny_vocoder(folder: Path) -> int:
    from diffusers_hub_bddm.diffwave import DiffWave
    from diffusers_hub_bddm.mel import MelSpectrogram
    from diffusers_hub_bddm.pipeline import BDDMPipeline
    from diffusers_hub_bddm.scheduler import LJSPEECH_12_STEPS, BDDMScheduler

    torch.manual_seed(0)
    pipe = BDDMPipeline(
        diffwave=DiffWave(num_res_layers=2, res_channels=8, skip_channels=8),
        scheduler=BDDMScheduler(noise_schedule=list(LJSPEECH_12_STEPS)),
        mel=MelSpectrogram(),
    )
    pipe.save_pretrained(folder)
    return int(pipe.diffwave.hop_length)


@pytest.mark.slow
def test_vocoder_mels_and_a_failing_rank(tmp_path: Path) -> None:
    hop = _tiny_vocoder(tmp_path / "vocoder")
    mels = tmp_path / "mels"
    mels.mkdir()
    np.save(mels / "a.npy", np.full((80, 6), -4.0, np.float32))
    np.save(mels / "b.npy", np.full((80, 4), -5.0, np.float32))
    out = tmp_path / "audio"
    sample(
        SampleJob(
            "bddm", 3, out, model=str(tmp_path / "vocoder"), mels=mels, batch_size=3, progress=False
        )
    )
    from scipy.io import wavfile

    lengths = [len(wavfile.read(out / f"{i:06d}.wav")[1]) for i in range(3)]
    assert lengths == [6 * hop, 4 * hop, 6 * hop]  # sample i vocodes mel i % 2
    # Rank 1 gets sample 1, whose spectrogram has the wrong band count: it reports its rank
    # and leaves no file for it; whatever else is there is whole.
    np.save(mels / "b.npy", np.full((7, 4), -5.0, np.float32))
    bad = tmp_path / "bad"
    proc = _torchrun(
        [
            "sample",
            "bddm",
            "--model",
            str(tmp_path / "vocoder"),
            "--mels",
            str(mels),
            "--num-samples",
            "2",
            "--out-dir",
            str(bad),
            "--batch-size",
            "1",
        ]
    )
    assert proc.returncode != 0
    assert "error: rank 1 of 2 failed on samples 1-1: ValueError" in proc.stderr, proc.stderr
    names = {p.name for p in bad.iterdir() if not p.name.startswith(".")}
    assert names <= {"000000.wav", MANIFEST} and MANIFEST in names
    for name in names - {MANIFEST}:  # torchrun may stop rank 0 before or after its write
        assert len(wavfile.read(bad / name)[1]) == 6 * hop


def test_cli_reports_bad_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from diffusers_hub.cli import main

    assert main(["sample", "ddpm", "--num-samples", "0", "--out-dir", str(tmp_path)]) == 1
    assert "error: --num-samples must be >= 1, got 0" in capsys.readouterr().err
    args = ["sample", "bddm", "--num-samples", "2", "--out-dir", str(tmp_path)]
    assert main(args) == 1
    assert "BDDMPipeline vocodes spectrograms: pass --mels DIR" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written before the settings were checked
