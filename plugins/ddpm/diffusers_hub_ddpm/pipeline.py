"""DDPMPipeline: ancestral sampling of an unconditional image UNet (Ho et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffusers_hub.pipeline import DiffusionPipeline, ImagePipelineOutput, OutputType, sample_shape
from diffusers_hub.scheduling import SchedulerMixin
from diffusers_hub_ddpm.unet_2d import UNet2DModel

__all__ = ["DDPMPipeline", "sample_shape"]


class DDPMPipeline(DiffusionPipeline):
    """Unconditional image generation with a DDPM-trained UNet.

    The loop is Algorithm 2 of the paper: start from x_T ~ N(0, I) and apply the scheduler's
    ``step`` for every timestep of the schedule.

    References:
        Ho, Jain, Abbeel. Denoising Diffusion Probabilistic Models. arXiv:2006.11239.

    Example:
        >>> from diffusers_hub import DiffusionPipeline
        >>> pipe = DiffusionPipeline.from_pretrained(demo_folder)  # doctest: +SKIP
        >>> images = pipe(batch_size=4, num_inference_steps=100).images  # doctest: +SKIP
    """

    unet: UNet2DModel
    scheduler: SchedulerMixin

    def __init__(self, unet: UNet2DModel, scheduler: SchedulerMixin) -> None:
        super().__init__(unet=unet, scheduler=scheduler)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int = 1000,
        output_type: OutputType = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
        callback_steps: int = 1,
    ) -> ImagePipelineOutput | tuple[object]:
        """Generate ``batch_size`` images.

        Args:
            batch_size: number of images.
            generator: seeds the initial noise and the noise of every step (one per image when a
                list).
            num_inference_steps: steps of the reverse process (at most the training steps; fewer
                steps skip timesteps with the posterior recomputed).
            output_type: ``"pil"``, ``"np"`` or ``"pt"``.
            return_dict: return an :class:`ImagePipelineOutput` (else a tuple).
            callback: called as ``callback(step_index, timestep, sample)`` every
                ``callback_steps`` steps.
            callback_steps: how often the callback runs.
        """
        return self.generate_images(locals(), lambda x, t: self.unet(x, t).sample)
