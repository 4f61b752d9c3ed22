"""DiffWave: the model contract, BDDM's parameter count, input handling and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from diffusers_hub_bddm.diffwave import (
    DiffWave,
    DiffWaveConfig,
    DiffWaveOutput,
    DiffWaveResidualLayer,
    deepen,
    upsample_frames,
    upsampled_length,
    widen,
)
from torch import nn

from diffusers_hub.errors import ConfigError
from diffusers_hub.modeling import ModelMixin
from diffusers_hub.testing import ModelContract

from .conftest import SMALL

LENGTH = 70  # not a multiple of the hop length 16: the upsampled mel (80 samples) is cropped
FRAMES = 5


def small_model(seed: int = 0) -> DiffWave:
    """A small DiffWave whose zero-initialised output head is made random (else it outputs 0)."""
    torch.manual_seed(seed)
    model = DiffWave(**SMALL)
    model.eval()
    with torch.no_grad():
        nn.init.normal_(model.out_conv.weight, std=0.3)
        nn.init.normal_(model.out_conv.bias, std=0.1)
    return model


def inputs(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, 1, LENGTH, generator=g)
    timestep = torch.tensor([37.25, 151.5])[:batch]
    mel = torch.randn(batch, SMALL["n_mels"], FRAMES, generator=g)
    return sample, timestep, mel


class TestDiffWave(ModelContract):
    model_class = DiffWave
    model_config: ClassVar[dict[str, Any]] = SMALL
    atol = 0.0

    def make_model(self, seed: int = 0) -> ModelMixin:
        model: ModelMixin = small_model(seed)
        return model

    def make_inputs(self, batch_size: int = 2) -> tuple[Any, ...]:
        return inputs(batch_size)


# -- the released configuration ------------------------------------------------------------------


def test_release_config_has_the_original_parameter_count() -> None:
    with torch.device("meta"):
        model = DiffWave()
    assert model.config == DiffWaveConfig()
    assert model.hop_length == 256
    folded = model.num_parameters()
    # The original wraps every convolution but the last (out_conv) in weight_norm(dim=0): one
    # extra gain per slice along dim 0 of the weight. Linear layers are plain.
    gains = 0
    normed = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv1d | nn.ConvTranspose2d) and name != "out_conv":
            gains += module.weight.shape[0]
            normed += 1
    assert normed == 1 + 30 * (1 + 2 + 1 + 1 + 1) + 1
    assert folded == 6_890_941
    assert gains == 23_356
    assert folded + gains == 6_914_297


def test_release_config_layer_structure() -> None:
    with torch.device("meta"):
        model = DiffWave()
    layers = model.residual_layers
    assert len(layers) == 30
    dilations = [layer.dilated_conv.dilation[0] for layer in layers]
    assert dilations == [2 ** (n % 10) for n in range(30)]
    first = layers[0]
    assert isinstance(first, DiffWaveResidualLayer)
    assert tuple(first.dilated_conv.weight.shape) == (256, 128, 3)
    assert [tuple(u.weight.shape) for u in first.upsample] == [(1, 1, 3, 32)] * 2
    assert tuple(first.mel_conv.weight.shape) == (256, 80, 1)
    assert tuple(model.step_embedding.linear_1.weight.shape) == (512, 128)
    assert tuple(model.out_conv.weight.shape) == (1, 128, 1)


def test_output_head_is_zero_initialised() -> None:
    model = DiffWave(**SMALL)
    assert not model.out_conv.weight.any() and not model.out_conv.bias.any()
    with torch.no_grad():
        out = model(*inputs()).sample
    assert torch.equal(out, torch.zeros_like(out))


# -- forward ---------------------------------------------------------------------------------------


def test_output_shape_and_type_for_length_not_a_multiple_of_hop() -> None:
    model = small_model()
    sample, t, mel = inputs()
    with torch.no_grad():
        out = model(sample, t, mel)
        tup = model(sample, t, mel, return_dict=False)
    assert isinstance(out, DiffWaveOutput)
    assert out.sample.shape == (2, 1, LENGTH)
    assert isinstance(tup, tuple) and torch.equal(tup[0], out.sample)
    (first,) = out
    assert first is out.sample and out[0] is out.sample and len(out) == 1
    assert bool(torch.isfinite(out.sample).all()) and float(out.sample.abs().max()) > 0


@pytest.mark.parametrize("scales", [[4, 4], [16, 16], [3, 5], [1], [2, 3, 2]])
@pytest.mark.parametrize("frames", [1, 5])
def test_upsampled_length_matches_the_transposed_convolutions(
    scales: list[int], frames: int
) -> None:
    layer = DiffWaveResidualLayer(4, 4, 1, 8, 3, scales)
    m = torch.randn(1, 1, 3, frames)
    for upsample in layer.upsample:
        m = upsample(m)
    assert m.shape[-2] == 3  # the mel axis keeps its size
    assert m.shape[-1] == upsampled_length(frames, scales)
    assert upsampled_length(frames, scales) >= frames * torch.tensor(scales).prod().item()


@pytest.mark.parametrize("scale", [16, 5, 3, 2, 1])
@pytest.mark.parametrize("frames", [1, 6])
def test_upsample_frames_equals_the_transposed_convolution(scale: int, frames: int) -> None:
    torch.manual_seed(scale)
    (layer,) = DiffWaveResidualLayer(4, 4, 1, 8, 3, [scale]).upsample
    assert isinstance(layer, nn.ConvTranspose2d)
    with torch.no_grad():
        layer.bias.normal_()  # a nonzero bias, so that adding it is checked too
    cond = torch.randn(2, 1, 5, frames, dtype=torch.float64, requires_grad=True)
    layer = layer.double()
    ours, theirs = upsample_frames(cond, layer), layer(cond)
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)
    grad_out = torch.randn_like(theirs)
    ours_grads = torch.autograd.grad(ours, (cond, layer.weight, layer.bias), grad_out)
    theirs_grads = torch.autograd.grad(theirs, (cond, layer.weight, layer.bias), grad_out)
    for a, b in zip(ours_grads, theirs_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_upsample_frames_leaves_other_geometries_to_the_module() -> None:
    torch.manual_seed(0)
    cond = torch.randn(1, 1, 4, 3)
    for layer in (
        nn.ConvTranspose2d(1, 1, (5, 8), stride=(1, 4), padding=(2, 2)),  # 5 bands, not 3
        nn.ConvTranspose2d(1, 1, (3, 8), stride=(2, 4), padding=(1, 2)),  # strided bands
    ):
        torch.testing.assert_close(upsample_frames(cond, layer), layer(cond), atol=0, rtol=0)


def test_even_scales_upsample_to_frames_times_hop() -> None:
    assert upsampled_length(7, [16, 16]) == 7 * 256
    with torch.device("meta"):
        assert DiffWave().upsampled_length(7) == 7 * 256


def test_timestep_forms_agree() -> None:
    model = small_model()
    sample, _, mel = inputs()
    with torch.no_grad():
        ref = model(sample, torch.tensor([42.0, 42.0]), mel).sample
        for t in (
            42,
            42.0,
            torch.tensor(42.0),
            torch.tensor([42.0]),
            torch.tensor([[42.0], [42.0]]),
        ):
            torch.testing.assert_close(model(sample, t, mel).sample, ref, atol=0, rtol=0)
        fractional = model(sample, 42.5, mel).sample
    assert not torch.allclose(fractional, ref, atol=1e-4)


def test_fractional_step_is_between_its_neighbours_smoothly() -> None:
    model = small_model()
    sample, _, mel = inputs()
    with torch.no_grad():
        outs = [model(sample, t, mel).sample for t in (10.0, 10.001, 10.5)]
    near = float((outs[1] - outs[0]).abs().max())
    far = float((outs[2] - outs[0]).abs().max())
    assert 0 < near < far


def test_items_use_their_own_timestep() -> None:
    model = small_model()
    sample, t, mel = inputs()
    with torch.no_grad():
        both = model(sample, t, mel).sample
        second = model(sample[1:], t[1:], mel[1:]).sample
    torch.testing.assert_close(both[1:], second, atol=1e-5, rtol=1e-5)


def test_mel_conditioning_matters() -> None:
    model = small_model()
    sample, t, mel = inputs()
    with torch.no_grad():
        a = model(sample, t, mel).sample
        b = model(sample, t, mel + 1.0).sample
    assert not torch.allclose(a, b, atol=1e-4)


def test_mel_offset_and_scale_map_the_input() -> None:
    plain = small_model()
    torch.manual_seed(0)
    shifted = DiffWave(**SMALL, mel_offset=-5.0, mel_scale=0.25).eval()
    shifted.load_state_dict(plain.state_dict())
    sample, t, mel = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            shifted(sample, t, mel).sample, plain(sample, t, (mel + 5.0) * 0.25).sample
        )
    with pytest.raises(ValueError, match="mel_scale"):
        DiffWave(**SMALL, mel_scale=0.0)


def test_gradients_reach_every_parameter_but_the_last_residual_branch() -> None:
    model = small_model().train()
    out = model(*inputs()).sample
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    # as in the original, only the skip branch of the last layer reaches the output
    assert missing == ["residual_layers.3.res_conv.weight", "residual_layers.3.res_conv.bias"]


def test_loads_from_a_pipeline_folder(tmp_path: Path) -> None:
    model = small_model()
    model.save_pretrained(tmp_path / "diffwave")
    assert (tmp_path / "diffwave" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = DiffWave.from_pretrained(tmp_path)  # found in the default subfolder diffwave/
    with torch.no_grad():
        assert torch.equal(loaded(*inputs()).sample, model(*inputs()).sample)


# -- errors ----------------------------------------------------------------------------------------


def test_wrong_sample_channels() -> None:
    sample, t, mel = inputs()
    with pytest.raises(ValueError, match=r"sample must be \(B, 1, L\).*\(2, 2, 70\)"):
        small_model()(sample.repeat(1, 2, 1), t, mel)
    with pytest.raises(ValueError, match="sample must be"):
        small_model()(sample[:, 0], t, mel)


def test_wrong_mel_bands() -> None:
    sample, t, mel = inputs()
    with pytest.raises(ValueError, match=r"mel_spectrogram must be \(B, 8, frames\)"):
        small_model()(sample, t, mel[:, :7])


def test_batch_mismatch() -> None:
    sample, t, mel = inputs()
    with pytest.raises(ValueError, match="sample has 2 items, mel_spectrogram 1"):
        small_model()(sample, t, mel[:1])


def test_mel_too_short_names_both_lengths() -> None:
    sample, t, mel = inputs()
    with pytest.raises(ValueError, match=r"4 frames upsample to 64 samples.*has 70.*at least 5"):
        small_model()(sample, t, mel[..., :4])


def test_bad_timestep_shape() -> None:
    sample, _, mel = inputs()
    with pytest.raises(ValueError, match=r"timestep must be a scalar or have shape \(2,\)"):
        small_model()(sample, torch.ones(3), mel)
    with pytest.raises(TypeError, match="bool"):
        small_model()(sample, True, mel)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("diffusion_step_embed_dim_in", 15, "must be even"),
        ("diffusion_step_embed_dim_in", 2, "greater than or equal to 4"),
        ("num_res_layers", 0, "num_res_layers"),
        ("res_channels", -1, "res_channels"),
        ("upsample_scales", [], "upsample_scales"),
        ("upsample_scales", [16, 0], "positive integers"),
    ],
)
def test_config_validation(field: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DiffWave(**{**SMALL, field: value})


def test_deepen_keeps_the_function_and_trains_the_new_layers() -> None:
    small = small_model().double()
    grown = deepen(small, 7)
    assert grown.config.num_res_layers == 7 and grown.init_conv.weight.dtype == torch.float64
    assert {k: v for k, v in grown.config.to_dict().items() if k != "num_res_layers"} == {
        k: v for k, v in small.config.to_dict().items() if k != "num_res_layers"
    }
    x = torch.randn(2, 1, LENGTH, dtype=torch.float64)
    mel = torch.randn(2, SMALL["n_mels"], FRAMES, dtype=torch.float64)
    torch.testing.assert_close(
        grown(x, 33.5, mel).sample, small(x, 33.5, mel).sample, atol=1e-12, rtol=0
    )
    assert small.config.num_res_layers == 4  # the source is not changed
    # the zero projections of the new layers get gradients: they learn from the first step
    grown(x, 33.5, mel).sample.square().sum().backward()
    for layer in list(grown.residual_layers)[4:]:
        assert isinstance(layer, DiffWaveResidualLayer)
        assert not layer.skip_conv.weight.any() and layer.skip_conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="must be more than the source's 4; got 4"):
        deepen(small, 4)


@pytest.mark.parametrize(("res_channels", "skip_channels"), [(24, None), (16, 20), (21, 13)])
def test_widen_keeps_the_function_and_trains_every_new_weight(
    res_channels: int, skip_channels: int | None
) -> None:
    small = small_model().double()
    with torch.no_grad():
        for param in small.parameters():  # no zero left that could hide a wrong copy
            param.normal_(0.0, 0.5)
    grown = widen(small, res_channels, skip_channels)
    wide = {"res_channels": res_channels, "skip_channels": skip_channels or SMALL["skip_channels"]}
    assert grown.config.to_dict() == {**small.config.to_dict(), **wide}
    assert grown.init_conv.weight.dtype == torch.float64
    x = torch.randn(2, 1, LENGTH, dtype=torch.float64)
    mel = torch.randn(2, SMALL["n_mels"], FRAMES, dtype=torch.float64)
    torch.testing.assert_close(
        grown(x, 33.5, mel).sample, small(x, 33.5, mel).sample, atol=1e-12, rtol=0
    )
    # every weight learns from the first step, the zeros that keep the function included
    grown(x, 33.5, mel).sample.square().sum().backward()
    last = f"residual_layers.{SMALL['num_res_layers'] - 1}.res_conv."  # its output is unused
    idle = [
        name
        for name, param in grown.named_parameters()
        if not name.startswith(last) and (param.grad is None or not param.grad.abs().sum() > 0)
    ]
    assert idle == []
    assert small.config.res_channels == SMALL["res_channels"]  # the source is not changed


def test_widen_needs_a_larger_width() -> None:
    small = small_model()
    for res, skip in [(16, 12), (15, 20), (20, 11)]:
        with pytest.raises(ValueError, match="16 residual and 12 skip channels"):
            widen(small, res, skip)


def test_docstring_examples() -> None:
    import doctest

    import diffusers_hub_bddm.diffwave as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
