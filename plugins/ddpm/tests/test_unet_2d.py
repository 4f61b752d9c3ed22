"""Tests of UNet2DModel: config, parameter counts, parity with the diffusers reference, loading of
diffusers-format folders (current and legacy attention names, sharded), and the forward contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers_hub_ddpm.unet_2d import (
    CIFAR10_CONFIG,
    UNet2DModel,
    UNet2DModelConfig,
    UNet2DOutput,
)
from safetensors.torch import save_file

from diffusers_hub.errors import ConfigError

TOL = 1e-5

CIFAR10 = CIFAR10_CONFIG
CELEBAHQ: dict[str, Any] = {
    **CIFAR10,
    "sample_size": 256,
    "block_out_channels": [128, 128, 256, 256, 512, 512],
    "down_block_types": ["DownBlock2D"] * 4 + ["AttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "AttnUpBlock2D"] + ["UpBlock2D"] * 4,
}

# Scaled-down versions with the same structure, and a config exercising the other options.
SMALL_CONFIGS: dict[str, dict[str, Any]] = {
    "cifar10-style": {
        **CIFAR10,
        "sample_size": 16,
        "block_out_channels": [32, 64, 64, 64],
        "norm_num_groups": 16,
    },
    "celebahq-style": {
        **CELEBAHQ,
        "sample_size": 32,
        "block_out_channels": [16, 16, 32, 32, 64, 64],
        "layers_per_block": 1,
        "norm_num_groups": 8,
    },
    "class-scale-shift-fourier": {
        "sample_size": [16, 8],
        "in_channels": 2,
        "out_channels": 4,
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "down_block_types": ["AttnDownBlock2D", "ResnetDownsampleBlock2D"],
        "up_block_types": ["ResnetUpsampleBlock2D", "AttnUpBlock2D"],
        "attention_head_dim": 8,
        "norm_num_groups": 8,
        "resnet_time_scale_shift": "scale_shift",
        "num_class_embeds": 5,
        "time_embedding_type": "fourier",
        "center_input_sample": True,
        "mid_block_scale_factor": 2.0,
    },
    "resnet-resampling-timestep-classes": {
        "sample_size": 16,
        "block_out_channels": [32, 32],
        "layers_per_block": 1,
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
        "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
        "downsample_type": "resnet",
        "upsample_type": "resnet",
        "attention_head_dim": 16,
        "attn_norm_num_groups": 4,
        "norm_num_groups": 8,
        "class_embed_type": "timestep",
        "time_embedding_dim": 48,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
    },
}


def _reference(config: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(seed)
    model = diffusers.UNet2DModel(**config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # random biases and norms too, so that every weight matters
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    return model


def _inputs(config: dict[str, Any], batch: int = 2) -> dict[str, Any]:
    size = config.get("sample_size", 16)
    height, width = (size, size) if isinstance(size, int) else size
    gen = torch.Generator().manual_seed(1)
    sample = torch.randn(batch, config.get("in_channels", 3), height, width, generator=gen)
    if config.get("time_embedding_type") == "fourier":
        timestep: Any = torch.tensor([0.3, 7.5])[:batch]
    else:
        timestep = torch.tensor([3, 911])[:batch]
    kwargs: dict[str, Any] = {"sample": sample, "timestep": timestep}
    if config.get("num_class_embeds") or config.get("class_embed_type") == "timestep":
        kwargs["class_labels"] = torch.tensor([1, 4])[:batch]
    return kwargs


# -- structure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config,count,tensors", [(CIFAR10, 35_746_307, 328), (CELEBAHQ, 113_673_219, None)]
)
def test_parameter_count_of_hub_configs(
    config: dict[str, Any], count: int, tensors: int | None
) -> None:
    with torch.device("meta"):
        model = UNet2DModel(**config)
    assert model.num_parameters() == count
    if tensors is not None:
        assert len(model.state_dict()) == tensors


@pytest.mark.parametrize("config", [CIFAR10, CELEBAHQ], ids=["cifar10", "celebahq"])
def test_state_dict_keys_and_shapes_equal_reference(config: dict[str, Any]) -> None:
    diffusers = pytest.importorskip("diffusers")
    with torch.device("meta"):
        ours = UNet2DModel(**config).state_dict()
        ref = diffusers.UNet2DModel(**config).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {
        k: tuple(v.shape) for k, v in ref.items()
    }


def test_config_defaults_equal_reference() -> None:
    diffusers = pytest.importorskip("diffusers")
    with torch.device("meta"):
        ref_config = dict(diffusers.UNet2DModel().config)
    ours = UNet2DModelConfig().to_dict()
    for key, value in ours.items():
        expected = ref_config[key]
        if isinstance(expected, tuple):
            expected = list(expected)
        assert value == expected, key
    assert set(ours) == {k for k in ref_config if not k.startswith("_")}


def test_config_validation_and_legacy_keys() -> None:
    config = UNet2DModelConfig.from_dict(
        {"resolution": 64, "out_ch": 6, "_class_name": "UNet2DModel"}
    )
    assert config.sample_size == 64 and config.out_channels == 6
    with pytest.raises(ConfigError, match="same length"):
        UNet2DModelConfig.from_dict({"block_out_channels": [32, 64]})
    with pytest.raises(ConfigError, match="SkipDownBlock2D"):
        UNet2DModelConfig.from_dict(
            {"down_block_types": ["SkipDownBlock2D"] * 4, "up_block_types": ["UpBlock2D"] * 4}
        )
    with pytest.raises(ConfigError, match="resnet_time_scale_shift"):
        UNet2DModelConfig.from_dict({"resnet_time_scale_shift": "spatial"})
    pair = UNet2DModelConfig.from_dict({"sample_size": [32, 16]})
    assert pair.sample_size == (32, 16) and pair.to_dict()["sample_size"] == [32, 16]


def test_properties() -> None:
    model = UNet2DModel(**SMALL_CONFIGS["cifar10-style"])
    assert model.in_channels == 3 and model.out_channels == 3
    assert model.resolution == model.sample_size == 16


# -- parity ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SMALL_CONFIGS))
def test_forward_matches_reference(name: str) -> None:
    config = SMALL_CONFIGS[name]
    ref = _reference(config)
    ours = UNet2DModel(**config).eval()
    ours.load_state_dict(ref.state_dict())
    inputs = _inputs(config)
    with torch.no_grad():
        expected = ref(**inputs).sample
        got = ours(**inputs).sample
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


def test_from_pretrained_of_diffusers_folder(tmp_path: Path) -> None:
    config = SMALL_CONFIGS["cifar10-style"]
    ref = _reference(config, seed=5)
    ref.save_pretrained(tmp_path / "unet")
    ours = UNet2DModel.from_pretrained(tmp_path / "unet")
    assert not ours.training
    assert ours.config.downsample_padding == 0 and ours.config.attention_head_dim is None
    inputs = _inputs(config)
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs).sample, ref(**inputs).sample, atol=TOL, rtol=0)
    # and back: our save loads in diffusers
    ours.save_pretrained(tmp_path / "ours")
    diffusers = pytest.importorskip("diffusers")
    again = diffusers.UNet2DModel.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs).sample, ref(**inputs).sample, atol=TOL, rtol=0)


def _legacy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    names = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    out = {}
    for key, value in state.items():
        for new, old in names.items():
            if f".{new}." in key:
                key = key.replace(f".{new}.", f".{old}.")
        out[key] = value.contiguous()
    return out


@pytest.mark.parametrize("sharded", [False, True])
def test_legacy_attention_names_load(tmp_path: Path, sharded: bool) -> None:
    config = SMALL_CONFIGS["cifar10-style"]
    ref = _reference(config, seed=2)
    legacy = _legacy(ref.state_dict())
    assert any(".query.weight" in k for k in legacy) and not any(".to_q." in k for k in legacy)
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel", **config}))
    if sharded:
        keys = sorted(legacy)
        halves = {"diffusion_pytorch_model-00001-of-00002.safetensors": keys[: len(keys) // 2]}
        halves["diffusion_pytorch_model-00002-of-00002.safetensors"] = keys[len(keys) // 2 :]
        weight_map = {}
        for file, part in halves.items():
            save_file({k: legacy[k] for k in part}, str(tmp_path / file))
            weight_map.update(dict.fromkeys(part, file))
        total = sum(v.numel() * v.element_size() for v in legacy.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (tmp_path / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    else:
        torch.save(legacy, tmp_path / "diffusion_pytorch_model.bin")
    ours = UNet2DModel.from_pretrained(tmp_path)
    inputs = _inputs(config)
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs).sample, ref(**inputs).sample, atol=TOL, rtol=0)


# -- forward contract --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_unet() -> UNet2DModel:
    torch.manual_seed(0)
    return UNet2DModel(**SMALL_CONFIGS["cifar10-style"]).eval()


def test_timestep_forms_are_equivalent(small_unet: UNet2DModel) -> None:
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        expected = small_unet(x, torch.tensor([7, 7, 7])).sample
        for t in (7, 7.0, torch.tensor(7), torch.tensor([7]), torch.tensor([7.0, 7.0, 7.0])):
            torch.testing.assert_close(small_unet(x, t).sample, expected, atol=TOL, rtol=0)
        per_item = small_unet(x, torch.tensor([1, 500, 999])).sample
        torch.testing.assert_close(per_item[1:2], small_unet(x[1:2], 500).sample, atol=TOL, rtol=0)
    with pytest.raises(ValueError, match="timestep"):
        small_unet(x, torch.tensor([1, 2]))


def test_output_forms(small_unet: UNet2DModel) -> None:
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        out = small_unet(x, 3)
        tup = small_unet(x, 3, return_dict=False)
    assert isinstance(out, UNet2DOutput) and isinstance(tup, tuple) and len(tup) == 1
    torch.testing.assert_close(out[0], out.sample)
    (unpacked,) = out
    torch.testing.assert_close(unpacked, tup[0])


def test_class_label_errors(small_unet: UNet2DModel) -> None:
    conditional = UNet2DModel(**SMALL_CONFIGS["class-scale-shift-fourier"])
    with pytest.raises(ValueError, match="class_labels"):
        conditional(torch.randn(1, 2, 16, 8), 0.5)
    with pytest.raises(ValueError, match="no class embedding"):
        small_unet(torch.randn(1, 3, 16, 16), 1, class_labels=torch.tensor([0]))


def test_channels_last_model_gives_same_output(small_unet: UNet2DModel) -> None:
    x = torch.randn(2, 3, 16, 16)
    cl = UNet2DModel(small_unet.config).eval()
    cl.load_state_dict(small_unet.state_dict())
    cl.to(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = small_unet(x, 10).sample
        got = cl(x.contiguous(memory_format=torch.channels_last), 10).sample
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


def test_cpu_layout_is_invisible_to_callers(small_unet: UNet2DModel, tmp_path: Path) -> None:
    # On CPU float32 the kernels are held channels-last (oneDNN runs NHWC without re-laying them);
    # on other dtypes/devices contiguous. Outputs follow the input's layout; state dicts are dense.
    conv = small_unet.down_blocks[0].resnets[0].conv1
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = small_unet(x, 10).sample
        out_cl = small_unet(x.contiguous(memory_format=torch.channels_last), 10).sample
    assert out.is_contiguous()
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, out_cl, atol=TOL, rtol=0)
    state = small_unet.state_dict()
    assert all(t.is_contiguous() for t in state.values())
    save_file(state, tmp_path / "w.safetensors")  # refuses non-contiguous tensors
    params = small_unet.state_dict(keep_vars=True)
    assert params["conv_in.weight"] is small_unet.conv_in.weight
    moved = UNet2DModel(small_unet.config).to(torch.float64)
    assert moved.down_blocks[0].resnets[0].conv1.weight.is_contiguous()
    moved.float()
    assert not moved.down_blocks[0].resnets[0].conv1.weight.is_contiguous()
    # the parameter objects survive the re-layout (optimizers keep working)
    weight = moved.conv_out.weight
    moved.double().float()
    assert moved.conv_out.weight is weight


def test_training_step_backpropagates() -> None:
    torch.manual_seed(0)
    model = UNet2DModel(**SMALL_CONFIGS["class-scale-shift-fourier"]).train()
    inputs = _inputs(SMALL_CONFIGS["class-scale-shift-fourier"])
    loss = model(**inputs).sample.square().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.time_proj.weight.grad is None  # fixed Fourier frequencies


def test_bfloat16_forward(small_unet: UNet2DModel) -> None:
    model = UNet2DModel(small_unet.config).eval()
    model.load_state_dict(small_unet.state_dict())
    model.to(torch.bfloat16)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        out = model(x.to(torch.bfloat16), 10).sample
        expected = small_unet(x, 10).sample
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, atol=0.1, rtol=0.05)
