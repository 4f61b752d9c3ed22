"""Tests of DPMSolverMultistepScheduler: the core conformance kit, parity with diffusers, state."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from diffusers_hub_dpm_solver.scheduler import (
    DPMSolverMultistepScheduler,
    dpm_solver_first_order_update,
    karras_sigmas,
)

import diffusers_hub.testing as kit
from diffusers_hub.testing import twin_schedulers

SHAPE = (2, 3, 8, 8)


# --------------------------------------------------------------------------------------------------
# Conformance kit
# --------------------------------------------------------------------------------------------------


class TestDPMSolverMultistep(kit.MultistepSchedulerContract):
    """Orders 2-3 carry an explicit history: the kit's stateful contract applies."""

    scheduler_class = DPMSolverMultistepScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100, "solver_order": 3}
    sample_shape = SHAPE


class TestDPMSolverFirstOrder(kit.SchedulerContract):
    """Order 1 keeps no history, so the whole memoryless contract applies unchanged."""

    scheduler_class = DPMSolverMultistepScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100, "solver_order": 1}


# --------------------------------------------------------------------------------------------------
# Parity with diffusers
# --------------------------------------------------------------------------------------------------


def make_pair(**config: Any) -> tuple[Any, DPMSolverMultistepScheduler]:
    reference = pytest.importorskip("diffusers").DPMSolverMultistepScheduler
    return twin_schedulers(DPMSolverMultistepScheduler, reference, config)


def assert_parity(config: dict[str, Any], steps: int, **options: Any) -> float:
    # random outputs make the samples grow to O(100): errors are relative to their size
    reference = pytest.importorskip("diffusers").DPMSolverMultistepScheduler
    return kit.assert_schedule_parity(
        DPMSolverMultistepScheduler, reference, config, steps, shape=SHAPE, **options
    )


PARITY_CASES = [
    dict(solver_order=o, algorithm_type=a, solver_type=s, prediction_type=p)
    for o, a, s, p in itertools.product(
        (1, 2, 3), ("dpmsolver++", "dpmsolver"), ("midpoint", "heun"), ("epsilon", "v_prediction")
    )
]


@pytest.mark.parametrize("steps", [8, 20])
@pytest.mark.parametrize("config", PARITY_CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_parity_with_diffusers(config: dict[str, Any], steps: int) -> None:
    if config["algorithm_type"] == "dpmsolver":
        config = {**config, "final_sigmas_type": "sigma_min"}
    assert_parity(config, steps)


@pytest.mark.parametrize(
    "config",
    [
        {"use_karras_sigmas": True, "solver_order": 2},
        {"use_karras_sigmas": True, "solver_order": 3, "solver_type": "heun"},
        {"use_karras_sigmas": True, "solver_order": 3, "prediction_type": "v_prediction"},
        {"timestep_spacing": "leading", "steps_offset": 1, "solver_order": 3},
        {"timestep_spacing": "trailing", "solver_order": 2},
        {"lower_order_final": False, "solver_order": 3},
        {"euler_at_final": True, "solver_order": 2},
        {"final_sigmas_type": "sigma_min", "solver_order": 3},
        {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
        {"prediction_type": "sample", "solver_order": 2},
        {"thresholding": True, "sample_max_value": 2.0, "solver_order": 2},
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
@pytest.mark.parametrize("steps", [10, 25])
def test_parity_options(config: dict[str, Any], steps: int) -> None:
    assert_parity(config, steps)


@pytest.mark.parametrize("order", [2, 3])
def test_parity_without_shared_tables(order: int) -> None:
    # Unmodified diffusers: its float32 alpha_bar equals ours, so only float32 rounding differs
    # (measured: at most 1.5e-6 of the sample scale, at every one of 20 steps).
    assert_parity({"solver_order": order}, 20, tol=5e-6, share_tables=False)


def test_timesteps_match_diffusers() -> None:
    for spacing, karras, n in itertools.product(
        ("linspace", "leading", "trailing"), (False, True), (1, 7, 50, 500, 999)
    ):
        if spacing == "leading" and n == 999:
            continue  # diffusers' grid would reach timestep 1000 (out of range); we raise instead
        config = {"timestep_spacing": spacing, "use_karras_sigmas": karras, "steps_offset": 1}
        ref, ours = make_pair(**config)
        ref.set_timesteps(n)
        ours.set_timesteps(n)
        assert ours.timesteps.tolist() == ref.timesteps.tolist(), (spacing, karras, n)
        np.testing.assert_allclose(ours.sigmas, ref.sigmas.numpy(), rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Math and schedule
# --------------------------------------------------------------------------------------------------


def test_first_order_is_ddim() -> None:
    # DPM-Solver++(1) from sigma_s to sigma_t equals the deterministic DDIM step.
    g = torch.Generator().manual_seed(0)
    x, eps = (
        torch.randn(SHAPE, generator=g, dtype=torch.float64),
        torch.randn(SHAPE, generator=g, dtype=torch.float64),
    )
    ab_s, ab_t = 0.3, 0.7
    sigma_s, sigma_t = ((1 - ab_s) / ab_s) ** 0.5, ((1 - ab_t) / ab_t) ** 0.5
    x0 = (x - (1 - ab_s) ** 0.5 * eps) / ab_s**0.5
    ddim = ab_t**0.5 * x0 + (1 - ab_t) ** 0.5 * eps
    ours = dpm_solver_first_order_update(x, x0, sigma_s, sigma_t, "dpmsolver++")
    torch.testing.assert_close(ours, ddim, rtol=0, atol=1e-12)
    ours_eps = dpm_solver_first_order_update(x, eps, sigma_s, sigma_t, "dpmsolver")
    torch.testing.assert_close(ours_eps, ddim, rtol=0, atol=1e-12)


def test_karras_sigmas_endpoints_and_rho() -> None:
    sigmas = karras_sigmas(0.01, 80.0, 5)
    assert sigmas[0] == pytest.approx(80.0) and sigmas[-1] == pytest.approx(0.01)
    roots = sigmas ** (1 / 7)
    np.testing.assert_allclose(np.diff(roots), np.full(4, roots[1] - roots[0]), rtol=1e-12)


def test_exact_on_linear_data_prediction() -> None:
    # A model whose data prediction is a fixed x0 makes the ODE exactly solvable: every order
    # must land on x0 at sigma = 0 and on alpha_t x0 + sigma_t eps_0 along the way.
    torch.manual_seed(0)
    x0 = torch.randn(SHAPE, dtype=torch.float64)
    noise = torch.randn(SHAPE, dtype=torch.float64)
    for order in (1, 2, 3):
        scheduler = DPMSolverMultistepScheduler(solver_order=order, prediction_type="sample")
        scheduler.set_timesteps(12)
        x = scheduler.add_noise(x0, noise, int(scheduler.timesteps[0]))
        for t in scheduler.timesteps:
            x = scheduler.step(x0, t, x).prev_sample
        torch.testing.assert_close(x, x0, rtol=0, atol=1e-10)


def test_config_swaps_with_deis_and_ddpm_names() -> None:
    deis_like = {"algorithm_type": "deis", "solver_type": "logrho", "solver_order": 3}
    scheduler = DPMSolverMultistepScheduler.from_config(deis_like)
    assert scheduler.config.algorithm_type == "dpmsolver++"
    assert scheduler.config.solver_type == "midpoint" and scheduler.config.solver_order == 3
    with pytest.raises(ValueError, match="final_sigmas_type"):
        DPMSolverMultistepScheduler(algorithm_type="dpmsolver")


def test_full_schedule_n_equals_t() -> None:
    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=50)
    scheduler.set_timesteps(50)
    assert scheduler.timesteps.tolist() == list(range(49, -1, -1))
    with pytest.raises(ValueError):
        scheduler.set_timesteps(51)
