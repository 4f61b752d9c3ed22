"""Explicit history for multistep solvers (DEIS, DPM-Solver, PNDM, and third-party ones).

A multistep method combines the model outputs of the last few steps. Instead of a hidden counter,
the history is an immutable :class:`MultistepState` that ``step`` replaces and that a user can
read, save and restore: a loop can be stopped, its state saved with ``torch.save(state.to_dict())``
and resumed in a fresh scheduler with ``set_state``. ``step`` derives the step index from the
timestep it is given and checks it against the history, so out-of-order calls fail loudly.

:class:`MultistepSchedulerMixin` does all of that bookkeeping, and the schedule of noise levels
``sigma = sqrt((1 - alpha_bar) / alpha_bar)`` that exponential-integrator solvers work in. A solver
writes its config, the math, and :meth:`~MultistepSchedulerMixin.solver_step`::

    class MySolver(MultistepSchedulerMixin):
        config_class = MySolverConfig  # a MultistepSchedulerConfig

        def solver_step(self, index, timestep, sample, model_output, history):
            eps, x0 = my_convert(model_output, sample, self.sigmas[index])  # what it extrapolates
            order = self.order_at(index, history)
            prev = my_update(sample, [eps, *reversed(history)][:order], self.sigmas, index)
            return prev, x0, self.recorded(index, timestep, eps, history)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from pydantic import Field
from torch import Tensor

from diffusers_hub.config import ComponentConfig
from diffusers_hub.schedules import spaced_timesteps, validate_timesteps
from diffusers_hub.scheduling import SchedulerConfig, SchedulerMixin, StepNoise, TimestepList

__all__ = [
    "History",
    "MultistepSchedulerConfig",
    "MultistepSchedulerMixin",
    "MultistepState",
    "StepResult",
]

S = TypeVar("S", bound="MultistepState")
#: The stored model outputs a step may use, oldest first.
History = tuple[torch.Tensor, ...]


def _plain(value: Any) -> Any:
    """A state field as plain containers: tensors copied, tuples as lists."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class MultistepState:
    """What a multistep ``step`` carries over to the next call.

    Subclass it (a frozen dataclass) to carry more, as PNDM does; :meth:`to_dict` and
    :meth:`from_dict` handle any fields of ints, tensors, None and tuples of those.

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
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
        """Rebuild a state from :meth:`to_dict`'s output."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = data[f.name]
            if isinstance(value, list | tuple):
                value = tuple(v if isinstance(v, torch.Tensor) else int(v) for v in value)
            values[f.name] = int(value) if f.name == "step_index" else value
        return cls(**values)


#: What :meth:`MultistepSchedulerMixin.solver_step` returns: the sample at the next timestep, the
#: clean-sample estimate, and the new state.
StepResult = tuple[torch.Tensor, torch.Tensor, MultistepState]


class MultistepSchedulerConfig(SchedulerConfig):
    """Config fields every multistep solver of the diffusers format has.

    Attributes:
        solver_order: how many model outputs one step combines (1-3).
        lower_order_final: lower orders on the last steps of schedules under 15 steps (more
            stable there).
        timestep_spacing: how the n timesteps are picked from the T training ones.
    """

    solver_order: int = Field(2, ge=1, le=3)
    lower_order_final: bool = True
    timestep_spacing: Literal["leading", "trailing", "linspace"] = "linspace"


class MultistepSchedulerMixin(SchedulerMixin):
    """Base of schedulers whose ``step`` keeps the last ``history_size`` model outputs.

    ``step`` checks the schedule and the history, converts the inputs to the working dtype
    (float64 for float64 samples, else float32), calls :meth:`solver_step` and installs the state
    it returns; a failing call leaves the history untouched. ``set_timesteps`` picks the
    timesteps (:meth:`spaced_schedule`), fills ``sigmas`` and resets the history.

    Attributes:
        state_class: the state this scheduler keeps (a :class:`MultistepState`).
        restart_anywhere: with an empty history, ``step`` may start at any scheduled timestep
            (image-to-image); False where the step index cannot be told from the timestep.
        sigmas: (n + 1,) float64 noise levels of the schedule; the last one is where it ends.
    """

    state_class: ClassVar[type[MultistepState]] = MultistepState
    restart_anywhere: ClassVar[bool] = True
    step_tuple_size: ClassVar[int] = 1
    _state: MultistepState = MultistepState()
    sigmas: npt.NDArray[np.float64] = np.empty(0, dtype=np.float64)

    def __init__(
        self, config: ComponentConfig | Mapping[str, Any] | None = None, **fields: Any
    ) -> None:
        super().__init__(config, **fields)
        self.reset_state()

    @property
    def history_size(self) -> int:
        """How many past outputs the method keeps (``solver_order - 1`` by default)."""
        return max(int(getattr(self.config, "solver_order", 1)) - 1, 0)

    # ------------------------------------------------------------------------------- schedule

    @cached_property
    def train_sigmas(self) -> npt.NDArray[np.float64]:
        """(T,) float64 noise levels ``sigma_t / alpha_t`` of the training timesteps, ascending."""
        alpha_bar = self.alphas_cumprod.numpy().copy()
        if getattr(self.config, "rescale_betas_zero_snr", False):
            alpha_bar[-1] = 2.0**-24  # keep the terminal noise level finite
        out: npt.NDArray[np.float64] = np.sqrt((1.0 - alpha_bar) / alpha_bar)
        return out

    @property
    def final_sigma(self) -> float:
        """The noise level the schedule ends at: that of training timestep 0, as in diffusers."""
        return float(self.train_sigmas[0])

    def spaced_schedule(self, n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The timesteps and noise levels of an n-step schedule (see :meth:`_spaced`)."""
        ts = self._spaced(n)
        return ts, self.train_sigmas[ts]

    def explicit_schedule(
        self, timesteps: TimestepList
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The timesteps and noise levels of an explicit, descending list of timesteps."""
        ts = validate_timesteps(timesteps, self.config.num_train_timesteps)
        return ts, self.train_sigmas[ts]

    def plan_timesteps(
        self, num_inference_steps: int | None, timesteps: TimestepList | None
    ) -> tuple[npt.NDArray[np.int64], int]:
        """The timesteps of :meth:`spaced_schedule` or :meth:`explicit_schedule`, and n; fills
        ``sigmas`` and resets the history (``set_timesteps`` calls it)."""
        if timesteps is not None:
            ts, sigmas = self.explicit_schedule(timesteps)
            n = len(ts)
        else:
            assert num_inference_steps is not None
            n = int(num_inference_steps)
            ts, sigmas = self.spaced_schedule(n)
        self.sigmas = np.concatenate([np.asarray(sigmas, dtype=np.float64), [self.final_sigma]])
        self.reset_state()
        return ts, n

    def check_num_steps(self, n: int) -> int:
        """T, after checking that ``1 <= n <= T``.

        Raises:
            ValueError: n is out of range.
        """
        total = int(self.config.num_train_timesteps)
        if not 1 <= n <= total:
            raise ValueError(
                f"num_inference_steps must be between 1 and num_train_timesteps={total}, got {n}"
            )
        return total

    def _spaced(self, n: int) -> npt.NDArray[np.int64]:
        """The n timesteps of the configured spacing, the multistep solvers' convention.

        ``linspace`` and ``leading`` take an (n + 1)-point grid and drop its clean end, as the
        diffusers multistep schedulers do. With n = T that grid cannot be strictly descending
        (diffusers repeats timesteps there); every training timestep is used instead.
        """
        c = self.config
        total = self.check_num_steps(n)
        if n == total:
            return np.arange(total - 1, -1, -1, dtype=np.int64)
        if c.timestep_spacing == "trailing":
            return spaced_timesteps(total, n, "trailing")
        return spaced_timesteps(total, n + 1, c.timestep_spacing, c.steps_offset)[:-1]

    # ---------------------------------------------------------------------------------- state

    @property
    def state(self) -> MultistepState:
        """The current history (immutable; ``step`` replaces it)."""
        return self._state

    def get_state(self) -> MultistepState:
        """A copy of the current history whose tensors later steps never touch."""
        return self.state_class.from_dict(self._state.to_dict())

    def set_state(self, state: MultistepState | Mapping[str, Any]) -> None:
        """Restore a history saved with :meth:`get_state` (or its ``to_dict()``).

        Raises:
            ValueError: the state does not belong to the current schedule (wrong step index or
                timesteps) or holds more outputs than ``history_size``.
        """
        data = state.to_dict() if isinstance(state, MultistepState) else state
        restored = self.state_class.from_dict(data)
        self._check_state(restored)
        self._state = restored

    def reset_state(self) -> None:
        """Forget the history (``set_timesteps`` does this too)."""
        self._state = self.state_class()

    def recorded_timesteps(self, step_index: int) -> list[int]:
        """The timesteps whose outputs the history holds after ``step_index`` steps, oldest
        first (the last ``history_size`` of those the steps record)."""
        keep = self.history_size
        return self._timestep_list[max(step_index - keep, 0) : step_index] if keep else []

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
        recorded = self.recorded_timesteps(state.step_index)
        expected = recorded[len(recorded) - k :]
        if k and list(state.timesteps) != expected:
            raise ValueError(
                f"state history timesteps {list(state.timesteps)} are not the schedule's timesteps "
                f"before step {state.step_index} ({expected}); was it saved with another "
                "set_timesteps() call?"
            )

    def history_for(self, timestep: int) -> tuple[int, tuple[torch.Tensor, ...]]:
        """The schedule index of ``timestep`` and the stored outputs that may be used with it.

        Continuing the history requires the timestep the history expects; with an empty history
        any timestep of the schedule is a valid (re)start when ``restart_anywhere``, which keeps
        mid-schedule starts (image-to-image) working.

        Raises:
            ValueError: ``timestep`` is not in the schedule, or not the one the history expects.
        """
        schedule = self._timestep_list
        n = len(schedule)
        state = self._state
        if state.step_index < n and schedule[state.step_index] == timestep:
            return state.step_index, state.model_outputs
        if timestep not in self._position:
            raise ValueError(
                f"timestep {timestep} is not in the schedule {schedule}; call "
                "set_timesteps() and step through scheduler.timesteps"
            )
        if not state.model_outputs and self.restart_anywhere:
            return self._position[timestep], ()
        expected = schedule[state.step_index] if state.step_index < n else "none (finished)"
        raise ValueError(
            f"step() got timestep {timestep} but the multistep history (outputs at timesteps "
            f"{list(state.timesteps)}) expects timestep {expected} (step {state.step_index} of "
            f"{n}). Step through scheduler.timesteps in order, restore a saved state with "
            "set_state(), or restart with set_timesteps() / reset_state()."
        )

    def recorded(
        self,
        index: int,
        timestep: int,
        output: torch.Tensor,
        history: tuple[torch.Tensor, ...],
    ) -> MultistepState:
        """The state after step ``index``: ``output`` appended to ``history``, the last
        ``history_size`` kept."""
        keep = self.history_size
        history_ts = self._state.timesteps[len(self._state.timesteps) - len(history) :]
        outputs = (*history, output)[-keep:] if keep else ()
        ts = (*history_ts, timestep)[-keep:] if keep else ()
        return MultistepState(step_index=index + 1, timesteps=ts, model_outputs=outputs)

    def order_at(
        self, index: int, history: tuple[torch.Tensor, ...], *, first_order_final: bool = False
    ) -> int:
        """The order of step ``index``: ``solver_order``, limited by the history, and lowered on
        the last two steps of short schedules with ``lower_order_final`` (always first order at
        the end with ``first_order_final``)."""
        c = self.config
        n = len(self._timestep_list)
        order = min(int(getattr(c, "solver_order", 1)), len(history) + 1)
        lower = bool(getattr(c, "lower_order_final", False)) and n < 15
        if index == n - 1 and (lower or first_order_final):
            return 1
        if index == n - 2 and lower:
            return min(order, 2)
        return order

    # ----------------------------------------------------------------------------------- step

    def solver_step(
        self, index: int, timestep: int, sample: Tensor, model_output: Tensor, history: History
    ) -> StepResult:
        """One step of the method (implemented by each solver).

        Args:
            index: the step's index in ``self.timesteps``.
            timestep: ``self.timesteps[index]``.
            sample: (B, C, ...) the current sample, in the working dtype.
            model_output: (B, C, ...) the network output at ``timestep``, same dtype and device.
            history: the stored outputs that may be used with this step, oldest first.

        Returns:
            the sample at the next timestep, the clean-sample estimate, and the new state
            (usually :meth:`recorded`).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement solver_step()")

    def step_tensors(
        self, model_output: Tensor, timestep: int, sample: Tensor, noise: StepNoise
    ) -> tuple[Tensor, Tensor]:
        """Advance ``sample`` from ``timestep`` to the next timestep of the schedule (``step``
        returns ``prev_sample`` and ``pred_original_sample``, of the sample's type and dtype).

        Args:
            model_output: (B, C, ...) network output at ``timestep``.
            timestep: the current timestep, the one the history expects.
            sample: (B, C, ...) the current sample.
            noise: unused (the solvers are deterministic; ``step`` takes a generator for
                pipelines).

        Raises:
            ValueError: ``set_timesteps`` was not called, or ``timestep`` is not the one the
                history expects.
        """
        if self.num_inference_steps is None:
            raise ValueError("call set_timesteps() before step()")
        index, history = self.history_for(timestep)
        work = torch.float64 if sample.dtype == torch.float64 else torch.float32
        x = sample.to(work)
        output = model_output.to(device=x.device, dtype=work)
        prev, x0, state = self.solver_step(index, timestep, x, output, history)
        self._state = state
        return prev.to(sample.dtype), x0.to(sample.dtype)
