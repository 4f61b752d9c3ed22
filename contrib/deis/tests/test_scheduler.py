"""Tests of DEISMultistepScheduler: the core conformance kit, parity with diffusers, state."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from diffusers_hub_deis.scheduler import (
    DEISMultistepScheduler,
    deis_coefficients,
    rho_log_moment,
)

from diffusers_hub.testing import (
    MultistepSchedulerContract,
    SchedulerContract,
    assert_schedule_parity,
    twin_schedulers,
)

SHAPE = (2, 3, 8, 8)


# --------------------------------------------------------------------------------------------------
# Conformance kit
# --------------------------------------------------------------------------------------------------


class TestDEISFirstOrder(SchedulerContract):
    """Order 1 keeps no history, so the whole memoryless contract applies unchanged."""

    scheduler_class = DEISMultistepScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100, "solver_order": 1}


class TestDEISMultistep(MultistepSchedulerContract):
    """Orders 2-3 carry an explicit history: the kit's stateful contract applies."""

    scheduler_class = DEISMultistepScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100, "solver_order": 3}
    sample_shape = SHAPE


# --------------------------------------------------------------------------------------------------
# Parity with diffusers
# --------------------------------------------------------------------------------------------------


def make_pair(**config: Any) -> tuple[Any, DEISMultistepScheduler]:
    reference = pytest.importorskip("diffusers").DEISMultistepScheduler
    return twin_schedulers(DEISMultistepScheduler, reference, config)


def _share_sigmas(ref: Any, ours: DEISMultistepScheduler) -> None:
    # diffusers evaluates its coefficients in the dtype of its sigma table (float32, where the
    # differences of the Lagrange integrals lose digits); in float64 the two must agree to
    # round-off.
    ref.sigmas = torch.from_numpy(ours.sigmas.copy())


def assert_parity(config: dict[str, Any], steps: int, **options: Any) -> float:
    reference = pytest.importorskip("diffusers").DEISMultistepScheduler
    share = _share_sigmas if options.get("dtype") == torch.float64 else None
    return assert_schedule_parity(
        DEISMultistepScheduler, reference, config, steps, shape=SHAPE, prepare=share, **options
    )


@pytest.mark.parametrize("steps", [8, 20])
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
def test_parity_with_diffusers(order: int, spacing: str, steps: int) -> None:
    config = {"solver_order": order, "timestep_spacing": spacing, "steps_offset": 1}
    assert_parity(config, steps)
    assert_parity(config, steps, dtype=torch.float64, tol=1e-10)


@pytest.mark.parametrize(
    "config",
    [
        {"prediction_type": "v_prediction", "solver_order": 3},
        {"prediction_type": "sample", "solver_order": 2},
        {"lower_order_final": False, "solver_order": 3},
        {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
        {"beta_schedule": "squaredcos_cap_v2", "solver_order": 3},
        {"thresholding": True, "sample_max_value": 2.0, "solver_order": 3},
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
@pytest.mark.parametrize("steps", [10, 25])
def test_parity_options(config: dict[str, Any], steps: int) -> None:
    assert_parity(config, steps, dtype=torch.float64, tol=1e-10)
    # In float32 the reference loses digits where eps is recovered from a data prediction
    # (sample / v_prediction / thresholding) or the schedule is the cosine one; only the
    # epsilon-prediction options are compared there.
    if not {"prediction_type", "beta_schedule", "thresholding"} & set(config):
        assert_parity(config, steps)


@pytest.mark.parametrize("order", [2, 3])
def test_parity_without_shared_tables(order: int) -> None:
    # Unmodified diffusers: its float32 alpha_bar equals ours, so only float32 rounding differs
    # (measured: at most 1.8e-6 of the sample scale, at every one of 20 steps).
    assert_parity({"solver_order": order}, 20, tol=5e-6, share_tables=False)


def test_timesteps_match_diffusers() -> None:
    for spacing, n in itertools.product(("linspace", "leading", "trailing"), (1, 7, 50, 500, 999)):
        if spacing == "leading" and n == 999:
            continue  # diffusers' grid would reach timestep 1000 (out of range); we raise instead
        ref, ours = make_pair(timestep_spacing=spacing, steps_offset=1)
        ref.set_timesteps(n)
        ours.set_timesteps(n)
        assert ours.timesteps.tolist() == ref.timesteps.tolist(), (spacing, n)
        np.testing.assert_allclose(ours.sigmas, ref.sigmas.numpy(), rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Math and schedule
# --------------------------------------------------------------------------------------------------


def test_rho_log_moment_is_an_antiderivative() -> None:
    for power in (0, 1, 2):
        for rho in (0.05, 0.7, 3.0):
            h = 1e-6
            derivative = (rho_log_moment(rho + h, power) - rho_log_moment(rho - h, power)) / (2 * h)
            assert derivative == pytest.approx(np.log(rho) ** power, rel=1e-6, abs=1e-8)


def test_coefficients_integrate_polynomials_exactly() -> None:
    # Lagrange weights reproduce the integral of any polynomial of degree < order in log(rho).
    rhos, rho_t = [0.8, 1.5, 2.6], 0.3
    for order in (1, 2, 3):
        weights = deis_coefficients(rho_t, rhos[:order])
        for degree in range(order):
            values = [np.log(r) ** degree for r in rhos[:order]]
            exact = rho_log_moment(rho_t, degree) - rho_log_moment(rhos[0], degree)
            assert sum(w * v for w, v in zip(weights, values)) == pytest.approx(exact, rel=1e-12)
    assert deis_coefficients(rho_t, rhos[:1]) == [pytest.approx(rho_t - rhos[0])]


def test_exact_for_constant_noise_prediction() -> None:
    # With a constant noise prediction the ODE d(x/alpha) = eps d(rho) is solved exactly by any order.
    torch.manual_seed(0)
    eps = torch.randn(SHAPE, dtype=torch.float64)
    x0 = torch.randn(SHAPE, dtype=torch.float64)
    for order in (1, 2, 3):
        scheduler = DEISMultistepScheduler(solver_order=order)
        scheduler.set_timesteps(12)
        t0 = int(scheduler.timesteps[0])
        x = scheduler.add_noise(x0, eps, t0)
        for t in scheduler.timesteps:
            x = scheduler.step(eps, t, x).prev_sample
        rho_end = float(scheduler.sigmas[-1])
        alpha_end = (1 + rho_end**2) ** -0.5
        torch.testing.assert_close(x, alpha_end * (x0 + rho_end * eps), rtol=0, atol=1e-10)


def test_config_swaps_with_dpm_solver_names() -> None:
    dpm_like = {"algorithm_type": "dpmsolver++", "solver_type": "midpoint", "solver_order": 3}
    scheduler = DEISMultistepScheduler.from_config(dpm_like)
    assert scheduler.config.algorithm_type == "deis"
    assert scheduler.config.solver_type == "logrho" and scheduler.config.solver_order == 3


def test_full_schedule_n_equals_t() -> None:
    scheduler = DEISMultistepScheduler(num_train_timesteps=50)
    scheduler.set_timesteps(50)
    assert scheduler.timesteps.tolist() == list(range(49, -1, -1))
    with pytest.raises(ValueError):
        scheduler.set_timesteps(51)
