"""Shared neural-network building blocks of the diffusion UNets and autoencoders.

State-dict key names equal those of the diffusers-format Hub checkpoints, so models assembled
from these blocks load those checkpoints unchanged. Importing this package imports torch.
"""

from __future__ import annotations

from diffusers_hub.nn._kernels import Conv2d
from diffusers_hub.nn.activations import get_activation
from diffusers_hub.nn.attention import Attention, remap_legacy_attention_keys
from diffusers_hub.nn.embeddings import (
    GaussianFourierProjection,
    TimestepEmbedding,
    Timesteps,
    timestep_embedding,
)
from diffusers_hub.nn.resnet import ResnetBlock2D
from diffusers_hub.nn.sampling import Downsample2D, Upsample2D
from diffusers_hub.nn.unet_blocks import (
    AttnDownBlock2D,
    AttnUpBlock2D,
    CrossAttnDownBlock2D,
    CrossAttnUpBlock2D,
    DownBlock2D,
    DownEncoderBlock2D,
    ResnetDownsampleBlock2D,
    ResnetUpsampleBlock2D,
    UNetBlock2D,
    UNetMidBlock2D,
    UNetMidBlock2DCrossAttn,
    UpBlock2D,
    UpDecoderBlock2D,
    block_class,
)

__all__ = [
    "Attention",
    "AttnDownBlock2D",
    "AttnUpBlock2D",
    "Conv2d",
    "CrossAttnDownBlock2D",
    "CrossAttnUpBlock2D",
    "DownBlock2D",
    "DownEncoderBlock2D",
    "Downsample2D",
    "GaussianFourierProjection",
    "ResnetBlock2D",
    "ResnetDownsampleBlock2D",
    "ResnetUpsampleBlock2D",
    "TimestepEmbedding",
    "Timesteps",
    "UNetBlock2D",
    "UNetMidBlock2D",
    "UNetMidBlock2DCrossAttn",
    "UpBlock2D",
    "UpDecoderBlock2D",
    "Upsample2D",
    "block_class",
    "get_activation",
    "remap_legacy_attention_keys",
    "timestep_embedding",
]
