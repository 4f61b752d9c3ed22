"""LDMPipeline: unconditional latent diffusion (CompVis/ldm-celebahq-256).

Gaussian latents (B, 3, 64, 64) are denoised by a plain ``UNet2DModel`` under DDIM, then the VQ
autoencoder snaps them to its codebook and decodes them to 256x256 images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers_hub_ddpm.unet_2d import UNet2DModel
from torch import Tensor

from diffusers_hub.noise import randn_tensor
from diffusers_hub.pipeline import (
    DiffusionPipeline,
    ImagePipelineOutput,
    OutputType,
    tensor_to_images,
)
from diffusers_hub.scheduling import SchedulerMixin
from diffusers_hub_latent_diffusion.autoencoder import AutoencoderKL, VQModel
from diffusers_hub_latent_diffusion.pipeline_text2img import step_options

__all__ = ["LDMPipeline"]


class LDMPipeline(DiffusionPipeline):
    """Unconditional image generation in the latent space of a VQ (or KL) autoencoder.

    References:
        Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models",
        arXiv:2112.10752 (Sec. 4.1; celebahq: 200 DDIM steps at eta 0).

    Example:
        >>> import torch
        >>> from diffusers_hub import DiffusionPipeline
        >>> pipe = DiffusionPipeline.from_pretrained("CompVis/ldm-celebahq-256")  # doctest: +SKIP
        >>> images = pipe(batch_size=2, num_inference_steps=200,
        ...               generator=torch.Generator().manual_seed(0)).images  # doctest: +SKIP
    """

    vqvae: VQModel | AutoencoderKL
    unet: UNet2DModel
    scheduler: SchedulerMixin

    def __init__(
        self, vqvae: VQModel | AutoencoderKL, unet: UNet2DModel, scheduler: SchedulerMixin
    ) -> None:
        super().__init__(vqvae=vqvae, unet=unet, scheduler=scheduler)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        eta: float = 0.0,
        num_inference_steps: int = 50,
        latents: Tensor | None = None,
        output_type: OutputType = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Tensor], None] | None = None,
        callback_steps: int = 1,
    ) -> ImagePipelineOutput | tuple[Any]:
        """Generate ``batch_size`` images.

        Args:
            batch_size: number of images.
            generator: seeds the initial latents and, with eta > 0, every step's noise.
            eta: DDIM's eta (0 deterministic), for schedulers whose ``step`` takes it.
            num_inference_steps: denoising steps.
            latents: (B, C, S, S) initial noise instead of drawing it (S = ``unet.sample_size``).
            output_type: ``"pil"``, ``"np"`` or ``"pt"``.
            return_dict: an :class:`ImagePipelineOutput` (else a 1-tuple).
            callback: called as ``callback(step_index, timestep, latents)``.
            callback_steps: call ``callback`` every this many steps.
        """
        self.check_inputs(
            batch_size=batch_size,
            generator=generator,
            num_inference_steps=num_inference_steps,
            output_type=output_type,
            callback_steps=callback_steps,
            eta=eta,
        )
        c = self.unet.config
        size = c.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        shape = (batch_size, c.in_channels, height, width)
        device, dtype = self.unet.device, self.unet.dtype
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {shape}")
        latents = latents.to(device=device, dtype=dtype) * self.scheduler.init_noise_sigma

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        extra = step_options(self.scheduler, eta=eta, generator=generator)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_in = self.scheduler.scale_model_input(latents, t)
            noise = self.unet(model_in, t).sample
            latents = self.scheduler.step(noise, t, latents, **extra)[0]
            if callback is not None and i % callback_steps == 0:
                callback(i, int(t), latents)

        image = self.vqvae.decode(latents / self.vqvae.config.scaling_factor)[0]
        images = tensor_to_images(image, output_type)
        return ImagePipelineOutput(images) if return_dict else (images,)
