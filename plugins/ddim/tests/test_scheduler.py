"""DDIMScheduler and DDIMInverseScheduler: contract, parity with diffusers, inversion, numpy.

Parity is checked against the untouched reference with float64 and float32 samples: every
``prev_sample`` to 1e-6 of the sample scale, every ``pred_original_sample`` to 1e-6 of the step's
unclipped x0 scale (near t = T, x0 = (x_t - sqrt(1 - a) eps) / sqrt(a) magnifies float32 rounding
100-fold in any implementation). The schedules themselves (equal bit for bit) are compared in
tests/test_schedules.py.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from diffusers_hub_ddim.scheduler import DDIMInverseScheduler, DDIMScheduler

from diffusers_hub import schedules
from diffusers_hub.testing import SchedulerContract

SHAPE = (2, 3, 4, 4)


class TestDDIMScheduler(SchedulerContract):
    scheduler_class = DDIMScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100}


class TestDDIMSchedulerStochastic(SchedulerContract):
    scheduler_class = DDIMScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {
        "num_train_timesteps": 100,
        "timestep_spacing": "trailing",
        "prediction_type": "v_prediction",
    }
    step_kwargs: ClassVar[dict[str, Any]] = {"eta": 1.0}


class TestDDIMInverseScheduler(SchedulerContract):
    scheduler_class = DDIMInverseScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100, "clip_sample": False}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> Any:
    return pytest.importorskip("diffusers")


def model_output_for(step: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(1000 + step), dtype=dtype)


def scaled_error(a: torch.Tensor, b: torch.Tensor, scale: float = 1.0) -> float:
    return float((a.double() - b.double()).abs().max() / max(1.0, scale, float(b.abs().max())))


DTYPES = [torch.float64, torch.float32]


def run_parity(
    ours: Any,
    ref: Any,
    steps: int,
    step_kwargs: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float64,
    noise_as_argument: bool = False,
) -> tuple[float, float]:
    ours.set_timesteps(steps)
    ref.set_timesteps(steps)
    assert ours.timesteps.tolist() == ref.timesteps.tolist()
    kwargs = step_kwargs or {}
    sample = torch.randn(SHAPE, generator=torch.Generator().manual_seed(7), dtype=dtype)
    worst_prev = worst_x0 = 0.0
    for i, t in enumerate(ours.timesteps):
        out = model_output_for(i, dtype)
        if noise_as_argument:
            noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(i), dtype=dtype)
            a = ours.step(out, t, sample, variance_noise=noise, **kwargs)
            b = ref.step(out, t, sample, variance_noise=noise, **kwargs)
        elif isinstance(ours, DDIMInverseScheduler):
            a, b = ours.step(out, t, sample), ref.step(out, t, sample)
        else:
            a = ours.step(out, t, sample, generator=torch.Generator().manual_seed(i), **kwargs)
            b = ref.step(out, t, sample, generator=torch.Generator().manual_seed(i), **kwargs)
        assert a.prev_sample.dtype == dtype
        unclipped = schedules.predict_x0(
            out.double(), sample.double(), ours.alpha_bar(int(t)), ours.config.prediction_type
        )
        scale = float(unclipped.abs().max())
        worst_prev = max(worst_prev, scaled_error(a.prev_sample, b.prev_sample))
        worst_x0 = max(
            worst_x0, scaled_error(a.pred_original_sample, b.pred_original_sample, scale)
        )
        sample = b.prev_sample
    return worst_prev, worst_x0


# --------------------------------------------------------------------------------------------------
# DDIM parity
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
@pytest.mark.parametrize("use_clipped_model_output", [False, True])
def test_parity_eta_prediction_clipped_output(
    reference, eta, prediction_type, use_clipped_model_output, dtype
):
    config = {"prediction_type": prediction_type, "clip_sample": True}
    ours, ref = DDIMScheduler(**config), reference.DDIMScheduler(**config)
    kwargs = {"eta": eta, "use_clipped_model_output": use_clipped_model_output}
    prev_err, x0_err = run_parity(ours, ref, 20, kwargs, dtype=dtype)
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [10, 37])
@pytest.mark.parametrize(("set_alpha_to_one", "steps_offset"), [(True, 0), (False, 1)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_parity_spacings_offsets_final_alpha(
    reference, spacing, steps, set_alpha_to_one, steps_offset, dtype
):
    config = {
        "timestep_spacing": spacing,
        "set_alpha_to_one": set_alpha_to_one,
        "steps_offset": steps_offset,
        "clip_sample": False,
    }
    ours, ref = DDIMScheduler(**config), reference.DDIMScheduler(**config)
    prev_err, x0_err = run_parity(ours, ref, steps, {"eta": 0.5}, dtype=dtype)
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


@pytest.mark.parametrize(
    "config",
    [
        {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
        {"beta_schedule": "squaredcos_cap_v2", "clip_sample": False},
        {"thresholding": True, "dynamic_thresholding_ratio": 0.9, "sample_max_value": 2.0},
        {"clip_sample": True, "clip_sample_range": 0.7, "prediction_type": "v_prediction"},
        {
            "rescale_betas_zero_snr": True,
            "prediction_type": "v_prediction",
            "timestep_spacing": "trailing",
            "clip_sample": False,
        },
    ],
)
def test_parity_schedules_thresholding(reference, config):
    ours, ref = DDIMScheduler(**config), reference.DDIMScheduler(**config)
    # the reference rescales zero-SNR betas in float32, we in float64: equal to its rounding
    np.testing.assert_allclose(
        ours.alphas_cumprod.numpy(), ref.alphas_cumprod.double().numpy(), rtol=1e-5, atol=1e-7
    )
    prev_err, x0_err = run_parity(ours, ref, 25, {"eta": 0.3, "use_clipped_model_output": True})
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


def test_parity_variance_noise(reference):
    ours, ref = DDIMScheduler(), reference.DDIMScheduler()
    prev_err, x0_err = run_parity(ours, ref, 15, {"eta": 0.8}, noise_as_argument=True)
    assert prev_err < 1e-6 and x0_err < 1e-6
    x = torch.zeros(SHAPE)
    ours.set_timesteps(10)
    with pytest.raises(ValueError, match="not both"):
        ours.step(x, 900, x, eta=1.0, generator=torch.Generator(), variance_noise=x)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {
            "beta_schedule": "scaled_linear",
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "steps_offset": 1,
            "set_alpha_to_one": False,
            "clip_sample": False,
        },
        {"prediction_type": "v_prediction", "timestep_spacing": "trailing"},
    ],
)
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_parity_float32_untouched_reference(reference, config, eta):
    ours, ref = DDIMScheduler(**config), reference.DDIMScheduler(**config)
    prev_err, x0_err = run_parity(ours, ref, 50, {"eta": eta}, dtype=torch.float32)
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


# --------------------------------------------------------------------------------------------------
# DDIM inverse parity
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
@pytest.mark.parametrize(
    "config",
    [
        {"clip_sample": False},
        {"clip_sample": True, "set_alpha_to_one": False},
        {"timestep_spacing": "trailing", "clip_sample": False},
        {"steps_offset": 1, "clip_sample": True, "clip_sample_range": 2.0},
    ],
)
def test_parity_inverse(reference, prediction_type, config):
    if prediction_type == "sample" and config.get("set_alpha_to_one", True):
        config = {**config, "set_alpha_to_one": False}  # eps from x0 at alpha_bar = 1 is 0/0
    config = {**config, "prediction_type": prediction_type}
    ours, ref = DDIMInverseScheduler(**config), reference.DDIMInverseScheduler(**config)
    prev_err, x0_err = run_parity(ours, ref, 20)
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


# --------------------------------------------------------------------------------------------------
# behaviour
# --------------------------------------------------------------------------------------------------


def test_ldm_timesteps():
    scheduler = DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        set_alpha_to_one=False,
        clip_sample=False,
    )
    scheduler.set_timesteps(50)
    assert scheduler.timesteps.tolist() == list(range(981, 0, -20))
    assert scheduler.timesteps.dtype == torch.int64
    assert scheduler.previous_timestep(1) == -19
    assert scheduler.alpha_bar(-19) == pytest.approx(float(scheduler.alphas_cumprod[0]))


def test_ddpm_repo_config_converts_quietly(tmp_path, caplog):
    """A google/ddpm-* scheduler_config.json (a DDPMScheduler file) loads as DDIM."""
    ddpm_file = {
        "_class_name": "DDPMScheduler",
        "_diffusers_version": "0.1.1",
        "beta_end": 0.02,
        "beta_schedule": "linear",
        "beta_start": 0.0001,
        "clip_sample": True,
        "num_train_timesteps": 1000,
        "trained_betas": None,
        "variance_type": "fixed_large",
    }
    (tmp_path / "scheduler_config.json").write_text(json.dumps(ddpm_file))
    with caplog.at_level(logging.WARNING):
        scheduler = DDIMScheduler.from_pretrained(tmp_path)
    assert not caplog.records
    assert scheduler.config.clip_sample is True
    assert scheduler.config.set_alpha_to_one is True
    scheduler.set_timesteps(50)
    assert scheduler.timesteps[0] == 980 and scheduler.timesteps[-1] == 0


def test_custom_timesteps_equal_leading_schedule():
    a, b = DDIMScheduler(), DDIMScheduler()
    a.set_timesteps(20)
    b.set_timesteps(timesteps=a.timesteps.tolist())
    assert b.custom_timesteps and torch.equal(a.timesteps, b.timesteps)
    x = torch.randn(SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for i, t in enumerate(a.timesteps.tolist()):
        out = model_output_for(i)
        # the same previous noise level (past the end both give final_alpha_cumprod)
        assert a.alpha_bar(a.previous_timestep(t)) == b.alpha_bar(b.previous_timestep(t))
        pa = a.step(out, t, x, eta=0.5, generator=torch.Generator().manual_seed(i))
        pb = b.step(out, t, x, eta=0.5, generator=torch.Generator().manual_seed(i))
        assert torch.equal(pa.prev_sample, pb.prev_sample)
        x = pa.prev_sample
    # an irregular list: each step goes to the next entry
    b.set_timesteps(timesteps=[900, 700, 650, 100, 3])
    assert [b.previous_timestep(t) for t in (900, 700, 650, 100, 3)] == [700, 650, 100, 3, -1]


def test_repeated_timestep_and_mid_schedule_start():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(25)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    ts = scheduler.timesteps.tolist()
    # full run from the start, deterministic
    full = [x]
    for i, t in enumerate(ts):
        full.append(scheduler.step(model_output_for(i, torch.float32), t, full[-1]).prev_sample)
    # a new scheduler that starts at step 10 (image-to-image) reproduces the tail exactly
    fresh = DDIMScheduler()
    fresh.set_timesteps(25)
    y = full[10]
    for i, t in enumerate(ts[10:], start=10):
        y = fresh.step(model_output_for(i, torch.float32), t, y).prev_sample
    assert torch.equal(y, full[-1])
    # repeating a timestep gives the same result each time
    r1 = fresh.step(model_output_for(3, torch.float32), ts[3], x).prev_sample
    r2 = fresh.step(model_output_for(3, torch.float32), ts[3], x).prev_sample
    assert torch.equal(r1, r2)


def test_step_requires_schedule():
    with pytest.raises(ValueError, match="set_timesteps"):
        DDIMScheduler().step(torch.zeros(SHAPE), 10, torch.zeros(SHAPE))


def test_numpy_matches_torch():
    scheduler = DDIMScheduler(prediction_type="v_prediction")
    scheduler.set_timesteps(10)
    out = model_output_for(0, torch.float32)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    t = int(scheduler.timesteps[4])
    a = scheduler.step(out, t, x, eta=1.0, generator=torch.Generator().manual_seed(9))
    b = scheduler.step(
        out.numpy(), t, x.numpy(), eta=1.0, generator=torch.Generator().manual_seed(9)
    )
    assert isinstance(b.prev_sample, np.ndarray) and isinstance(b.pred_original_sample, np.ndarray)
    np.testing.assert_allclose(b.prev_sample, a.prev_sample.numpy(), atol=1e-6)
    inverse = DDIMInverseScheduler(clip_sample=False)
    inverse.set_timesteps(10)
    c = inverse.step(out.numpy().astype(np.float64), 30, x.numpy().astype(np.float64))
    assert isinstance(c.prev_sample, np.ndarray) and c.prev_sample.dtype == np.float64


def test_eta_one_variance_is_ddpm_posterior():
    ddpm_module = pytest.importorskip("diffusers_hub_ddpm.scheduler")
    ddim = DDIMScheduler()
    ddpm = ddpm_module.DDPMScheduler.from_config(ddim.config)
    ddim.set_timesteps(20)
    ddpm.set_timesteps(20)
    for t in ddim.timesteps.tolist()[:-1]:
        assert float(ddim.get_variance(t)) == pytest.approx(float(ddpm.get_variance(t)), rel=1e-6)


def gaussian_eps_model(mean: float, std: float, alphas_cumprod: torch.Tensor):
    """The exact noise predictor for data x0 ~ N(mean, std^2): E[eps | x_t]."""

    def predict(x_t: torch.Tensor, t: int) -> torch.Tensor:
        ab = float(alphas_cumprod[t])
        return math.sqrt(1 - ab) * (x_t - math.sqrt(ab) * mean) / (ab * std**2 + 1 - ab)

    return predict


def invert_and_sample(steps: int, config: dict[str, Any]) -> tuple[float, float, float]:
    """Invert x0 -> x_T with an exact (trained-to-optimum) model, then sample back at eta = 0.

    Returns:
        (max error, mean error, std of x_T); the data are N(0.3, 0.5^2).
    """
    sampler, inverse = DDIMScheduler(**config), DDIMInverseScheduler.from_config(config)
    sampler.set_timesteps(steps)
    inverse.set_timesteps(steps)
    assert inverse.timesteps.tolist() == sampler.timesteps.flip(0).tolist()
    model = gaussian_eps_model(0.3, 0.5, sampler.alphas_cumprod)
    x0 = 0.3 + 0.5 * torch.randn(SHAPE, dtype=torch.float64, generator=torch.manual_seed(0))
    x = x0
    for t in inverse.timesteps.tolist():
        x = inverse.step(model(x, t), t, x).prev_sample
    latent_std = float(x.std())
    for t in sampler.timesteps.tolist():
        x = sampler.step(model(x, t), t, x).prev_sample
    return float((x - x0).abs().max()), float((x - x0).abs().mean()), latent_std


@pytest.mark.parametrize(
    "config",
    [
        {"clip_sample": False},
        {"clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1},
        {"clip_sample": False, "timestep_spacing": "trailing"},
    ],
)
def test_inversion_then_sampling_reconstructs(config):
    """The round trip error is first order in the step size (the model is evaluated at the target
    timestep of each inversion step); measured: 50 steps mean 0.026 / max 0.099, 200 steps mean
    0.0067 / max 0.025, for data of std 0.5."""
    max50, mean50, latent_std = invert_and_sample(50, config)
    max200, mean200, _ = invert_and_sample(200, config)
    assert 0.8 < latent_std < 1.3  # x_T looks like unit noise
    assert mean50 < 0.03 and max50 < 0.12, (mean50, max50)
    assert mean200 < 0.008 and max200 < 0.03, (mean200, max200)
    assert mean200 < mean50 / 3.5  # converges as the steps shrink


def test_from_config_swaps_with_inverse_and_ddpm():
    ddim = DDIMScheduler(beta_schedule="scaled_linear", set_alpha_to_one=False)
    inverse = DDIMInverseScheduler.from_config(ddim.config)
    assert inverse.config.set_alpha_to_one is False
    assert inverse.config.beta_schedule == "scaled_linear"
    assert DDIMScheduler.from_config(inverse.config).config.to_dict() == ddim.config.to_dict()
    with pytest.raises(ValueError, match="ascending"):
        inverse.set_timesteps(timesteps=[50, 10])
    inverse.set_timesteps(timesteps=[0, 10, 50])
    assert [inverse.current_timestep(t) for t in (0, 10, 50)] == [-1, 0, 10]


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_float32_steps_track_float64(prediction_type):
    """The schedule is float64, so float32 steps stay within float32 rounding of float64 steps
    (the diffusers float32 schedule is off by up to 3e-5 for sample prediction near t = 0)."""
    scheduler = DDIMScheduler(prediction_type=prediction_type, clip_sample=False)
    scheduler.set_timesteps(50)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    for i, t in enumerate(scheduler.timesteps.tolist()):
        out = model_output_for(i, torch.float32)
        a = scheduler.step(out, t, x).prev_sample
        b = scheduler.step(out.double(), t, x.double()).prev_sample
        assert scaled_error(a, b) < 1e-6, (t, scaled_error(a, b))
        x = a
