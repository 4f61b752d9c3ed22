"""BDDMScheduler: the scheduler contract, the searched schedule's continuous steps, the update rule,
and exact sampling of Gaussian data."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from diffusers_hub_bddm.scheduler import (
    LJSPEECH_12_STEPS,
    BDDMScheduler,
    InferenceSchedule,
    noise_scale_to_timestep,
)

from diffusers_hub.testing import SchedulerContract


class TestBDDMScheduler(SchedulerContract):
    scheduler_class = BDDMScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 50}
    sample_shape = (2, 1, 64)
    continuous_timesteps = True


class TestBDDMSchedulerSearched(SchedulerContract):
    scheduler_class = BDDMScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {"noise_schedule": list(LJSPEECH_12_STEPS)}
    sample_shape = (2, 1, 64)
    continuous_timesteps = True


def test_ljspeech_schedule_queries_the_released_steps():
    # The continuous steps BDDM's release stores next to these betas (12-step LJSpeech .ns file).
    released = [0.1204, 3.070, 11.57, 44.62, 70.72, 90.70, 107.9, 123.4, 137.7, 151.3, 164.2, 176.6]
    scheduler = BDDMScheduler(noise_schedule=list(LJSPEECH_12_STEPS))
    scheduler.set_timesteps()
    ours = scheduler.timesteps.flip(0).tolist()
    np.testing.assert_allclose(ours, released, rtol=2e-3, atol=2e-4)
    assert scheduler.num_inference_steps == 12
    # set_timesteps(betas=...) overrides the config's schedule for one call
    scheduler.set_timesteps(betas=[1e-3, 0.1, 0.3])
    assert scheduler.timesteps.shape == (3,)


def test_noise_scale_to_timestep_interpolates():
    scales = np.array([0.99, 0.9, 0.7, 0.4])
    assert noise_scale_to_timestep(0.995, scales) == 0.0
    assert noise_scale_to_timestep(0.3, scales) == 3.0
    assert noise_scale_to_timestep(0.9, scales) == pytest.approx(1.0)
    assert noise_scale_to_timestep(0.8, scales) == pytest.approx(1.5)
    assert noise_scale_to_timestep(0.55, scales) == pytest.approx(2.5)


def test_inference_schedule_quantities():
    betas = [0.01, 0.2, 0.5]
    s = InferenceSchedule.from_betas(betas, np.sqrt(np.cumprod(1 - np.linspace(1e-4, 0.02, 200))))
    alpha_bar = np.cumprod([0.99, 0.8, 0.5])
    np.testing.assert_allclose(s.noise_scales, np.sqrt(alpha_bar))
    # sigma_n^2 = b_n (1 - alpha_bar_{n-1}) / (1 - alpha_bar_n): the DDPM posterior variance
    np.testing.assert_allclose(s.sigmas[1:] ** 2, [0.2 * 0.01 / (1 - 0.792), 0.5 * 0.208 / 0.604])
    assert np.all(np.diff(s.timesteps) > 0)


def test_full_schedule_is_ddpm_and_respacing_recomputes_betas():
    scheduler = BDDMScheduler()
    scheduler.set_timesteps()  # no searched schedule: every training step
    assert scheduler.timesteps.tolist() == [float(t) for t in range(199, -1, -1)]
    s = scheduler.schedule
    assert s is not None
    np.testing.assert_allclose(s.betas, scheduler.betas.numpy(), rtol=1e-6)
    scheduler.set_timesteps(20)
    s = scheduler.schedule
    assert s is not None
    # respaced: the cumulative product of the new betas is alpha_bar at the chosen steps
    picked = scheduler.timesteps.flip(0).long()
    np.testing.assert_allclose(
        np.cumprod(1 - s.betas), scheduler.alphas_cumprod.numpy()[picked], rtol=1e-6
    )


def test_step_is_the_ddpm_update():
    scheduler = BDDMScheduler(noise_schedule=[0.01, 0.2, 0.5])
    scheduler.set_timesteps()
    g = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(1, 1, 32, generator=g, dtype=torch.float64) for _ in range(3))
    t = scheduler.timesteps[1]  # n = 1
    out = scheduler.step(eps, t, x, variance_noise=z)
    ab = np.cumprod([0.99, 0.8])
    expected = (x - 0.2 / math.sqrt(1 - ab[1]) * eps) / math.sqrt(0.8)
    expected = expected + math.sqrt(0.2 * (1 - ab[0]) / (1 - ab[1])) * z
    torch.testing.assert_close(out.prev_sample, expected)
    x0 = (x - math.sqrt(1 - ab[1]) * eps) / math.sqrt(ab[1])
    torch.testing.assert_close(out.pred_original_sample, x0)
    # the last step adds no noise
    last = scheduler.step(eps, scheduler.timesteps[-1], x, generator=g).prev_sample
    torch.testing.assert_close(last, (x - 0.01 / math.sqrt(0.01) * eps) / math.sqrt(0.99))


def _gaussian_chain(scheduler: BDDMScheduler, std: float, n: int = 64) -> tuple[float, float]:
    """Sample N(0, std^2) data with its exact noise predictor, starting from the exact marginal
    at the first step; return the empirical std and the std the linear chain implies."""
    s = scheduler.schedule
    assert s is not None
    g = torch.Generator().manual_seed(0)
    first = scheduler._step_index(scheduler.timesteps[0])
    a2 = float(s.noise_scales[first]) ** 2
    var = a2 * std**2 + 1 - a2
    x = torch.randn(n, 1, 2048, generator=g, dtype=torch.float64) * math.sqrt(var)
    for t in scheduler.timesteps:
        idx = scheduler._step_index(t)
        a2 = float(s.noise_scales[idx]) ** 2
        k = math.sqrt(1 - a2) / (a2 * std**2 + 1 - a2)  # E[eps | x_n] = k x_n
        x = scheduler.step(k * x, t, x, generator=g).prev_sample
        beta = float(s.betas[idx])
        c = (1 - beta / math.sqrt(1 - a2) * k) / math.sqrt(1 - beta)
        var = c**2 * var + (float(s.sigmas[idx]) ** 2 if idx > 0 else 0.0)
    return float(x.std()), math.sqrt(var)


def test_sampling_gaussian_data():
    # All 200 training steps: ancestral sampling with the exact noise predictor recovers the data.
    full = BDDMScheduler()
    full.set_timesteps()
    empirical, implied = _gaussian_chain(full, 0.5)
    assert empirical == pytest.approx(0.5, rel=0.03)
    assert empirical == pytest.approx(implied, rel=0.01)
    # 12 searched steps: the update is applied exactly as the linear chain says (the few-step
    # ancestral sampler shrinks the spread, as any 12-step DDPM does).
    searched = BDDMScheduler(noise_schedule=list(LJSPEECH_12_STEPS))
    searched.set_timesteps()
    empirical, implied = _gaussian_chain(searched, 0.5)
    assert empirical == pytest.approx(implied, rel=0.01)
    assert 0.3 < empirical < 0.5


def test_step_errors():
    scheduler = BDDMScheduler(noise_schedule=list(LJSPEECH_12_STEPS))
    x = torch.zeros(1, 1, 8)
    with pytest.raises(ValueError, match="set_timesteps"):
        BDDMScheduler().step(x, 1.0, x)
    scheduler.set_timesteps()
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(x, 2.5, x)
    with pytest.raises(ValueError, match="not both"):
        scheduler.set_timesteps(10, betas=[0.1])
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        scheduler.set_timesteps(betas=[0.1, 1.5])
    with pytest.raises(ValueError, match="noise_schedule"):
        BDDMScheduler(noise_schedule=[0.0, 0.2])


def test_config_round_trip_keeps_the_searched_schedule(tmp_path):
    scheduler = BDDMScheduler(noise_schedule=list(LJSPEECH_12_STEPS))
    scheduler.save_pretrained(tmp_path)
    loaded = BDDMScheduler.from_pretrained(tmp_path)
    loaded.set_timesteps()
    scheduler.set_timesteps()
    assert torch.equal(loaded.timesteps, scheduler.timesteps)


def test_temperature_scales_the_step_noise(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(1, 1, 32, generator=g, dtype=torch.float64) for _ in range(3))

    def step(scheduler: BDDMScheduler, **kwargs: Any) -> torch.Tensor:
        scheduler.set_timesteps(**kwargs)
        return scheduler.step(eps, scheduler.timesteps[1], x, variance_noise=z).prev_sample

    betas = [0.01, 0.2, 0.5]
    full = step(BDDMScheduler(noise_schedule=betas))
    cold = BDDMScheduler(noise_schedule=betas, temperature=0.0)
    mean = step(cold)
    # the mean of the step is the one the untempered step adds its noise to
    ab = np.cumprod([0.99, 0.8])
    torch.testing.assert_close(mean, (x - 0.2 / math.sqrt(1 - ab[1]) * eps) / math.sqrt(0.8))
    torch.testing.assert_close(step(cold, temperature=0.25), mean + 0.25 * (full - mean))
    torch.testing.assert_close(step(BDDMScheduler(), betas=betas, temperature=0.0), mean)
    # respaced schedules are tempered too
    respaced = BDDMScheduler(temperature=0.5)
    respaced.set_timesteps(12)
    assert respaced.schedule is not None
    plain = BDDMScheduler()
    plain.set_timesteps(12)
    assert plain.schedule is not None
    np.testing.assert_allclose(respaced.schedule.sigmas, 0.5 * plain.schedule.sigmas)
    # the folder keeps it; out-of-range values name the field
    cold.save_pretrained(tmp_path)
    assert BDDMScheduler.from_pretrained(tmp_path).config.temperature == 0.0
    with pytest.raises(ValueError, match="temperature"):
        BDDMScheduler(temperature=1.5)
    with pytest.raises(ValueError, match=r"temperature must lie in \[0, 1\]"):
        cold.set_timesteps(temperature=-0.1)
