"""Tests of diffusers_hub.training: loss goes down, exact resume, EMA math, DDP on 2 CPU ranks."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from diffusers_hub.training import (
    EMAModel,
    ResumableDistributedSampler,
    TensorImageDataset,
    TrainingConfig,
    TrainingResult,
    diffusion_loss_inputs,
    ema_decay,
    find_latest_checkpoint,
    train,
)


class FakeScheduler:
    """Linear-beta forward process with an epsilon target (enough for the loop)."""

    def __init__(self, num_train_timesteps: int = 50) -> None:
        self.config = SimpleNamespace(num_train_timesteps=num_train_timesteps)
        betas = torch.linspace(1e-4, 0.2, num_train_timesteps, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1 - betas, 0).float()

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def training_target(
        self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        return noise


class TinyDenoiser(nn.Module):
    """A conv net fed the timestep as an extra channel; has dropout to exercise the RNG."""

    def __init__(self, channels: int = 1, num_train_timesteps: int = 50) -> None:
        super().__init__()
        self.num_train_timesteps = num_train_timesteps
        self.conv1 = nn.Conv2d(channels + 1, 16, 3, padding=1)
        self.drop = nn.Dropout(0.1)
        self.conv2 = nn.Conv2d(16, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = (t.float() / self.num_train_timesteps).view(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
        h = torch.nn.functional.silu(self.conv1(torch.cat([x, tt], dim=1)))
        return self.conv2(self.drop(h))


class StateSaver:
    """A stand-in pipeline: saves the model's state dict."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def save_pretrained(self, directory: str | Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), Path(directory) / "weights.pt")


def _dataset(n: int = 8) -> TensorImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 6, 6, generator=g) * 2 - 1
    return TensorImageDataset(images, random_flip=True)


def _config(tmp: Path, **kw: object) -> TrainingConfig:
    base: dict[str, object] = {
        "steps": 6,
        "batch_size": 2,
        "lr": 1e-3,
        "ema_decay": 0.9,
        "checkpoint_every": 3,
        "out_dir": tmp,
        "log_every": 1,
        "progress": False,
        "device": "cpu",
        "seed": 123,
    }
    base.update(kw)
    return TrainingConfig.model_validate(base)


def _run(
    tmp: Path,
    model: Callable[[], nn.Module] = TinyDenoiser,
    options: dict[str, Any] | None = None,
    **kw: object,
) -> TrainingResult:
    """``train`` on the tiny set-up: ``kw`` changes the config, ``options`` are ``train``'s own."""
    train_options = {"pipeline_factory": lambda m, s: StateSaver(m), **(options or {})}
    return train(model, _dataset(), FakeScheduler(), _config(tmp, **kw), **train_options)


def test_loss_goes_down_on_a_trivial_dataset(tmp_path: Path) -> None:
    images = torch.full((16, 1, 6, 6), 0.5)  # one image: the optimum predicts eps from x_t
    result = train(
        lambda: TinyDenoiser(),
        TensorImageDataset(images),
        FakeScheduler(),
        _config(tmp_path, steps=80, batch_size=8, lr=1e-2, checkpoint_every=0, grad_clip=None),
        pipeline_factory=lambda m, s: StateSaver(m),
    )
    losses = [loss for _, loss in result.losses]
    assert len(losses) == 80
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)
    assert (tmp_path / "weights.pt").is_file()
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 81))


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path: Path) -> None:
    full = _run(tmp_path / "full")
    _run(tmp_path / "split", steps=3)
    assert find_latest_checkpoint(tmp_path / "split") == (
        tmp_path / "split" / "checkpoints" / "checkpoint-00000003"
    )
    resumed = _run(tmp_path / "split", steps=6, resume_from="latest")
    assert resumed.resumed_from is not None and resumed.step == 6
    # Crosses an epoch boundary (4 batches per epoch) after resuming mid-epoch at step 3.
    for a, b in ((full.model, resumed.model), (full.ema_model, resumed.ema_model)):
        assert a is not None and b is not None
        sa, sb = a.state_dict(), b.state_dict()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key
    # The logged losses of the resumed part match too.
    assert resumed.losses == full.losses[3:]
    final = torch.load(tmp_path / "split" / "weights.pt", weights_only=True)
    assert torch.equal(final["conv1.weight"], full.ema_model.state_dict()["conv1.weight"])


def test_checkpoint_rotation_and_explicit_resume_path(tmp_path: Path) -> None:
    _run(tmp_path, steps=6, checkpoint_every=1, checkpoints_to_keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["checkpoint-00000005", "checkpoint-00000006"]
    state = json.loads((tmp_path / "checkpoints" / names[0] / "trainer_state.json").read_text())
    assert state["step"] == 5
    with pytest.raises(FileNotFoundError, match="not a training checkpoint"):
        _run(tmp_path / "other", resume_from=str(tmp_path))
    result = _run(tmp_path / "more", steps=7, resume_from=str(tmp_path / "checkpoints" / names[0]))
    assert result.losses[0][0] == 6 and result.step == 7


def test_cosine_lr_schedule_follows_the_warmup(tmp_path: Path) -> None:
    import math

    _run(tmp_path, steps=10, lr=1e-2, lr_warmup_steps=2, lr_schedule="cosine", checkpoint_every=0)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    lrs = [record["lr"] for record in log]
    # The rate logged after step k is the one of step k + 1: warmup 2 steps, then half a cosine.
    expected = [1e-2] + [1e-2 * 0.5 * (1 + math.cos(math.pi * (k - 2) / 8)) for k in range(3, 11)]
    assert lrs[1:] == pytest.approx(expected, abs=1e-12)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    constant = _run(tmp_path / "constant", steps=4, lr=1e-2, checkpoint_every=0)
    assert constant.step == 4
    log = (tmp_path / "constant" / "train_log.jsonl").read_text().splitlines()
    assert {json.loads(line)["lr"] for line in log} == {1e-2}


def test_init_from_needs_a_saved_model_class(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="TinyDenoiser is not a ModelMixin"):
        _run(tmp_path, init_from=str(tmp_path))


def test_init_from_a_checkpoint_takes_its_ema_weights(tmp_path: Path) -> None:
    from diffusers_hub.training.checkpoints import load_checkpoint_weights

    first = _run(tmp_path / "first", steps=2, checkpoint_every=2)
    assert first.ema_model is not None
    folder = tmp_path / "first" / "checkpoints" / "checkpoint-00000002"
    state = torch.load(folder / "training_state.pt", weights_only=True)
    for source in (folder, folder / "training_state.pt"):
        model = TinyDenoiser()
        assert load_checkpoint_weights(model, source)
        for key, value in model.state_dict().items():
            assert torch.equal(value, state["ema"]["shadow"][key]), key
            assert torch.equal(value, first.ema_model.state_dict()[key]), key
    assert not load_checkpoint_weights(TinyDenoiser(), tmp_path)  # not a checkpoint
    # a run started from it: its first step starts at those weights (and needs no ModelMixin)
    tuned = _run(tmp_path / "tuned", steps=1, lr=1e-12, checkpoint_every=0, init_from=str(folder))
    assert tuned.model is not None
    for key, value in tuned.model.state_dict().items():
        torch.testing.assert_close(value, state["ema"]["shadow"][key], atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match=r"conv1.weight \(checkpoint \(16, 2, 3, 3\), run \(16, 3"):
        _run(tmp_path / "wide", model=lambda: TinyDenoiser(channels=2), init_from=str(folder))
    truncated = tmp_path / "cut" / "training_state.pt"
    truncated.parent.mkdir()
    truncated.write_bytes((folder / "training_state.pt").read_bytes()[:300])
    with pytest.raises(ValueError, match=r"cut/training_state.pt is not a readable training"):
        load_checkpoint_weights(TinyDenoiser(), truncated.parent)


def test_ema_decay_warmup() -> None:
    assert ema_decay(0, 0.999) == pytest.approx(0.1)
    assert ema_decay(10, 0.999) == pytest.approx(11 / 20)
    assert ema_decay(10**6, 0.999) == 0.999
    assert ema_decay(0, 0.5, warmup=False) == 0.5
    with pytest.raises(ValueError):
        ema_decay(0, 1.5)


def test_ema_update_math() -> None:
    net = nn.Linear(3, 2)
    net.register_buffer("count", torch.tensor(0))
    ema = EMAModel(net, decay=0.9, warmup=False)
    shadow0 = ema.shadow.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
        net.count += 5  # type: ignore[operator]
    w1 = net.weight.detach().clone()
    ema.update(net)
    torch.testing.assert_close(ema.shadow.weight, 0.9 * shadow0 + 0.1 * w1, rtol=0, atol=1e-7)
    assert int(ema.shadow.count) == 5  # integer buffers are copied
    ema.update(net)
    expected = 0.9 * (0.9 * shadow0 + 0.1 * w1) + 0.1 * w1
    torch.testing.assert_close(ema.shadow.weight, expected, rtol=0, atol=1e-6)
    assert not any(p.requires_grad for p in ema.shadow.parameters())

    restored = EMAModel(nn.Linear(3, 2), decay=0.5)
    restored.shadow.register_buffer("count", torch.tensor(0))
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 2 and restored.decay == 0.9 and not restored.warmup
    target = nn.Linear(3, 2)
    target.register_buffer("count", torch.tensor(0))
    restored.copy_to(target)
    assert torch.equal(target.weight, ema.shadow.weight)


def test_resumable_sampler_skips_the_start_of_an_epoch() -> None:
    ds = _dataset(10)
    full = ResumableDistributedSampler(ds, num_replicas=2, rank=1, seed=3)
    full.set_epoch(4)
    order = list(full)
    assert len(order) == 5
    part = ResumableDistributedSampler(ds, num_replicas=2, rank=1, seed=3)
    part.set_epoch(4, start=2)
    assert list(part) == order[2:] and len(part) == 3
    with pytest.raises(ValueError):
        part.set_epoch(0, start=6)


def test_loss_inputs_follow_the_scheduler() -> None:
    sched = FakeScheduler()
    x0 = torch.zeros(4, 1, 2, 2)
    g = torch.Generator().manual_seed(0)
    x_t, t, target = diffusion_loss_inputs(sched, x0, generator=g)
    assert t.dtype == torch.int64 and t.shape == (4,) and int(t.max()) < 50
    abar = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(x_t, (1 - abar).sqrt() * target)


def test_too_small_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lower --batch-size"):
        _run(tmp_path, batch_size=16)


_DDP_SCRIPT = """
import sys, torch
sys.path.insert(0, {test_dir!r})
torch.set_num_threads(1)
from pathlib import Path
from test_training import TinyDenoiser, FakeScheduler, StateSaver, _dataset, _config
from diffusers_hub.training import train, init_distributed, shutdown_distributed

ctx = init_distributed("cpu")
out = Path({out!r})
result = train(TinyDenoiser, _dataset(16), FakeScheduler(), _config(out / "run", steps=4),
               pipeline_factory=lambda m, s: StateSaver(m), ctx=ctx)
torch.save({{"model": result.model.state_dict(), "ema": result.ema_model.state_dict(),
            "backend": ctx.backend, "world": ctx.world_size}}, out / f"rank{{ctx.rank}}.pt")

# The same processes run a train command whose model has a frozen part and a custom loss.
from test_training import FrozenPair, _distill_loss
from diffusers_hub.training import TrainCommand, TrainJob, run_training, training_config

def prepare(args, ctx):
    return TrainJob(FrozenPair, _dataset(16), FakeScheduler(), lambda m, s: StateSaver(m.student),
                    loss=_distill_loss, frozen=("teacher",))

command = TrainCommand("distill", "a frozen teacher", lambda p: None, prepare)
args = command.build_parser().parse_args(
    ["--steps", "4", "--batch-size", "2", "--log-every", "1", "--seed", "5", "--device", "cpu",
     "--no-progress", "--out", str(out / "distill")])
result = run_training(prepare(args, ctx), training_config(args), ctx=ctx)
torch.save(result.model.state_dict(), out / f"distill{{ctx.rank}}.pt")
shutdown_distributed(ctx)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ddp_two_cpu_ranks_hold_identical_weights(tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(
        textwrap.dedent(_DDP_SCRIPT).format(test_dir=str(Path(__file__).parent), out=str(tmp_path))
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(script),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == 2 and r0["backend"] == "gloo"
    for part in ("model", "ema"):
        for key in r0[part]:
            assert torch.equal(r0[part][key], r1[part][key]), (part, key)
    # It trained (weights moved from the seeded init), and only rank 0 wrote the outputs.
    torch.manual_seed(123)
    init = TinyDenoiser().state_dict()
    assert not torch.equal(init["conv1.weight"], r0["model"]["conv1.weight"])
    assert (tmp_path / "run" / "weights.pt").is_file()
    ckpt = torch.load(
        tmp_path / "run" / "checkpoints" / "checkpoint-00000003" / "training_state.pt",
        weights_only=True,
    )
    assert len(ckpt["rng"]) == 2 and ckpt["world_size"] == 2

    # The train command: the ranks agree, only the part that is not frozen moved.
    d0 = torch.load(tmp_path / "distill0.pt", weights_only=True)
    d1 = torch.load(tmp_path / "distill1.pt", weights_only=True)
    torch.manual_seed(5)
    init = FrozenPair().state_dict()
    for key, value in d0.items():
        assert torch.equal(value, d1[key]), key
        assert torch.equal(value, init[key]) == key.startswith("teacher."), key
    log = (tmp_path / "distill" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1, 2, 3, 4]
    assert "gap" in json.loads(log[0]) and (tmp_path / "distill" / "weights.pt").is_file()


class FrozenPair(nn.Module):
    """A trainable denoiser beside a frozen one (with dropout, to check it stays in eval mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.student = TinyDenoiser()
        self.teacher = TinyDenoiser()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.student(x, t), self.teacher(x, t)


def _distill_loss(
    model: nn.Module, batch: torch.Tensor, scheduler: FakeScheduler, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """A custom objective: regress the student onto the frozen teacher; logs a second term."""
    t = torch.randint(0, 50, (batch.shape[0],), generator=generator)
    student, teacher = model(batch, t)
    gap = (student - teacher).abs().max()
    return {"gap": gap, "loss": (student - teacher).pow(2).mean()}


def test_custom_loss_trains_only_what_is_not_frozen(tmp_path: Path) -> None:
    options = {
        "pipeline_factory": lambda m, s: StateSaver(m.student),
        "loss_fn": _distill_loss,
        "frozen": ("teacher",),
    }

    def run(out: Path, **kw: object) -> TrainingResult:
        return _run(out, FrozenPair, options, **kw)

    full = run(tmp_path / "full")
    torch.manual_seed(123)
    init = FrozenPair().state_dict()
    trained = full.model.state_dict()
    assert not full.model.teacher.training and full.model.student.training
    assert not any(p.requires_grad for p in full.model.teacher.parameters())
    for key, value in init.items():
        assert torch.equal(value, trained[key]) == key.startswith("teacher."), key
    # Only the student is exported, and exact resume holds with a custom loss.
    assert set(torch.load(tmp_path / "full" / "weights.pt", weights_only=True)) == {
        "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"
    }  # fmt: skip
    log = [json.loads(r) for r in (tmp_path / "full" / "train_log.jsonl").read_text().splitlines()]
    assert [list(r) for r in log[:1]] == [["step", "loss", "gap", "lr"]]
    assert [r["loss"] for r in log] == [loss for _, loss in full.losses]
    run(tmp_path / "split", steps=3)
    resumed = run(tmp_path / "split", resume_from="latest")
    for key, value in trained.items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert resumed.losses == full.losses[3:]
    with pytest.raises(ValueError, match="no sub-module of that name"):
        train(FrozenPair, _dataset(), FakeScheduler(), _config(tmp_path / "x"), frozen=("nope",))
    with pytest.raises(TypeError, match="not both"):
        train(
            TinyDenoiser,
            _dataset(),
            FakeScheduler(),
            _config(tmp_path / "y"),
            loss_fn=_distill_loss,
            forward_fn=lambda m, x, t, y: m(x, t),
        )


def test_the_sample_hook_does_not_change_the_run(tmp_path: Path) -> None:
    calls: list[tuple[str, bool]] = []

    def sample(ema_model: nn.Module, scheduler: FakeScheduler, folder: Path) -> None:
        torch.rand(100)  # consumes the global RNG: must not leak into training
        calls.append((folder.name, ema_model.training))
        folder.mkdir(parents=True)

    plain = _run(tmp_path / "plain")
    sampled = _run(tmp_path / "sampled", options={"sample_fn": sample}, sample_every=4)
    assert calls == [("step-00000004", False), ("step-00000006", False)]
    assert (tmp_path / "sampled" / "samples" / "step-00000004").is_dir()
    assert sampled.losses == plain.losses
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, sampled.model.state_dict()[key]), key
    with pytest.raises(ValueError, match="no sample hook"):
        _run(tmp_path / "none", sample_every=2)


def test_the_train_command_docstring_example_runs() -> None:
    import doctest

    pytest.importorskip("diffusers_hub_ddpm")
    from diffusers_hub.training import command

    failures, tried = doctest.testmod(command, optionflags=doctest.ELLIPSIS)
    assert tried > 5 and failures == 0


def test_train_command_common_options_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from diffusers_hub.training import TrainCommand, TrainJob, training_config

    def prepare(args: object, ctx: object) -> TrainJob:
        return TrainJob(TinyDenoiser, _dataset(), FakeScheduler(), lambda m, s: StateSaver(m))

    cmd = TrainCommand("toy", "a toy", lambda p: None, prepare, defaults={"steps": 2, "lr": 0.5})
    args = cmd.build_parser().parse_args(["--out", str(tmp_path), "--grad-clip", "0"])
    config = training_config(args)
    assert (config.steps, config.lr, config.grad_clip, config.out_dir) == (2, 0.5, None, tmp_path)
    assert config.checkpoints_to_keep == 2 and config.batch_size == 16
    with pytest.raises(SystemExit):
        cmd.main(["--out", str(tmp_path), "--batch-size", "0"])
    assert "--batch-size 0: Input should be greater than 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cmd.main(["--out", str(tmp_path), "--sample-every", "1", "--device", "cpu"])
    assert "train toy has no sample hook" in capsys.readouterr().err
    from diffusers_hub.training import comma_list

    assert comma_list(int)("32, 64,64,") == (32, 64, 64)
    assert comma_list(str)("DownBlock2D,AttnDownBlock2D") == ("DownBlock2D", "AttnDownBlock2D")
    for bad, message in (("3,x", "comma list of int values, got '3,x'"), (",", "at least one")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            comma_list(int)(bad)
    with pytest.raises(ValueError, match="not common options"):
        TrainCommand("bad", "", lambda p: None, prepare, defaults={"depth": 3}).build_parser()
    code = cmd.main(
        ["--out", str(tmp_path), "--no-progress", "--device", "cpu", "--batch-size", "2"]
    )
    assert code == 0 and (tmp_path / "weights.pt").is_file()
    assert "saved the pipeline (EMA weights)" in capsys.readouterr().out
