"""Explicit history for multistep solvers (DEIS, DPM-Solver, and third-party ones).

A multistep method combines the model outputs of the last few steps. Instead of a hidden counter,
the history is an immutable :class:`MultistepState` that ``step`` replaces and that a user can
read, save and restore: a loop can be stopped, its state saved with ``torch.save(state.to_dict())``
and resumed in a fresh scheduler with ``set_state``. ``step`` derives the step index from the
timestep it is given and checks it against the history, so out-of-order calls fail loudly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from diffusers_hub.schedules import spaced_timesteps
from diffusers_hub.scheduling import SchedulerMixin

__all__ = ["MultistepSchedulerMixin", "MultistepState"]


@dataclass(frozen=True)
class MultistepState:
    """What a multistep ``step`` carries over to the next call.

    Attributes:
        step_index: how many steps of the current schedule have been taken, i.e. the index in
            ``scheduler.timesteps`` of the timestep the next ``step`` call must receive.
        timesteps: the timesteps of the stored outputs, oldest first.
        model_outputs: the stored (converted) model outputs at those timesteps, oldest first.
    """

    step_index: int = 0
    timesteps: tuple[int, ...] = ()
    model_outputs: tuple[torch.Tensor, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain containers of ints and tensors, for ``torch.save`` (loads with ``weights_only``)."""
        return {
            "step_index": self.step_index,
            "timesteps": list(self.timesteps),
            "model_outputs": [m.detach().clone() for m in self.model_outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultistepState:
        """Rebuild a state from :meth:`to_dict`'s output."""
        return cls(
            step_index=int(data["step_index"]),
            timesteps=tuple(int(t) for t in data["timesteps"]),
            model_outputs=tuple(data["model_outputs"]),
        )


class MultistepSchedulerMixin(SchedulerMixin):
    """Base of schedulers whose ``step`` keeps the last ``history_size`` model outputs.

    Subclasses call :meth:`reset_state` in ``set_timesteps``, get the step index and the usable
    history from :meth:`history_for`, and store the new output with :meth:`record`.
    """

    _state: MultistepState = MultistepState()

    @property
    def history_size(self) -> int:
        """How many past outputs the method keeps (``solver_order - 1`` by default)."""
        return max(int(getattr(self.config, "solver_order", 1)) - 1, 0)

    def _spaced(self, n: int) -> npt.NDArray[np.int64]:
        """The n timesteps of the configured spacing, the multistep solvers' convention.

        ``linspace`` and ``leading`` take an (n + 1)-point grid and drop its clean end, as the
        diffusers multistep schedulers do. With n = T that grid cannot be strictly descending
        (diffusers repeats timesteps there); every training timestep is used instead.
        """
        c = self.config
        total = c.num_train_timesteps
        if not 1 <= n <= total:
            raise ValueError(
                f"num_inference_steps must be between 1 and num_train_timesteps={total}, got {n}"
            )
        if n == total:
            return np.arange(total - 1, -1, -1, dtype=np.int64)
        if c.timestep_spacing == "trailing":
            return spaced_timesteps(total, n, "trailing")
        return spaced_timesteps(total, n + 1, c.timestep_spacing, c.steps_offset)[:-1]

    @property
    def state(self) -> MultistepState:
        """The current history (immutable; ``step`` replaces it)."""
        return self._state

    def get_state(self) -> MultistepState:
        """A copy of the current history whose tensors later steps never touch."""
        return MultistepState.from_dict(self._state.to_dict())

    def set_state(self, state: MultistepState | Mapping[str, Any]) -> None:
        """Restore a history saved with :meth:`get_state` (or its ``to_dict()``).

        Raises:
            ValueError: the state does not belong to the current schedule (wrong step index or
                timesteps) or holds more outputs than ``history_size``.
        """
        if not isinstance(state, MultistepState):
            state = MultistepState.from_dict(state)
        self._check_state(state)
        self._state = MultistepState.from_dict(state.to_dict())

    def reset_state(self) -> None:
        """Forget the history (``set_timesteps`` does this too)."""
        self._state = MultistepState()

    def _check_state(self, state: MultistepState) -> None:
        if self.num_inference_steps is None:
            raise ValueError("call set_timesteps() before set_state()")
        n, k = len(self._timestep_list), len(state.model_outputs)
        if len(state.timesteps) != k:
            raise ValueError(
                f"state holds {k} model outputs but {len(state.timesteps)} timesteps; they must agree"
            )
        if k > self.history_size:
            raise ValueError(
                f"state holds {k} model outputs; this scheduler keeps at most {self.history_size}"
            )
        if not 0 <= state.step_index <= n:
            raise ValueError(f"state step_index {state.step_index} is outside [0, {n}]")
        expected = self._timestep_list[state.step_index - k : state.step_index]
        if k and list(state.timesteps) != expected:
            raise ValueError(
                f"state history timesteps {list(state.timesteps)} are not the schedule's timesteps "
                f"before step {state.step_index} ({expected}); was it saved with another "
                "set_timesteps() call?"
            )

    def history_for(self, timestep: int) -> tuple[int, tuple[torch.Tensor, ...]]:
        """The schedule index of ``timestep`` and the stored outputs that may be used with it.

        Continuing the history requires the timestep the history expects; with an empty history
        any timestep of the schedule is a valid (re)start, which keeps mid-schedule starts
        (image-to-image) working.

        Raises:
            ValueError: ``timestep`` is not in the schedule, or not the one the history expects.
        """
        schedule = self._timestep_list
        n = len(schedule)
        state = self._state
        if state.step_index < n and schedule[state.step_index] == timestep:
            return state.step_index, state.model_outputs
        if not state.model_outputs:
            if timestep not in self._position:
                raise ValueError(
                    f"timestep {timestep} is not in the schedule {schedule}; call "
                    "set_timesteps() and step through scheduler.timesteps"
                )
            return self._position[timestep], ()
        expected = schedule[state.step_index] if state.step_index < n else "none (finished)"
        raise ValueError(
            f"step() got timestep {timestep} but the multistep history (outputs at timesteps "
            f"{list(state.timesteps)}) expects timestep {expected} (step {state.step_index} of "
            f"{n}). Step through scheduler.timesteps in order, restore a saved state with "
            "set_state(), or restart with set_timesteps() / reset_state()."
        )

    def record(
        self,
        index: int,
        timestep: int,
        output: torch.Tensor,
        history: tuple[torch.Tensor, ...],
    ) -> None:
        """Store ``output`` of step ``index`` after ``history``, keeping the last ``history_size``."""
        keep = self.history_size
        history_ts = self._state.timesteps[len(self._state.timesteps) - len(history) :]
        outputs = (*history, output)[-keep:] if keep else ()
        ts = (*history_ts, timestep)[-keep:] if keep else ()
        self._state = MultistepState(step_index=index + 1, timesteps=ts, model_outputs=outputs)
