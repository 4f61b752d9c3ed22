"""DDIMPipeline: the conformance kit, DDPM folders, and same-seed parity with diffusers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers_hub_ddim.pipeline import DDIMPipeline
from diffusers_hub_ddim.scheduler import DDIMScheduler
from diffusers_hub_ddpm.pipeline import DDPMPipeline
from diffusers_hub_ddpm.scheduler import DDPMScheduler
from diffusers_hub_ddpm.unet_2d import UNet2DModel

from diffusers_hub import DiffusionPipeline, registry
from diffusers_hub.testing import PipelineContract

TINY_UNET = {
    "sample_size": 8,
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
    "up_block_types": ("AttnUpBlock2D", "UpBlock2D"),
}


def tiny_ddpm_pipeline() -> DDPMPipeline:
    torch.manual_seed(0)
    return DDPMPipeline(
        unet=UNet2DModel(**TINY_UNET), scheduler=DDPMScheduler(num_train_timesteps=100)
    )


class TestDDIMPipeline(PipelineContract):
    call_kwargs = {"num_inference_steps": 3, "batch_size": 2, "eta": 0.5}

    def make_pipeline(self) -> DDIMPipeline:
        ddpm = tiny_ddpm_pipeline()
        return DDIMPipeline(unet=ddpm.unet, scheduler=ddpm.scheduler)


def test_registry_names() -> None:
    assert registry.pipeline("ddim") is DDIMPipeline
    assert registry.scheduler("DDIMScheduler") is DDIMScheduler


def test_loads_any_ddpm_folder_and_converts_its_scheduler(tmp_path) -> None:
    tiny_ddpm_pipeline().save_pretrained(tmp_path / "ddpm")
    pipe = DDIMPipeline.from_pretrained(tmp_path / "ddpm")
    assert isinstance(pipe, DDIMPipeline)
    assert isinstance(pipe.scheduler, DDIMScheduler)
    assert pipe.scheduler.config.num_train_timesteps == 100
    assert isinstance(DiffusionPipeline.from_pretrained(tmp_path / "ddpm"), DDPMPipeline)


def test_eta_zero_is_deterministic_given_the_initial_noise() -> None:
    pipe = DDIMPipeline(**tiny_ddpm_pipeline().components)
    pipe.set_progress_bar_config(disable=True)
    a = pipe(generator=torch.Generator().manual_seed(0), num_inference_steps=5, output_type="np")
    torch.manual_seed(123)
    b = pipe(generator=torch.Generator().manual_seed(0), num_inference_steps=5, output_type="np")
    np.testing.assert_array_equal(a.images, b.images)


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_parity_with_diffusers_ddim_pipeline(tmp_path, eta) -> None:
    diffusers = pytest.importorskip("diffusers")
    ref_unet = diffusers.UNet2DModel(**TINY_UNET)
    ref = diffusers.DDIMPipeline(
        unet=ref_unet, scheduler=diffusers.DDIMScheduler(num_train_timesteps=100)
    )
    ref.set_progress_bar_config(disable=True)
    ref.save_pretrained(tmp_path / "ref")
    ours = DiffusionPipeline.from_pretrained(tmp_path / "ref")
    assert isinstance(ours, DDIMPipeline)
    ours.set_progress_bar_config(disable=True)
    kwargs = {"num_inference_steps": 10, "eta": eta, "batch_size": 2, "output_type": "np"}
    expected = ref(generator=torch.Generator().manual_seed(0), **kwargs).images
    got = ours(generator=torch.Generator().manual_seed(0), **kwargs).images
    assert np.abs(got - expected).max() < 1e-4
