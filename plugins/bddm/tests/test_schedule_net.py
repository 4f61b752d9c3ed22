"""BDDM's schedule network: shapes and bounds, the release's key names through `convert bddm`,
the step loss, and `train bddm-schedule` with the score network frozen."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers_hub_bddm.convert import convert_schedule_net_state_dict
from diffusers_hub_bddm.diffwave import DiffWave
from diffusers_hub_bddm.mel import MelSpectrogram
from diffusers_hub_bddm.pipeline import BDDMPipeline
from diffusers_hub_bddm.schedule_net import BDDMScheduleNetwork, sinusoidal_positions
from diffusers_hub_bddm.schedule_train import main as schedule_main
from diffusers_hub_bddm.schedule_train import step_loss
from diffusers_hub_bddm.scheduler import BDDMScheduler

from diffusers_hub.errors import WeightsError

SMALL: dict[str, Any] = {
    "input_dim": 16,
    "hidden_dim": 8,
    "window_length": 8,
    "segment_size": 8,
    "low_dim": 2,
    "attention_heads": 2,
    "max_segments": 300,
}


def _net(seed: int = 0, **fields: Any) -> BDDMScheduleNetwork:
    torch.manual_seed(seed)
    return BDDMScheduleNetwork(**{**SMALL, **fields}).eval()


def _release_state(net: BDDMScheduleNetwork) -> dict[str, torch.Tensor]:
    """The schedule network's entries as the release's DiffWave_GALR.pkl holds them."""
    state = {f"schedule_net.{k}": v.clone() for k, v in net.state_dict().items()}
    table = sinusoidal_positions(net.config.max_segments, net.config.input_dim)
    for n in range(net.config.blocks):
        state[f"schedule_net.ratio_nn.blocks.{n}.global_rnn.pos_enc.pe"] = table.clone()
    return state


def test_release_default_size() -> None:
    with torch.device("meta"):
        net = BDDMScheduleNetwork()
    assert net.num_parameters() == 383_050


@pytest.mark.parametrize("length", [1, 7, 500, 1601])
def test_beta_lies_under_both_bounds(length: int) -> None:
    net = _net()
    x = torch.randn(3, 1, length)
    beta_next = torch.tensor([0.5, 0.01, 0.2])
    scale = torch.tensor([0.1, 0.5, 0.999])
    out = net(x, beta_next, scale)
    assert out.beta.shape == out.ratio.shape == (3,)
    bound = torch.minimum(beta_next, 1 - scale**2)
    assert bool(((out.ratio > 0) & (out.ratio < 1)).all())
    torch.testing.assert_close(out.beta, bound * out.ratio)
    # (B, L) input and float arguments work too, and each clip is handled on its own
    single = net(x[1:2, 0], 0.01, 0.5)
    torch.testing.assert_close(single.beta, out.beta[1:2], rtol=1e-5, atol=1e-7)


def test_too_many_segments_and_bad_shapes() -> None:
    net = _net(max_segments=4)
    with pytest.raises(ValueError, match="max_segments"):
        net(torch.randn(1, 1, 400), 0.1, 0.5)
    with pytest.raises(ValueError, match="B, 1, L"):
        net(torch.randn(1, 2, 400), 0.1, 0.5)
    with pytest.raises(ValueError, match="even"):
        BDDMScheduleNetwork(window_length=7)
    with pytest.raises(ValueError, match="divide"):
        BDDMScheduleNetwork(input_dim=10, attention_heads=4)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    net = _net(3)
    net.save_pretrained(tmp_path)
    loaded = BDDMScheduleNetwork.from_pretrained(tmp_path).eval()
    x = torch.randn(2, 1, 300)
    torch.testing.assert_close(loaded(x, 0.3, 0.4).beta, net(x, 0.3, 0.4).beta)


def test_release_keys_convert_exactly() -> None:
    net = _net(1, blocks=2)
    converted = convert_schedule_net_state_dict(
        {"model_state_dict": _release_state(net)}, attention_heads=2
    )
    assert converted is not None
    state, fields = converted
    assert fields["blocks"] == 2 and fields["input_dim"] == 16 and fields["segment_size"] == 8
    assert fields["max_segments"] == 300
    fresh = BDDMScheduleNetwork(fields).eval()
    fresh.load_state_dict(state, strict=True)
    x = torch.randn(2, 1, 700)
    torch.testing.assert_close(fresh(x, 0.2, 0.6).beta, net(x, 0.2, 0.6).beta)
    assert convert_schedule_net_state_dict({"init_conv.0.conv.weight_g": torch.ones(1)}) is None


def test_release_keys_errors() -> None:
    state = _release_state(_net())
    extra = {**state, "schedule_net.ratio_nn.extra.weight": torch.ones(2)}
    with pytest.raises(WeightsError, match=r"Unexpected keys: ratio_nn\.extra\.weight"):
        convert_schedule_net_state_dict(extra, source="galr.pkl")
    missing = dict(state)
    del missing["schedule_net.ratio_nn.block_gate.1.bias"]
    with pytest.raises(WeightsError, match=r"galr\.pkl.*Missing keys: ratio_nn\.block_gate"):
        convert_schedule_net_state_dict(missing, source="galr.pkl")
    bad = dict(state)
    bad["schedule_net.ratio_nn.blocks.0.local_rnn.proj.weight"] = torch.ones(3, 3)
    with pytest.raises(WeightsError, match="Shape mismatches"):
        convert_schedule_net_state_dict(bad)
    table = dict(state)
    table["schedule_net.ratio_nn.blocks.0.global_rnn.pos_enc.pe"] = torch.zeros(300, 1, 16)
    with pytest.raises(WeightsError, match="sinusoidal"):
        convert_schedule_net_state_dict(table)


def test_step_loss_matches_the_release_formula() -> None:
    g = torch.Generator().manual_seed(0)
    z, e = torch.randn(2, 1, 50, generator=g), torch.randn(2, 1, 50, generator=g)
    beta, d2 = torch.tensor([0.01, 0.2]), torch.tensor([0.3, 0.5])
    got = step_loss(z, e, beta, d2)
    for i in range(2):
        b, d = float(beta[i]), float(d2[i])
        fit = d / (2 * (d - b)) * (z[i] - b / d * e[i]).square()
        total = (fit + math.log(1e-8 + d / (b + 1e-8)) / 4).sum() + (b / d - 1) / 2 * 50
        assert float(got[i]) == pytest.approx(float(total) / 50, rel=1e-5)


def test_step_loss_is_smallest_near_the_right_beta() -> None:
    # with a perfect score network (eps = z) the bound is tightest for beta -> delta^2 ... but
    # with a useless one (eps = 0) the log term pushes beta towards a small fraction of delta^2
    z = torch.randn(1, 1, 4000, generator=torch.Generator().manual_seed(1))
    d2 = torch.tensor([0.5])
    betas = torch.linspace(0.01, 0.45, 45)
    useless = torch.stack([step_loss(z, torch.zeros_like(z), b[None], d2) for b in betas])
    perfect = torch.stack([step_loss(z, z, b[None], d2) for b in betas])
    assert int(perfect.argmin()) > int(useless.argmin())


def test_train_bddm_schedule_freezes_the_score_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    diffwave = DiffWave(num_res_layers=2, res_channels=8, skip_channels=8, dilation_cycle=2)
    torch.nn.init.normal_(diffwave.out_conv.weight, std=0.1)
    BDDMPipeline(
        diffwave=diffwave, scheduler=BDDMScheduler(), mel=MelSpectrogram()
    ).save_pretrained(tmp_path / "vocoder")
    args = ["--model", str(tmp_path / "vocoder"), "--items", "16", "--segment", "1024"]
    args += ["--batch-size", "2", "--input-dim", "8", "--hidden-dim", "4", "--segment-size", "8"]
    args += ["--low-dim", "2", "--attention-heads", "2", "--no-progress", "--seed", "3"]
    assert schedule_main([*args, "--steps", "3", "--out", str(tmp_path / "a")]) == 0
    out = BDDMPipeline.from_pretrained(tmp_path / "a")
    assert isinstance(out.schedule_net, BDDMScheduleNetwork)
    for key, value in diffwave.state_dict().items():
        torch.testing.assert_close(out.diffwave.state_dict()[key], value)
    fresh = BDDMScheduleNetwork(out.schedule_net.config)
    assert any(
        not torch.equal(p, q)
        for p, q in zip(fresh.state_dict().values(), out.schedule_net.state_dict().values())
    )
    # exact resume: 2 steps, then 1 more from the checkpoint, equals 3 steps in one go
    every = ["--checkpoint-every", "2", "--out", str(tmp_path / "b")]
    assert schedule_main([*args, "--steps", "2", *every]) == 0
    assert schedule_main([*args, "--steps", "3", *every, "--resume"]) == 0
    resumed = BDDMPipeline.from_pretrained(tmp_path / "b").schedule_net
    assert resumed is not None
    for key, value in out.schedule_net.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value)
    with pytest.raises(SystemExit, match="--tau"):
        schedule_main([*args, "--steps", "1", "--tau", "100", "--out", str(tmp_path / "c")])
