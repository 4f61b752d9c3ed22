"""The vocoder evaluation: repeats with fresh sampling noise, and the ``bddm evaluate`` command."""

from __future__ import annotations

import json

import pytest
from diffusers_hub_bddm.data import ToneDataset
from diffusers_hub_bddm.evaluate import evaluate_vocoder
from diffusers_hub_bddm.hooks import DEMO_FOLDER
from diffusers_hub_bddm.pipeline import BDDMPipeline

from diffusers_hub.cli import main as cli_main

F0 = (220.0, 880.0)


@pytest.fixture(scope="module")
def demo() -> BDDMPipeline:
    pipe = BDDMPipeline.from_pretrained(DEMO_FOLDER)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_repeats_are_the_runs_of_the_later_seeds_averaged(demo: BDDMPipeline) -> None:
    notes = ToneDataset(5, 1024, seed=1, f0_range=F0)
    kwargs = {"num_inference_steps": 3, "batch_size": 2}  # 3 batches per repeat
    both = evaluate_vocoder(demo, notes, seed=4, repeats=2, **kwargs)
    first = evaluate_vocoder(demo, notes, seed=4, **kwargs)
    second = evaluate_vocoder(demo, notes, seed=4 + 3, **kwargs)
    assert both.repeats == 2 and both.num_clips == 5 and both.num_steps == 3
    assert both.pitch_accuracy_per_repeat == (first.pitch_accuracy, second.pitch_accuracy)
    assert both.pitch_accuracy == pytest.approx((first.pitch_accuracy + second.pitch_accuracy) / 2)
    assert both.log_mel_l1 == pytest.approx((first.log_mel_l1 + second.log_mel_l1) / 2)
    # other noise: the two repeats vocode differently
    assert first.log_mel_l1 != second.log_mel_l1
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        evaluate_vocoder(demo, notes, repeats=0)


def test_evaluate_command_prints_the_scores(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bddm", "evaluate", "--model", str(DEMO_FOLDER), "--clips", "3", "--segment", "1024"]
    args += ["--f0-range", *map(str, F0), "--steps", "3", "--repeats", "2"]
    assert cli_main(args) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["num_clips"] == 3 and scores["num_steps"] == 3 and scores["repeats"] == 2
    per_repeat = scores["pitch_accuracy_per_repeat"]
    assert len(per_repeat) == 2 and scores["pitch_accuracy"] == pytest.approx(sum(per_repeat) / 2)
    assert 0.0 < scores["log_mel_l1"] < 7.0


def test_evaluate_command_takes_a_temperature(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bddm", "evaluate", "--model", str(DEMO_FOLDER), "--clips", "2", "--segment", "1024"]
    args += ["--f0-range", *map(str, F0), "--steps", "3"]
    scores = {}
    for temperature in ("0", "1", "1"):
        assert cli_main([*args, "--temperature", temperature]) == 0
        scores.setdefault(temperature, []).append(
            json.loads(capsys.readouterr().out.strip().splitlines()[-1])["log_mel_l1"]
        )
    assert scores["1"][0] == scores["1"][1] != scores["0"][0]
    assert cli_main([*args, "--temperature", "3"]) != 0


def test_the_search_picks_on_other_notes_than_the_evaluation_reports() -> None:
    from diffusers_hub.cli import build_parser

    parser = build_parser()
    search = parser.parse_args(["bddm", "search", "--model", "m", "--out", "o"])
    evaluate = parser.parse_args(["bddm", "evaluate", "--model", "m"])
    # training notes are seed 0; a schedule chosen on the evaluation's notes would be scored on
    # the notes it was picked on
    assert len({0, search.data_seed, evaluate.data_seed}) == 3
    assert search.items >= 16  # 8 notes could not tell the best candidates apart
