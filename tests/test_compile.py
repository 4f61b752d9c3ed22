"""``DiffusionPipeline.compile``: the denoiser under ``torch.compile`` (Inductor, CPU) gives eager's
outputs within 1e-5 and stays the same component (class, config, weights, saving)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from diffusers_hub_ddpm.pipeline import DDPMPipeline
from diffusers_hub_ddpm.scheduler import DDPMScheduler
from diffusers_hub_ddpm.unet_2d import UNet2DModel

from diffusers_hub import DiffusionPipeline


def _tiny_pipeline() -> DDPMPipeline:
    """The smallest UNet the DDPM plugin builds: one level, one resnet down, two up."""
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8,),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D",),
        up_block_types=("UpBlock2D",),
        mid_block_type=None,
    ).eval()
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=50))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_compile_names_missing_components() -> None:
    pipe = _tiny_pipeline()
    with pytest.raises(ValueError, match=r"no network component 'vae'.*unet, scheduler"):
        pipe.compile(components=["vae"])
    with pytest.raises(ValueError, match="'scheduler'"):
        pipe.compile(components=["scheduler"])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None, reason="no cc")
def test_compiled_pipeline_equals_eager_on_cpu(tmp_path: Path) -> None:
    pipe = _tiny_pipeline()
    options = {"batch_size": 2, "num_inference_steps": 3, "output_type": "pt"}
    eager = pipe(generator=torch.Generator().manual_seed(0), **options).images
    assert pipe.compile() is pipe
    assert type(pipe.unet) is UNet2DModel  # compiled in place: same class and config
    compiled = pipe(generator=torch.Generator().manual_seed(0), **options).images
    assert pipe.unet._compiled_call_impl is not None
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=0)
    pipe.save_pretrained(tmp_path / "saved")  # the state dict keeps its keys
    reloaded = DiffusionPipeline.from_pretrained(tmp_path / "saved")
    again = reloaded(generator=torch.Generator().manual_seed(0), **options).images
    torch.testing.assert_close(again, eager, atol=1e-6, rtol=0)
