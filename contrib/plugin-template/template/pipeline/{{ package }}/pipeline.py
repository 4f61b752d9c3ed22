"""The plugin's example pipeline, a working starting point that you replace with your own.

An unconditional image pipeline that runs any diffusers-hub scheduler over any noise-predicting
image model (``model(x, t).sample``). The core does the rest: ``prepare_latents`` draws x_T,
``denoise`` runs the scheduled steps with a progress bar and the callback, ``image_output`` turns
the samples into PIL, numpy or tensor images; a pipeline passes only its own model call.

Its components are declared by ``__init__``'s parameters, so ``save_pretrained`` writes, and
``DiffusionPipeline.from_pretrained`` reads, a Hub-format pipeline folder (``model_index.json``
plus one subfolder per component), resolving every class through the registry.

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
from diffusers_hub.pipeline import DiffusionPipeline, ImagePipelineOutput, OutputType

__all__ = ["{{ class_name }}"]


class {{ class_name }}(DiffusionPipeline):
    """Unconditional image generation with any scheduler.

    Args:
        unet: a noise-predicting image model (a ``ModelMixin``) with ``config.in_channels`` and
            ``config.sample_size``, for example the ddpm plugin's ``UNet2DModel``.
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
        output_type: OutputType = "pil",
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
        return self.generate_images(locals(), lambda x, t: self.unet(x, t).sample)
