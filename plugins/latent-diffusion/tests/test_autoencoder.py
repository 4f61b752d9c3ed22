"""AutoencoderKL and VQModel: parity with diffusers, legacy keys, slicing and tiling."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers_hub_latent_diffusion.autoencoder import (
    AutoencoderKL,
    DiagonalGaussianDistribution,
    VQModel,
    tiled_apply,
)

from diffusers_hub.testing import perturb

COMMON = dict(
    block_out_channels=(8, 16),
    norm_num_groups=4,
    layers_per_block=1,
    down_block_types=("DownEncoderBlock2D",) * 2,
    up_block_types=("UpDecoderBlock2D",) * 2,
    sample_size=16,
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    diffusers = pytest.importorskip("diffusers")
    folder = tmp_path_factory.mktemp("ae")
    torch.manual_seed(0)
    kl = diffusers.AutoencoderKL(**COMMON, latent_channels=4).eval()
    vq = diffusers.VQModel(**COMMON, latent_channels=3, num_vq_embeddings=32).eval()
    perturb(kl, 1, scale=0.05)
    perturb(vq, 2, scale=0.05)
    kl.save_pretrained(str(folder / "kl"))
    vq.save_pretrained(str(folder / "vq"))
    return kl, vq, folder


def test_kl_parity(reference) -> None:
    ref, _, folder = reference
    ours = AutoencoderKL.from_pretrained(folder / "kl")
    assert ours.config.scaling_factor == pytest.approx(0.18215)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ref.encode(x).latent_dist, ours.encode(x).latent_dist
        assert (a.mean - b.mean).abs().max() < 1e-5
        assert (a.logvar - b.logvar).abs().max() < 1e-5
        assert (a.kl() - b.kl()).abs().max() < 1e-4
        s_ref = a.sample(torch.Generator().manual_seed(5))
        s_ours = b.sample(torch.Generator().manual_seed(5))
        assert (s_ref - s_ours).abs().max() < 1e-5
        assert torch.equal(b.mode(), b.mean)
        err = (ref.decode(s_ref).sample - ours.decode(s_ref).sample).abs().max().item()
        assert err < 1e-5
        assert (ref(x).sample - ours(x).sample).abs().max() < 1e-5


def test_vq_parity(reference) -> None:
    _, ref, folder = reference
    ours = VQModel.from_pretrained(folder / "vq")
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ha, hb = ref.encode(x).latents, ours.encode(x).latents
        assert (ha - hb).abs().max() < 1e-5
        assert (ref.decode(ha).sample - ours.decode(ha).sample).abs().max() < 1e-5
        unq = (
            ref.decode(ha, force_not_quantize=True).sample
            - ours.decode(ha, force_not_quantize=True).sample
        )
        assert unq.abs().max() < 1e-5
        # Decode-time quantisation: codes decode the same as any point nearest to them.
        codes = ours.quantize.embedding.weight
        idx = torch.randint(0, 32, (1, 8, 8))
        z = codes[idx].permute(0, 3, 1, 2)
        assert torch.equal(ours.quantize.indices(z + 1e-4), idx)


def test_saved_here_loads_in_reference(tmp_path: Path) -> None:
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(3)
    for ours, ref_cls in (
        (AutoencoderKL(**COMMON), diffusers.AutoencoderKL),
        (VQModel(**COMMON, num_vq_embeddings=16), diffusers.VQModel),
    ):
        ours.eval()
        perturb(ours, 4, scale=0.05)
        ours.save_pretrained(tmp_path / type(ours).__name__)
        ref = ref_cls.from_pretrained(str(tmp_path / type(ours).__name__)).eval()
        assert ref.config.scaling_factor == ours.config.scaling_factor
        x = torch.randn(1, 3, 16, 16)
        with torch.no_grad():
            assert (ref(x).sample - ours(x).sample).abs().max() < 1e-5


def test_legacy_attention_keys(reference, tmp_path: Path) -> None:
    _, _, folder = reference
    ours = AutoencoderKL.from_pretrained(folder / "kl")
    state = ours.state_dict()
    legacy = {}
    for key, value in state.items():
        for new, old in (
            ("to_q", "query"),
            ("to_k", "key"),
            ("to_v", "value"),
            ("to_out.0", "proj_attn"),
        ):
            if f"mid_block.attentions.0.{new}." in key:
                key = key.replace(new, old)
                value = value[:, :, None, None] if value.ndim == 2 else value
        key = key.replace("attentions.0.group_norm", "attentions.0.norm")
        legacy[key] = value
    assert "encoder.mid_block.attentions.0.query.weight" in legacy
    import shutil

    from safetensors.torch import save_file

    shutil.copytree(folder / "kl", tmp_path / "legacy")
    save_file(legacy, str(tmp_path / "legacy" / "diffusion_pytorch_model.safetensors"))
    loaded = AutoencoderKL.from_pretrained(tmp_path / "legacy")
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_slicing_and_tiling(reference) -> None:
    ref, _, folder = reference
    ours = AutoencoderKL.from_pretrained(folder / "kl")
    z = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = ours.decode(z).sample
        ours.enable_slicing()
        assert (ours.decode(z).sample - full).abs().max() < 1e-5
        ours.disable_slicing()
        big = torch.randn(1, 4, 20, 28, generator=torch.Generator().manual_seed(3))
        ours.enable_tiling()
        ref.enable_tiling()
        tiled = ours.decode(big).sample
        assert tiled.shape == (1, 3, 40, 56)
        assert (tiled - ref.decode(big).sample).abs().max() < 1e-5  # same blending as diffusers
        ref.disable_tiling()
        # Tiles agree with the untiled decode away from tile borders only approximately.
        ours.disable_tiling()
        assert (ours.decode(big).sample - tiled).abs().mean() < 0.5


def test_tiled_apply_is_exact_for_pointwise_functions() -> None:
    x = torch.randn(1, 2, 37, 23)
    out = tiled_apply(
        x,
        lambda t: t.repeat_interleave(2, 2).repeat_interleave(2, 3) * 3.0,
        tile_in=8,
        tile_out=16,
        overlap=0.25,
    )
    expected = x.repeat_interleave(2, 2).repeat_interleave(2, 3) * 3.0
    assert out.shape == expected.shape
    assert (out - expected).abs().max() < 1e-5


def test_diagonal_gaussian() -> None:
    params = torch.cat([torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 100.0)], dim=1)
    dist = DiagonalGaussianDistribution(params)
    assert dist.logvar.max() == 20.0  # clamped
    std_normal = DiagonalGaussianDistribution(torch.zeros(2, 6, 4, 4))
    assert torch.allclose(std_normal.kl(), torch.zeros(2))
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    torch.manual_seed(1)
    a = std_normal.sample(g1)
    torch.manual_seed(2)
    assert torch.equal(a, std_normal.sample(g2))
    det = DiagonalGaussianDistribution(torch.randn(1, 6, 2, 2), deterministic=True)
    assert torch.equal(det.sample(), det.mean)
