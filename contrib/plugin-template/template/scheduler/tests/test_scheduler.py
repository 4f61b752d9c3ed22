"""Tests of the example scheduler.

The diffusers-hub conformance kit, plus the method's own checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from diffusers_hub import registry
from diffusers_hub.testing import SchedulerContract

from {{ package }}.scheduler import (
    {{ class_name }},
    ancestral_coefficients,
)


class Test{{ class_name }}Contract(SchedulerContract):
    """Every check that diffusers-hub makes of a scheduler, with noise (eta = 1)."""

    scheduler_class = {{ class_name }}
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100}


class Test{{ class_name }}DeterministicContract(SchedulerContract):
    """The same checks in the deterministic setting (eta = 0)."""

    scheduler_class = {{ class_name }}
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100, "eta": 0.0}


def test_oracle_model_recovers_the_clean_sample() -> None:
    # A model that predicts the exact noise of x_t around a known x0 must lead back to x0.
    x0 = torch.rand(2, 3, 4, 4, dtype=torch.float64) * 1.6 - 0.8
    for eta in (0.0, 1.0):
        scheduler = {{ class_name }}(num_train_timesteps=100, eta=eta)
        scheduler.set_timesteps(10)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
        for t in scheduler.timesteps.tolist():
            alpha_bar = scheduler.alpha_bar(t)
            eps = (x - alpha_bar**0.5 * x0) / (1 - alpha_bar) ** 0.5
            x = scheduler.step(eps, t, x, generator=generator).prev_sample
        torch.testing.assert_close(x, x0, atol=1e-10, rtol=0)


def test_coefficients_match_the_ddpm_posterior_at_eta_one() -> None:
    # With eta = 1 and consecutive timesteps, sigma^2 is the DDPM posterior variance beta~_t.
    scheduler = {{ class_name }}(num_train_timesteps=100)
    t = 50
    ab_t, ab_prev = scheduler.alpha_bar(t), scheduler.alpha_bar(t - 1)
    _, _, sigma = ancestral_coefficients(ab_t, ab_prev, 1.0)
    beta_t = float(scheduler.betas[t])
    # alpha_bar holds float32 values, so its ratio gives beta_t to float32 rounding of alpha_bar
    assert sigma**2 == pytest.approx((1 - ab_prev) / (1 - ab_t) * beta_t, rel=1e-5)


def test_eta_zero_ignores_the_generator() -> None:
    scheduler = {{ class_name }}(num_train_timesteps=100, eta=0.0)
    scheduler.set_timesteps(5)
    out, x = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    t = int(scheduler.timesteps[0])
    a = scheduler.step(out, t, x, generator=torch.Generator().manual_seed(1)).prev_sample
    b = scheduler.step(out, t, x, generator=torch.Generator().manual_seed(2)).prev_sample
    assert torch.equal(a, b)


def test_reads_a_ddpm_config_file(tmp_path: Path) -> None:
    (tmp_path / "scheduler_config.json").write_text(
        '{"_class_name": "DDPMScheduler", "num_train_timesteps": 100, "beta_schedule": "linear",'
        ' "variance_type": "fixed_small", "clip_sample": true}'
    )
    scheduler = {{ class_name }}.from_pretrained(tmp_path)
    assert scheduler.config.num_train_timesteps == 100 and scheduler.config.eta == 1.0


def test_registered() -> None:
    found = registry.scheduler("{{ name }}")
    assert found is {{ class_name }}
