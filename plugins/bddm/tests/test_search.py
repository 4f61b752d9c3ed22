"""BDDM's bilateral half end to end: the schedule network trained for a few hundred steps
against the shipped demo vocoder (frozen), the noise-schedule search, and a searched schedule
that beats linear respacing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers_hub_bddm.data import ToneDataset
from diffusers_hub_bddm.evaluate import evaluate_vocoder
from diffusers_hub_bddm.hooks import DEMO_FOLDER
from diffusers_hub_bddm.pipeline import BDDMPipeline
from diffusers_hub_bddm.schedule_train import main as schedule_main
from diffusers_hub_bddm.scheduler import BDDMScheduler
from diffusers_hub_bddm.search import ScheduleSearchResult, read_search_log

F0 = (220.0, 880.0)
SEGMENT = 1024


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> BDDMPipeline:
    """The demo's score network with a small schedule network trained here from scratch."""
    out = tmp_path_factory.mktemp("bddm-search") / "galr"
    args = ["--model", str(DEMO_FOLDER), "--steps", "450", "--items", "2000"]
    args += ["--segment", "1024", "--batch-size", "4", "--f0-range", *map(str, F0)]
    args += ["--input-dim", "16", "--hidden-dim", "16", "--segment-size", "16", "--low-dim", "4"]
    args += ["--attention-heads", "2", "--lr", "3e-3", "--ema-decay", "0.9", "--seed", "0"]
    schedule_main([*args, "--out", str(out), "--no-progress", "--checkpoint-every", "0"])
    pipe = BDDMPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _search(pipe: BDDMPipeline) -> ScheduleSearchResult:
    notes = ToneDataset(3, SEGMENT, seed=1, f0_range=F0)
    items = [notes[i] for i in range(len(notes))]
    assert pipe.schedule_net is not None
    return pipe.scheduler.search(
        pipe.diffwave,
        pipe.schedule_net,
        torch.stack([m for _, m in items]),
        torch.stack([a for a, _ in items]),
        f0s=[notes.f0(i) for i in range(len(notes))],
        max_steps=8,
        bins=5,  # the demo's grid; 3 values per axis is too coarse for its fine-tuned vocoder
        attempts=1,
        seed=0,
        progress=False,
    )


@pytest.mark.slow
def test_searched_schedule_beats_linear_respacing(trained: BDDMPipeline, tmp_path: Path) -> None:
    result = _search(trained)
    n = result.best.num_steps
    assert 2 <= n <= 8
    assert result.betas == sorted(result.betas)  # growing from the clean end
    assert all(c.num_steps <= 8 for c in result.candidates)

    # on other held-out notes, the searched n steps beat n linearly respaced training steps
    held_out = ToneDataset(6, SEGMENT, seed=2, f0_range=F0)
    searched = evaluate_vocoder(trained, held_out, noise_schedule=result.betas, seed=5)
    linear = evaluate_vocoder(trained, held_out, num_inference_steps=n, seed=5)
    assert searched.num_steps == linear.num_steps == n
    assert searched.log_mel_l1 < linear.log_mel_l1, (searched, linear)

    # the proposals follow the clip: the trained ratio falls as the clip gets cleaner (a
    # schedule network whose output is a constant fails here)
    assert trained.schedule_net is not None
    clip = held_out[0][0][None]
    noise = torch.randn(clip.shape, generator=torch.Generator().manual_seed(0))
    scales = (0.05, 0.2, 0.5, 0.8, 0.95, 0.99)
    with torch.no_grad():
        ratios = [
            float(trained.schedule_net(a * clip + (1 - a * a) ** 0.5 * noise, 0.5, a).ratio)
            for a in scales
        ]
    assert ratios == sorted(ratios, reverse=True), ratios
    assert ratios[0] - ratios[-1] > 0.015, ratios

    # written as a scheduler folder that loads
    result.save(tmp_path / "scheduler")
    loaded = BDDMScheduler.from_pretrained(tmp_path / "scheduler")
    assert loaded.config.noise_schedule == pytest.approx(result.betas)
    assert read_search_log(tmp_path / "scheduler")["best"]["num_steps"] == n


@pytest.mark.slow
def test_search_is_deterministic_under_a_seed(trained: BDDMPipeline) -> None:
    notes = ToneDataset(2, SEGMENT, seed=3, f0_range=F0)
    mels = torch.stack([notes[i][1] for i in range(2)])
    audio = torch.stack([notes[i][0] for i in range(2)])
    assert trained.schedule_net is not None

    def run(seed: int) -> ScheduleSearchResult:
        return trained.scheduler.search(
            trained.diffwave,
            trained.schedule_net,
            mels,
            audio,
            max_steps=4,
            bins=2,
            attempts=1,
            seed=seed,
            progress=False,
        )

    a, b, c = run(0), run(0), run(1)
    assert a.betas == b.betas
    assert [x.log_mel_l1 for x in a.candidates] == [x.log_mel_l1 for x in b.candidates]
    assert a.best.pitch_accuracy is None  # no f0s: log-mel only
    assert [x.log_mel_l1 for x in a.candidates] != [x.log_mel_l1 for x in c.candidates]


def test_repeats_average_the_scores_of_the_later_seeds() -> None:
    from diffusers_hub_bddm.mel import MelSpectrogram
    from diffusers_hub_bddm.search import _score, search_noise_schedule

    demo = BDDMPipeline.from_pretrained(DEMO_FOLDER)
    notes = ToneDataset(2, SEGMENT, seed=1, f0_range=F0)
    mels = torch.stack([notes[i][1] for i in range(2)])
    audio = torch.stack([notes[i][0] for i in range(2)])
    f0s = [notes.f0(i) for i in range(2)]
    betas, front = [1e-4, 0.05, 0.4], MelSpectrogram()
    args = (demo.scheduler, demo.diffwave, betas, mels, audio, f0s, front)
    pitch, l1 = _score(*args, seed=3, repeats=2)
    (p3, d3), (p4, d4) = _score(*args, seed=3), _score(*args, seed=4)
    assert d3 != d4 and l1 == pytest.approx((d3 + d4) / 2)
    assert p3 is not None and p4 is not None and pitch == pytest.approx((p3 + p4) / 2)
    assert demo.schedule_net is not None
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        search_noise_schedule(
            demo.scheduler, demo.diffwave, demo.schedule_net, mels, audio, repeats=0
        )


def test_candidates_are_scored_at_the_temperature_the_folder_keeps(tmp_path: Path) -> None:
    from diffusers_hub_bddm.mel import MelSpectrogram
    from diffusers_hub_bddm.search import _score

    demo = BDDMPipeline.from_pretrained(DEMO_FOLDER)
    assert demo.schedule_net is not None
    notes = ToneDataset(2, SEGMENT, seed=1, f0_range=F0)
    mels = torch.stack([notes[i][1] for i in range(2)])
    audio = torch.stack([notes[i][0] for i in range(2)])
    f0s = [notes.f0(i) for i in range(2)]
    kwargs = {"f0s": f0s, "max_steps": 3, "bins": 2, "attempts": 0, "progress": False}
    net = demo.schedule_net

    def search(temperature: float) -> ScheduleSearchResult:
        return demo.scheduler.search(
            demo.diffwave, net, mels, audio, temperature=temperature, **kwargs
        )

    cold, warm = search(0.0), search(1.0)
    # the proposals do not depend on it; the scores do, and they are _score's at that temperature
    assert [c.betas for c in cold.candidates] == [c.betas for c in warm.candidates]
    assert [c.log_mel_l1 for c in cold.candidates] != [c.log_mel_l1 for c in warm.candidates]
    first = cold.candidates[0]
    args = (demo.scheduler, demo.diffwave, first.betas, mels, audio, f0s, MelSpectrogram())
    assert _score(*args, seed=1, temperature=0.0) == (first.pitch_accuracy, first.log_mel_l1)
    # the written folder samples at the temperature the schedule was chosen at
    cold.save(tmp_path / "scheduler")
    loaded = BDDMScheduler.from_pretrained(tmp_path / "scheduler")
    assert loaded.config.temperature == 0.0
    assert loaded.config.noise_schedule == pytest.approx(cold.betas)
    assert read_search_log(tmp_path / "scheduler")["temperature"] == 0.0
    with pytest.raises(ValueError, match=r"temperature must lie in \[0, 1\]"):
        search(2.0)
