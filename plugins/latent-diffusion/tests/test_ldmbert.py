"""LDMBertModel: parity with diffusers' LDMBert on the same weights, both folder directions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers_hub_latent_diffusion.ldmbert import LDMBertConfig, LDMBertModel

from diffusers_hub.errors import ConfigError

TINY = dict(
    vocab_size=120,
    max_position_embeddings=77,
    encoder_layers=2,
    encoder_ffn_dim=48,
    encoder_attention_heads=2,
    head_dim=12,
    d_model=32,
)


def _reference_module():
    pytest.importorskip("transformers")
    pytest.importorskip("diffusers")
    from diffusers.pipelines.latent_diffusion import pipeline_latent_diffusion as ref

    return ref


def _reference(tmp_path: Path):
    ref = _reference_module()
    torch.manual_seed(0)
    model = ref.LDMBertModel(ref.LDMBertConfig(**TINY)).eval()
    with torch.no_grad():  # non-trivial LayerNorm and bias values
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(str(tmp_path / "bert"))
    return model


def test_parity_with_reference(tmp_path: Path) -> None:
    ref_model = _reference(tmp_path)
    ours = LDMBertModel.from_pretrained(tmp_path / "bert")
    assert ours.config.encoder_layers == 2 and ours.config.head_dim == 12
    ids = torch.randint(0, TINY["vocab_size"], (3, 77), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ref_model(ids)[0]
        got = ours(ids)
    assert got.last_hidden_state.shape == (3, 77, 32)
    assert torch.equal(got[0], got.last_hidden_state)
    err = (got.last_hidden_state - expected).abs().max().item()
    assert err < 1e-5, err


def test_pipeline_folder_and_bin(tmp_path: Path) -> None:
    ref_model = _reference(tmp_path)
    folder = tmp_path / "pipe" / "bert"
    folder.mkdir(parents=True)
    # The legacy pickle layout of older checkpoints: config.json + pytorch_model.bin.
    (folder / "config.json").write_bytes((tmp_path / "bert" / "config.json").read_bytes())
    torch.save(ref_model.state_dict(), folder / "pytorch_model.bin")
    ours = LDMBertModel.from_pretrained(tmp_path / "pipe")  # finds bert/ by itself
    ids = torch.arange(77)[None] % TINY["vocab_size"]
    with torch.no_grad():
        assert (ours(ids)[0] - ref_model(ids)[0]).abs().max() < 1e-5


def test_saved_here_loads_in_reference(tmp_path: Path) -> None:
    ref = _reference_module()
    torch.manual_seed(3)
    ours = LDMBertModel(**TINY).eval()
    ours.save_pretrained(tmp_path / "ours")
    assert (tmp_path / "ours" / "model.safetensors").is_file()
    back = ref.LDMBertModel.from_pretrained(str(tmp_path / "ours")).eval()
    ids = torch.randint(0, TINY["vocab_size"], (2, 77))
    with torch.no_grad():
        assert (back(ids)[0] - ours(ids)[0]).abs().max() < 1e-5
    again = LDMBertModel.from_pretrained(tmp_path / "ours")
    assert again.config == ours.config


def test_config_and_padding_is_attended() -> None:
    cfg = LDMBertConfig.from_dict({"hidden_size": 64, "num_attention_heads": 4})
    assert cfg.d_model == 64 and cfg.encoder_attention_heads == 4
    with pytest.raises(ConfigError):
        LDMBertConfig.from_dict({"scale_embedding": True})
    with pytest.raises(ConfigError):
        LDMBertConfig.from_dict({"activation_function": "nope"})
    torch.manual_seed(0)
    model = LDMBertModel(**TINY).eval()
    a = torch.tensor([[101 % 120, 5, 6, 102 % 120] + [0] * 73])
    b = a.clone()
    b[0, -1] = 7  # a change in the padding region changes every token's feature
    with torch.no_grad():
        diff = (model(a)[0][0, 1] - model(b)[0][0, 1]).abs().max()
    assert diff > 0
    with pytest.raises(ValueError):
        model(torch.zeros(1, 78, dtype=torch.long))
