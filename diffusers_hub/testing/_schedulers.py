"""The scheduler contract (``SchedulerContract``) and the helpers of scheduler tests: fixed fake
model outputs, the ordinary sampling loop and side-by-side parity runs. Import them from
:mod:`diffusers_hub.testing`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from diffusers_hub.scheduling import ArrayLike, SchedulerMixin, SchedulerOutput


def fixed_model_outputs(
    count: int, shape: tuple[int, ...], *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> list[torch.Tensor]:
    """``count`` fake model outputs of ``shape``, one per schedule index, fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype) for _ in range(count)]


def run_schedule(
    scheduler: Any,
    sample: Any,
    outputs: list[Any],
    start: int = 0,
    stop: int | None = None,
) -> Any:
    """The ordinary loop over ``scheduler.timesteps[start:stop]`` with ``outputs[i]`` at index i.

    Works for diffusers schedulers as well, which makes it the harness of parity tests.
    """
    timesteps = scheduler.timesteps.tolist()
    for i in range(start, len(timesteps) if stop is None else stop):
        sample = scheduler.step(outputs[i], timesteps[i], sample).prev_sample
    return sample


def twin_schedulers(
    scheduler_class: type[SchedulerMixin],
    reference_class: Any,
    config: dict[str, Any],
    *,
    share_tables: bool = True,
) -> tuple[Any, Any]:
    """(reference, ours) built from the same ``config``, for parity tests.

    With ``share_tables`` the reference gets our ``alphas_cumprod`` (the format's float32 values
    as a float64 tensor), so that it evaluates its coefficients in float64 too and the comparison
    isolates the method from float32 rounding.
    """
    ours, reference = scheduler_class(**config), reference_class(**config)
    if share_tables:
        reference.alphas_cumprod = ours.alphas_cumprod.clone()
    return reference, ours


def compare_schedules(
    scheduler: Any, reference: Any, outputs: list[Any], sample: Any
) -> list[float]:
    """Step two schedulers (ours and a reference, e.g. diffusers') side by side.

    Both run the ordinary loop over ``scheduler.timesteps`` with ``outputs[i]`` at step i from
    the same ``sample``.

    Returns:
        per step, ``max |x - x_ref| / max(1, max |x_ref|)``: the difference relative to the
        size of the reference sample (fake model outputs make samples grow).
    """
    x = x_ref = sample
    errors = []
    for i, t in enumerate(scheduler.timesteps):
        x = scheduler.step(outputs[i], t, x).prev_sample
        x_ref = reference.step(outputs[i], t, x_ref).prev_sample
        errors.append(float((x - x_ref).abs().max()) / max(1.0, float(x_ref.abs().max())))
    return errors


def assert_schedule_parity(
    scheduler_class: type[SchedulerMixin],
    reference_class: Any,
    config: dict[str, Any],
    steps: int,
    *,
    shape: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    tol: float = 1e-5,
    share_tables: bool = True,
    prepare: Callable[[Any, Any], None] | None = None,
) -> float:
    """Assert that ours and a reference sample alike from the same ``config`` in ``steps`` steps.

    The pair comes from :func:`twin_schedulers`; after ``set_timesteps(steps)`` both must pick the
    same timesteps, ``prepare(reference, ours)`` (when given) may share further tables, and
    :func:`compare_schedules` steps both with fixed outputs (seed 1) from a fixed sample (seed 2)
    in ``dtype``: every step's relative difference must be at most ``tol``.

    Returns:
        The largest relative difference.
    """
    reference, ours = twin_schedulers(
        scheduler_class, reference_class, config, share_tables=share_tables
    )
    reference.set_timesteps(steps)
    ours.set_timesteps(steps)
    assert ours.timesteps.tolist() == reference.timesteps.tolist(), (config, steps)
    if prepare is not None:
        prepare(reference, ours)
    outputs = fixed_model_outputs(len(ours.timesteps), shape, seed=1, dtype=dtype)
    sample = fixed_model_outputs(1, shape, seed=2, dtype=dtype)[0]
    errors = compare_schedules(ours, reference, outputs, sample)
    assert max(errors) <= tol, (config, steps, errors)
    return max(errors)


class SchedulerContract:
    """What every scheduler must do; subclass it in a ``Test*`` class.

    Attributes:
        scheduler_class: the scheduler under test.
        scheduler_config: config fields for the scheduler (keep ``num_train_timesteps`` small).
        num_inference_steps: steps used by the sampling tests.
        step_kwargs: extra keyword arguments for ``step`` (e.g. ``{"eta": 1.0}`` to draw noise).
        sample_shape: shape of the test samples.
        continuous_timesteps: the scheduler's timesteps are floats (a continuous training step or
            noise level, as BDDM's), not integers.
    """

    scheduler_class: ClassVar[type[SchedulerMixin]]
    scheduler_config: ClassVar[dict[str, Any]] = {}
    num_inference_steps: ClassVar[int] = 10
    step_kwargs: ClassVar[dict[str, Any]] = {}
    sample_shape: ClassVar[tuple[int, ...]] = (2, 3, 4, 4)
    continuous_timesteps: ClassVar[bool] = False

    # ------------------------------------------------------------------ helpers

    def make_scheduler(self, **overrides: Any) -> SchedulerMixin:
        """A fresh scheduler from ``scheduler_config`` with ``overrides`` applied."""
        return self.scheduler_class(**{**self.scheduler_config, **overrides})

    def make_inputs(self, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(model_output, sample) of ``sample_shape``, fixed by ``seed``."""
        g = torch.Generator().manual_seed(seed)
        sample = torch.randn(self.sample_shape, generator=g)
        model_output = torch.randn(self.sample_shape, generator=g)
        return model_output, sample

    def _step(
        self,
        scheduler: SchedulerMixin,
        model_output: ArrayLike,
        timestep: int | torch.Tensor,
        sample: ArrayLike,
        seed: int = 0,
        **kwargs: Any,
    ) -> SchedulerOutput | tuple[ArrayLike, ...]:
        """``scheduler.step`` with ``step_kwargs`` and a generator seeded with ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        return scheduler.step(
            model_output, timestep, sample, generator=generator, **self.step_kwargs, **kwargs
        )

    def run_loop(
        self,
        scheduler: SchedulerMixin,
        seed: int,
        *,
        start: int = 0,
        sample: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Step over the schedule from index ``start`` with fake model outputs fixed per index.

        Step ``i`` uses a generator seeded with ``seed + i``, so a run started mid-schedule from
        the same sample must reproduce the tail of a full run exactly.

        Returns:
            the sample after each step.
        """
        if sample is None:
            sample = self.make_inputs(1000)[1]
        samples = []
        timesteps = scheduler.timesteps.tolist()
        for i in range(start, len(timesteps)):
            model_output, _ = self.make_inputs(i)
            out = self._step(scheduler, model_output, timesteps[i], sample, seed=seed + i)
            assert isinstance(out, SchedulerOutput)
            sample = out.prev_sample
            samples.append(sample)
        return samples

    # ------------------------------------------------------------------ config

    def test_config_round_trip(self, tmp_path: Path) -> None:
        scheduler = self.make_scheduler()
        scheduler.save_pretrained(tmp_path)
        saved = json.loads((tmp_path / self.scheduler_class.config_name).read_text())
        assert saved["_class_name"] == self.scheduler_class.__name__
        loaded = self.scheduler_class.from_pretrained(tmp_path)
        assert type(loaded) is self.scheduler_class
        assert loaded.config.to_dict() == scheduler.config.to_dict()
        assert torch.equal(loaded.alphas_cumprod, scheduler.alphas_cumprod)

    def test_from_config_swap(self) -> None:
        scheduler = self.make_scheduler()
        again = self.scheduler_class.from_config(scheduler.config)
        assert again.config.to_dict() == scheduler.config.to_dict()
        again = self.scheduler_class.from_config(scheduler.config.to_dict())
        assert again.config.to_dict() == scheduler.config.to_dict()
        for other_class in scheduler.compatible_classes():
            other = other_class.from_config(scheduler.config)
            back = self.scheduler_class.from_config(other.config)
            shared = set(other.config.to_dict()) & set(scheduler.config.to_dict())
            for key in shared:
                assert getattr(back.config, key) == getattr(scheduler.config, key), key

    def test_len_is_num_train_timesteps(self) -> None:
        scheduler = self.make_scheduler()
        assert len(scheduler) == scheduler.config.num_train_timesteps
        assert scheduler.alphas_cumprod.shape == (len(scheduler),)

    # ------------------------------------------------------------------ timesteps

    def test_set_timesteps(self) -> None:
        scheduler = self.make_scheduler()
        total = scheduler.config.num_train_timesteps
        for n in sorted({1, 2, self.num_inference_steps, total}):
            scheduler.set_timesteps(n)
            ts = scheduler.timesteps
            assert ts.ndim == 1 and ts.shape[0] == n
            assert ts.is_floating_point() == self.continuous_timesteps
            assert float(ts.min()) >= 0 and float(ts.max()) <= total - 1
            diffs = ts[1:] - ts[:-1]
            if scheduler.timesteps_descending:
                assert bool((diffs < 0).all())
            else:
                assert bool((diffs > 0).all())

    def test_set_timesteps_rejects_bad_arguments(self) -> None:
        scheduler = self.make_scheduler()
        total = scheduler.config.num_train_timesteps
        for bad in (0, total + 1):
            try:
                scheduler.set_timesteps(bad)
            except ValueError:
                continue
            raise AssertionError(f"set_timesteps({bad}) did not raise")

    # ------------------------------------------------------------------ step

    def test_step_shape_dtype_type(self) -> None:
        scheduler = self.make_scheduler_with_steps()
        model_output, sample = self.make_inputs()
        t = scheduler.timesteps[0]
        for dtype in (torch.float32, torch.float64):
            out = self._step(scheduler, model_output.to(dtype), t, sample.to(dtype))
            assert isinstance(out, SchedulerOutput)
            assert isinstance(out.prev_sample, torch.Tensor)
            assert out.prev_sample.shape == sample.shape
            assert out.prev_sample.dtype == dtype
            assert bool(torch.isfinite(out.prev_sample).all())
            prev, *_ = out
            assert prev is out.prev_sample and out[0] is out.prev_sample
        tup = self._step(scheduler, model_output, t, sample, return_dict=False)
        assert isinstance(tup, tuple) and tup[0].shape == sample.shape

    def test_step_numpy(self) -> None:
        scheduler = self.make_scheduler_with_steps()
        model_output, sample = self.make_inputs()
        t = int(scheduler.timesteps[1])
        for dtype in (np.float32, np.float64):
            out = self._step(
                scheduler, model_output.numpy().astype(dtype), t, sample.numpy().astype(dtype)
            )
            assert isinstance(out, SchedulerOutput)
            assert isinstance(out.prev_sample, np.ndarray)
            assert out.prev_sample.dtype == dtype
            assert out.prev_sample.shape == sample.shape
        reference = self._step(scheduler, model_output, t, sample)
        assert isinstance(reference, SchedulerOutput)
        as_numpy = self._step(scheduler, model_output.numpy(), t, sample.numpy())
        assert isinstance(as_numpy, SchedulerOutput)
        np.testing.assert_allclose(
            as_numpy.prev_sample, reference.prev_sample.numpy(), rtol=0, atol=1e-6
        )

    def test_determinism_with_seeded_generator(self) -> None:
        a = self.run_loop(self.make_scheduler_with_steps(), seed=3)
        b = self.run_loop(self.make_scheduler_with_steps(), seed=3)
        assert len(a) == self.num_inference_steps
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)

    def test_step_independent_of_call_history(self) -> None:
        scheduler = self.make_scheduler_with_steps()
        model_output, sample = self.make_inputs()
        t = int(scheduler.timesteps[len(scheduler.timesteps) // 2])
        first = self._step(scheduler, model_output, t, sample, seed=5)
        # other calls in between, at other timesteps, must not matter
        for other in scheduler.timesteps[:3].tolist():
            self._step(scheduler, model_output, other, sample, seed=1)
        second = self._step(scheduler, model_output, t, sample, seed=5)
        assert isinstance(first, SchedulerOutput) and isinstance(second, SchedulerOutput)
        assert torch.equal(first.prev_sample, second.prev_sample)

    def test_mid_schedule_start_matches_full_run(self) -> None:
        full = self.run_loop(self.make_scheduler_with_steps(), seed=0)
        start = len(full) // 2
        tail = self.run_loop(
            self.make_scheduler_with_steps(), seed=0, start=start, sample=full[start - 1]
        )
        assert len(tail) == len(full) - start
        for x, y in zip(tail, full[start:], strict=True):
            assert torch.equal(x, y)

    def make_scheduler_with_steps(self) -> SchedulerMixin:
        """A scheduler with ``set_timesteps(num_inference_steps)`` applied."""
        scheduler = self.make_scheduler()
        scheduler.set_timesteps(self.num_inference_steps)
        return scheduler

    # ------------------------------------------------------------------ training

    def test_add_noise_at_zero_is_near_identity(self) -> None:
        scheduler = self.make_scheduler()
        noise, x0 = self.make_inputs()
        noisy = scheduler.add_noise(x0, noise, torch.zeros(x0.shape[0], dtype=torch.long))
        assert isinstance(noisy, torch.Tensor)
        beta0 = float(scheduler.betas[0])
        assert float((noisy - x0).abs().max()) <= 4 * (beta0**0.5) * float(noise.abs().max())
        last = torch.full((x0.shape[0],), len(scheduler) - 1, dtype=torch.long)
        noisy_end = scheduler.add_noise(x0, noise, last)
        assert isinstance(noisy_end, torch.Tensor)
        assert float((noisy_end - x0).abs().mean()) > float((noisy - x0).abs().mean())
        as_numpy = scheduler.add_noise(x0.numpy(), noise.numpy(), np.zeros(x0.shape[0], np.int64))
        assert isinstance(as_numpy, np.ndarray)
        np.testing.assert_allclose(as_numpy, noisy.numpy(), rtol=0, atol=1e-6)

    def test_training_target_shape(self) -> None:
        noise, x0 = self.make_inputs()
        t = torch.arange(x0.shape[0]) * (self.make_scheduler().config.num_train_timesteps // 4)
        for kind in ("epsilon", "sample", "v_prediction"):
            scheduler = self.make_scheduler(prediction_type=kind)
            target = scheduler.training_target(x0, noise, t)
            assert isinstance(target, torch.Tensor)
            assert target.shape == x0.shape and target.dtype == x0.dtype
