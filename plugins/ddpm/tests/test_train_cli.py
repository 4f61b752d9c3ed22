"""``train ddpm`` smoke runs, the trainer and demo hooks, and the builtin digits data set."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers_hub_ddpm import hooks
from diffusers_hub_ddpm.train import digits_file, digits_tensors, main

from diffusers_hub import registry

TINY = ["--block-out-channels", "16,32", "--norm-num-groups", "8", "--batch-size", "8"]


def _args(data: str, out: Path, *extra: str, steps: int = 2) -> list[str]:
    """``train ddpm`` arguments for a quick CPU run of the tiny model on ``data`` into ``out``."""
    args = ["--data", data, "--steps", str(steps), "--out", str(out), *extra]
    return [*args, "--no-progress", "--device", "cpu", *TINY]


def _trainer_from_hook() -> object:
    """Resolve ``train ddpm`` the way the CLI does: hook -> "module:function"."""
    target = hooks.diffusers_hub_trainers()["ddpm"]
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def test_train_ddpm_digits_smoke_run_writes_a_loadable_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "run"
    trainer = _trainer_from_hook()
    assert trainer is main
    code = main(_args("digits", out, "--checkpoint-every", "3", "--log-every", "1", steps=3))
    assert code == 0
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "DDPMPipeline"
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (out / "scheduler" / "scheduler_config.json").is_file()
    assert (out / "checkpoints" / "checkpoint-00000003" / "training_state.pt").is_file()
    unet_config = json.loads((out / "unet" / "config.json").read_text())
    assert unet_config["sample_size"] == 16 and unet_config["in_channels"] == 1
    assert unet_config["block_out_channels"] == [16, 32]

    from diffusers_hub_ddpm.pipeline import DDPMPipeline

    from diffusers_hub.pipeline import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(out)
    assert isinstance(pipe, DDPMPipeline)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    images = pipe(batch_size=2, generator=generator, num_inference_steps=2, output_type="np").images
    assert np.asarray(images).shape == (2, 16, 16, 1)

    # --resume continues from the newest checkpoint up to the new --steps.
    assert main(_args("digits", out, "--resume", "--log-every", "1", steps=4)) == 0
    steps = [
        json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4]


def test_train_ddpm_on_an_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "out"
    code = main(
        _args(str(folder), out, "--resolution", "8", "--checkpoint-every", "0", "--random-flip")
    )
    assert code == 0
    config = json.loads((out / "unet" / "config.json").read_text())
    assert config["in_channels"] == 3 and config["sample_size"] == 8


def test_unknown_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="neither a folder of images nor a builtin"):
        main(["--data", str(tmp_path / "missing"), "--steps", "1", "--out", str(tmp_path)])


def test_digits_dataset() -> None:
    with np.load(digits_file()) as data:
        assert data["images"].shape == (1797, 8, 8) and data["images"].dtype == np.uint8
        assert int(data["images"].max()) == 16
        assert sorted(set(data["labels"].tolist())) == list(range(10))
    images, labels = digits_tensors(16)
    assert images.shape == (1797, 1, 16, 16) and labels.shape == (1797,)
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    native, _ = digits_tensors(8)
    assert float(native.max()) == 1.0 and float(native.min()) == -1.0


def test_hooks_are_import_light_and_point_at_the_demo() -> None:
    code = (
        "import sys; import diffusers_hub_ddpm.hooks as h; "
        "assert 'torch' not in sys.modules, 'hooks imported torch'; "
        "print(sorted(h.diffusers_hub_trainers()))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['ddpm']"
    demos = hooks.diffusers_hub_demo_checkpoints()
    if (hooks.DEMO_FOLDER / "model_index.json").is_file():
        assert demos == {"ddpm": str(hooks.DEMO_FOLDER)}
        assert registry.demo_checkpoint("DDPMPipeline") == demos["ddpm"]  # any pipeline name
        assert Path(demos["ddpm"]).is_dir()
    else:
        assert demos == {}


def test_diffusers_hub_train_ddpm_command(tmp_path: Path) -> None:
    cli = pytest.importorskip("diffusers_hub.cli")
    out = tmp_path / "cli"
    args = ["train", "ddpm", *_args("digits", out, "--checkpoint-every", "0")]
    assert cli.main(args) == 0
    assert (out / "model_index.json").is_file()
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def test_sample_every_writes_a_grid_of_the_ema_model(tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "sampled"
    extra = ["--sample-every", "2", "--sample-images", "4", "--sample-steps", "2"]
    assert main(_args("digits", out, "--checkpoint-every", "0", *extra)) == 0
    with Image.open(out / "samples" / "step-00000002" / "samples.png") as grid:
        assert grid.size == (2 * 16 + 1, 2 * 16 + 1) and grid.mode == "L"
