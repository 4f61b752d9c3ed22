"""DDIMPipeline: fast deterministic (eta = 0) or stochastic sampling of a DDPM-trained UNet."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from diffusers_hub_ddpm.pipeline import sample_shape
from diffusers_hub_ddpm.unet_2d import UNet2DModel

from diffusers_hub.noise import randn_tensor
from diffusers_hub.pipeline import (
    DiffusionPipeline,
    ImagePipelineOutput,
    OutputType,
    tensor_to_images,
)
from diffusers_hub.scheduling import SchedulerMixin
from diffusers_hub_ddim.scheduler import DDIMScheduler

__all__ = ["DDIMPipeline"]


class DDIMPipeline(DiffusionPipeline):
    """Unconditional image generation with DDIM sampling over any DDPM-trained UNet.

    Any scheduler passed in (for example the DDPMScheduler of a google/ddpm-* folder) is converted
    with ``DDIMScheduler.from_config``, so ``DDIMPipeline.from_pretrained`` works on every DDPM
    pipeline folder.

    References:
        Song, Meng, Ermon. Denoising Diffusion Implicit Models. arXiv:2010.02502.

    Example:
        >>> from diffusers_hub_ddim.pipeline import DDIMPipeline
        >>> pipe = DDIMPipeline.from_pretrained(demo_folder)  # doctest: +SKIP
        >>> images = pipe(num_inference_steps=50, eta=0.0).images  # doctest: +SKIP
    """

    unet: UNet2DModel
    scheduler: DDIMScheduler

    def __init__(self, unet: UNet2DModel, scheduler: SchedulerMixin) -> None:
        if not isinstance(scheduler, DDIMScheduler):
            scheduler = DDIMScheduler.from_config(scheduler.config)
        super().__init__(unet=unet, scheduler=scheduler)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        eta: float = 0.0,
        num_inference_steps: int = 50,
        use_clipped_model_output: bool | None = None,
        output_type: OutputType = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
        callback_steps: int = 1,
    ) -> ImagePipelineOutput | tuple[object]:
        """Generate ``batch_size`` images in ``num_inference_steps`` DDIM steps.

        Args:
            batch_size: number of images.
            generator: seeds the initial noise and, for eta > 0, the noise of every step.
            eta: 0 for the deterministic DDIM sampler, 1 for DDPM-like ancestral noise (eq. 16).
            num_inference_steps: number of steps (10-100 is typical).
            use_clipped_model_output: recompute the noise from the clipped x0 prediction.
            output_type: ``"pil"``, ``"np"`` or ``"pt"``.
            return_dict: return an :class:`ImagePipelineOutput` (else a tuple).
            callback: called as ``callback(step_index, timestep, sample)``.
            callback_steps: how often the callback runs.
        """
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
            image = self.scheduler.step(
                model_output,
                t,
                image,
                eta=eta,
                use_clipped_model_output=use_clipped_model_output,
                generator=generator,
            ).prev_sample
            if callback is not None and i % callback_steps == 0:
                callback(i, int(t), image)
        images = tensor_to_images(image, output_type)
        return ImagePipelineOutput(images=images) if return_dict else (images,)
