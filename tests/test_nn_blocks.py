"""Tests of the shared UNet building blocks in ``diffusers_hub.nn``.

Parity tests load the same random weights into the diffusers reference blocks (test-only
dependency) and compare outputs in float32 on CPU.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from diffusers_hub.nn import (
    Attention,
    AttnDownBlock2D,
    AttnUpBlock2D,
    Conv2d,
    DownBlock2D,
    DownEncoderBlock2D,
    Downsample2D,
    GaussianFourierProjection,
    ResnetBlock2D,
    ResnetDownsampleBlock2D,
    ResnetUpsampleBlock2D,
    TimestepEmbedding,
    UNetMidBlock2D,
    UpBlock2D,
    UpDecoderBlock2D,
    Upsample2D,
    get_activation,
    remap_legacy_attention_keys,
    timestep_embedding,
)
from diffusers_hub.nn._kernels import conv2d, linear, onednn_enabled
from diffusers_hub.nn.attention import _FOLDED

TOL = 1e-5


def _load_from(ours: torch.nn.Module, ref: torch.nn.Module) -> None:
    ref_sd = ref.state_dict()
    assert set(ours.state_dict()) == set(ref_sd)
    ours.load_state_dict(ref_sd)


def _randomize(module: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


# -- embeddings and activations ----------------------------------------------------------------


@pytest.mark.parametrize("flip,shift,dim", [(False, 1, 32), (True, 0, 32), (False, 0, 33)])
def test_timestep_embedding_matches_reference(flip: bool, shift: int, dim: int) -> None:
    embeddings = pytest.importorskip("diffusers.models.embeddings")
    t = torch.tensor([0, 1, 17, 999])
    ours = timestep_embedding(t, dim, flip_sin_to_cos=flip, freq_shift=shift)
    ref = embeddings.get_timestep_embedding(
        t, dim, flip_sin_to_cos=flip, downscale_freq_shift=shift
    )
    assert ours.shape == (4, dim)
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)


def test_timestep_embedding_values() -> None:
    # t = 0: sin(0) = 0 in the first half, cos(0) = 1 in the second.
    emb = timestep_embedding(torch.tensor([0.0]), 8, flip_sin_to_cos=False, freq_shift=1)
    assert emb[0, :4].abs().max() == 0 and torch.all(emb[0, 4:] == 1)
    flipped = timestep_embedding(torch.tensor([0.0]), 8, flip_sin_to_cos=True, freq_shift=1)
    assert torch.all(flipped[0, :4] == 1)
    with pytest.raises(ValueError, match="1-D"):
        timestep_embedding(torch.zeros(2, 2), 8)


def test_gaussian_fourier_projection_matches_reference() -> None:
    embeddings = pytest.importorskip("diffusers.models.embeddings")
    ref = embeddings.GaussianFourierProjection(embedding_size=16, scale=16)
    ours = GaussianFourierProjection(16, scale=16.0)
    _load_from(ours, ref)
    assert not ours.weight.requires_grad
    sigma = torch.tensor([0.01, 0.5, 80.0])
    torch.testing.assert_close(ours(sigma), ref(sigma), atol=TOL, rtol=0)


def test_timestep_embedding_mlp_keys() -> None:
    mlp = TimestepEmbedding(8, 32, out_dim=16)
    assert set(mlp.state_dict()) == {
        "linear_1.weight",
        "linear_1.bias",
        "linear_2.weight",
        "linear_2.bias",
    }
    assert mlp(torch.randn(3, 8)).shape == (3, 16)


def test_get_activation() -> None:
    assert isinstance(get_activation("swish"), torch.nn.SiLU)
    assert isinstance(get_activation("GELU"), torch.nn.GELU)
    with pytest.raises(ValueError, match="allowed"):
        get_activation("tanhh")


# -- kernels -----------------------------------------------------------------------------------


def test_kernels_match_functional_and_backprop() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 6, 6, generator=gen, requires_grad=True)
    w = torch.randn(4, 8, 3, 3, generator=gen, requires_grad=True)
    b = torch.randn(4, generator=gen)
    y = conv2d(x, w, b, stride=2, padding=1)
    torch.testing.assert_close(y, F.conv2d(x, w, b, stride=2, padding=1), atol=TOL, rtol=0)
    y.square().sum().backward()
    assert x.grad is not None and w.grad is not None
    seq = torch.randn(3, 40, 8, generator=gen)
    wl = torch.randn(5, 8, generator=gen)
    torch.testing.assert_close(linear(seq, wl, None), F.linear(seq, wl), atol=TOL, rtol=0)
    torch.testing.assert_close(
        linear(seq[:, :2], wl, b[:5] if False else None), F.linear(seq[:, :2], wl)
    )
    with torch.backends.mkldnn.flags(enabled=False):
        torch.testing.assert_close(conv2d(x, w, b, 1, 1), F.conv2d(x, w, b, 1, 1))


def test_conv2d_module_state_dict_and_nonplain_fallback() -> None:
    conv = Conv2d(4, 6, 3, padding=1)
    assert set(conv.state_dict()) == {"weight", "bias"}
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(
        conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1), atol=TOL, rtol=0
    )
    reflect = Conv2d(4, 6, 3, padding=1, padding_mode="reflect")
    assert reflect(x).shape == (1, 6, 5, 5)


def test_conv2d_reuses_its_relaid_kernel_until_the_weight_changes() -> None:
    from diffusers_hub.nn import _kernels

    conv = Conv2d(8, 6, 3, padding=1, stride=2)
    x = torch.randn(2, 8, 9, 9).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        first = conv(x)
        torch.testing.assert_close(
            first, F.conv2d(x, conv.weight, conv.bias, 2, 1), atol=TOL, rtol=0
        )
        held = _kernels._PACKED.get(conv)
        assert held is not None or not _kernels.onednn_enabled(x)
        assert conv(x) is not first and _kernels._PACKED.get(conv) is held
    with torch.no_grad():
        conv.weight.mul_(-1)  # in place: the held kernel is stale
    with torch.inference_mode():
        torch.testing.assert_close(conv(x), -first + 2 * conv.bias[:, None, None], atol=TOL, rtol=0)
    y = conv(x)  # outside inference mode autograd needs the plain path
    assert y.requires_grad


@pytest.mark.parametrize("shape", [(2, 8, 5, 7), (1, 6, 1, 1), (3, 4, 4, 4)])
def test_upsample_conv_runs_as_phase_kernels_on_the_small_map(shape: tuple[int, ...]) -> None:
    from diffusers_hub.nn import _kernels

    up = Upsample2D(shape[1], use_conv=True, out_channels=5)
    x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)

    def expected() -> torch.Tensor:
        doubled = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.conv2d(doubled, up.conv.weight, up.conv.bias, padding=1)

    size = (2 * shape[2], 2 * shape[3])
    with torch.no_grad():  # as pipelines sample
        torch.testing.assert_close(up(x), expected(), atol=TOL, rtol=0)
        torch.testing.assert_close(up(x, output_size=size), expected(), atol=TOL, rtol=0)
        held = _kernels._PHASES.get(up.conv)
        assert (held is not None) == _kernels.onednn_enabled(x)
        up(x)
        assert _kernels._PHASES.get(up.conv) is held
        up.conv.weight[:, :, 0].mul_(3)  # in place, on one kernel row: the phases are stale
        torch.testing.assert_close(up(x), expected(), atol=TOL, rtol=0)
        up.conv.bias.add_(1.0)  # the bias alone changes: the held (repeated) bias is stale
        torch.testing.assert_close(up(x), expected(), atol=TOL, rtol=0)
    y = up(x)  # gradients on: the plain path, which autograd follows
    assert y.requires_grad
    torch.testing.assert_close(y.detach(), expected().detach(), atol=TOL, rtol=0)


def test_conv2d_add_sums_into_out_in_place_where_it_applies() -> None:
    from diffusers_hub.nn._kernels import conv2d_add_, onednn_enabled

    conv = Conv2d(8, 6, 3, padding=1)
    x = torch.randn(2, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    out = torch.randn(2, 6, 5, 7).contiguous(memory_format=torch.channels_last)
    want = out + F.conv2d(x, conv.weight, conv.bias, padding=1)
    with torch.no_grad():
        before = out.clone()
        assert conv2d_add_(conv, x, out[:, :, :4]) is None  # wrong shape: untouched
        assert conv2d_add_(conv, x.contiguous(), out) is None  # NCHW input: not held
        torch.testing.assert_close(out, before, atol=0, rtol=0)
        summed = conv2d_add_(conv, x, out)
        if onednn_enabled(x):
            assert summed is out
            torch.testing.assert_close(out, want.detach(), atol=TOL, rtol=0)
        else:
            assert summed is None
    assert conv2d_add_(conv, x, out.clone()) is None  # gradients on: the plain path


def test_blocks_built_under_inference_mode_run_the_plain_path() -> None:
    """Parameters made under ``torch.inference_mode`` have no version counter to hold kernels by."""
    from diffusers_hub.nn import _kernels

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 6, 6, generator=gen).contiguous(memory_format=torch.channels_last)
    temb = torch.randn(2, 4, generator=gen)
    with torch.inference_mode():
        conv = Conv2d(8, 8, 3, padding=1)
        block = ResnetBlock2D(8, 12, temb_channels=4, groups=4, up=True)
        attn = Attention(8, heads=1, bias=True, norm_num_groups=4, residual_connection=True)
        torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1))
        assert block(x, temb).shape == (2, 12, 12, 12)
        assert attn(x).shape == x.shape
        assert conv not in _kernels._PACKED and attn not in _FOLDED
    copy = Attention(8, heads=1, bias=True, norm_num_groups=4, residual_connection=True)
    copy.load_state_dict({k: v.clone() for k, v in attn.state_dict().items()})
    with torch.no_grad():
        torch.testing.assert_close(copy(x), attn(x), atol=TOL, rtol=0)


def test_upsampling_resnet_block_fuses_its_first_conv_with_gradients_off() -> None:
    block = ResnetBlock2D(8, 12, temb_channels=12, groups=4, up=True)
    x = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    temb = torch.randn(2, 12)
    want = block(x, temb)  # gradients on: upsample, then conv1
    with torch.no_grad():
        torch.testing.assert_close(block(x, temb), want.detach(), atol=TOL, rtol=0)


# -- ResNet, sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_channels": 16, "out_channels": 32, "temb_channels": 24},
        {"in_channels": 16, "temb_channels": 24, "time_embedding_norm": "scale_shift"},
        {"in_channels": 16, "out_channels": 8, "temb_channels": None, "output_scale_factor": 2.0},
        {"in_channels": 16, "temb_channels": 24, "up": True, "skip_time_act": True},
        {"in_channels": 16, "temb_channels": 24, "down": True},
    ],
)
def test_resnet_block_matches_reference(kwargs: dict[str, object]) -> None:
    resnet = pytest.importorskip("diffusers.models.resnet")
    common = {"groups": 8, "eps": 1e-6, "non_linearity": "silu", **kwargs}
    ref = resnet.ResnetBlock2D(**common).eval()
    ours = ResnetBlock2D(**common).eval()  # type: ignore[arg-type]
    _randomize(ref)
    _load_from(ours, ref)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 8, 8, generator=gen)
    temb = torch.randn(2, 24, generator=gen) if kwargs.get("temb_channels") else None
    with torch.no_grad():
        expected = ref(x, temb)
        torch.testing.assert_close(ours(x, temb), expected, atol=TOL, rtol=0)
        # channels-last, as the UNets run on CPU: held kernels, conv2 summed into the shortcut
        cl = ours(x.contiguous(memory_format=torch.channels_last), temb)
        torch.testing.assert_close(cl, expected, atol=TOL, rtol=0)
    # with autograd on (no in-place shortcuts) the result is the same and backprop works
    out = ours(x.requires_grad_(), temb)
    torch.testing.assert_close(out, expected, atol=TOL, rtol=0)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_resnet_block_rejects_unknown_norm_and_missing_temb() -> None:
    with pytest.raises(ValueError, match="time_embedding_norm"):
        ResnetBlock2D(8, temb_channels=4, groups=4, time_embedding_norm="ada")  # type: ignore[arg-type]
    block = ResnetBlock2D(8, temb_channels=4, groups=4)
    with pytest.raises(ValueError, match="temb"):
        block(torch.randn(1, 8, 4, 4), None)


@pytest.mark.parametrize("padding", [0, 1])
def test_downsample_matches_reference(padding: int) -> None:
    downsampling = pytest.importorskip("diffusers.models.downsampling")
    ref = downsampling.Downsample2D(8, use_conv=True, padding=padding, name="op")
    ours = Downsample2D(8, use_conv=True, padding=padding)
    _load_from(ours, ref)
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=TOL, rtol=0)
    pool = Downsample2D(8)
    assert pool(x).shape == (2, 8, 4, 4) and not list(pool.parameters())


def test_upsample_matches_reference() -> None:
    upsampling = pytest.importorskip("diffusers.models.upsampling")
    ref = upsampling.Upsample2D(8, use_conv=True, out_channels=4)
    ours = Upsample2D(8, use_conv=True, out_channels=4)
    _load_from(ours, ref)
    x = torch.randn(2, 8, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=TOL, rtol=0)
        torch.testing.assert_close(
            ours(x, (11, 15)), ref(x, output_size=(11, 15)), atol=TOL, rtol=0
        )
    assert Upsample2D(8)(x).shape == (2, 8, 10, 14)


# -- attention -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heads,dim_head,groups", [(1, 32, 8), (1, 16, 8), (1, 48, None), (4, 8, 8), (2, 8, None)]
)
def test_spatial_attention_matches_reference(heads: int, dim_head: int, groups: int | None) -> None:
    attention_processor = pytest.importorskip("diffusers.models.attention_processor")
    shared: dict[str, Any] = {
        "heads": heads,
        "dim_head": dim_head,
        "bias": True,
        "norm_num_groups": groups,
        "eps": 1e-6,
        "residual_connection": True,
        "rescale_output_factor": 2.0,
    }
    ref = attention_processor.Attention(
        32, **shared, upcast_softmax=True, _from_deprecated_attn_block=True
    ).eval()
    ours = Attention(32, **shared).eval()
    _randomize(ref)
    _load_from(ours, ref)
    x = torch.randn(2, 32, 6, 5)
    with torch.no_grad():
        expected = ref(x)
        torch.testing.assert_close(ours(x), expected, atol=TOL, rtol=0)
        cl = ours(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(cl, expected, atol=TOL, rtol=0)
        # one head, channels-last, gradients off: the projections run folded (two, not four)
        assert (ours in _FOLDED) == (heads == 1 and onednn_enabled(x))
        # the folded kernel follows its sources: change one in place, compare again
        ours.to_v.weight.mul_(-0.5)
        ref.to_v.weight.mul_(-0.5)
        cl = ours(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(cl, ref(x), atol=TOL, rtol=0)
        # the same module on a (B, N, C) sequence
        seq = x.flatten(2).transpose(1, 2)
        torch.testing.assert_close(ours(seq), ref(seq), atol=TOL, rtol=0)


def test_cross_attention_matches_reference() -> None:
    attention_processor = pytest.importorskip("diffusers.models.attention_processor")
    kwargs = {"cross_attention_dim": 12, "heads": 4, "dim_head": 8, "bias": False}
    ref = attention_processor.Attention(32, **kwargs).eval()
    ours = Attention(32, **kwargs).eval()  # type: ignore[arg-type]
    _randomize(ref)
    _load_from(ours, ref)
    assert ours.to_q.bias is None and ours.to_out[0].bias is not None
    x, ctx = torch.randn(2, 40, 32), torch.randn(2, 7, 12)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, ctx), ref(x, ctx), atol=TOL, rtol=0)
        # a feature map attending to a context
        fmap = torch.randn(2, 32, 4, 4)
        torch.testing.assert_close(ours(fmap, ctx), ref(fmap, ctx), atol=TOL, rtol=0)
        mask = torch.ones(2, 40, 7, dtype=torch.bool)
        mask[:, :, 5:] = False
        masked = ours(x, ctx, attention_mask=mask)
        torch.testing.assert_close(masked, ours(x, ctx[:, :5]), atol=TOL, rtol=0)


def test_attention_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="divisible"):
        Attention(30, heads=4)
    with pytest.raises(ValueError, match="expects"):
        Attention(8)(torch.randn(8, 8))


# -- legacy keys -----------------------------------------------------------------------------------


def test_remap_legacy_attention_keys() -> None:
    t = torch.zeros
    legacy = {
        "mid_block.attentions.0.group_norm.weight": t(4),
        "mid_block.attentions.0.query.weight": t(4, 4),
        "mid_block.attentions.0.query.bias": t(4),
        "mid_block.attentions.0.key.weight": t(4, 4),
        "mid_block.attentions.0.value.weight": t(4, 4, 1, 1),
        "mid_block.attentions.0.proj_attn.weight": t(4, 4),
        "mid_block.attentions.0.proj_attn.bias": t(4),
        "encoder.mid.attn.norm.weight": t(4),
        "encoder.mid.attn.query.weight": t(4, 4),
        "mid_block.resnets.0.norm1.weight": t(4),
    }
    out = remap_legacy_attention_keys(legacy)
    assert set(out) == {
        "mid_block.attentions.0.group_norm.weight",
        "mid_block.attentions.0.to_q.weight",
        "mid_block.attentions.0.to_q.bias",
        "mid_block.attentions.0.to_k.weight",
        "mid_block.attentions.0.to_v.weight",
        "mid_block.attentions.0.to_out.0.weight",
        "mid_block.attentions.0.to_out.0.bias",
        "encoder.mid.attn.group_norm.weight",
        "encoder.mid.attn.to_q.weight",
        "mid_block.resnets.0.norm1.weight",
    }
    assert out["mid_block.attentions.0.to_v.weight"].shape == (4, 4)
    assert remap_legacy_attention_keys(out) == out  # idempotent
    current = {"down_blocks.1.attentions.0.to_q.weight": t(2, 2), "x.norm.weight": t(2)}
    assert remap_legacy_attention_keys(current) == current


# -- blocks ----------------------------------------------------------------------------------------


def _block_parity(ref: torch.nn.Module, ours: torch.nn.Module, *args: object) -> None:
    # A whole block's float32 rounding grows with its output's magnitude (about 10 here): a few
    # ulps at 10 are 1e-6 each, so an absolute bound alone fails on some CPUs' kernels.
    ref.eval()
    ours.eval()
    _randomize(ref)
    _load_from(ours, ref)
    with torch.no_grad():
        expected = ref(*args)
        got = ours(*args)
    if isinstance(expected, tuple):
        assert len(got) == len(expected)
        torch.testing.assert_close(got[0], expected[0], atol=TOL, rtol=TOL)
        for a, b in zip(got[1], expected[1]):
            torch.testing.assert_close(a, b, atol=TOL, rtol=TOL)
    else:
        torch.testing.assert_close(got, expected, atol=TOL, rtol=TOL)


def test_down_blocks_match_reference() -> None:
    blocks = pytest.importorskip("diffusers.models.unets.unet_2d_blocks")
    x, temb = torch.randn(2, 16, 8, 8), torch.randn(2, 24)
    common = {
        "in_channels": 16,
        "out_channels": 32,
        "temb_channels": 24,
        "num_layers": 2,
        "resnet_groups": 8,
    }
    _block_parity(
        blocks.DownBlock2D(**common, downsample_padding=0),
        DownBlock2D(**common, downsample_padding=0),
        x,
        temb,
    )
    _block_parity(
        blocks.AttnDownBlock2D(**common, attention_head_dim=8, downsample_type="resnet"),
        AttnDownBlock2D(**common, attention_head_dim=8, downsample_type="resnet"),
        x,
        temb,
    )
    _block_parity(
        blocks.ResnetDownsampleBlock2D(**common), ResnetDownsampleBlock2D(**common), x, temb
    )


def test_up_blocks_match_reference() -> None:
    blocks = pytest.importorskip("diffusers.models.unets.unet_2d_blocks")
    gen = torch.Generator().manual_seed(3)
    x, temb = torch.randn(2, 32, 4, 4, generator=gen), torch.randn(2, 24, generator=gen)
    skips = (
        torch.randn(2, 16, 4, 4, generator=gen),
        torch.randn(2, 8, 4, 4, generator=gen),
        torch.randn(2, 8, 4, 4, generator=gen),
    )
    common = {
        "in_channels": 16,
        "prev_output_channel": 32,
        "out_channels": 8,
        "temb_channels": 24,
        "num_layers": 3,
        "resnet_groups": 4,
        "resnet_time_scale_shift": "scale_shift",
    }
    _block_parity(blocks.UpBlock2D(**common), UpBlock2D(**common), x, skips, temb)
    _block_parity(
        blocks.AttnUpBlock2D(**common, attention_head_dim=4, upsample_type="resnet"),
        AttnUpBlock2D(**common, attention_head_dim=4, upsample_type="resnet"),
        x,
        skips,
        temb,
    )
    _block_parity(
        blocks.ResnetUpsampleBlock2D(**common), ResnetUpsampleBlock2D(**common), x, skips, temb
    )


def test_autoencoder_blocks_match_reference() -> None:
    blocks = pytest.importorskip("diffusers.models.unets.unet_2d_blocks")
    x = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(4))
    enc = {"in_channels": 16, "out_channels": 32, "num_layers": 2, "resnet_groups": 8}
    _block_parity(
        blocks.DownEncoderBlock2D(**enc, downsample_padding=0),
        DownEncoderBlock2D(**enc, downsample_padding=0),
        x,
    )
    _block_parity(blocks.UpDecoderBlock2D(**enc), UpDecoderBlock2D(**enc), x)
    mid = {"in_channels": 16, "temb_channels": None, "resnet_groups": 8, "attention_head_dim": 16}
    _block_parity(blocks.UNetMidBlock2D(**mid), UNetMidBlock2D(**mid), x)


def test_mid_block_attention_norm_rule() -> None:
    """With scale_shift and no attn_groups the mid-block attention has no GroupNorm (diffusers)."""
    default = UNetMidBlock2D(16, 8, resnet_groups=4)
    shifted = UNetMidBlock2D(16, 8, resnet_groups=4, resnet_time_scale_shift="scale_shift")
    no_attn = UNetMidBlock2D(16, 8, resnet_groups=4, add_attention=False)
    assert default.attentions[0].group_norm is not None
    assert shifted.attentions[0].group_norm is None
    assert len(no_attn.attentions) == 0
    assert no_attn(torch.randn(1, 16, 4, 4), torch.randn(1, 8)).shape == (1, 16, 4, 4)


def test_fast_cpu_kernels_match_the_functional_ops() -> None:
    """linear_rows (row-major oneDNN GEMM) and conv2d_adaptive (im2col GEMM for big kernels over
    few pixels, as at the bottom of the latent-diffusion UNet) equal F.linear / F.conv2d."""
    import torch.nn.functional as F

    from diffusers_hub.nn._kernels import conv2d_adaptive, linear_rows

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 40, 48, generator=g)
    w, b = torch.randn(64, 48, generator=g), torch.randn(64, generator=g)
    out = linear_rows(x, w, b)
    assert out.is_contiguous()
    torch.testing.assert_close(out, F.linear(x, w, b), atol=1e-4, rtol=1e-5)

    # 1024 x 1024 x 3 x 3 = 9.4 Mi weights over 2 x 4 x 4 = 32 output pixels: the unfold path.
    x = torch.randn(2, 1024, 4, 4, generator=g, requires_grad=True)
    w = (torch.randn(1024, 1024, 3, 3, generator=g) * 0.01).requires_grad_()
    b = torch.randn(1024, generator=g)
    fast = conv2d_adaptive(x, w, b, padding=1)
    ref = F.conv2d(x, w, b, padding=1)
    torch.testing.assert_close(fast, ref, atol=1e-4, rtol=1e-4)
    (grad_fast,) = torch.autograd.grad(fast.square().sum(), x)
    (grad_ref,) = torch.autograd.grad(ref.square().sum(), x)
    torch.testing.assert_close(grad_fast, grad_ref, atol=1e-3, rtol=1e-4)
    small = torch.randn(1, 8, 6, 6, generator=g)  # small kernels keep the oneDNN path
    w_small = torch.randn(4, 8, 3, 3, generator=g)
    torch.testing.assert_close(
        conv2d_adaptive(small, w_small, None, padding=1),
        F.conv2d(small, w_small, None, padding=1),
        atol=1e-5,
        rtol=1e-5,
    )
