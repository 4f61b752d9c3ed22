"""DDPMPipeline: ancestral sampling of an unconditional image UNet (Ho et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffusers_hub.noise import randn_tensor
from diffusers_hub.pipeline import (
    DiffusionPipeline,
    ImagePipelineOutput,
    OutputType,
    tensor_to_images,
)
from diffusers_hub.scheduling import SchedulerMixin
from diffusers_hub_ddpm.unet_2d import UNet2DModel

__all__ = ["DDPMPipeline", "sample_shape"]


def sample_shape(unet: UNet2DModel, batch_size: int) -> tuple[int, int, int, int]:
    """(B, C, H, W) of the samples ``unet`` produces, from its config's ``sample_size``."""
    size = unet.config.sample_size
    if size is None:
        raise ValueError("the UNet config has no sample_size; set it to generate images")
    height, width = (size, size) if isinstance(size, int) else size
    return (batch_size, unet.config.in_channels, height, width)


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
        self.check_inputs(
            batch_size=batch_size,
            generator=generator,
            num_inference_steps=num_inference_steps,
            output_type=output_type,
            callback_steps=callback_steps,
        )
        device = self.device
        image = randn_tensor(
            sample_shape(self.unet, batch_size),
            generator=generator,
            device=device,
            dtype=self.unet.dtype,
        )
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_output = self.unet(image, t).sample
            image = self.scheduler.step(model_output, t, image, generator=generator).prev_sample
            if callback is not None and i % callback_steps == 0:
                callback(i, int(t), image)
        images = tensor_to_images(image, output_type)
        return ImagePipelineOutput(images=images) if return_dict else (images,)
