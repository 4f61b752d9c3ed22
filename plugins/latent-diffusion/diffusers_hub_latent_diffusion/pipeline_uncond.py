"""LDMPipeline: unconditional latent diffusion (CompVis/ldm-celebahq-256).

Gaussian latents (B, 3, 64, 64) are denoised by a plain ``UNet2DModel`` under DDIM, then the VQ
autoencoder snaps them to its codebook and decodes them to 256x256 images.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from diffusers_hub_ddpm.unet_2d import UNet2DModel
from torch import Tensor

from diffusers_hub.pipeline import DiffusionPipeline, ImagePipelineOutput, OutputType
from diffusers_hub.scheduling import SchedulerMixin
from diffusers_hub_latent_diffusion.autoencoder import AutoencoderKL, VQModel
from diffusers_hub_latent_diffusion.pipeline_text2img import decode_latents

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
        decode = partial(decode_latents, self.vqvae)
        return self.generate_images(
            locals(), lambda x, t: self.unet(x, t).sample, decode=decode, eta=eta
        )
