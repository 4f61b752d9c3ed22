"""GLIDEUNetModel: the model contract, release sizes and keys, parity with the restated release."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from diffusers_hub_glide.unet import GLIDEUNetModel

from diffusers_hub.errors import ConfigError
from diffusers_hub.testing import ModelContract

from .conftest import small_config

TOY = small_config()


def _tokens(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 49, (batch, 6), generator=gen)
    mask = torch.arange(6)[None, :] < torch.tensor([[3], [5], [1], [6]])[:batch]
    return torch.where(mask, tokens, 49), mask


class TestGLIDEUNetModel(ModelContract):
    model_class = GLIDEUNetModel
    model_config: ClassVar[dict[str, Any]] = TOY
    atol = 1e-5

    def make_model(self, seed: int = 0) -> GLIDEUNetModel:
        model = super().make_model(seed)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # the zero-initialised output convs would hide everything
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        return model  # type: ignore[return-value]

    def make_inputs(self, batch_size: int = 2) -> tuple[Any, ...]:
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(batch_size, 3, 8, 8, generator=gen)
        t = torch.tensor([10, 900, 500, 3][:batch_size])
        return (x, t, *_tokens(batch_size))


def test_release_parameter_counts_and_keys() -> None:
    with torch.device("meta"):
        base = GLIDEUNetModel()
        up = GLIDEUNetModel(
            sample_size=256, in_channels=6, num_res_blocks=2, channel_mult=(1, 1, 2, 2, 4, 4)
        )
    assert base.num_parameters() == 385_030_726
    assert up.num_parameters() == 398_361_286
    keys = base.state_dict()
    shapes = {
        "time_embed.0.weight": (768, 192),
        "input_blocks.0.0.weight": (192, 3, 3, 3),
        "input_blocks.1.0.in_layers.0.weight": (192,),
        "input_blocks.1.0.emb_layers.1.weight": (384, 768),
        "input_blocks.1.0.out_layers.3.weight": (192, 192, 3, 3),
        "input_blocks.4.0.in_layers.2.weight": (192, 192, 3, 3),  # the down-sampling block
        "input_blocks.5.0.skip_connection.weight": (384, 192, 1, 1),
        "input_blocks.5.1.qkv.weight": (1152, 384, 1),
        "input_blocks.5.1.encoder_kv.weight": (768, 512, 1),
        "middle_block.1.proj_out.weight": (768, 768, 1),
        "output_blocks.11.2.in_layers.2.weight": (384, 384, 3, 3),  # the last up-sampling block
        "out.2.weight": (6, 192, 3, 3),
        "token_embedding.weight": (50257, 512),
        "positional_embedding": (128, 512),
        "padding_embedding": (128, 512),
        "transformer.resblocks.15.attn.c_qkv.weight": (1536, 512),
        "transformer.resblocks.15.mlp.c_fc.weight": (2048, 512),
        "final_ln.weight": (512,),
        "transformer_proj.weight": (768, 512),
    }
    for key, shape in shapes.items():
        assert tuple(keys[key].shape) == shape, key
    assert len(keys) == 783 and len(up.state_dict()) == 797
    assert tuple(up.state_dict()["input_blocks.0.0.weight"].shape) == (192, 6, 3, 3)


@pytest.mark.parametrize("super_res", [False, True])
def test_matches_restated_release(glide_reference: Any, toy: Any, super_res: bool) -> None:
    model = GLIDEUNetModel(toy.config(super_res)).eval()
    toy.randomize(model, seed=1)
    sd = model.state_dict()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=gen)
    low = torch.rand(2, 3, 4, 4, generator=gen) * 2 - 1 if super_res else None
    t = torch.tensor([7, 640])
    tokens = torch.randint(0, toy.vocab, (2, 6), generator=gen)
    mask = torch.tensor([[True] * 3 + [False] * 3, [True] * 5 + [False]])
    with torch.no_grad():
        ours = model(x, t, tokens=tokens, mask=mask, low_res=low).sample
        theirs = glide_reference(sd, toy.options, x, t, tokens, mask, low)
        scale = theirs.abs().max()
        torch.testing.assert_close(ours, theirs, atol=2e-5 * float(scale), rtol=1e-5)
        # the comparison catches each planted slip
        for slip in ("scale", "padding", "qkv"):
            wrong = glide_reference(sd, toy.options, x, t, tokens, mask, low, slip=slip)
            assert (wrong - ours).abs().max() > 1e-3 * scale, slip


def test_half_precision_keeps_float32_norms() -> None:
    torch.manual_seed(0)
    model = TestGLIDEUNetModel().make_model()
    x, t, tokens, mask = TestGLIDEUNetModel().make_inputs()
    with torch.no_grad():
        full = model(x, t, tokens, mask).sample
        half = model.to(torch.bfloat16)(x.bfloat16(), t, tokens, mask).sample
    assert half.dtype == torch.bfloat16
    assert (half.float() - full).abs().max() < 0.05 * full.abs().max()


def test_bad_inputs_say_what_is_wrong() -> None:
    model = GLIDEUNetModel(**TOY)
    x = torch.randn(1, 3, 8, 8)
    tokens, mask = _tokens(1)
    with pytest.raises(ValueError, match="text_ctx"):
        model(x, 1, tokens=tokens[:, :4], mask=mask[:, :4])
    with pytest.raises(ValueError, match="needs mask"):
        model(x, 1, tokens=tokens)
    with pytest.raises(ValueError, match="low_res"):
        GLIDEUNetModel(**{**TOY, "in_channels": 6})(x, 1, tokens=tokens, mask=mask)
    with pytest.raises(ConfigError, match="num_head_channels"):
        GLIDEUNetModel(**{**TOY, "num_head_channels": 24})
