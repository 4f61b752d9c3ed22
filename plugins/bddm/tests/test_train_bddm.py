"""``diffusers-hub train bddm``: a tiny run end to end, resumed, and its option errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from diffusers_hub_bddm.train import build_parser, main

TINY = [
    "--items", "8",
    "--segment", "1024",
    "--num-res-layers", "2",
    "--res-channels", "8",
    "--dilation-cycle", "2",
    "--embed-dim", "16",
    "--batch-size", "4",
    "--log-every", "1",
    "--no-progress",
    "--device", "cpu",
]  # fmt: skip


@pytest.mark.slow
def test_train_bddm_writes_a_loadable_pipeline_and_resumes(tmp_path: Path) -> None:
    from diffusers_hub_bddm.pipeline import BDDMPipeline

    from diffusers_hub import DiffusionPipeline

    out = tmp_path / "run"
    assert main([*TINY, "--steps", "2", "--checkpoint-every", "2", "--out", str(out)]) == 0
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "BDDMPipeline"
    pipe = DiffusionPipeline.from_pretrained(out)
    assert isinstance(pipe, BDDMPipeline)
    assert pipe.diffwave.config.num_res_layers == 2 and pipe.diffwave.config.res_channels == 8
    assert pipe.scheduler.config.num_train_timesteps == 200
    assert main([*TINY, "--steps", "3", "--resume", "--out", str(out)]) == 0
    log = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3]


def test_train_bddm_options() -> None:
    args = build_parser().parse_args(["--steps", "5", "--out", "x"])
    assert (args.batch_size, args.lr, args.ema_decay, args.checkpoint_every) == (
        16,
        2e-4,
        0.999,
        1000,
    )
    assert args.noise_schedule == "ljspeech-12" and args.num_train_timesteps == 200
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--out", "x"])  # --steps is required
