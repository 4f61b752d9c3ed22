"""Conformance kits: base test classes that plugins subclass, plus a fake model for users' tests.

A plugin's test module subclasses a contract and names its component::

    from diffusers_hub.testing import SchedulerContract
    from my_plugin.scheduler import MyScheduler

    class TestMyScheduler(SchedulerContract):
        scheduler_class = MyScheduler
        scheduler_config = {"num_train_timesteps": 100}

pytest collects the subclass (its name starts with ``Test``) and runs every contract test on it;
the contract classes themselves are not collected. The tests need pytest's ``tmp_path`` fixture and
nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from diffusers_hub.config import ComponentConfig
from diffusers_hub.modeling import ModelMixin
from diffusers_hub.pipeline import DiffusionPipeline
from diffusers_hub.scheduling import SchedulerMixin, SchedulerOutput

__all__ = [
    "GaussianOracle",
    "GaussianOracleConfig",
    "ModelContract",
    "MultistepSchedulerContract",
    "PipelineContract",
    "SchedulerContract",
    "StatefulSchedulerContract",
    "compare_schedules",
    "fixed_model_outputs",
    "run_schedule",
    "twin_schedulers",
]


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


# --------------------------------------------------------------------------------------------------
# SchedulerContract
# --------------------------------------------------------------------------------------------------


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
            generator = torch.Generator().manual_seed(seed + i)
            out = scheduler.step(
                model_output, timesteps[i], sample, generator=generator, **self.step_kwargs
            )
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
        scheduler = self.make_scheduler()
        scheduler.set_timesteps(self.num_inference_steps)
        model_output, sample = self.make_inputs()
        t = scheduler.timesteps[0]
        for dtype in (torch.float32, torch.float64):
            out = scheduler.step(
                model_output.to(dtype),
                t,
                sample.to(dtype),
                generator=torch.Generator().manual_seed(0),
                **self.step_kwargs,
            )
            assert isinstance(out, SchedulerOutput)
            assert isinstance(out.prev_sample, torch.Tensor)
            assert out.prev_sample.shape == sample.shape
            assert out.prev_sample.dtype == dtype
            assert bool(torch.isfinite(out.prev_sample).all())
            prev, *_ = out
            assert prev is out.prev_sample and out[0] is out.prev_sample
        tup = scheduler.step(
            model_output,
            t,
            sample,
            generator=torch.Generator().manual_seed(0),
            return_dict=False,
            **self.step_kwargs,
        )
        assert isinstance(tup, tuple) and tup[0].shape == sample.shape

    def test_step_numpy(self) -> None:
        scheduler = self.make_scheduler()
        scheduler.set_timesteps(self.num_inference_steps)
        model_output, sample = self.make_inputs()
        t = int(scheduler.timesteps[1])
        for dtype in (np.float32, np.float64):
            out = scheduler.step(
                model_output.numpy().astype(dtype),
                t,
                sample.numpy().astype(dtype),
                generator=torch.Generator().manual_seed(0),
                **self.step_kwargs,
            )
            assert isinstance(out, SchedulerOutput)
            assert isinstance(out.prev_sample, np.ndarray)
            assert out.prev_sample.dtype == dtype
            assert out.prev_sample.shape == sample.shape
        reference = scheduler.step(
            model_output, t, sample, generator=torch.Generator().manual_seed(0), **self.step_kwargs
        )
        assert isinstance(reference, SchedulerOutput)
        as_numpy = scheduler.step(
            model_output.numpy(),
            t,
            sample.numpy(),
            generator=torch.Generator().manual_seed(0),
            **self.step_kwargs,
        )
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
        first = scheduler.step(
            model_output, t, sample, generator=torch.Generator().manual_seed(5), **self.step_kwargs
        )
        # other calls in between, at other timesteps, must not matter
        for other in scheduler.timesteps[:3].tolist():
            scheduler.step(
                model_output,
                other,
                sample,
                generator=torch.Generator().manual_seed(1),
                **self.step_kwargs,
            )
        second = scheduler.step(
            model_output, t, sample, generator=torch.Generator().manual_seed(5), **self.step_kwargs
        )
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


# --------------------------------------------------------------------------------------------------
# StatefulSchedulerContract
# --------------------------------------------------------------------------------------------------


class StatefulSchedulerContract(SchedulerContract):
    """The contract for schedulers with an explicit multistep history (PNDM, DEIS, DPM-Solver).

    Such a scheduler keeps what ``step`` carries over in a state object, and offers
    ``get_state()`` (a copy), ``set_state(state)`` and ``reset_state()``; ``set_timesteps`` resets
    it. The memoryless checks of :class:`SchedulerContract` become state checks here: the same
    arguments *and the same state* give the same result, and a loop stopped, saved and resumed in
    a fresh scheduler matches an uninterrupted run.
    """

    def fixed_outputs(self, count: int, seed: int = 0) -> list[torch.Tensor]:
        """``count`` fake model outputs of ``sample_shape`` (see :func:`fixed_model_outputs`)."""
        return fixed_model_outputs(count, self.sample_shape, seed=seed)

    def run_steps(
        self,
        scheduler: Any,
        sample: torch.Tensor,
        outputs: list[torch.Tensor],
        start: int = 0,
        stop: int | None = None,
    ) -> torch.Tensor:
        """:func:`run_schedule` (kept as a method for subclasses to override)."""
        out: torch.Tensor = run_schedule(scheduler, sample, outputs, start, stop)
        return out

    def test_state_api(self) -> None:
        scheduler: Any = self.make_scheduler_with_steps()
        for name in ("get_state", "set_state", "reset_state"):
            assert callable(getattr(scheduler, name, None)), f"missing {name}()"

    def test_step_shape_dtype_type(self) -> None:
        scheduler: Any = self.make_scheduler_with_steps()
        model_output, sample = self.make_inputs()
        t = scheduler.timesteps[0]
        for dtype in (torch.float32, torch.float64):
            scheduler.reset_state()
            out = scheduler.step(model_output.to(dtype), t, sample.to(dtype))
            assert isinstance(out, SchedulerOutput)
            assert out.prev_sample.shape == sample.shape and out.prev_sample.dtype == dtype
            assert bool(torch.isfinite(out.prev_sample).all())
        scheduler.reset_state()
        tup = scheduler.step(model_output, t, sample, return_dict=False)
        assert isinstance(tup, tuple) and tup[0].shape == sample.shape

    def test_step_numpy(self) -> None:
        scheduler: Any = self.make_scheduler_with_steps()
        outputs = self.fixed_outputs(3)
        sample = self.make_inputs()[1]
        reference = self.run_steps(scheduler, sample, outputs, stop=3)
        scheduler.reset_state()
        ts = scheduler.timesteps.tolist()
        x: Any = sample.numpy()
        for i in range(3):
            x = scheduler.step(outputs[i].numpy(), ts[i], x).prev_sample
            assert isinstance(x, np.ndarray) and x.dtype == np.float32
        np.testing.assert_allclose(x, reference.numpy(), atol=1e-6)

    def test_step_independent_of_call_history(self) -> None:
        scheduler: Any = self.make_scheduler_with_steps()
        outputs = self.fixed_outputs(len(scheduler.timesteps))
        half = len(scheduler.timesteps) // 2
        x = self.run_steps(scheduler, self.make_inputs()[1], outputs, stop=half)
        saved = scheduler.get_state()
        t = scheduler.timesteps[half]
        first = scheduler.step(outputs[half], t, x).prev_sample
        scheduler.reset_state()
        self.run_steps(scheduler, x, outputs, stop=3)  # unrelated calls in between
        scheduler.set_state(saved)
        assert torch.equal(scheduler.step(outputs[half], t, x).prev_sample, first)

    def test_mid_schedule_start_matches_full_run(self) -> None:
        scheduler: Any = self.make_scheduler_with_steps()
        outputs = self.fixed_outputs(len(scheduler.timesteps))
        sample = self.make_inputs()[1]
        full = self.run_steps(scheduler, sample, outputs)
        for start in sorted({1, len(scheduler.timesteps) // 2}):
            scheduler.set_timesteps(self.num_inference_steps)
            head = self.run_steps(scheduler, sample, outputs, stop=start)
            resumed: Any = self.make_scheduler_with_steps()
            resumed.set_state(scheduler.get_state())
            assert torch.equal(self.run_steps(resumed, head, outputs, start=start), full)


class MultistepSchedulerContract(StatefulSchedulerContract):
    """Extra checks for schedulers built on :class:`diffusers_hub.multistep.MultistepSchedulerMixin`.

    Set ``scheduler_config`` so that the scheduler keeps a history (a ``solver_order`` of 2 or
    more); the tests read it through ``scheduler.state`` and ``scheduler.recorded_timesteps``.

    Attributes:
        resume_points: the step indices at which a 12-step run is stopped, saved and resumed.
    """

    resume_points: ClassVar[tuple[int, ...]] = (5,)

    def test_stop_save_resume_restart(self, tmp_path: Path) -> None:
        scheduler: Any = self.make_scheduler()
        scheduler.set_timesteps(12)
        outputs = self.fixed_outputs(len(scheduler.timesteps))
        sample = self.fixed_outputs(1, seed=9)[0]
        full = self.run_steps(scheduler, sample, outputs)
        assert scheduler.state.step_index == len(scheduler.timesteps)
        for stop in self.resume_points:
            scheduler.set_timesteps(12)  # restart: the history is reset
            assert scheduler.state == scheduler.state_class()
            head = self.run_steps(scheduler, sample, outputs, stop=stop)
            state = scheduler.state
            assert state.step_index == stop and len(state.model_outputs) == len(state.timesteps)
            assert list(state.timesteps) == scheduler.recorded_timesteps(stop)
            path = tmp_path / f"ckpt{stop}.pt"
            torch.save({"state": scheduler.get_state().to_dict(), "x": head}, path)
            loaded = torch.load(path, weights_only=True)
            fresh: Any = self.make_scheduler()
            fresh.set_timesteps(12)
            fresh.set_state(loaded["state"])
            assert torch.equal(self.run_steps(fresh, loaded["x"], outputs, start=stop), full)
            assert torch.equal(self.run_steps(scheduler, head, outputs, start=stop), full)

    def test_out_of_order_step_raises_clear_error(self) -> None:
        import pytest

        scheduler: Any = self.make_scheduler_with_steps()
        ts = scheduler.timesteps.tolist()
        outputs = self.fixed_outputs(len(ts))
        x = self.run_steps(scheduler, self.fixed_outputs(1)[0], outputs, stop=3)
        with pytest.raises(ValueError, match=rf"expects timestep {ts[3]} \(step 3"):
            scheduler.step(outputs[5], ts[5], x)
        with pytest.raises(ValueError, match="expects timestep"):
            scheduler.step(outputs[2], ts[2], x)  # repeating a step needs set_state()
        assert scheduler.state.step_index == 3  # failures leave the history untouched
        x = self.run_steps(scheduler, x, outputs, start=3)
        with pytest.raises(ValueError, match="finished"):
            scheduler.step(outputs[-1], ts[-1], x)
        scheduler.reset_state()
        missing = next(t for t in range(scheduler.config.num_train_timesteps) if t not in ts)
        with pytest.raises(ValueError, match="not in the schedule"):
            scheduler.step(outputs[0], missing, x)

    def test_fresh_start_mid_schedule(self) -> None:
        """Allowed with ``restart_anywhere`` (image-to-image), a clear error otherwise."""
        import pytest

        scheduler: Any = self.make_scheduler_with_steps()
        outputs, x = self.fixed_outputs(len(scheduler.timesteps)), self.fixed_outputs(1)[0]
        if not scheduler.restart_anywhere:
            with pytest.raises(ValueError, match="expects timestep"):
                scheduler.step(outputs[4], scheduler.timesteps[4], x)
            return
        x = self.run_steps(scheduler, x, outputs, start=4)
        assert scheduler.state.step_index == len(outputs) and bool(torch.isfinite(x).all())

    def test_set_state_rejects_foreign_state(self) -> None:
        import dataclasses

        import pytest

        scheduler: Any = self.make_scheduler_with_steps()
        x = self.fixed_outputs(1)[0]
        self.run_steps(scheduler, x, self.fixed_outputs(len(scheduler.timesteps)), stop=4)
        saved = scheduler.get_state()
        other: Any = self.make_scheduler()
        other.set_timesteps(2 * self.num_inference_steps)
        with pytest.raises(ValueError, match="another set_timesteps"):
            other.set_state(saved)
        keep = scheduler.history_size
        too_long = dataclasses.replace(
            saved, timesteps=(0,) * (keep + 1), model_outputs=(x,) * (keep + 1)
        )
        with pytest.raises(ValueError, match=f"at most {keep}"):
            scheduler.set_state(too_long)

    def test_get_state_is_a_copy(self) -> None:
        scheduler: Any = self.make_scheduler_with_steps()
        outputs = self.fixed_outputs(len(scheduler.timesteps))
        self.run_steps(scheduler, self.fixed_outputs(1)[0], outputs, stop=2)
        copy = scheduler.get_state()
        copy.model_outputs[0].add_(1.0)
        assert not torch.equal(copy.model_outputs[0], scheduler.state.model_outputs[0])


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


# --------------------------------------------------------------------------------------------------
# ModelContract
# --------------------------------------------------------------------------------------------------


class ModelContract:
    """What every model must do; subclass it in a ``Test*`` class.

    Attributes:
        model_class: the model under test (a ``ModelMixin`` subclass).
        model_config: config fields of a small instance.
        atol: tolerance of the round-trip and dtype comparisons.

    Subclasses implement :meth:`make_inputs`, returning the positional arguments of ``forward``.
    """

    model_class: ClassVar[type[ModelMixin]]
    model_config: ClassVar[dict[str, Any]] = {}
    atol: ClassVar[float] = 1e-6

    def make_model(self, seed: int = 0) -> ModelMixin:
        """A model with seeded random weights, in eval mode."""
        torch.manual_seed(seed)
        return self.model_class(**self.model_config).eval()

    def make_inputs(self, batch_size: int = 2) -> tuple[Any, ...]:
        """The positional ``forward`` arguments for a batch (override in the subclass)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_inputs()")

    def output_tensor(self, output: Any) -> torch.Tensor:
        """The main tensor of a ``forward`` result (``.sample``, first item, or the tensor)."""
        if isinstance(output, torch.Tensor):
            return output
        for attr in ("sample", "last_hidden_state"):
            if hasattr(output, attr):
                return getattr(output, attr)  # type: ignore[no-any-return]
        return output[0]  # type: ignore[no-any-return]

    def run(self, model: ModelMixin, inputs: tuple[Any, ...]) -> torch.Tensor:
        with torch.no_grad():
            return self.output_tensor(model(*inputs))

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        model = self.make_model()
        inputs = self.make_inputs()
        model.save_pretrained(tmp_path / "model")
        config = json.loads((tmp_path / "model" / model.config_name).read_text())
        assert config["_class_name"] == type(model).__name__
        loaded = type(model).from_pretrained(tmp_path / "model")
        assert loaded.config == model.config
        torch.testing.assert_close(
            self.run(loaded, inputs), self.run(model, inputs), atol=self.atol, rtol=0
        )

    def test_deterministic(self) -> None:
        inputs = self.make_inputs()
        a = self.run(self.make_model(seed=1), inputs)
        b = self.run(self.make_model(seed=1), inputs)
        assert torch.equal(a, b)

    def test_output_is_finite_and_batched(self) -> None:
        out = self.run(self.make_model(), self.make_inputs(batch_size=2))
        assert out.shape[0] == 2
        assert torch.isfinite(out).all()

    def test_batch_items_are_independent(self) -> None:
        model = self.make_model()
        both = self.run(model, self.make_inputs(batch_size=2))
        first = self.run(
            model,
            tuple(
                x[:1] if isinstance(x, torch.Tensor) and x.ndim > 0 and x.shape[0] == 2 else x
                for x in self.make_inputs(batch_size=2)
            ),
        )
        torch.testing.assert_close(first[0], both[0], atol=1e-5, rtol=1e-4)

    def test_dtype_move(self) -> None:
        model = self.make_model().to(torch.float64)
        assert model.dtype == torch.float64
        assert all(p.dtype == torch.float64 for p in model.parameters())
        inputs = tuple(
            x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
            for x in self.make_inputs()
        )
        out = self.run(model, inputs)
        assert out.dtype == torch.float64

    def test_config_rejects_unknown_fields(self) -> None:
        import pytest

        with pytest.raises(TypeError):
            self.model_class(**self.model_config, not_a_config_field=1)


# --------------------------------------------------------------------------------------------------
# PipelineContract
# --------------------------------------------------------------------------------------------------


class PipelineContract:
    """What every pipeline must do; subclass it in a ``Test*`` class.

    Subclasses implement :meth:`make_pipeline` (small random components) and may set
    ``call_kwargs`` (arguments of a short, cheap ``__call__``).
    """

    call_kwargs: ClassVar[dict[str, Any]] = {"num_inference_steps": 2}

    def make_pipeline(self) -> DiffusionPipeline:
        """A pipeline with small random components (override in the subclass)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_pipeline()")

    def generate(self, pipe: DiffusionPipeline, seed: int = 0, **kwargs: Any) -> Any:
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(seed)
        call: Any = pipe  # every concrete pipeline defines __call__
        return call(generator=generator, **{**self.call_kwargs, "output_type": "np", **kwargs})

    def test_seeded_runs_repeat(self) -> None:
        pipe = self.make_pipeline()
        a = self.generate(pipe)
        b = self.generate(pipe)
        np.testing.assert_array_equal(_first_output(a), _first_output(b))

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        pipe = self.make_pipeline()
        pipe.save_pretrained(tmp_path / "pipe")
        index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
        assert index["_class_name"] == type(pipe).__name__
        loaded = DiffusionPipeline.from_pretrained(tmp_path / "pipe")
        assert type(loaded) is type(pipe)
        np.testing.assert_allclose(
            _first_output(self.generate(loaded)), _first_output(self.generate(pipe)), atol=1e-5
        )

    def test_output_types(self) -> None:
        pipe = self.make_pipeline()
        as_np = _first_output(self.generate(pipe, output_type="np"))
        as_pt = _first_output(self.generate(pipe, output_type="pt"))
        assert isinstance(as_np, np.ndarray) and isinstance(as_pt, torch.Tensor)
        assert as_np.min() >= 0 and as_np.max() <= 1

    def test_callback_sees_every_step(self) -> None:
        pipe = self.make_pipeline()
        seen: list[int] = []
        self.generate(pipe, callback=lambda i, t, x: seen.append(i), callback_steps=1)
        assert seen == list(range(len(seen))) and len(seen) >= 1

    def test_components_rebuild_the_pipeline(self) -> None:
        pipe = self.make_pipeline()
        again = type(pipe)(**pipe.components)
        np.testing.assert_array_equal(
            _first_output(self.generate(again)), _first_output(self.generate(pipe))
        )


# --------------------------------------------------------------------------------------------------
# Fakes
# --------------------------------------------------------------------------------------------------


class GaussianOracleConfig(ComponentConfig):
    """Config of :class:`GaussianOracle`: the data distribution and the noise schedule it knows."""

    sample_size: int = 8
    in_channels: int = 3
    data_std: float = 0.5
    num_train_timesteps: int = 1000
    beta_start: float = 0.0001
    beta_end: float = 0.02
    beta_schedule: str = "linear"


@dataclass
class OracleOutput:
    """What :class:`GaussianOracle` returns (``.sample``, like a UNet)."""

    sample: torch.Tensor


class GaussianOracle(ModelMixin):
    """The exact noise predictor for data x_0 ~ N(0, data_std^2 I): a fake UNet for tests.

    For Gaussian data the posterior mean of the noise is linear in x_t:
    E[eps | x_t] = sqrt(1 - ab_t) x_t / (ab_t s^2 + 1 - ab_t), with s = ``data_std`` and ab_t the
    cumulative alpha of the configured schedule. A correct sampler driven by this "model" must
    therefore produce samples whose standard deviation is close to ``data_std``: an end-to-end
    check of a scheduler that needs no trained weights. It has no parameters and saves and loads
    like any model, so pipelines accept it as their ``unet``.

    Example:
        >>> oracle = GaussianOracle(data_std=0.5, in_channels=1)
        >>> oracle(torch.zeros(2, 1, 8, 8), 999).sample.shape
        torch.Size([2, 1, 8, 8])
    """

    config_class = GaussianOracleConfig
    config: GaussianOracleConfig

    def __init__(self, config: GaussianOracleConfig | None = None, **fields: Any) -> None:
        super().__init__(config, **fields)
        from diffusers_hub.schedules import alphas_cumprod, betas_for_schedule

        c = self.config
        betas = betas_for_schedule(c.beta_schedule, c.num_train_timesteps, c.beta_start, c.beta_end)
        self._alpha_bar = torch.from_numpy(alphas_cumprod(betas))

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def forward(self, sample: torch.Tensor, timestep: Any) -> OracleOutput:
        t = torch.as_tensor(timestep).long().reshape(-1).cpu()
        ab = (
            self._alpha_bar[t]
            .to(sample.device, torch.float64)
            .reshape(-1, *[1] * (sample.ndim - 1))
        )
        s2 = self.config.data_std**2
        eps = (1 - ab).sqrt() * sample.double() / (ab * s2 + 1 - ab)
        return OracleOutput(sample=eps.to(sample.dtype))


def _first_output(output: Any) -> Any:
    for attr in ("images", "audios"):
        if hasattr(output, attr):
            return getattr(output, attr)
    return output[0]
