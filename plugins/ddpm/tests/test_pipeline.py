"""DDPMPipeline: the conformance kit, folder loading, and same-seed parity with diffusers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers_hub_ddpm.pipeline import DDPMPipeline
from diffusers_hub_ddpm.scheduler import DDPMScheduler
from diffusers_hub_ddpm.unet_2d import UNet2DModel

from diffusers_hub import DiffusionPipeline, registry
from diffusers_hub.testing import ModelContract, PipelineContract

TINY_UNET = {
    "sample_size": 8,
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
    "up_block_types": ("AttnUpBlock2D", "UpBlock2D"),
    "attention_head_dim": None,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "downsample_padding": 0,
    "norm_eps": 1e-6,
}


def tiny_pipeline(variance_type: str = "fixed_large") -> DDPMPipeline:
    torch.manual_seed(0)
    unet = UNet2DModel(**TINY_UNET)
    scheduler = DDPMScheduler(num_train_timesteps=100, variance_type=variance_type)
    return DDPMPipeline(unet=unet, scheduler=scheduler)


class TestDDPMPipeline(PipelineContract):
    call_kwargs = {"num_inference_steps": 3, "batch_size": 2}

    def make_pipeline(self) -> DDPMPipeline:
        return tiny_pipeline()


class TestUNet2DModelContract(ModelContract):
    model_class = UNet2DModel
    model_config = TINY_UNET

    def make_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        return torch.randn(batch_size, 3, 8, 8, generator=g), torch.tensor([3] * batch_size)


def test_registry_names_resolve_to_the_plugin_classes() -> None:
    assert registry.pipeline("ddpm") is DDPMPipeline
    assert registry.pipeline("DDPMPipeline") is DDPMPipeline
    assert registry.scheduler("ddpm") is DDPMScheduler
    assert registry.model("UNet2DModel") is UNet2DModel


def test_flat_google_style_folder_loads(tmp_path) -> None:
    """google/ddpm-* keep config.json, weights and scheduler_config.json at the root."""
    pipe = tiny_pipeline()
    pipe.unet.save_pretrained(tmp_path / "flat")
    pipe.scheduler.save_pretrained(tmp_path / "flat")
    index = {
        "_class_name": "DDPMPipeline",
        "_diffusers_version": "0.1.1",
        "unet": ["diffusers", "UNet2DModel"],
        "scheduler": ["diffusers", "DDPMScheduler"],
    }
    (tmp_path / "flat" / "model_index.json").write_text(json.dumps(index))
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "flat")
    assert isinstance(loaded, DDPMPipeline)
    (tmp_path / "flat" / "model_index.json").unlink()  # no index at all: the class decides
    loaded = DDPMPipeline.from_pretrained(tmp_path / "flat")
    assert isinstance(loaded.scheduler, DDPMScheduler)


def test_seed_gives_same_images_whatever_the_global_rng(tmp_path) -> None:
    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    outs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        outs.append(
            pipe(
                generator=torch.Generator().manual_seed(5), num_inference_steps=4, output_type="np"
            ).images
        )
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("variance_type", ["fixed_large", "fixed_small"])
def test_parity_with_diffusers_ddpm_pipeline(tmp_path, variance_type) -> None:
    diffusers = pytest.importorskip("diffusers")
    ref_unet = diffusers.UNet2DModel(**TINY_UNET)
    ref_scheduler = diffusers.DDPMScheduler(num_train_timesteps=100, variance_type=variance_type)
    ref = diffusers.DDPMPipeline(unet=ref_unet, scheduler=ref_scheduler)
    ref.set_progress_bar_config(disable=True)
    ref.save_pretrained(tmp_path / "ref")

    ours = DiffusionPipeline.from_pretrained(tmp_path / "ref")
    assert isinstance(ours, DDPMPipeline)
    ours.set_progress_bar_config(disable=True)
    options = {"num_inference_steps": 20, "batch_size": 2, "output_type": "np"}
    expected, got = (
        p(generator=torch.Generator().manual_seed(0), **options).images for p in (ref, ours)
    )
    assert got.shape == expected.shape == (2, 8, 8, 3)
    assert np.abs(got - expected).max() < 1e-4


def test_saved_here_loads_in_diffusers(tmp_path) -> None:
    diffusers = pytest.importorskip("diffusers")
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "ours")
    ref = diffusers.DDPMPipeline.from_pretrained(tmp_path / "ours")
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ref.unet(x, 7).sample, pipe.unet(x, 7).sample, atol=1e-5, rtol=0)
