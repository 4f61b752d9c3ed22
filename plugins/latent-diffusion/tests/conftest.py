"""Shared set-up of the latent-diffusion tests: the configs of tiny components.

Each is a dict of keyword arguments that builds diffusers' class and this plugin's alike.
"""

from __future__ import annotations

from typing import Any


def tiny_autoencoder(
    block_out_channels: tuple[int, ...], sample_size: int, latent_channels: int = 4
) -> dict[str, Any]:
    """An ``AutoencoderKL`` (or ``VQModel``) config: one layer per level, 4 norm groups."""
    levels = len(block_out_channels)
    return {
        "block_out_channels": block_out_channels,
        "norm_num_groups": 4,
        "layers_per_block": 1,
        "latent_channels": latent_channels,
        "down_block_types": ("DownEncoderBlock2D",) * levels,
        "up_block_types": ("UpDecoderBlock2D",) * levels,
        "sample_size": sample_size,
    }


def tiny_unet(
    cross_attention_dim: int, block_out_channels: tuple[int, int] = (32, 64)
) -> dict[str, Any]:
    """A ``UNet2DConditionModel`` config for 8 x 8 latents of 4 channels: two levels, cross-attention
    on the outer one."""
    return {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "block_out_channels": block_out_channels,
        "layers_per_block": 1,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
        "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": 2,
        "norm_num_groups": 8,
    }
