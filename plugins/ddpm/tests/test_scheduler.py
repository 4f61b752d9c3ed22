"""DDPMScheduler: the scheduler contract, step-by-step parity with diffusers, numpy, seeds.

Parity is checked against the untouched reference, with float32 and float64 samples:

- the betas and cumulative alphas equal the reference's float32 values bit for bit;
- every ``prev_sample`` agrees to 1e-6 of the sample scale (measured: at most 3e-7 in float32);
- every ``pred_original_sample`` agrees to 1e-6 of the step's unclipped x0 scale. Near t = T the
  estimate (x_t - sqrt(1 - a) eps) / sqrt(a) divides by sqrt(a) ~ 0.01, so float32 rounding moves
  it by ~1e-5 in any implementation (ours and the reference lie equally far from the float64
  value); clipping to [-1, 1] keeps that absolute error, hence the unclipped scale.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from diffusers_hub_ddpm.scheduler import DDPMScheduler

from diffusers_hub import schedules
from diffusers_hub.testing import SchedulerContract

SHAPE = (2, 3, 4, 4)


class TestDDPMScheduler(SchedulerContract):
    scheduler_class = DDPMScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {"num_train_timesteps": 100}


class TestDDPMSchedulerLargeVarianceV(SchedulerContract):
    scheduler_class = DDPMScheduler
    scheduler_config: ClassVar[dict[str, Any]] = {
        "num_train_timesteps": 100,
        "variance_type": "fixed_large",
        "prediction_type": "v_prediction",
        "beta_schedule": "squaredcos_cap_v2",
        "timestep_spacing": "trailing",
    }


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> Any:
    return pytest.importorskip("diffusers")


def model_output_for(step: int, channels_factor: int = 1, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(1000 + step)
    shape = (SHAPE[0], SHAPE[1] * channels_factor, *SHAPE[2:])
    out = torch.randn(shape, generator=g, dtype=dtype)
    if channels_factor == 2:
        # variance channels: positive (the "learned" type takes them as the variance itself)
        out[:, SHAPE[1] :] = torch.rand((SHAPE[0], SHAPE[1], *SHAPE[2:]), generator=g, dtype=dtype)
        out[:, SHAPE[1] :] += 0.05
    return out


def scaled_error(a: torch.Tensor, b: torch.Tensor, scale: float = 1.0) -> float:
    return float((a.double() - b.double()).abs().max() / max(1.0, scale, float(b.abs().max())))


def run_parity(
    ours: DDPMScheduler,
    ref: Any,
    *,
    steps: int | None,
    timesteps: list[int] | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[float, float]:
    """Step both schedulers over the schedule on the same inputs; return the worst errors of
    ``prev_sample`` and ``pred_original_sample`` (see the module notes for the scales)."""
    if steps is not None or timesteps is not None:
        ours.set_timesteps(steps, timesteps=timesteps)
        ref.set_timesteps(steps, timesteps=timesteps)
    assert ours.timesteps.tolist() == ref.timesteps.tolist()
    factor = 2 if ours.config.variance_type in ("learned", "learned_range") else 1
    sample = torch.randn(SHAPE, generator=torch.Generator().manual_seed(7), dtype=dtype)
    worst_prev = worst_x0 = 0.0
    for i, t in enumerate(ours.timesteps):
        out = model_output_for(i, factor, dtype)
        a = ours.step(out, t, sample, generator=torch.Generator().manual_seed(i))
        b = ref.step(out, t, sample, generator=torch.Generator().manual_seed(i))
        assert a.prev_sample.dtype == b.prev_sample.dtype == dtype
        unclipped = schedules.predict_x0(
            out[:, : SHAPE[1]].double(),
            sample.double(),
            ours.alpha_bar(int(t)),
            ours.config.prediction_type,
        )
        worst_prev = max(worst_prev, scaled_error(a.prev_sample, b.prev_sample))
        worst_x0 = max(
            worst_x0,
            scaled_error(
                a.pred_original_sample, b.pred_original_sample, float(unclipped.abs().max())
            ),
        )
        sample = b.prev_sample
    return worst_prev, worst_x0


DTYPES = [torch.float32, torch.float64]


VARIANCE_TYPES = ["fixed_small", "fixed_small_log", "fixed_large", "learned", "learned_range"]
PREDICTION_TYPES = ["epsilon", "sample", "v_prediction"]


# --------------------------------------------------------------------------------------------------
# parity with diffusers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variance_type", VARIANCE_TYPES)
@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("steps", [None, 20])
def test_parity_variance_and_prediction(reference, variance_type, prediction_type, steps, dtype):
    config = {
        "num_train_timesteps": 100 if steps is None else 1000,
        "variance_type": variance_type,
        "prediction_type": prediction_type,
    }
    ours, ref = DDPMScheduler(**config), reference.DDPMScheduler(**config)
    prev_err, x0_err = run_parity(ours, ref, steps=steps, dtype=dtype)
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


@pytest.mark.parametrize(
    "options",
    [
        {"clip_sample": False},
        {"clip_sample": True, "clip_sample_range": 0.5},
        {"thresholding": True, "dynamic_thresholding_ratio": 0.9, "sample_max_value": 2.5},
        {"thresholding": True, "prediction_type": "v_prediction", "sample_max_value": 1.5},
        {"clip_sample": False, "prediction_type": "sample", "variance_type": "fixed_large"},
    ],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_parity_clipping_and_thresholding(reference, options, dtype):
    ours, ref = DDPMScheduler(**options), reference.DDPMScheduler(**options)
    prev_err, x0_err = run_parity(ours, ref, steps=25, dtype=dtype)
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


@pytest.mark.parametrize("schedule", ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"])
@pytest.mark.parametrize(
    ("spacing", "offset", "steps"),
    [("leading", 0, 10), ("leading", 1, 50), ("trailing", 0, 37), ("linspace", 0, 13)],
)
def test_parity_schedules_and_spacings(reference, schedule, spacing, offset, steps):
    config = {
        "beta_schedule": schedule,
        "beta_start": 0.00085 if schedule == "scaled_linear" else 0.0001,
        "beta_end": 0.012 if schedule == "scaled_linear" else 0.02,
        "timestep_spacing": spacing,
        "steps_offset": offset,
        "variance_type": "fixed_small",
        "clip_sample": False,
    }
    ours, ref = DDPMScheduler(**config), reference.DDPMScheduler(**config)
    # the schedule itself: the reference's float32 values, bit for bit
    assert torch.equal(ours.betas.float(), ref.betas)
    assert torch.equal(ours.alphas.float(), ref.alphas)
    assert torch.equal(ours.alphas_cumprod.float(), ref.alphas_cumprod)
    prev_err, x0_err = run_parity(ours, ref, steps=steps)
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


@pytest.mark.parametrize(
    "timesteps", [[999, 800, 500, 250, 100, 10, 0], [640, 320, 160, 80, 40, 20, 10, 5]]
)
@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large", "learned_range"])
def test_parity_custom_timesteps(reference, timesteps, variance_type):
    ours = DDPMScheduler(variance_type=variance_type)
    ref = reference.DDPMScheduler(variance_type=variance_type)
    prev_err, x0_err = run_parity(ours, ref, steps=None, timesteps=timesteps)
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"variance_type": "fixed_large", "clip_sample": False},
        {"prediction_type": "v_prediction", "beta_schedule": "scaled_linear"},
        {"variance_type": "learned_range", "timestep_spacing": "trailing"},
        {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing", "clip_sample": False},
    ],
)
@pytest.mark.parametrize("steps", [None, 50])
def test_parity_whole_schedules(reference, config, steps):
    ours, ref = DDPMScheduler(**config), reference.DDPMScheduler(**config)
    prev_err, x0_err = run_parity(ours, ref, steps=steps)
    assert prev_err < 1e-6 and x0_err < 1e-6, (prev_err, x0_err)


def test_fixed_large_log_is_fixed_large():
    # diffusers returns sqrt(log(beta)) (NaN) for this type; the variance is beta_t, like fixed_large
    a, b = (
        DDPMScheduler(variance_type="fixed_large_log"),
        DDPMScheduler(variance_type="fixed_large"),
    )
    for s in (a, b):
        s.set_timesteps(10)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    for i, t in enumerate(a.timesteps.tolist()):
        out = model_output_for(i)
        pa = a.step(out, t, x, generator=torch.Generator().manual_seed(i)).prev_sample
        pb = b.step(out, t, x, generator=torch.Generator().manual_seed(i)).prev_sample
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-6)
        assert bool(torch.isfinite(pa).all())
        torch.testing.assert_close(a.get_variance(t), b.get_variance(t))


def test_add_noise_and_velocity_match_reference(reference):
    ours, ref = DDPMScheduler(prediction_type="v_prediction"), reference.DDPMScheduler()
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    t = torch.tensor([0, 999])
    for dtype in DTYPES:
        x0, noise = x0.to(dtype), noise.to(dtype)
        torch.testing.assert_close(
            ours.add_noise(x0, noise, t), ref.add_noise(x0, noise, t), rtol=0, atol=1e-6
        )
        torch.testing.assert_close(
            ours.training_target(x0, noise, t), ref.get_velocity(x0, noise, t), rtol=0, atol=1e-6
        )
    torch.testing.assert_close(ours.get_velocity(x0, noise, t), ours.training_target(x0, noise, t))
    # a Python int timestep applies to every item
    torch.testing.assert_close(
        ours.add_noise(x0, noise, 999), ours.add_noise(x0, noise, torch.tensor([999, 999]))
    )


def test_get_variance_matches_reference(reference):
    for variance_type in ("fixed_small", "fixed_large"):
        ours = DDPMScheduler(variance_type=variance_type)
        ref = reference.DDPMScheduler(variance_type=variance_type)
        for t in (1, 10, 500, 999):
            expected = float(ref._get_variance(t))
            assert float(ours.get_variance(t)) == pytest.approx(expected, rel=1e-6)


# --------------------------------------------------------------------------------------------------
# behaviour
# --------------------------------------------------------------------------------------------------


def test_seed_manual_loop_and_variance_noise():
    """The seed's loop shape; variance_noise gives the same result as the generator's draw."""
    scheduler = DDPMScheduler(num_train_timesteps=50)
    x = torch.randn(SHAPE, generator=torch.manual_seed(0))
    g1 = torch.Generator().manual_seed(1)
    g2 = torch.Generator().manual_seed(1)
    y = x.clone()
    for t in scheduler.timesteps:
        eps = 0.1 * x
        x = scheduler.step(eps, t, x, generator=g1).prev_sample
        noise = torch.randn(SHAPE, generator=g2) if t > 0 else None
        y = scheduler.step(0.1 * y, t, y, variance_noise=noise).prev_sample
    torch.testing.assert_close(x, y)
    with pytest.raises(ValueError, match="not both"):
        scheduler.step(x, 5, x, generator=g1, variance_noise=x)


def test_numpy_matches_torch():
    scheduler = DDPMScheduler(variance_type="learned_range")
    scheduler.set_timesteps(10)
    out = model_output_for(0, 2)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    t = int(scheduler.timesteps[2])
    a = scheduler.step(out, t, x, generator=torch.Generator().manual_seed(9))
    b = scheduler.step(out.numpy(), t, x.numpy(), generator=torch.Generator().manual_seed(9))
    assert isinstance(b.prev_sample, np.ndarray) and isinstance(b.pred_original_sample, np.ndarray)
    np.testing.assert_allclose(b.prev_sample, a.prev_sample.numpy(), atol=1e-6)
    c = scheduler.step(out.numpy(), t, x.numpy(), generator=np.random.default_rng(0))
    assert isinstance(c.prev_sample, np.ndarray) and c.prev_sample.dtype == np.float32


def test_repeated_and_mid_schedule_timesteps():
    scheduler = DDPMScheduler()
    scheduler.set_timesteps(20)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    t = int(scheduler.timesteps[7])
    first = scheduler.step(x, t, x, generator=torch.Generator().manual_seed(1)).prev_sample
    again = scheduler.step(x, t, x, generator=torch.Generator().manual_seed(1)).prev_sample
    assert torch.equal(first, again)
    assert scheduler.previous_timestep(t) == int(scheduler.timesteps[8])
    assert scheduler.previous_timestep(int(scheduler.timesteps[-1])) == -1
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(x, t + 1, x)


def test_learned_variance_needs_variance_channels():
    scheduler = DDPMScheduler(variance_type="learned")
    x = torch.zeros(SHAPE)
    with pytest.raises(ValueError, match="twice the sample's channels"):
        scheduler.step(x, 10, x)


def test_invalid_options_rejected():
    from diffusers_hub.errors import ConfigError

    with pytest.raises(ConfigError, match="variance_type"):
        DDPMScheduler(variance_type="huge")
    with pytest.raises(ConfigError, match="beta_schedule"):
        DDPMScheduler(beta_schedule="exponential")
    scheduler = DDPMScheduler()
    with pytest.raises(ValueError, match="descending"):
        scheduler.set_timesteps(timesteps=[10, 20])
    with pytest.raises(ValueError, match=r"\[0, 1000\)"):
        scheduler.set_timesteps(timesteps=[1000, 10])
    with pytest.raises(ValueError, match="exactly one"):
        scheduler.set_timesteps(10, timesteps=[10, 5])


def test_legacy_config_keys_load(tmp_path, caplog):
    """A 2022-era scheduler_config.json (fusing/ddpm-*) loads with its old spellings."""
    legacy = {
        "_class_name": "DDPMScheduler",
        "_diffusers_version": "0.0.4",
        "beta_end": 0.02,
        "beta_schedule": "linear",
        "beta_start": 0.0001,
        "clip_predicted_image": False,
        "tensor_format": "np",
        "timestep_values": None,
        "timesteps": 500,
        "trained_betas": None,
        "variance_type": "fixed_large",
    }
    (tmp_path / "scheduler_config.json").write_text(json.dumps(legacy))
    with caplog.at_level(logging.WARNING):
        scheduler = DDPMScheduler.from_pretrained(tmp_path, tensor_format="pt")
    assert not caplog.records
    assert len(scheduler) == 500
    assert scheduler.config.clip_sample is False
    assert scheduler.config.variance_type == "fixed_large"


def test_pipeline_folder_subfolder_and_trained_betas(tmp_path):
    betas = np.linspace(1e-3, 0.05, 30)
    scheduler = DDPMScheduler(num_train_timesteps=30, trained_betas=betas)
    scheduler.save_pretrained(tmp_path / "scheduler")
    loaded = DDPMScheduler.from_pretrained(tmp_path)  # finds scheduler/ without subfolder
    # trained betas are held as the float32 values the format stores them as
    np.testing.assert_array_equal(loaded.betas.numpy(), betas.astype(np.float32))
    loaded = DDPMScheduler.from_pretrained(tmp_path, subfolder="scheduler", clip_sample=False)
    assert loaded.config.clip_sample is False


def test_swap_to_ddim_and_back():
    ddim_module = pytest.importorskip("diffusers_hub_ddim.scheduler")
    ddpm = DDPMScheduler(
        variance_type="fixed_large", beta_schedule="scaled_linear", prediction_type="v_prediction"
    )
    ddim = ddim_module.DDIMScheduler.from_config(ddpm.config)
    assert ddim.config.beta_schedule == "scaled_linear"
    assert ddim.config.prediction_type == "v_prediction"
    torch.testing.assert_close(ddim.alphas_cumprod, ddpm.alphas_cumprod)
    back = DDPMScheduler.from_config(ddim.config)
    assert back.config.variance_type == "fixed_small"  # not carried by DDIM: default
    assert back.config.beta_schedule == "scaled_linear"
