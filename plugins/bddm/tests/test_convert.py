"""The BDDM converter: weight-norm folding, key mapping, parity with a functional re-statement of
the original network, checkpoint and noise-schedule files."""

from __future__ import annotations

import argparse
import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers_hub_bddm.convert import (
    convert_bddm_state_dict,
    fold_weight_norm,
    load_bddm_checkpoint,
    load_noise_schedule,
)
from diffusers_hub_bddm.diffwave import DiffWave, DiffWaveConfig
from torch import Tensor, nn
from torch.nn import functional as F

from diffusers_hub.errors import WeightsError

from .conftest import SMALL

BLOCK = "residual_layer.residual_blocks"


# -- the original network, re-stated from the paper and the release's layer list -----------------


def original_state_dict(cfg: dict[str, Any], seed: int = 0) -> dict[str, Tensor]:
    """Random weights in the layout of BDDM's ``DiffWave.state_dict()`` (weight-normalised)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}

    def normed(prefix: str, shape: tuple[int, ...]) -> None:
        state[f"{prefix}.weight_g"] = 0.5 + torch.rand(
            shape[0], *([1] * (len(shape) - 1)), generator=g
        )
        state[f"{prefix}.weight_v"] = torch.randn(shape, generator=g)
        bias_size = shape[1] if prefix.split(".")[-2] == "upsample_conv2d" else shape[0]
        state[f"{prefix}.bias"] = 0.1 * torch.randn(bias_size, generator=g)

    def plain(prefix: str, shape: tuple[int, ...]) -> None:
        state[f"{prefix}.weight"] = torch.randn(shape, generator=g) / math.sqrt(shape[1])
        state[f"{prefix}.bias"] = 0.1 * torch.randn(shape[0], generator=g)

    res, skip = cfg["res_channels"], cfg["skip_channels"]
    e_in = cfg["diffusion_step_embed_dim_in"]
    e_mid = cfg["diffusion_step_embed_dim_mid"]
    e_out = cfg["diffusion_step_embed_dim_out"]
    normed("init_conv.0.conv", (res, cfg["in_channels"], 1))
    plain("residual_layer.fc_t1", (e_mid, e_in))
    plain("residual_layer.fc_t2", (e_out, e_mid))
    for n in range(cfg["num_res_layers"]):
        p = f"{BLOCK}.{n}"
        plain(f"{p}.fc_t", (res, e_out))
        normed(f"{p}.dilated_conv_layer.conv", (2 * res, res, 3))
        for i, s in enumerate(cfg["upsample_scales"]):
            normed(f"{p}.upsample_conv2d.{i}", (1, 1, 3, 2 * s))
        normed(f"{p}.mel_conv.conv", (2 * res, cfg["n_mels"], 1))
        normed(f"{p}.res_conv", (res, res, 1))
        normed(f"{p}.skip_conv", (skip, res, 1))
    normed("final_conv.0.conv", (skip, skip, 1))
    plain("final_conv.2.conv", (cfg["out_channels"], skip, 1))
    return state


def reference_forward(
    sd: dict[str, Tensor], cfg: dict[str, Any], audio: Tensor, mel: Tensor, t: Tensor
) -> Tensor:
    """BDDM's DiffWave forward in plain functional calls, on weight-normalised weights."""

    def wn(prefix: str) -> Tensor:
        v, gain = sd[f"{prefix}.weight_v"], sd[f"{prefix}.weight_g"]
        norm = torch.sqrt((v**2).sum(dim=tuple(range(1, v.ndim)), keepdim=True))
        return gain * v / norm

    def swish(x: Tensor) -> Tensor:
        return x * torch.sigmoid(x)

    half = cfg["diffusion_step_embed_dim_in"] // 2
    freqs = torch.exp(torch.arange(half) * -(math.log(10000) / (half - 1)))
    arg = t.reshape(-1, 1) * freqs[None]
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)
    emb = swish(F.linear(emb, sd["residual_layer.fc_t1.weight"], sd["residual_layer.fc_t1.bias"]))
    emb = swish(F.linear(emb, sd["residual_layer.fc_t2.weight"], sd["residual_layer.fc_t2.bias"]))

    x = F.relu(F.conv1d(audio, wn("init_conv.0.conv"), sd["init_conv.0.conv.bias"]))
    length, res = audio.shape[-1], cfg["res_channels"]
    skips = torch.zeros(())
    for n in range(cfg["num_res_layers"]):
        p = f"{BLOCK}.{n}"
        d = 2 ** (n % cfg["dilation_cycle"])
        h = x + F.linear(emb, sd[f"{p}.fc_t.weight"], sd[f"{p}.fc_t.bias"]).unsqueeze(-1)
        h = F.conv1d(
            h,
            wn(f"{p}.dilated_conv_layer.conv"),
            sd[f"{p}.dilated_conv_layer.conv.bias"],
            dilation=d,
            padding=d,
        )
        cond = mel.unsqueeze(1)
        for i, s in enumerate(cfg["upsample_scales"]):
            cond = F.conv_transpose2d(
                cond,
                wn(f"{p}.upsample_conv2d.{i}"),
                sd[f"{p}.upsample_conv2d.{i}.bias"],
                stride=(1, s),
                padding=(1, s // 2),
            )
            cond = F.leaky_relu(cond, 0.4)
        cond = cond.squeeze(1)
        assert cond.shape[-1] >= length
        cond = cond[..., :length]
        h = h + F.conv1d(cond, wn(f"{p}.mel_conv.conv"), sd[f"{p}.mel_conv.conv.bias"])
        gated = torch.tanh(h[:, :res]) * torch.sigmoid(h[:, res:])
        residual = F.conv1d(gated, wn(f"{p}.res_conv"), sd[f"{p}.res_conv.bias"])
        skips = skips + F.conv1d(gated, wn(f"{p}.skip_conv"), sd[f"{p}.skip_conv.bias"])
        x = (x + residual) * math.sqrt(0.5)
    h = skips * math.sqrt(1.0 / cfg["num_res_layers"])
    h = F.relu(F.conv1d(h, wn("final_conv.0.conv"), sd["final_conv.0.conv.bias"]))
    return F.conv1d(h, sd["final_conv.2.conv.weight"], sd["final_conv.2.conv.bias"])


def converted_model(state: dict[str, Tensor], **kwargs: Any) -> DiffWave:
    weights, fields = convert_bddm_state_dict(state, **kwargs)
    model = DiffWave(fields).eval()
    model.load_state_dict(weights, strict=True)
    return model


def inputs(seed: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(2, 1, 70, generator=g)  # 70 samples from 5 frames of hop 16: cropped
    mel = torch.randn(2, SMALL["n_mels"], 5, generator=g)
    t = torch.tensor([37.25, 151.6])
    return audio, mel, t


# -- weight norm -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [nn.Conv1d(5, 7, 3), nn.ConvTranspose2d(2, 3, (3, 8), stride=(1, 4)), nn.Linear(4, 6)],
)
def test_fold_matches_torch_weight_norm(module: nn.Module) -> None:
    torch.manual_seed(0)
    normed = nn.utils.parametrizations.weight_norm(module, dim=0)
    with torch.no_grad():
        normed.parametrizations.weight.original0.uniform_(0.5, 2.0)  # g
    g = normed.parametrizations.weight.original0.detach()
    v = normed.parametrizations.weight.original1.detach()
    assert g.shape[0] == v.shape[0] and g.numel() == v.shape[0]
    torch.testing.assert_close(fold_weight_norm(g, v), normed.weight.detach(), atol=1e-6, rtol=0)


def test_fold_keeps_dtype_and_rejects_bad_shapes() -> None:
    v = torch.randn(4, 3, 2).half()
    g = torch.rand(4, 1, 1).half() + 0.5
    folded = fold_weight_norm(g, v)
    assert folded.dtype == torch.float16
    expected = g.double() * v.double() / v.double().flatten(1).norm(dim=1).view(4, 1, 1)
    torch.testing.assert_close(folded.double(), expected, atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="weight_g has 3 entries"):
        fold_weight_norm(torch.ones(3), v)


# -- parity ----------------------------------------------------------------------------------------


def test_converted_model_matches_the_original_forward() -> None:
    state = original_state_dict(SMALL)
    model = converted_model(state, dilation_cycle=2)
    audio, mel, t = inputs()
    with torch.no_grad():
        ours = model(audio, t, mel).sample
        reference = reference_forward(state, SMALL, audio, mel, t)
    assert ours.shape == (2, 1, 70)
    assert float(reference.abs().mean()) > 1e-2  # a real signal, not a zero head
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_parity_at_a_scalar_fractional_step() -> None:
    state = original_state_dict(SMALL, seed=3)
    model = converted_model(state, dilation_cycle=2)
    audio, mel, _ = inputs(seed=4)
    with torch.no_grad():
        ours = model(audio, 88.8, mel).sample
        reference = reference_forward(state, SMALL, audio, mel, torch.tensor([88.8, 88.8]))
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_dilation_cycle_is_applied() -> None:
    state = original_state_dict(SMALL)
    audio, mel, t = inputs()
    with torch.no_grad():
        reference = reference_forward(state, SMALL, audio, mel, t)
        wrong = converted_model(state, dilation_cycle=10)(audio, t, mel).sample
    assert wrong.shape == reference.shape
    assert not torch.allclose(wrong, reference, atol=1e-3)


def test_inferred_config_and_key_names() -> None:
    state = original_state_dict(SMALL)
    weights, fields = convert_bddm_state_dict(state, dilation_cycle=2)
    assert fields == DiffWaveConfig(**SMALL).to_dict()
    assert set(weights) == set(DiffWave(fields).state_dict())
    assert "residual_layers.3.upsample.1.weight" in weights
    assert "out_conv.weight" in weights and "final_conv.weight" in weights
    torch.testing.assert_close(weights["out_conv.weight"], state["final_conv.2.conv.weight"])
    torch.testing.assert_close(
        weights["step_embedding.linear_2.bias"], state["residual_layer.fc_t2.bias"]
    )


def test_release_sized_state_dict() -> None:
    release = DiffWaveConfig().to_dict()
    state = original_state_dict(release)
    assert sum(v.numel() for v in state.values()) == 6_914_297
    gains = sum(v.numel() for k, v in state.items() if k.endswith("weight_g"))
    weights, fields = convert_bddm_state_dict(state)
    assert fields == release
    assert sum(v.numel() for v in weights.values()) == 6_914_297 - gains == 6_890_941


def test_schedule_net_keys_and_checkpoint_wrapper() -> None:
    state = original_state_dict(SMALL)
    package = {
        "model_state_dict": {**state, "schedule_net.ratio_nn.0.weight": torch.ones(3, 3)},
        "score_net_training_step": 10,
    }
    weights, _ = convert_bddm_state_dict(package, dilation_cycle=2)
    assert not any(k.startswith("schedule_net") for k in weights)
    assert set(weights) == set(convert_bddm_state_dict(state, dilation_cycle=2)[0])


def test_new_style_weight_norm_names() -> None:
    state = original_state_dict(SMALL)
    renamed = {
        k.replace(".weight_g", ".parametrizations.weight.original0").replace(
            ".weight_v", ".parametrizations.weight.original1"
        ): v
        for k, v in state.items()
    }
    a, _ = convert_bddm_state_dict(state, dilation_cycle=2)
    b, _ = convert_bddm_state_dict(renamed, dilation_cycle=2)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- key and shape errors ----------------------------------------------------------------------------


def test_missing_key() -> None:
    state = original_state_dict(SMALL)
    del state[f"{BLOCK}.2.mel_conv.conv.weight_v"]
    with pytest.raises(
        WeightsError, match=r"Missing keys: .*2\.mel_conv\.conv\.weight_v.*Expected the state dict"
    ):
        convert_bddm_state_dict(state, dilation_cycle=2)


def test_unexpected_key() -> None:
    state = original_state_dict(SMALL)
    state["residual_layer.extra_conv.weight"] = torch.ones(2)
    with pytest.raises(WeightsError, match=r"Unexpected keys: residual_layer\.extra_conv\.weight"):
        convert_bddm_state_dict(state, dilation_cycle=2)


def test_shape_mismatch() -> None:
    state = original_state_dict(SMALL)
    state[f"{BLOCK}.1.res_conv.weight_v"] = torch.randn(16, 8, 1)
    with pytest.raises(WeightsError, match=r"residual_layers\.1\.res_conv\.weight"):
        convert_bddm_state_dict(state, dilation_cycle=2)


def test_not_a_diffwave_state_dict() -> None:
    with pytest.raises(WeightsError, match="no residual_layer.residual_blocks"):
        convert_bddm_state_dict({"conv.weight": torch.ones(3)})
    with pytest.raises(WeightsError, match="not tensors: step"):
        convert_bddm_state_dict({**original_state_dict(SMALL), "step": 3})


# -- files -----------------------------------------------------------------------------------------


def test_checkpoint_file_round_trip(tmp_path: Path) -> None:
    state = original_state_dict(SMALL)
    path = tmp_path / "DiffWave.pkl"
    hyper = argparse.Namespace(score_net="DiffWave", dilation_cycle=2, T=200, hop_len=16)
    torch.save({"config": hyper, "model_state_dict": state, "score_net_training_step": 7}, path)
    weights, fields = load_bddm_checkpoint(path)
    assert fields["dilation_cycle"] == 2  # read from the checkpoint's hyper-parameters
    model = DiffWave(fields).eval()
    model.load_state_dict(weights)
    audio, mel, t = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            model(audio, t, mel).sample,
            reference_forward(state, SMALL, audio, mel, t),
            atol=1e-5,
            rtol=0,
        )
    assert load_bddm_checkpoint(path, dilation_cycle=3)[1]["dilation_cycle"] == 3


def test_half_precision_checkpoint(tmp_path: Path) -> None:
    state = original_state_dict(SMALL)
    path = tmp_path / "fp16.pkl"
    torch.save({"model_state_dict": {k: v.half() for k, v in state.items()}}, path)
    weights, fields = load_bddm_checkpoint(path)
    assert fields["dilation_cycle"] == 10  # no hyper-parameters stored: the default
    assert all(v.dtype == torch.float16 for v in weights.values())
    full, _ = convert_bddm_state_dict(state)
    for key in full:
        torch.testing.assert_close(weights[key].float(), full[key], atol=5e-3, rtol=5e-3)


def test_other_score_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "galr.pkl"
    torch.save({"config": argparse.Namespace(score_net="WaveGrad"), "model_state_dict": {}}, path)
    with pytest.raises(WeightsError, match="'WaveGrad'"):
        load_bddm_checkpoint(path)


def test_corrupt_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "broken.pkl"
    path.write_bytes(b"this is not a torch checkpoint")
    with pytest.raises(
        WeightsError, match=r"broken\.pkl: cannot be read as a BDDM score-network"
    ) as err:
        load_bddm_checkpoint(path)
    assert "weights_only=True" in str(err.value) and "model_state_dict" in str(err.value)


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.pkl"
    torch.save({"model_state_dict": original_state_dict(SMALL), "where": Path("/tmp")}, path)
    with pytest.raises(WeightsError, match="weights_only=True"):
        load_bddm_checkpoint(path)


def test_checkpoint_of_the_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "list.pkl"
    torch.save([torch.ones(2)], path)
    with pytest.raises(WeightsError, match=r"list\.pkl: holds a list; expected a BDDM"):
        load_bddm_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        load_bddm_checkpoint(tmp_path / "missing.pkl")


def _schedule(betas: list[float]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    b = torch.tensor(betas, dtype=torch.float32)
    alpha_bar = torch.cumprod(1 - b, 0)
    sigmas = b.clone()
    sigmas[1:] = b[1:] * (1 - alpha_bar[:-1]) / (1 - alpha_bar[1:])
    ts = torch.linspace(0.5, 150.0, len(betas))
    return ts, alpha_bar.sqrt(), b, sigmas.sqrt()


@pytest.mark.parametrize("container", [tuple, list])
def test_noise_schedule_round_trip(tmp_path: Path, container: type) -> None:
    betas = [1.2412e-4, 9.1087e-4, 7.4849e-3, 0.093312, 0.14349, 0.15208]
    ts, a, b, s = _schedule(betas)
    path = tmp_path / "6steps.ns"
    torch.save(container((ts, a, b, s)), path)
    schedule = load_noise_schedule(path)
    assert set(schedule) == {"timesteps", "sqrt_alpha_bar", "betas", "sigmas"}
    assert all(isinstance(x, float) for values in schedule.values() for x in values)
    assert schedule["betas"] == pytest.approx(betas, rel=1e-6)
    assert schedule["timesteps"] == pytest.approx(ts.tolist())
    assert schedule["sqrt_alpha_bar"] == pytest.approx(a.tolist())
    assert schedule["sigmas"] == pytest.approx(s.tolist())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda s: s[:3], "holds a tuple of 3"),
        (
            lambda s: (s[0], s[1], torch.tensor([0.1, 1.5, 0.2, 0.3]), s[3]),
            r"betas must lie in \(0, 1\)",
        ),
        (lambda s: (s[0][:3], *s[1:]), "one, nonzero length"),
        (
            lambda s: (s[0], s[1], s[2].reshape(2, 2), s[3]),
            "betas is a torch.float32 tensor of shape",
        ),
        (lambda s: (s[0], s[1], [0.1, 0.2], s[3]), "betas is a list"),
        (lambda s: {"betas": s[2]}, "holds a dict"),
    ],
)
def test_bad_noise_schedules(tmp_path: Path, content: Any, message: str) -> None:
    path = tmp_path / "bad.ns"
    torch.save(content(_schedule([0.01, 0.1, 0.2, 0.3])), path)
    with pytest.raises(WeightsError, match=message) as err:
        load_noise_schedule(path)
    assert "bad.ns" in str(err.value)


def test_corrupt_noise_schedule(tmp_path: Path) -> None:
    path = tmp_path / "broken.ns"
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(WeightsError, match=r"broken\.ns: cannot be read as a BDDM noise schedule"):
        load_noise_schedule(path)


# -- command line -----------------------------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("diffusers_hub_bddm.mel") is None,
    reason="the pipeline's mel front end (diffusers_hub_bddm.mel) is not there yet",
)
def test_main_writes_a_pipeline_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from diffusers_hub_bddm.convert import main
    from diffusers_hub_bddm.scheduler import BDDMScheduler

    release = DiffWaveConfig(num_res_layers=2, res_channels=8, skip_channels=8).to_dict()
    state = original_state_dict(release)
    checkpoint = tmp_path / "DiffWave.pkl"
    hyper = argparse.Namespace(score_net="DiffWave", dilation_cycle=10, T=200, hop_len=256)
    torch.save({"config": hyper, "model_state_dict": state}, checkpoint)
    betas = [1e-4, 1e-3, 0.01, 0.1, 0.2]
    schedule = tmp_path / "5steps.ns"
    torch.save(_schedule(betas), schedule)
    out = tmp_path / "pipe"
    status = main(
        ["--checkpoint", str(checkpoint), "--noise-schedule", str(schedule), "--out", str(out)]
    )
    assert status == 0 and "5-step searched schedule" in capsys.readouterr().out
    model = DiffWave.from_pretrained(out / "diffwave")
    weights, _ = convert_bddm_state_dict(state)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    scheduler = BDDMScheduler.from_pretrained(out / "scheduler")
    assert scheduler.config.noise_schedule == pytest.approx(betas, rel=1e-6)


def test_convert_bddm_keeps_the_schedule_network(tmp_path: Path) -> None:
    from diffusers_hub_bddm.convert import main as convert_main
    from diffusers_hub_bddm.pipeline import BDDMPipeline
    from diffusers_hub_bddm.schedule_net import BDDMScheduleNetwork, sinusoidal_positions

    from diffusers_hub import DiffusionPipeline

    torch.manual_seed(2)
    galr = {"input_dim": 16, "hidden_dim": 8, "segment_size": 8, "low_dim": 2, "max_segments": 99}
    net = BDDMScheduleNetwork(**galr).eval()  # the release's 8 heads (not in the weights)
    state = {
        **original_state_dict(SMALL),
        **{f"schedule_net.{k}": v for k, v in net.state_dict().items()},
    }
    state["schedule_net.ratio_nn.blocks.0.global_rnn.pos_enc.pe"] = sinusoidal_positions(99, 16)
    torch.save({"model_state_dict": state}, tmp_path / "DiffWave_GALR.pkl")
    convert_main(
        ["--checkpoint", str(tmp_path / "DiffWave_GALR.pkl"), "--out", str(tmp_path / "o")]
    )
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "o")
    assert isinstance(pipe, BDDMPipeline)
    assert isinstance(pipe.schedule_net, BDDMScheduleNetwork)
    x = torch.randn(1, 1, 500)
    torch.testing.assert_close(pipe.schedule_net(x, 0.1, 0.7).beta, net(x, 0.1, 0.7).beta)
