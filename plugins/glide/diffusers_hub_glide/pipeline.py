"""GLIDEPipeline: text-to-image with classifier-free guidance, then a text-conditional upsampler.

Stage 1 (base, 64 px in the release): ancestral sampling with learned-range variance over a
respaced schedule (``"100"``); each step runs the UNet once on the doubled batch
[conditional, unconditional] and guides the noise channels only. Stage 2 (``upsample=True``):
the quantised base image, bilinearly resized inside the upsampler, conditions a DDIM (eta 0) run
over ``"fast27"`` from noise scaled by ``upsample_temp`` (0.997), without guidance, or, with
``upsample_strength`` s < 1, from the bilinear resize noised to t = s T (``upsample_images``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from diffusers_hub.pipeline import DiffusionPipeline, ImagePipelineOutput, OutputType
from diffusers_hub.scheduling import SchedulerMixin
from diffusers_hub_glide.respace import guided_model_output, respaced_timesteps
from diffusers_hub_glide.tokenizer import GLIDETokenizer
from diffusers_hub_glide.unet import GLIDEUNetModel, TextEncoding

__all__ = ["GLIDEPipeline", "quantize"]

Generator = torch.Generator | list[torch.Generator] | None


def quantize(images: Tensor) -> Tensor:
    """Round (B, C, H, W) images in [-1, 1] to the 256 levels of an 8-bit image, as the release
    does before upsampling."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


class GLIDEPipeline(DiffusionPipeline):
    """GLIDE: a guided text-conditional base model and an optional text-conditional upsampler.

    Components: ``unet`` (:class:`GLIDEUNetModel`, base), ``scheduler`` (DDPMScheduler with
    ``variance_type="learned_range"``, ``squaredcos_cap_v2``), ``tokenizer``
    (:class:`GLIDETokenizer`), and optionally ``upsample_unet`` (a :class:`GLIDEUNetModel` with
    ``in_channels=6``) and ``upsample_scheduler`` (DDIMScheduler, ``linear``).

    Example:
        >>> from diffusers_hub import DiffusionPipeline
        >>> pipe = DiffusionPipeline.from_pretrained("./glide")  # doctest: +SKIP
        >>> image = pipe("an oil painting of a corgi", guidance_scale=3.0).images[0]  # doctest: +SKIP

    References:
        Nichol et al. 2021, "GLIDE: Towards Photorealistic Image Generation and Editing with
        Text-Guided Diffusion Models", arXiv:2112.10741.
    """

    optional_components: ClassVar[tuple[str, ...]] = ("upsample_unet", "upsample_scheduler")

    unet: GLIDEUNetModel
    scheduler: SchedulerMixin
    tokenizer: GLIDETokenizer
    upsample_unet: GLIDEUNetModel | None
    upsample_scheduler: SchedulerMixin | None

    def __init__(
        self,
        unet: GLIDEUNetModel,
        scheduler: SchedulerMixin,
        tokenizer: GLIDETokenizer,
        upsample_unet: GLIDEUNetModel | None = None,
        upsample_scheduler: SchedulerMixin | None = None,
    ) -> None:
        if (upsample_unet is None) != (upsample_scheduler is None):
            raise ValueError("pass both upsample_unet and upsample_scheduler, or neither")
        super().__init__(
            unet=unet,
            scheduler=scheduler,
            tokenizer=tokenizer,
            upsample_unet=upsample_unet,
            upsample_scheduler=upsample_scheduler,
        )

    def encode_prompts(self, unet: GLIDEUNetModel, texts: Sequence[str]) -> TextEncoding:
        """Tokenise ``texts`` to ``unet``'s ``text_ctx`` and run its text transformer once."""
        enc = self.tokenizer(list(texts), max_length=unet.config.text_ctx)
        return unet.encode_text(enc.input_ids.to(unet.device), enc.attention_mask.to(unet.device))

    @staticmethod
    def _model_output_for(scheduler: SchedulerMixin, output: Tensor, channels: int) -> Tensor:
        """All channels for a learned-variance scheduler, else only the noise channels."""
        variance = str(getattr(scheduler.config, "variance_type", ""))
        return output if variance.startswith("learned") else output[:, :channels]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_inference_steps: int | str = 100,
        guidance_scale: float = 3.0,
        upsample: bool | None = None,
        upsample_num_inference_steps: int | str = "fast27",
        upsample_temp: float = 0.997,
        upsample_strength: float = 1.0,
        generator: Generator = None,
        num_images_per_prompt: int = 1,
        output_type: OutputType = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Tensor], None] | None = None,
        callback_steps: int = 1,
    ) -> ImagePipelineOutput | tuple[Any]:
        """Generate images for ``prompt``.

        Args:
            prompt: a prompt or a list of prompts.
            num_inference_steps: base respacing: an int n (n steps strided over the T training
                steps), or a release spec ``"100"``, ``"27,10"``, ``"fast27"``, ``"ddim50"``.
            guidance_scale: classifier-free guidance s on the noise channels (3.0 in the
                release); 1.0 runs the conditional model alone.
            upsample: run the upsampler (default: whenever the pipeline has one).
            upsample_num_inference_steps: the upsampler's respacing (``"fast27"``).
            upsample_temp: scale of the upsampler's initial noise (0.997).
            upsample_strength: 1 (the release) starts the upsampler from noise; s < 1 starts it
                from the bilinear resize of the base image noised to s * T (see
                :meth:`upsample_images`).
            generator: a ``torch.Generator`` (or one per image) for all noise drawn.
            num_images_per_prompt: images per prompt.
            output_type: ``"pil"``, ``"np"`` ((B, H, W, 3) in [0, 1]) or ``"pt"``.
            return_dict: an :class:`ImagePipelineOutput` (else a 1-tuple).
            callback: ``callback(step_index, timestep, sample)``; the index runs on through the
                upsampler's steps.
            callback_steps: call ``callback`` every this many steps.

        Returns:
            :class:`ImagePipelineOutput`: (B, 64, 64) base images, or the upsampled ones.
        """
        # num_inference_steps may be a respacing spec ("fast27"); respaced_timesteps checks it.
        self.check_arguments({**locals(), "num_inference_steps": None})
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if upsample is None:
            upsample = self.upsample_unet is not None
        if upsample:
            self._upsampler(upsample_strength)  # fail before the base stage runs
        texts = [p for p in prompts for _ in range(num_images_per_prompt)]
        batch = len(texts)
        loop = {"callback": callback, "callback_steps": callback_steps, "generator": generator}

        # Stage 1: the guided base model.
        unet, scheduler = self.unet, self.scheduler
        channels = unet.config.out_channels // 2
        text = self.encode_prompts(unet, texts + [""] * batch if guidance_scale != 1.0 else texts)
        size = unet.config.sample_size
        x = self.prepare_latents((batch, channels, size, size), generator)
        total = scheduler.config.num_train_timesteps
        scheduler.set_timesteps(
            timesteps=respaced_timesteps(total, num_inference_steps), device=unet.device
        )
        x = self.denoise(
            x,
            lambda x, t: self._model_output_for(scheduler, unet(x, t, text=text).sample, channels),
            guidance_scale=guidance_scale,
            guide=lambda out, s: guided_model_output(out, s, channels),
            **loop,
        )

        if upsample:
            x = self.upsample_images(
                x,
                texts,
                num_inference_steps=upsample_num_inference_steps,
                temp=upsample_temp,
                strength=upsample_strength,
                first_step=len(scheduler.timesteps),
                **loop,
            )
        return self.image_output(x, output_type, return_dict)

    def _upsampler(self, strength: float) -> tuple[GLIDEUNetModel, SchedulerMixin]:
        up, scheduler = self.upsample_unet, self.upsample_scheduler
        if up is None or scheduler is None:
            raise ValueError(
                "upsample=True needs the upsample_unet and upsample_scheduler components; this "
                "pipeline has none (convert with --upsample, or pass upsample=False)"
            )
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"upsample_strength must be in (0, 1]; got {strength}")
        return up, scheduler

    @torch.no_grad()
    def upsample_images(
        self,
        images: Tensor,
        prompts: Sequence[str],
        *,
        num_inference_steps: int | str = "fast27",
        temp: float = 0.997,
        strength: float = 1.0,
        generator: Generator = None,
        callback: Callable[[int, int, Tensor], None] | None = None,
        callback_steps: int = 1,
        first_step: int = 0,
    ) -> Tensor:
        """Stage 2 alone: upsample (B, 3, h, w) images in [-1, 1], one prompt per image.

        The images are rounded to 8 bits (:func:`quantize`) and condition a DDIM (eta 0) run of
        the upsampler over the respacing ``num_inference_steps``, without guidance. With
        ``strength`` 1 (the release's sampler) the run starts from noise scaled by ``temp``. With
        s < 1 it keeps only the respaced steps t < s * T and starts from the bilinear resize of
        the images noised to the first of them (SDEdit, Meng et al. 2021, arXiv:2108.01073): the
        upsampler refines the resize instead of drawing the image again from noise.

        Returns:
            (B, 3, H, W) upsampled images in [-1, 1] (H, W: ``upsample_unet.config.sample_size``).
        """
        up, scheduler = self._upsampler(strength)
        if len(prompts) != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {len(prompts)} prompts")
        low_res = quantize(images).to(up.device, up.dtype)
        text = self.encode_prompts(up, prompts)
        channels = up.config.out_channels // 2
        size = up.config.sample_size
        shape = (images.shape[0], channels, size, size)
        x = self.prepare_latents(shape, generator, model=up, scheduler=scheduler) * temp
        total = scheduler.config.num_train_timesteps
        timesteps = respaced_timesteps(total, num_inference_steps)
        if strength < 1.0:  # every respacing ends at t = 0, so a step is always left
            timesteps = timesteps[timesteps < strength * total]
            resized = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
            start = torch.tensor([timesteps[0]], device=up.device)
            x = scheduler.add_noise(resized, x, start)
        scheduler.set_timesteps(timesteps=timesteps, device=up.device)
        return self.denoise(
            x,
            lambda x, t: self._model_output_for(
                scheduler, up(x, t, text=text, low_res=low_res).sample, channels
            ),
            scheduler=scheduler,
            first_step=first_step,
            eta=0.0,
            use_clipped_model_output=True,
            generator=generator,
            callback=callback,
            callback_steps=callback_steps,
        )
