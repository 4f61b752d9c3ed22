"""Weight files in every layout, their errors, and atomic saves."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from torch import nn

from diffusers_hub.config import ComponentConfig
from diffusers_hub.errors import ConfigError, WeightsError
from diffusers_hub.hub import HubError
from diffusers_hub.modeling import ModelMixin


class TinyConfig(ComponentConfig):
    channels: int = 4
    hidden: int = 8


class Tiny(ModelMixin):
    config_class = TinyConfig

    def __init__(self, config: TinyConfig | None = None, **fields: object) -> None:
        super().__init__(config, **fields)
        c = self.config
        self.conv_in = nn.Conv2d(c.channels, c.hidden, 3, padding=1)
        self.mid = nn.Linear(c.hidden, c.hidden)
        self.conv_out = nn.Conv2d(c.hidden, c.channels, 1)

    @classmethod
    def remap_state_dict(cls, state_dict, config):
        return {k.replace("middle.", "mid."): v for k, v in state_dict.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        h = self.mid(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.conv_out(h)


@pytest.fixture
def model() -> Tiny:
    torch.manual_seed(0)
    return Tiny(channels=3, hidden=16)


def same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_safetensors(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    loaded = Tiny.from_pretrained(tmp_path / "m")
    assert same(model, loaded)
    assert loaded.config == model.config
    assert not loaded.training
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(loaded(x), model(x))


def test_legacy_bin_is_read_without_unpickling_code(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m", safe_serialization=False)
    assert (tmp_path / "m" / "diffusion_pytorch_model.bin").is_file()
    assert same(model, Tiny.from_pretrained(tmp_path / "m"))


def test_bin_holding_code_is_refused(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m", safe_serialization=False)
    torch.save({"conv_in.weight": torch.zeros(1), "evil": os.system}, tmp_path / "m" / "x.bin")
    os.replace(tmp_path / "m" / "x.bin", tmp_path / "m" / "diffusion_pytorch_model.bin")
    with pytest.raises(WeightsError, match="no code is run"):
        Tiny.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize("safe", [True, False])
def test_sharded_checkpoints_load(tmp_path, model, safe) -> None:
    model.save_pretrained(tmp_path / "m", max_shard_size=600, safe_serialization=safe)
    ext = "safetensors" if safe else "bin"
    files = sorted(os.listdir(tmp_path / "m"))
    assert f"diffusion_pytorch_model.{ext}.index.json" in files
    assert sum(f.endswith(f".{ext}") for f in files) > 1
    assert same(model, Tiny.from_pretrained(tmp_path / "m"))


def test_variants_and_both_sharded_variant_index_spellings(tmp_path, model) -> None:
    half = Tiny(model.config).to(torch.float16)
    half.load_state_dict(model.state_dict())
    half.save_pretrained(tmp_path / "m", variant="fp16", max_shard_size=600)
    model.save_pretrained(tmp_path / "m")  # the fp32 files live beside the variant
    files = os.listdir(tmp_path / "m")
    assert "diffusion_pytorch_model.safetensors.index.fp16.json" in files
    assert "diffusion_pytorch_model.safetensors" in files
    loaded = Tiny.from_pretrained(tmp_path / "m", variant="fp16", torch_dtype=torch.float16)
    assert loaded.dtype == torch.float16
    assert same(half, loaded)
    os.rename(
        tmp_path / "m" / "diffusion_pytorch_model.safetensors.index.fp16.json",
        tmp_path / "m" / "diffusion_pytorch_model.fp16.safetensors.index.json",
    )
    assert same(
        half, Tiny.from_pretrained(tmp_path / "m", variant="fp16", torch_dtype=torch.float16)
    )
    assert Tiny.from_pretrained(tmp_path / "m", variant="fp16").dtype == torch.float32


def test_missing_variant_says_plain_files_exist(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m")
    with pytest.raises(WeightsError, match="without variant='fp16'"):
        Tiny.from_pretrained(tmp_path / "m", variant="fp16")


def test_legacy_key_names_are_remapped(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m")
    from safetensors.torch import load_file, save_file

    path = tmp_path / "m" / "diffusion_pytorch_model.safetensors"
    state = {k.replace("mid.", "middle."): v for k, v in load_file(path).items()}
    save_file(state, path)
    assert same(model, Tiny.from_pretrained(tmp_path / "m"))


def test_truncated_safetensors_names_the_file(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "diffusion_pytorch_model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsError, match=r"diffusion_pytorch_model.safetensors.*truncated"):
        Tiny.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all"])
def test_corrupt_bin_names_the_file(tmp_path, model, content) -> None:
    model.save_pretrained(tmp_path / "m", safe_serialization=False)
    (tmp_path / "m" / "diffusion_pytorch_model.bin").write_bytes(content)
    with pytest.raises(WeightsError, match="diffusion_pytorch_model.bin"):
        Tiny.from_pretrained(tmp_path / "m")


def test_missing_shard_is_named(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m", max_shard_size=600)
    shards = sorted((tmp_path / "m").glob("diffusion_pytorch_model-*.safetensors"))
    shards[1].unlink()
    with pytest.raises(WeightsError, match=f"{shards[1].name} is listed in the index but missing"):
        Tiny.from_pretrained(tmp_path / "m")


def test_shape_mismatch_lists_keys_and_shapes(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["hidden"] = 8
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError) as info:
        Tiny.from_pretrained(tmp_path / "m")
    assert "conv_in.weight (file (16, 3, 3, 3), model (8, 3, 3, 3))" in str(info.value)


def test_missing_and_unexpected_keys_are_listed(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m")
    from safetensors.torch import load_file, save_file

    path = tmp_path / "m" / "diffusion_pytorch_model.safetensors"
    state = load_file(path)
    state["extra.weight"] = state.pop("conv_out.bias")
    save_file(state, path)
    with pytest.raises(WeightsError, match=r"Missing keys: conv_out.bias.*Unexpected keys: extra"):
        Tiny.from_pretrained(tmp_path / "m")


def test_malformed_config_json(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{oops")
    with pytest.raises(ConfigError, match="config.json: malformed JSON"):
        Tiny.from_pretrained(tmp_path / "m")


def test_missing_folder(tmp_path) -> None:
    with pytest.raises(HubError, match="no such folder"):
        Tiny.from_pretrained(tmp_path / "nope")


def test_nested_pipeline_folder_uses_default_subfolder(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "pipe" / "unet")
    assert same(model, Tiny.from_pretrained(tmp_path / "pipe"))
    assert same(model, Tiny.from_pretrained(tmp_path / "pipe", subfolder="unet"))


def test_interrupted_save_leaves_earlier_checkpoint_intact(tmp_path, model, monkeypatch) -> None:
    target = tmp_path / "m"
    model.save_pretrained(target)
    (target / "README.md").write_text("notes")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    other = Tiny(channels=3, hidden=16)
    import diffusers_hub.weights as weights_module

    real_save = weights_module.save_state_dict

    def crash(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(weights_module, "save_state_dict", crash)
    with pytest.raises(KeyboardInterrupt):
        other.save_pretrained(target)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folder left behind
    assert same(model, Tiny.from_pretrained(target))

    other.save_pretrained(target)  # a completed save replaces weights, keeps unrelated files
    assert same(other, Tiny.from_pretrained(target))
    assert (target / "README.md").read_text() == "notes"


def test_loading_builds_on_meta_and_keeps_one_copy(tmp_path, model) -> None:
    model.save_pretrained(tmp_path / "m")
    loaded = Tiny.from_pretrained(tmp_path / "m")
    assert all(not p.is_meta for p in loaded.parameters())
    assert loaded.num_parameters() == model.num_parameters()


def test_local_hub_cache_offline(tmp_path, model, monkeypatch) -> None:
    """A repo id resolves from a huggingface_hub cache with HF_HUB_OFFLINE=1, no network."""
    cache = tmp_path / "cache"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--org--tiny"
    snapshot = repo / "snapshots" / commit
    model.save_pretrained(snapshot / "unet")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = Tiny.from_pretrained("org/tiny", cache_dir=cache)
    assert same(model, loaded)
    with pytest.raises(HubError, match="not in the local cache"):
        Tiny.from_pretrained("org/absent", cache_dir=cache)
    shutil.rmtree(cache)
