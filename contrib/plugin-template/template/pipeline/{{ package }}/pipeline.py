"""The plugin's example pipeline, a working starting point that you replace with your own.

An unconditional image pipeline that runs any diffusers-hub scheduler over any noise-predicting
image model (``model(x, t).sample``): draw x_T, then for every scheduled timestep scale the input,
call the model and let the scheduler step. Its components are declared by ``__init__``'s
parameters, so ``save_pretrained`` writes, and ``DiffusionPipeline.from_pretrained`` reads, a
Hub-format pipeline folder (``model_index.json`` plus one subfolder per component), resolving
every class through the registry.

Swap the scheduler without touching the weights::

    pipe.scheduler = registry.scheduler("ddim").from_config(pipe.scheduler.config)

References:
    Ho, Jain and Abbeel 2020, "Denoising Diffusion Probabilistic Models", arXiv:2006.11239
    (algorithm 2, the sampling loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers_hub.noise import randn_tensor
from diffusers_hub.pipeline import DiffusionPipeline, ImagePipelineOutput, tensor_to_images

__all__ = ["{{ class_name }}"]


class {{ class_name }}(DiffusionPipeline):
    """Unconditional image generation with any scheduler.

    Args:
        unet: a noise-predicting image model with ``config.in_channels`` and
            ``config.sample_size`` (for example the ddpm plugin's ``UNet2DModel``).
        scheduler: any diffusers-hub scheduler.
    """

    def __init__(self, unet: Any, scheduler: Any) -> None:
        super().__init__(unet=unet, scheduler=scheduler)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int = 50,
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
        callback_steps: int = 1,
    ) -> ImagePipelineOutput | tuple[Any]:
        """Generate ``batch_size`` images.

        Args:
            batch_size: number of images.
            generator: a ``torch.Generator`` (or one per image) for reproducible results.
            num_inference_steps: number of scheduler steps.
            output_type: ``"pil"``, ``"np"`` ((B, H, W, C) in [0, 1]) or ``"pt"``.
            return_dict: return an :class:`ImagePipelineOutput` (else a tuple).
            callback: called as ``callback(step_index, timestep, latents)``.
            callback_steps: call ``callback`` every this many steps.

        Returns:
            The images.
        """
        if callback_steps < 1:
            raise ValueError(f"callback_steps must be >= 1, got {callback_steps}")
        config = self.unet.config
        size = config.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        shape = (batch_size, config.in_channels, height, width)
        x = randn_tensor(shape, generator=generator, device=self.device, dtype=self.dtype)
        x = x * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_input = self.scheduler.scale_model_input(x, t)
            prediction = self.unet(model_input, t).sample
            x = self.scheduler.step(prediction, t, x, generator=generator).prev_sample
            if callback is not None and i % callback_steps == 0:
                callback(i, int(t), x)
        images = tensor_to_images(x, output_type)  # type: ignore[arg-type]
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)
