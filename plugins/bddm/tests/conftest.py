"""Shared set-up of the BDDM tests."""

from __future__ import annotations

from typing import Any

#: A small DiffWave: 4 residual layers of 16 channels, mel upsampled 4 x 4 (hop length 16).
SMALL: dict[str, Any] = {
    "in_channels": 1,
    "out_channels": 1,
    "res_channels": 16,
    "skip_channels": 12,
    "num_res_layers": 4,
    "dilation_cycle": 2,
    "diffusion_step_embed_dim_in": 16,
    "diffusion_step_embed_dim_mid": 32,
    "diffusion_step_embed_dim_out": 24,
    "n_mels": 8,
    "upsample_scales": [4, 4],
}
