"""Tests of PNDMScheduler: the core conformance kit, parity with diffusers, explicit state."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from diffusers_hub_pndm.scheduler import PNDMScheduler, plms_combine, pndm_plan, pndm_transfer

from diffusers_hub.testing import (
    MultistepSchedulerContract,
    assert_schedule_parity,
)

SHAPE = (2, 3, 8, 8)


# --------------------------------------------------------------------------------------------------
# Conformance kit
# --------------------------------------------------------------------------------------------------


class _PNDMContract(MultistepSchedulerContract):
    """PNDM keeps explicit buffers and visits some timesteps twice: the contract's memoryless and
    strictly-descending checks become the corresponding state and schedule checks. It is resumed
    mid-warm-up (6: inside the second Runge-Kutta step) and at the first PLMS step (12)."""

    scheduler_class = PNDMScheduler
    sample_shape = SHAPE
    resume_points = (1, 4, 6, 12)

    def expected_length(self, n: int) -> int:
        return n + 1 if self.scheduler_config.get("skip_prk_steps") else n + 9

    def test_set_timesteps(self) -> None:
        scheduler = self.make_scheduler()
        total = scheduler.config.num_train_timesteps
        for n in sorted({4, 5, self.num_inference_steps, total}):
            scheduler.set_timesteps(n)
            ts = scheduler.timesteps
            assert ts.ndim == 1 and ts.shape[0] == self.expected_length(n) == len(scheduler.plan)
            assert not ts.is_floating_point()
            assert int(ts.min()) >= 0 and int(ts.max()) < total
            assert bool((ts[1:] <= ts[:-1]).all())  # non-increasing: PRK repeats timesteps
            assert scheduler.num_inference_steps == n

    def test_determinism_with_seeded_generator(self) -> None:
        a = self.run_loop(self.make_scheduler_with_steps(), seed=3)
        b = self.run_loop(self.make_scheduler_with_steps(), seed=3)
        assert len(a) == self.expected_length(self.num_inference_steps)
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


class TestPNDMWithRungeKutta(_PNDMContract):
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100}


class TestPNDMSkipPRK(_PNDMContract):
    scheduler_config: ClassVar[dict[str, Any]] = {
        "num_train_timesteps": 100,
        "skip_prk_steps": True,
    }


# --------------------------------------------------------------------------------------------------
# Parity with diffusers
# --------------------------------------------------------------------------------------------------


def _share_final_alpha(ref: Any, ours: PNDMScheduler) -> None:
    ref.final_alpha_cumprod = torch.tensor(ours.final_alpha_cumprod, dtype=torch.float64)


def assert_parity(config: dict[str, Any], steps: int, **options: Any) -> None:
    reference = pytest.importorskip("diffusers").PNDMScheduler
    share = _share_final_alpha if options.get("share_tables", True) else None
    assert_schedule_parity(
        PNDMScheduler, reference, config, steps, shape=SHAPE, prepare=share, **options
    )


@pytest.mark.parametrize("steps", [4, 7, 25])
@pytest.mark.parametrize("skip_prk_steps", [False, True])
@pytest.mark.parametrize("spacing", ["leading", "linspace", "trailing"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_parity_with_diffusers(
    steps: int, skip_prk_steps: bool, spacing: str, prediction_type: str
) -> None:
    config = {
        "skip_prk_steps": skip_prk_steps,
        "timestep_spacing": spacing,
        "prediction_type": prediction_type,
        "steps_offset": 1 if spacing == "leading" else 0,
    }
    assert_parity(config, steps)
    assert_parity(config, steps, dtype=torch.float64, tol=1e-10)


@pytest.mark.parametrize(
    "config",
    [
        {"set_alpha_to_one": True},
        {"set_alpha_to_one": True, "skip_prk_steps": True},
        {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
        {"beta_schedule": "scaled_linear", "beta_end": 0.012, "skip_prk_steps": True},
        {"beta_schedule": "squaredcos_cap_v2"},
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
def test_parity_options(config: dict[str, Any]) -> None:
    for steps in (1, 10) if config.get("skip_prk_steps") else (4, 10):
        assert_parity(config, steps)
        assert_parity(config, steps, dtype=torch.float64, tol=1e-10)


@pytest.mark.parametrize("skip_prk_steps", [False, True])
def test_parity_without_shared_tables(skip_prk_steps: bool) -> None:
    # Unmodified diffusers (its float32 tables equal ours), as Stable Diffusion configures PNDM.
    config = {
        "skip_prk_steps": skip_prk_steps,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "steps_offset": 1,
    }
    assert_parity(config, 20, share_tables=False)


def test_rejects_unsupported_schedules() -> None:
    scheduler = PNDMScheduler()
    with pytest.raises(ValueError, match="at least 4"):
        scheduler.set_timesteps(3)
    with pytest.raises(ValueError, match="explicit timesteps"):
        scheduler.set_timesteps(timesteps=[900, 500, 100])


# --------------------------------------------------------------------------------------------------
# Math and plan
# --------------------------------------------------------------------------------------------------


def test_transfer_is_ddim_step() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    eps = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    ab_t, ab_prev = 0.3, 0.8
    x0 = (x - (1 - ab_t) ** 0.5 * eps) / ab_t**0.5
    ddim = ab_prev**0.5 * x0 + (1 - ab_prev) ** 0.5 * eps
    torch.testing.assert_close(pndm_transfer(x, eps, ab_t, ab_prev), ddim, rtol=0, atol=1e-12)


def test_plms_combine_weights() -> None:
    ets = [torch.full((1,), float(v)) for v in (1.0, 2.0, 4.0, 8.0)]  # oldest first
    assert float(plms_combine(ets[-1:])) == 8.0
    assert float(plms_combine(ets[-2:])) == pytest.approx((3 * 8 - 4) / 2)
    assert float(plms_combine(ets[-3:])) == pytest.approx((23 * 8 - 16 * 4 + 5 * 2) / 12)
    assert float(plms_combine(ets)) == pytest.approx((55 * 8 - 59 * 4 + 37 * 2 - 9 * 1) / 24)
    ones = [torch.ones(1)] * 4  # every rule reproduces a constant
    for k in range(1, 5):
        assert float(plms_combine(ones[:k])) == pytest.approx(1.0)


def test_plan_structure() -> None:
    base = np.array([800, 600, 400, 200, 0], dtype=np.int64)  # leading spacing, T = 1000, n = 5
    plan = pndm_plan(base, 1000, skip_prk_steps=False)
    assert [p.kind for p in plan] == ["prk"] * 12 + ["plms"] * 2
    assert [p.timestep for p in plan[:4]] == [800, 700, 700, 600]
    assert all(p.t_from == 800 for p in plan[:4])
    assert [p.t_to for p in plan[:4]] == [700, 700, 600, 600]
    assert [p.timestep for p in plan[12:]] == [200, 0]
    assert (plan[12].t_from, plan[12].t_to) == (200, 0)
    skip = pndm_plan(base, 1000, skip_prk_steps=True)
    assert [p.timestep for p in skip] == [800, 600, 600, 400, 200, 0]
    assert (skip[1].t_from, skip[1].t_to) == (800, 600)
    assert (skip[2].t_from, skip[2].t_to) == (600, 400)


def test_constant_noise_prediction_matches_ddim() -> None:
    # When the model always predicts the same noise every PNDM combination equals that noise,
    # so the whole run is a chain of DDIM transfers to the clean end.
    torch.manual_seed(0)
    eps = torch.randn(SHAPE, dtype=torch.float64)
    x0 = torch.randn(SHAPE, dtype=torch.float64)
    for skip in (False, True):
        scheduler = PNDMScheduler(skip_prk_steps=skip, set_alpha_to_one=True)
        scheduler.set_timesteps(10)
        x = scheduler.add_noise(x0, eps, int(scheduler.timesteps[0]))
        for t in scheduler.timesteps:
            x = scheduler.step(eps, t, x).prev_sample
        torch.testing.assert_close(x, x0, rtol=0, atol=1e-10)
