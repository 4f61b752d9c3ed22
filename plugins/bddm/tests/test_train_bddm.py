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


@pytest.mark.slow
def test_train_bddm_init_from_fine_tunes_saved_weights(tmp_path: Path) -> None:
    """--init-from starts from a saved pipeline's DiffWave; another architecture is refused."""
    import torch
    from diffusers_hub_bddm.diffwave import DiffWave

    base = tmp_path / "base"
    assert main([*TINY, "--steps", "2", "--checkpoint-every", "0", "--out", str(base)]) == 0
    tuned = tmp_path / "tuned"
    options = ["--steps", "1", "--lr", "1e-9", "--seed", "5", "--checkpoint-every", "0"]
    assert main([*TINY, *options, "--init-from", str(base), "--out", str(tuned)]) == 0
    before, after = DiffWave.from_pretrained(base), DiffWave.from_pretrained(tuned)
    fresh = tmp_path / "fresh"
    assert main([*TINY, *options, "--out", str(fresh)]) == 0
    other = DiffWave.from_pretrained(fresh)
    for key, value in before.state_dict().items():
        assert torch.allclose(after.state_dict()[key], value, atol=1e-6), key
    assert not torch.allclose(other.state_dict()["init_conv.weight"], before.init_conv.weight)
    wider = [*TINY, *options, "--res-channels", "12", "--init-from", str(base)]
    with pytest.raises(ValueError, match=r"res_channels \(run 12, saved 8\)"):
        main([*wider, "--out", str(tmp_path / "wider")])


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


@pytest.mark.slow
def test_train_bddm_grow_from_deepens_and_widens_a_saved_network(tmp_path: Path) -> None:
    """--grow-from starts a deeper or wider network at the saved one's function; bad pairs are
    refused."""
    import torch
    from diffusers_hub_bddm.diffwave import DiffWave

    base = tmp_path / "base"
    assert main([*TINY, "--steps", "2", "--checkpoint-every", "0", "--out", str(base)]) == 0
    options = ["--steps", "1", "--lr", "1e-9", "--checkpoint-every", "0"]
    deeper = [*TINY, *options, "--num-res-layers", "4", "--grow-from", str(base)]
    assert main([*deeper, "--out", str(tmp_path / "deep")]) == 0
    assert main([*deeper, "--res-channels", "12", "--out", str(tmp_path / "wide")]) == 0
    small = DiffWave.from_pretrained(base)
    x, mel = torch.randn(2, 1, 512), torch.randn(2, 80, 3)
    for name, channels in [("deep", 8), ("wide", 12)]:
        grown = DiffWave.from_pretrained(tmp_path / name)
        assert grown.config.num_res_layers == 4
        assert grown.config.res_channels == grown.config.skip_channels == channels
        with torch.no_grad():
            torch.testing.assert_close(grown(x, 17, mel).sample, small(x, 17, mel).sample)
    with pytest.raises(SystemExit, match=r"dilation_cycle \(run 3, saved 2\)"):
        main([*deeper, "--dilation-cycle", "3", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="it has 2 residual layers of 8 channels"):
        main([*TINY, *options, "--grow-from", str(base), "--out", str(tmp_path / "y")])
    with pytest.raises(SystemExit, match="may not be smaller"):
        main([*deeper, "--res-channels", "4", "--out", str(tmp_path / "y")])
    with pytest.raises(SystemExit, match="give one"):
        main([*deeper, "--init-from", str(base), "--out", str(tmp_path / "z")])
