"""The conformance contracts of schedulers with a multistep history (``StatefulSchedulerContract``,
``MultistepSchedulerContract``); import them from :mod:`diffusers_hub.testing`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from diffusers_hub.scheduling import SchedulerOutput
from diffusers_hub.testing._schedulers import SchedulerContract, fixed_model_outputs, run_schedule


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

    def _scheduler_and_outputs(self) -> tuple[Any, list[torch.Tensor]]:
        """A scheduler from :meth:`make_scheduler_with_steps` and a fake output for each step."""
        scheduler = self.make_scheduler_with_steps()
        return scheduler, self.fixed_outputs(len(scheduler.timesteps))

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
        scheduler, outputs = self._scheduler_and_outputs()
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
        scheduler, outputs = self._scheduler_and_outputs()
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

        scheduler, outputs = self._scheduler_and_outputs()
        ts = scheduler.timesteps.tolist()
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

        scheduler, outputs = self._scheduler_and_outputs()
        x = self.fixed_outputs(1)[0]
        if not scheduler.restart_anywhere:
            with pytest.raises(ValueError, match="expects timestep"):
                scheduler.step(outputs[4], scheduler.timesteps[4], x)
            return
        x = self.run_steps(scheduler, x, outputs, start=4)
        assert scheduler.state.step_index == len(outputs) and bool(torch.isfinite(x).all())

    def test_set_state_rejects_foreign_state(self) -> None:
        import dataclasses

        import pytest

        scheduler, outputs = self._scheduler_and_outputs()
        x = self.fixed_outputs(1)[0]
        self.run_steps(scheduler, x, outputs, stop=4)
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
        scheduler, outputs = self._scheduler_and_outputs()
        self.run_steps(scheduler, self.fixed_outputs(1)[0], outputs, stop=2)
        copy = scheduler.get_state()
        copy.model_outputs[0].add_(1.0)
        assert not torch.equal(copy.model_outputs[0], scheduler.state.model_outputs[0])
