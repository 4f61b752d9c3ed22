"""Respacing as the release does it, learned-range steps on it, and eps-only guidance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers_hub_ddim.scheduler import DDIMScheduler
from diffusers_hub_ddpm.scheduler import DDPMScheduler
from diffusers_hub_glide.respace import (
    guided_model_output,
    respaced_betas,
    respaced_timesteps,
    space_timesteps,
)


def test_section_strides_with_rounding() -> None:
    assert sorted(space_timesteps(1000, "10")) == [round(i * 999 / 9) for i in range(10)]
    hundred = respaced_timesteps(1000, 100)
    assert len(hundred) == 100 and hundred[0] == 999 and hundred[-1] == 0
    assert np.all(np.diff(hundred) < 0)
    assert (respaced_timesteps(1000, "100") == hundred).all()
    # the release's docstring example: 300 steps as sections of 10, 15 and 20
    steps = sorted(space_timesteps(300, "10,15,20"))
    assert len(steps) == 45 and steps[:2] == [0, 11] and steps[10] == 100 and steps[-1] == 299
    # 1001 % 2 = 1: the first section is one step longer
    assert sorted(space_timesteps(1001, [2, 2])) == [0, 500, 501, 1000]


def test_fast27_and_ddim() -> None:
    fast = space_timesteps(1000, "fast27")
    assert len(fast) == 27 and 997 in fast and 999 not in fast and max(fast) == 997
    assert sorted(space_timesteps(1000, "ddim50")) == list(range(0, 1000, 20))
    for bad, match in (("ddim11", "exactly 11"), ("7,7", "cannot take 7"), ("abc", "use 'N'")):
        with pytest.raises(ValueError, match=match):
            space_timesteps(10, bad)


def test_learned_range_step_equals_the_release_p_sample() -> None:
    """DDPMScheduler on respaced timesteps = the release's p_sample with recomputed betas."""
    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2", variance_type="learned_range")
    kept = respaced_timesteps(1000, "25")
    scheduler.set_timesteps(timesteps=kept)
    abar = scheduler.alphas_cumprod.numpy()
    betas = respaced_betas(abar, kept)  # ascending order of kept
    abar_kept = np.cumprod(1 - betas)
    assert np.allclose(abar_kept, abar[np.sort(kept)], rtol=1e-12)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    out = torch.randn(2, 6, 4, 4, generator=gen, dtype=torch.float64)
    out[:, 3:] = out[:, 3:].tanh()
    noise = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    ascending = np.sort(kept)
    for i in (24, 12, 1):
        t = int(ascending[i])
        ab, ab_prev, beta = abar_kept[i], abar_kept[i - 1], betas[i]
        eps, v = out[:, :3], out[:, 3:]
        x0 = (math.sqrt(1 / ab) * x - math.sqrt(1 / ab - 1) * eps).clamp(-1, 1)
        mean = (beta * math.sqrt(ab_prev) / (1 - ab)) * x0 + (
            (1 - ab_prev) * math.sqrt(1 - beta) / (1 - ab)
        ) * x
        post_var = beta * (1 - ab_prev) / (1 - ab)
        frac = (v + 1) / 2
        log_var = frac * math.log(beta) + (1 - frac) * math.log(post_var)
        expected = mean + torch.exp(0.5 * log_var) * noise
        got = scheduler.step(out.clone(), t, x, variance_noise=noise).prev_sample
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-5)


def test_upsampler_ddim_equals_the_release_ddim_sample() -> None:
    scheduler = DDIMScheduler(beta_schedule="linear")
    kept = respaced_timesteps(1000, "fast27")
    scheduler.set_timesteps(timesteps=kept)
    abar = scheduler.alphas_cumprod.double().numpy()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64)
    eps = torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64)
    for i, t in enumerate(kept.tolist()):
        ab = abar[t]
        ab_prev = abar[kept[i + 1]] if i + 1 < len(kept) else 1.0
        x0 = (math.sqrt(1 / ab) * x - math.sqrt(1 / ab - 1) * eps).clamp(-1, 1)
        eps_clipped = (math.sqrt(1 / ab) * x - x0) / math.sqrt(1 / ab - 1)
        expected = x0 * math.sqrt(ab_prev) + math.sqrt(1 - ab_prev) * eps_clipped
        got = scheduler.step(eps, t, x, eta=0.0, use_clipped_model_output=True).prev_sample
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_guidance_on_eps_channels_only() -> None:
    gen = torch.Generator().manual_seed(2)
    out = torch.randn(4, 6, 2, 2, generator=gen)
    guided = guided_model_output(out, 3.0, channels=3)
    cond, uncond = out[:2], out[2:]
    assert guided.shape == (2, 6, 2, 2)
    torch.testing.assert_close(guided[:, :3], uncond[:, :3] + 3.0 * (cond[:, :3] - uncond[:, :3]))
    torch.testing.assert_close(guided[:, 3:], cond[:, 3:])  # variance passed through
    torch.testing.assert_close(guided_model_output(out, 1.0, 3), cond)
    with pytest.raises(ValueError, match="even size"):
        guided_model_output(out[:3], 3.0, 3)
