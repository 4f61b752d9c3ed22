"""LDMTextToImagePipeline: text-to-image latent diffusion with classifier-free guidance.

The prompt is tokenised (BERT WordPiece, 77 tokens) and encoded by LDMBert; a latent
(B, 4, H/8, W/8) starts as Gaussian noise and is denoised by the cross-attention UNet under a
scheduler (DDIM by default); the autoencoder decodes the final latent to pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor

from diffusers_hub.pipeline import (
    DiffusionPipeline,
    ImagePipelineOutput,
    OutputType,
    guided_noise,
    step_options,
)
from diffusers_hub.scheduling import SchedulerMixin
from diffusers_hub_latent_diffusion.autoencoder import AutoencoderKL, VQModel
from diffusers_hub_latent_diffusion.ldmbert import LDMBertModel
from diffusers_hub_latent_diffusion.tokenizer import BertTokenizer
from diffusers_hub_latent_diffusion.unet_2d_condition import UNet2DConditionModel

__all__ = ["LDMTextToImagePipeline", "decode_latents", "guided_noise", "step_options"]

logger = logging.getLogger(__name__)

#: LDMBert's context length (the tokenizer pads and truncates to it).
MAX_TOKENS = 77


def decode_latents(vqvae: AutoencoderKL | VQModel, latents: Tensor) -> Tensor:
    """Undo the latent scaling of training (z = scaling_factor * E(x)) and decode to pixels."""
    images: Tensor = vqvae.decode(latents / vqvae.config.scaling_factor)[0]
    return images


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
        self.check_arguments(locals())
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

        context = embeds.to(device=self.unet.device, dtype=self.unet.dtype)
        return self.generate_images(
            locals(),
            lambda x, t: self.unet(x, t, encoder_hidden_states=context).sample,
            shape=(batch, self.unet.config.in_channels, height // factor, width // factor),
            decode=partial(decode_latents, self.vqvae),
            eta=eta,
        )
