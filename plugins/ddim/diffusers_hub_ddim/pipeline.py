"""DDIMPipeline: fast deterministic (eta = 0) or stochastic sampling of a DDPM-trained UNet."""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers_hub_ddpm.unet_2d import UNet2DModel

from diffusers_hub.pipeline import DiffusionPipeline, ImagePipelineOutput, OutputType
from diffusers_hub.scheduling import SchedulerMixin
from diffusers_hub_ddim.scheduler import DDIMInverseScheduler, DDIMScheduler

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
        generator: torch.Generator | list[torch.Generator] | None = None,
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
        return self.generate_images(
            locals(),
            lambda x, t: self.unet(x, t).sample,
            eta=eta,
            use_clipped_model_output=bool(use_clipped_model_output),
        )

    @torch.no_grad()
    def invert(self, images: torch.Tensor, num_inference_steps: int = 50) -> torch.Tensor:
        """DDIM inversion: the noise x_T that eta = 0 sampling maps back to ``images``.

        Runs the deterministic DDIM ODE upwards with :class:`DDIMInverseScheduler` built from this
        pipeline's scheduler config (without x0 clipping, which the ODE does not have). :meth:`sample_from` with the same ``num_inference_steps``
        maps the result back to (close to) ``images``.

        Args:
            images: (B, C, H, W) clean samples in the model's range ([-1, 1]).
            num_inference_steps: steps of the inversion (use the same number to sample back).

        Returns:
            (B, C, H, W) the inverted noise.
        """
        inverse = DDIMInverseScheduler.from_config(self._ode_scheduler().config)
        inverse.set_timesteps(num_inference_steps, device=self.device)
        x = images.to(device=self.device, dtype=self.unet.dtype)
        for t in self.progress_bar(inverse.timesteps):
            x = inverse.step(self.unet(x, t).sample, t, x).prev_sample
        return x

    @torch.no_grad()
    def sample_from(self, noise: torch.Tensor, num_inference_steps: int = 50) -> torch.Tensor:
        """Deterministic (eta = 0) DDIM sampling from given noise, the inverse of :meth:`invert`.

        Uses the same unclipped ODE as :meth:`invert`; returns (B, C, H, W) samples.
        """
        scheduler = self._ode_scheduler()
        scheduler.set_timesteps(num_inference_steps, device=self.device)
        x = noise.to(device=self.device, dtype=self.unet.dtype)
        for t in self.progress_bar(scheduler.timesteps):
            x = scheduler.step(self.unet(x, t).sample, t, x, eta=0.0).prev_sample
        return x

    def _ode_scheduler(self) -> DDIMScheduler:
        """The pipeline's schedule without x0 clipping or thresholding.

        Clipping is not part of the probability-flow ODE: with it, inversion is not invertible
        (on the demo weights, clipping raises the 50-step round-trip error from 0.03 to 0.26).
        """
        return DDIMScheduler.from_config(
            self.scheduler.config, clip_sample=False, thresholding=False
        )
