"""The shared schedule math: betas, cumulative alphas, spacings, predictions, thresholding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusers_hub import schedules

SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"]


# --------------------------------------------------------------------------------------------------
# betas
# --------------------------------------------------------------------------------------------------


def test_betas_formulas():
    # float32 values: the formulas hold to float32 precision
    t = 1000
    linear = schedules.betas_for_schedule("linear", t, 1e-4, 0.02)
    assert linear.dtype == np.float64 and linear.shape == (t,)
    assert np.array_equal(linear, linear.astype(np.float32))  # each value is a float32
    assert linear[0] == np.float32(1e-4) and linear[-1] == np.float32(0.02)
    np.testing.assert_allclose(np.diff(linear), (0.02 - 1e-4) / (t - 1), rtol=1e-4)
    scaled = schedules.betas_for_schedule("scaled_linear", t, 0.00085, 0.012)
    np.testing.assert_allclose(np.diff(np.sqrt(scaled)), np.diff(np.sqrt(scaled))[0], rtol=1e-4)
    assert scaled[-1] == pytest.approx(0.012, rel=1e-6)
    cos = schedules.betas_for_schedule("squaredcos_cap_v2", t, 0.0, 0.0)
    assert cos.max() == pytest.approx(0.999)  # capped
    ab = schedules.alphas_cumprod(cos)
    expected = [
        schedules.cosine_alpha_bar((i + 1) / t) / schedules.cosine_alpha_bar(0.0) for i in (0, 499)
    ]
    np.testing.assert_allclose(ab[[0, 499]], expected, rtol=1e-6)
    sig = schedules.betas_for_schedule("sigmoid", t, 1e-4, 0.02)
    assert np.all(np.diff(sig) > 0) and 1e-4 < sig[0] < sig[-1] < 0.02
    assert sig[t // 2] == pytest.approx(1e-4 + (0.02 - 1e-4) / (1 + math.exp(-6 / 999)), rel=1e-6)


def test_alphas_cumprod_is_the_float32_product():
    betas = schedules.betas_for_schedule("linear", 1000, 1e-4, 0.02)
    alphas = schedules.alphas(betas)
    assert np.array_equal(alphas, (1 - betas.astype(np.float32)).astype(np.float64))
    ab = schedules.alphas_cumprod(betas)
    # float64 running product of the float32 alphas, each partial product rounded to float32
    assert np.array_equal(ab, np.cumprod(alphas).astype(np.float32).astype(np.float64))
    # the float32 alphas make the product drift from the float64 one by up to ~1e-5 relative
    exact = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))
    assert 1e-7 < np.abs(ab / exact - 1).max() < 1e-4
    # a step's alpha is the float32 ratio; its beta near t = 0 is what that rounding makes it
    assert schedules.step_alpha(ab[1], ab[0]) == float(np.float32(ab[1]) / np.float32(ab[0]))
    assert schedules.step_alpha(ab[5], 1.0) == ab[5]


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("steps", [1000, 37])
def test_schedule_equals_reference(schedule, steps):
    diffusers = pytest.importorskip("diffusers")
    start, end = (0.00085, 0.012) if schedule == "scaled_linear" else (1e-4, 0.02)
    ref = diffusers.DDPMScheduler(
        num_train_timesteps=steps, beta_schedule=schedule, beta_start=start, beta_end=end
    )
    ours = schedules.betas_for_schedule(schedule, steps, start, end)
    # bit for bit: the reference's float32 values
    assert np.array_equal(ours, ref.betas.double().numpy())
    assert np.array_equal(schedules.alphas(ours), ref.alphas.double().numpy())
    assert np.array_equal(schedules.alphas_cumprod(ours), ref.alphas_cumprod.double().numpy())


def test_trained_betas_and_errors():
    betas = schedules.betas_for_schedule("linear", 3, 0.1, 0.2, trained_betas=[0.1, 0.2, 0.3])
    np.testing.assert_array_equal(betas, np.float32([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(schedules.alphas_cumprod(betas), [0.9, 0.72, 0.504], rtol=1e-7)
    with pytest.raises(ValueError, match="must agree"):
        schedules.betas_for_schedule("linear", 4, 0.1, 0.2, trained_betas=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        schedules.betas_for_schedule("linear", 2, 0.1, 0.2, trained_betas=[0.0, 0.2])
    with pytest.raises(ValueError, match="unknown beta schedule"):
        schedules.betas_for_schedule("cubic", 10, 0.1, 0.2)
    with pytest.raises(ValueError, match="at least 1"):
        schedules.betas_for_schedule("linear", 0, 0.1, 0.2)


def test_rescale_zero_terminal_snr():
    betas = schedules.betas_for_schedule("scaled_linear", 1000, 0.00085, 0.012)
    rescaled = schedules.rescale_zero_terminal_snr(betas)
    ab, ab_new = schedules.alphas_cumprod(betas), schedules.alphas_cumprod(rescaled)
    assert ab_new[-1] == pytest.approx(0.0, abs=1e-20)  # zero SNR at T
    assert ab_new[0] == pytest.approx(ab[0], rel=1e-7)  # first level unchanged
    assert rescaled[-1] == pytest.approx(1.0)
    assert np.all(np.diff(ab_new) < 0)
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DDPMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        rescale_betas_zero_snr=True,
    )
    np.testing.assert_allclose(ab_new, ref.alphas_cumprod.double().numpy(), rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------------
# spacings
# --------------------------------------------------------------------------------------------------


def test_spacing_examples():
    assert schedules.spaced_timesteps(1000, 50, "leading", 1).tolist() == list(range(981, 0, -20))
    assert schedules.spaced_timesteps(1000, 4, "leading").tolist() == [750, 500, 250, 0]
    assert schedules.spaced_timesteps(1000, 4, "trailing").tolist() == [999, 749, 499, 249]
    assert schedules.spaced_timesteps(1000, 4, "linspace").tolist() == [999, 666, 333, 0]
    assert schedules.spaced_timesteps(10, 10, "leading").tolist() == list(range(9, -1, -1))
    ts = schedules.spaced_timesteps(1000, 7, "trailing")
    assert ts.dtype == np.int64 and ts.flags.c_contiguous


@pytest.mark.parametrize("total", [1000, 100, 37])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_spacings_match_reference(total, spacing):
    """Every n in [1, T] against diffusers' DDPM and DDIM schedulers."""
    diffusers = pytest.importorskip("diffusers")
    ddpm = diffusers.DDPMScheduler(num_train_timesteps=total, timestep_spacing=spacing)
    ddim = diffusers.DDIMScheduler(num_train_timesteps=total, timestep_spacing=spacing)
    counts = range(1, total + 1)
    extra = 0
    for n in counts:
        ours = schedules.spaced_timesteps(total, n, spacing).tolist()
        ddpm.set_timesteps(n)
        ddim.set_timesteps(n)
        ref = ddpm.timesteps.tolist()
        assert ddim.timesteps.tolist() == ref
        assert len(ours) == n
        if len(ref) == n + 1:
            # the reference's float arange overshoots for some n and appends timestep -1
            assert spacing == "trailing" and ref[-1] == -1
            ref = ref[:-1]
            extra += 1
        assert ours == ref, (n, ours, ref)
    if spacing != "trailing":
        assert extra == 0


@pytest.mark.parametrize("offset", [0, 1, 3])
def test_leading_offset_matches_reference(offset):
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DDIMScheduler(steps_offset=offset)
    for n in (1, 10, 50, 333):
        ref.set_timesteps(n)
        assert schedules.spaced_timesteps(1000, n, "leading", offset).tolist() == (
            ref.timesteps.tolist()
        )


def test_spacing_errors():
    with pytest.raises(ValueError, match="between 1 and"):
        schedules.spaced_timesteps(100, 0, "leading")
    with pytest.raises(ValueError, match="between 1 and"):
        schedules.spaced_timesteps(100, 101, "leading")
    with pytest.raises(ValueError, match="unknown timestep spacing"):
        schedules.spaced_timesteps(100, 10, "karras")
    with pytest.raises(ValueError, match="outside"):
        schedules.spaced_timesteps(100, 100, "leading", steps_offset=1)


def test_validate_timesteps():
    out = schedules.validate_timesteps(torch.tensor([9, 5, 0]), 10)
    assert out.dtype == np.int64 and out.tolist() == [9, 5, 0]
    assert schedules.validate_timesteps([0, 3], 10, descending=False).tolist() == [0, 3]
    assert schedules.validate_timesteps(np.array([4.0, 2.0]), 10).tolist() == [4, 2]
    for bad, message in [
        ([], "empty"),
        ([5, 5], "descending"),
        ([1, 2], "descending"),
        ([10, 2], r"\[0, 10\)"),
        ([3, -1], r"\[0, 10\)"),
        ([2.5, 1.0], "integers"),
    ]:
        with pytest.raises(ValueError, match=message):
            schedules.validate_timesteps(bad, 10)
    with pytest.raises(ValueError, match="ascending"):
        schedules.validate_timesteps([3, 1], 10, descending=False)


# --------------------------------------------------------------------------------------------------
# predictions and thresholding
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha_bar", [0.999, 0.5, 0.01])
@pytest.mark.parametrize("per_item", [False, True])
def test_predictions_invert_the_forward_process(alpha_bar, per_item):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    ab: float | torch.Tensor = alpha_bar
    if per_item:
        ab = torch.tensor([alpha_bar, alpha_bar], dtype=torch.float64).view(2, 1, 1, 1)
    x_t = math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * eps  # eq. 4, arXiv:2006.11239
    v = schedules.velocity(x0, eps, ab)
    torch.testing.assert_close(v, math.sqrt(alpha_bar) * eps - math.sqrt(1 - alpha_bar) * x0)
    for kind, output in (("epsilon", eps), ("sample", x0), ("v_prediction", v)):
        torch.testing.assert_close(schedules.predict_x0(output, x_t, ab, kind), x0)
        torch.testing.assert_close(schedules.predict_eps(output, x_t, ab, kind), eps)
    torch.testing.assert_close(schedules.eps_from_x0(x0, x_t, ab), eps)
    # predict_x0 never returns the model output itself (callers clip in place)
    assert schedules.predict_x0(x0, x_t, ab, "sample") is not x0
    with pytest.raises(ValueError, match="prediction_type"):
        schedules.predict_x0(eps, x_t, ab, "score")
    with pytest.raises(ValueError, match="prediction_type"):
        schedules.predict_eps(eps, x_t, ab, "score")


def test_dynamic_threshold():
    x = torch.linspace(-4, 4, 2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    # max_value 1: plain clipping to [-1, 1]
    torch.testing.assert_close(schedules.dynamic_threshold(x, 0.995, 1.0), x.clamp(-1, 1))
    out = schedules.dynamic_threshold(x, 0.9, 3.0)
    for i in range(2):
        s = torch.quantile(x[i].abs().flatten(), 0.9).clamp(1, 3)
        torch.testing.assert_close(out[i], x[i].clamp(-s, s) / s)
    assert float(out.abs().max()) <= 1.0 + 1e-6
    # small values are untouched (s clamps to 1)
    small = 0.5 * torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(schedules.dynamic_threshold(small, 0.995, 2.0), small)
    half = schedules.dynamic_threshold(x.half(), 0.9, 3.0)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), out, atol=2e-3, rtol=0)


# --------------------------------------------------------------------------------------------------
# scheduling.py boundary helpers
# --------------------------------------------------------------------------------------------------


def test_timestep_to_int_and_output_tuple():
    from diffusers_hub.scheduling import SchedulerOutput, timestep_to_int

    for value in (5, np.int64(5), np.array(5), np.array([5]), torch.tensor(5), torch.tensor([5])):
        assert timestep_to_int(value) == 5
    for bad in (np.array([1, 2]), torch.tensor([1, 2]), 2.5):
        with pytest.raises(ValueError):
            timestep_to_int(bad)
    out = SchedulerOutput(prev_sample="a", pred_original_sample="b")
    assert tuple(out) == ("a", "b") and out[1] == "b" and out["prev_sample"] == "a"
    assert out[:1] == ("a",) and len(out) == 2
    only = SchedulerOutput(prev_sample="a")
    (prev,) = only
    assert prev == "a" and len(only) == 1


def test_scheduler_config_legacy_keys_and_errors():
    from diffusers_hub.errors import ConfigError
    from diffusers_hub.scheduling import SchedulerConfig

    config = SchedulerConfig.from_dict(
        {
            "timesteps": 50,
            "clip_predicted_image": False,
            "tensor_format": "np",
            "timestep_values": None,
            "trained_betas": np.linspace(0.1, 0.2, 50),
        }
    )
    assert config.num_train_timesteps == 50 and config.clip_sample is False
    assert isinstance(config.trained_betas, list) and len(config.trained_betas) == 50
    with pytest.raises(ConfigError, match="timestep_spacing"):
        SchedulerConfig.from_dict({"timestep_spacing": "karras"}, source="scheduler_config.json")
    with pytest.raises(ConfigError, match="num_train_timesteps"):
        SchedulerConfig.from_dict({"num_train_timesteps": 0})
