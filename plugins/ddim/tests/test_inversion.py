"""DDIM inversion on the trained demo weights: invert real digits, sample back, compare."""

from __future__ import annotations

import torch
from diffusers_hub_ddim.pipeline import DDIMPipeline
from diffusers_hub_ddpm.train import digits_tensors

from diffusers_hub import registry


def test_invert_then_sample_reconstructs_real_digits() -> None:
    pipe = DDIMPipeline.from_pretrained(registry.demo_checkpoint("ddpm"))
    pipe.set_progress_bar_config(disable=True)
    images, _ = digits_tensors(pipe.unet.config.sample_size)
    x0 = images[:8]
    noise = pipe.invert(x0, num_inference_steps=50)
    assert noise.std() > 0.3  # it went to the noisy end (the clean digits have std ~0.9)
    assert (noise - x0).abs().mean() > 0.3
    back = pipe.sample_from(noise, num_inference_steps=50)
    error = (back - x0).abs().mean().item()
    # Measured: mean |error| 0.029 in [-1, 1] units at 50 steps (0.0078 at 200); an unrelated
    # sample is ~0.39 away.
    assert error < 0.06, error
    unrelated = pipe.sample_from(
        torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)), num_inference_steps=50
    )
    assert (unrelated - x0).abs().mean().item() > 4 * error
