"""Tests of the example pipeline: the diffusers-hub conformance kit plus its own checks.

The pipeline is tested with the ddpm plugin's UNet2DModel and DDPMScheduler (a dependency).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from diffusers_hub import registry
from diffusers_hub.testing import PipelineContract

from {{ package }}.pipeline import (
    {{ class_name }},
)

TINY_UNET: dict[str, Any] = {
    "sample_size": 8,
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "down_block_types": ("DownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "UpBlock2D"),
}


def tiny_pipeline(scheduler: str = "ddpm") -> {{ class_name }}:
    torch.manual_seed(0)
    unet = registry.model("UNet2DModel")(**TINY_UNET)
    return {{ class_name }}(
        unet=unet,
        scheduler=registry.scheduler(scheduler)(num_train_timesteps=100),
    )


class Test{{ class_name }}Contract(PipelineContract):
    """Every check that diffusers-hub makes of a pipeline."""

    call_kwargs: ClassVar[dict[str, Any]] = {"num_inference_steps": 3, "batch_size": 2}

    def make_pipeline(self) -> {{ class_name }}:
        return tiny_pipeline()


def test_output_shape_and_range() -> None:
    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    images = pipe(batch_size=3, num_inference_steps=2, output_type="np").images
    assert images.shape == (3, 8, 8, 3)
    assert images.min() >= 0 and images.max() <= 1


def test_other_seed_other_images() -> None:
    pipe = tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    images = [
        pipe(num_inference_steps=2, output_type="np", generator=torch.manual_seed(s)).images
        for s in (0, 1)
    ]
    assert not np.allclose(images[0], images[1])
