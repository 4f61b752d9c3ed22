"""LDMTextToImagePipeline: text-to-image latent diffusion with classifier-free guidance.

The prompt is tokenised (BERT WordPiece, 77 tokens) and encoded by LDMBert; a latent
(B, 4, H/8, W/8) starts as Gaussian noise and is denoised by the cross-attention UNet under a
scheduler (DDIM by default); the autoencoder decodes the final latent to pixels.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
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
from diffusers_hub_latent_diffusion.ldmbert import LDMBertModel
from diffusers_hub_latent_diffusion.tokenizer import BertTokenizer
from diffusers_hub_latent_diffusion.unet_2d_condition import UNet2DConditionModel

__all__ = ["LDMTextToImagePipeline", "guided_noise", "step_options"]

logger = logging.getLogger(__name__)

#: LDMBert's context length (the tokenizer pads and truncates to it).
MAX_TOKENS = 77


def guided_noise(noise_uncond: Tensor, noise_text: Tensor, guidance_scale: float) -> Tensor:
    """Classifier-free guidance: ``eps_u + s * (eps_c - eps_u)``.

    References:
        Ho & Salimans, "Classifier-Free Diffusion Guidance", arXiv:2207.12598 (eq. 6, with
        s = 1 + w).
    """
    return noise_uncond + guidance_scale * (noise_text - noise_uncond)


def step_options(scheduler: Any, **options: Any) -> dict[str, Any]:
    """The subset of ``options`` (``eta``, ``generator``, ...) that ``scheduler.step`` accepts."""
    params = inspect.signature(scheduler.step).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return options
    return {k: v for k, v in options.items() if k in params}


class LDMTextToImagePipeline(DiffusionPipeline):
    """Text-to-image generation with latent diffusion (CompVis/ldm-text2im-large-256).

    Components: ``vqvae`` (an :class:`AutoencoderKL`, or a :class:`VQModel`), ``bert``
    (:class:`LDMBertModel`), ``tokenizer`` (:class:`BertTokenizer`), ``unet``
    (:class:`UNet2DConditionModel`) and ``scheduler`` (DDIM in the checkpoint; any compatible
    scheduler swaps in with ``from_config``).

    References:
        Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models",
        arXiv:2112.10752; Ho & Salimans, arXiv:2207.12598 (guidance).

    Example:
        >>> import torch
        >>> from diffusers_hub import DiffusionPipeline
        >>> ldm = DiffusionPipeline.from_pretrained("CompVis/ldm-text2im-large-256")  # doctest: +SKIP
        >>> generator = torch.Generator().manual_seed(0)
        >>> images = ldm(["a painting of a squirrel eating a burger"], generator=generator,
        ...              eta=0.3, guidance_scale=6.0, num_inference_steps=50).images  # doctest: +SKIP
    """

    vqvae: AutoencoderKL | VQModel
    bert: LDMBertModel
    tokenizer: BertTokenizer
    unet: UNet2DConditionModel
    scheduler: SchedulerMixin

    def __init__(
        self,
        vqvae: AutoencoderKL | VQModel,
        bert: LDMBertModel,
        tokenizer: BertTokenizer,
        unet: UNet2DConditionModel,
        scheduler: SchedulerMixin,
    ) -> None:
        super().__init__(
            vqvae=vqvae, bert=bert, tokenizer=tokenizer, unet=unet, scheduler=scheduler
        )

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent pixel along each side (8 for KL-f8)."""
        return int(2 ** (len(self.vqvae.config.block_out_channels) - 1))

    def encode_prompt(self, prompts: Sequence[str]) -> Tensor:
        """LDMBert features of the prompts: (len(prompts), 77, d_model).

        Prompts longer than 77 tokens are cut to their first 75 tokens (plus ``[CLS]`` and
        ``[SEP]``), with a warning naming them.
        """
        lengths = self.tokenizer(
            list(prompts), padding="do_not_pad", truncation=False, return_tensors=None
        ).input_ids
        for text, ids in zip(prompts, lengths, strict=True):
            if len(ids) > MAX_TOKENS:
                logger.warning(
                    "prompt %r is %d tokens long; LDMBert reads only the first %d, the rest is "
                    "ignored. Shorten the prompt.",
                    text if len(text) <= 60 else text[:57] + "...",
                    len(ids),
                    MAX_TOKENS,
                )
        tokens = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=MAX_TOKENS,
            truncation=True,
            return_tensors="pt",
        )
        out: Tensor = self.bert(tokens.input_ids.to(self.bert.device))[0]
        return out

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 1.0,
        eta: float = 0.0,
        negative_prompt: str | list[str] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: Tensor | None = None,
        num_images_per_prompt: int = 1,
        output_type: OutputType = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Tensor], None] | None = None,
        callback_steps: int = 1,
    ) -> ImagePipelineOutput | tuple[Any]:
        """Generate images for ``prompt``.

        Args:
            prompt: a prompt or a list of prompts.
            height, width: image size in pixels, multiples of the autoencoder factor (8);
                default ``unet.config.sample_size * 8`` (256). Larger sizes work convolutionally.
            num_inference_steps: denoising steps.
            guidance_scale: classifier-free guidance scale ``s``; 1.0 disables guidance (one
                UNet batch of B), otherwise each step runs one UNet batch of 2B (unconditional
                and conditional halves).
            eta: DDIM's eta (0 deterministic); passed to schedulers whose ``step`` takes it.
            negative_prompt: replaces the empty prompt ``""`` of the unconditional half (used
                only with guidance).
            generator: a ``torch.Generator`` (or one per image) for the initial latents and,
                with eta > 0, every step's noise: a seed reproduces the images whatever the
                global RNG state.
            latents: (B * num_images_per_prompt, 4, H/8, W/8) initial noise instead of drawing it.
            num_images_per_prompt: images per prompt.
            output_type: ``"pil"``, ``"np"`` ((B, H, W, 3) in [0, 1]) or ``"pt"``.
            return_dict: an :class:`ImagePipelineOutput` (else a 1-tuple).
            callback: called as ``callback(step_index, timestep, latents)``.
            callback_steps: call ``callback`` every this many steps.

        Returns:
            :class:`ImagePipelineOutput` with the images, prompts in order, each repeated
            ``num_images_per_prompt`` times consecutively.
        """
        self.check_inputs(
            prompt=prompt,
            num_images_per_prompt=num_images_per_prompt,
            generator=generator,
            num_inference_steps=num_inference_steps,
            output_type=output_type,
            callback_steps=callback_steps,
            guidance_scale=guidance_scale,
            eta=eta,
        )
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        factor = self.vae_scale_factor
        size = self.unet.config.sample_size
        default = size if isinstance(size, int) else (size[0] if size else 32)
        height = height or default * factor
        width = width or default * factor
        if height % factor or width % factor:
            raise ValueError(
                f"height and width must be multiples of {factor}, got {height}x{width}"
            )
        guided = guidance_scale != 1.0
        batch = len(prompts) * num_images_per_prompt

        # Text features, conditional then (with guidance) unconditional, in one LDMBert call.
        texts = list(prompts)
        if guided:
            if negative_prompt is None:
                negatives = [""] * len(prompts)
            elif isinstance(negative_prompt, str):
                negatives = [negative_prompt] * len(prompts)
            else:
                negatives = list(negative_prompt)
                if len(negatives) != len(prompts):
                    raise ValueError(
                        f"negative_prompt has {len(negatives)} entries for {len(prompts)} prompts"
                    )
            texts = negatives + texts
        embeds = self.encode_prompt(texts).repeat_interleave(num_images_per_prompt, dim=0)

        device = self.unet.device
        dtype = self.unet.dtype
        shape = (batch, self.unet.config.in_channels, height // factor, width // factor)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {shape}")
        latents = latents.to(device=device, dtype=dtype) * self.scheduler.init_noise_sigma
        context = embeds.to(device=device, dtype=dtype)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        extra = step_options(self.scheduler, eta=eta, generator=generator)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_in = torch.cat([latents, latents]) if guided else latents
            model_in = self.scheduler.scale_model_input(model_in, t)
            noise = self.unet(model_in, t, encoder_hidden_states=context).sample
            if guided:
                noise_uncond, noise_text = noise.chunk(2)
                noise = guided_noise(noise_uncond, noise_text, guidance_scale)
            latents = self.scheduler.step(noise, t, latents, **extra)[0]
            if callback is not None and i % callback_steps == 0:
                callback(i, int(t), latents)

        # Undo the latent scaling of training (z = scaling_factor * E(x)) and decode.
        image = self.vqvae.decode(latents / self.vqvae.config.scaling_factor)[0]
        images = tensor_to_images(image, output_type)
        return ImagePipelineOutput(images) if return_dict else (images,)
