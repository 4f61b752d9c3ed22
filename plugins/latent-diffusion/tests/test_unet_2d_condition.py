"""UNet2DConditionModel: parity with diffusers on the same weights, config handling, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers_hub_latent_diffusion.unet_2d_condition import (
    UNet2DConditionModel,
    UNet2DConditionModelConfig,
)

from diffusers_hub.errors import ConfigError
from diffusers_hub.testing import perturb

from .conftest import tiny_unet

TINY = tiny_unet(cross_attention_dim=24)


def _reference(**overrides):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    model = diffusers.UNet2DConditionModel(**{**TINY, **overrides}).eval()
    perturb(model)
    return model


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"use_linear_projection": True, "transformer_layers_per_block": 2, "layers_per_block": 2},
        {
            "block_out_channels": (16, 32, 32),
            "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            "attention_head_dim": (2, 4, 4),
            "only_cross_attention": True,
            "mid_block_scale_factor": 1.414,
        },
    ],
)
def test_parity_with_reference(tmp_path: Path, overrides: dict) -> None:
    ref = _reference(**overrides)
    ref.save_pretrained(str(tmp_path / "unet"))
    ours = UNet2DConditionModel.from_pretrained(tmp_path / "unet")
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 8, generator=gen)
    ctx = torch.randn(2, 77, 24, generator=gen)
    with torch.no_grad():
        for t in (torch.tensor([10, 990]), 500, torch.tensor(3)):
            err = (ours(x, t, ctx).sample - ref(x, t, ctx).sample).abs().max().item()
            assert err < 1e-5, (t, err)
        # A latent size that is not a multiple of the downsampling factor.
        odd = torch.randn(1, 4, 9, 7, generator=gen)
        err = (ours(odd, 7, ctx[:1])[0] - ref(odd, 7, ctx[:1]).sample).abs().max().item()
        assert err < 1e-5


def test_saved_here_loads_in_reference(tmp_path: Path) -> None:
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(2)
    ours = UNet2DConditionModel(**TINY).eval()
    perturb(ours, 2)
    ours.save_pretrained(tmp_path / "unet")
    ref = diffusers.UNet2DConditionModel.from_pretrained(str(tmp_path / "unet")).eval()
    x, ctx = torch.randn(1, 4, 8, 8), torch.randn(1, 77, 24)
    with torch.no_grad():
        assert (ours(x, 50, ctx).sample - ref(x, 50, ctx).sample).abs().max() < 1e-5


def test_historical_heads_and_key_names() -> None:
    model = UNet2DConditionModel(**TINY)
    attn = model.down_blocks[0].attentions[0].transformer_blocks[0].attn1
    assert attn.heads == 2 and attn.dim_head == 16  # attention_head_dim = number of heads
    keys = set(model.state_dict())
    for key in (
        "down_blocks.0.attentions.0.proj_in.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.weight",
        "mid_block.attentions.0.transformer_blocks.0.norm3.weight",
        "up_blocks.1.attentions.1.proj_out.bias",
        "time_embedding.linear_1.weight",
    ):
        assert key in keys
    assert "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias" not in keys
    explicit = UNet2DConditionModel(**{**TINY, "num_attention_heads": 4})
    assert explicit.down_blocks[0].attentions[0].transformer_blocks[0].attn1.heads == 4


def test_unsupported_options_raise() -> None:
    for bad in (
        {"class_embed_type": "timestep"},
        {"addition_embed_type": "text"},
        {"upcast_attention": True},
        {"down_block_types": ("SimpleCrossAttnDownBlock2D", "DownBlock2D")},
        {"block_out_channels": (32,)},
    ):
        with pytest.raises(ConfigError):
            UNet2DConditionModelConfig.from_dict({**TINY, **bad})
    # Options at their defaults are accepted (as diffusers writes them).
    cfg = UNet2DConditionModelConfig.from_dict(
        {
            **TINY,
            "class_embed_type": None,
            "dual_cross_attention": False,
            "resnet_skip_time_act": False,
        }
    )
    assert cfg.attention_head_dim == 2
