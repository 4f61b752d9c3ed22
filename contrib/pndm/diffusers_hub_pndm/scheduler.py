"""PNDM: pseudo numerical methods for diffusion models (pseudo Runge-Kutta warm-up + PLMS).

PNDM splits a step into a *gradient part* (a classical numerical method combining several noise
predictions into one) and a *transfer part* (the DDIM-like map that moves a sample from one
noise level to another along the data manifold, eq. 9). The sampler starts with three pseudo
Runge-Kutta (PRK) steps of four model evaluations each, which fill the buffer of noise
predictions, then runs the pseudo linear multi-step method (PLMS, a 4th-order Adams-Bashforth
rule) with one evaluation per step. With ``skip_prk_steps`` the warm-up is replaced by a
second-order (Heun-like) first step and lower-order Adams-Bashforth steps, as in the Stable
Diffusion release ("PLMS").

Notation (code name -> paper symbol):

- ``alpha_bar_t``, ``alpha_bar_prev``: :math:`\\bar\\alpha_t`, :math:`\\bar\\alpha_{t-\\delta}`;
- ``delta``: :math:`\\delta = T // n` (the PLMS step between timesteps), ``delta // 2`` the
  half step of PRK;
- ``eps``: the noise predictions :math:`e_t`; ``ets`` the buffer of the last four, oldest first
  (``state.model_outputs``);
- ``cur_sample``: :math:`x_t` at the start of the current PRK step (all four stages start there);
- ``cur_model_output``: the running sum :math:`\\frac16 e_1 + \\frac13 e_2 + \\frac13 e_3` of the
  PRK stages (Sec. 3.3).

References:
    Liu, Ren, Lin, Zhao 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds",
    arXiv:2202.09778.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from diffusers_hub.multistep import History, MultistepSchedulerMixin, MultistepState, StepResult
from diffusers_hub.schedules import predict_eps, predict_x0, spaced_timesteps
from diffusers_hub.scheduling import SchedulerConfig

__all__ = [
    "PNDMScheduler",
    "PNDMSchedulerConfig",
    "PNDMState",
    "PNDMStepPlan",
    "plms_combine",
    "pndm_transfer",
]

# --------------------------------------------------------------------------------------------------
# PNDM math
# --------------------------------------------------------------------------------------------------


def pndm_transfer(
    x_t: torch.Tensor, eps: torch.Tensor, alpha_bar_t: float, alpha_bar_prev: float
) -> torch.Tensor:
    """The transfer part :math:`\\phi(x_t, e_t, t, t-\\delta)`: move ``x_t`` to the level ``alpha_bar_prev``.

    .. math::
        x_{t-\\delta} = \\sqrt{\\frac{\\bar\\alpha_{t-\\delta}}{\\bar\\alpha_t}}\\, x_t
        - \\frac{\\bar\\alpha_{t-\\delta} - \\bar\\alpha_t}
        {\\bar\\alpha_t\\sqrt{1-\\bar\\alpha_{t-\\delta}}
        + \\sqrt{\\bar\\alpha_t(1-\\bar\\alpha_t)\\bar\\alpha_{t-\\delta}}}\\, e_t

    (algebraically the deterministic DDIM step).

    Args:
        x_t: (B, C, ...) sample at noise level ``alpha_bar_t``.
        eps: (B, C, ...) noise prediction (or a combination of several).
        alpha_bar_t: :math:`\\bar\\alpha_t` of the start.
        alpha_bar_prev: :math:`\\bar\\alpha_{t-\\delta}` of the end.

    Returns:
        (B, C, ...) the sample at ``alpha_bar_prev``.

    References:
        eq. 9, arXiv:2202.09778.
    """
    sample_coeff = math.sqrt(alpha_bar_prev / alpha_bar_t)
    denom = alpha_bar_t * math.sqrt(1.0 - alpha_bar_prev) + math.sqrt(
        alpha_bar_t * (1.0 - alpha_bar_t) * alpha_bar_prev
    )
    return sample_coeff * x_t - ((alpha_bar_prev - alpha_bar_t) / denom) * eps


def plms_combine(ets: Sequence[torch.Tensor]) -> torch.Tensor:
    """The gradient part of PLMS: the Adams-Bashforth combination of the last 1-4 predictions.

    With four predictions :math:`e' = \\frac{1}{24}(55 e_t - 59 e_{t+\\delta} + 37 e_{t+2\\delta}
    - 9 e_{t+3\\delta})` (PLMS, Sec. 3.3); with fewer, the Adams-Bashforth rules of that order.

    Args:
        ets: 1-4 tensors (B, C, ...), oldest first.

    References:
        PLMS, Sec. 3.3 of arXiv:2202.09778.
    """
    e = list(reversed(ets))  # newest first
    if len(e) == 1:
        return e[0]
    if len(e) == 2:
        return (3 * e[0] - e[1]) / 2
    if len(e) == 3:
        return (23 * e[0] - 16 * e[1] + 5 * e[2]) / 12
    return (1 / 24) * (55 * e[0] - 59 * e[1] + 37 * e[2] - 9 * e[3])  # PLMS, Sec. 3.3


# --------------------------------------------------------------------------------------------------
# Config, plan, state
# --------------------------------------------------------------------------------------------------


class PNDMSchedulerConfig(SchedulerConfig):
    """Config of :class:`PNDMScheduler` (the diffusers ``scheduler_config.json`` keys).

    Attributes:
        skip_prk_steps: replace the 12 Runge-Kutta warm-up evaluations by a Heun-like first step
            and lower-order PLMS steps (what Stable Diffusion's "PLMS" sampler does).
        set_alpha_to_one: the last step ends at :math:`\\bar\\alpha = 1` instead of
            :math:`\\bar\\alpha_0`.

    ``clip_sample`` and ``thresholding`` are inherited but not used by PNDM (as in diffusers).
    ``prediction_type="sample"`` is accepted and turned into a noise prediction.
    """

    skip_prk_steps: bool = False
    set_alpha_to_one: bool = False


@dataclass(frozen=True)
class PNDMStepPlan:
    """What step ``index`` of a PNDM schedule does; fixed by ``set_timesteps``.

    Attributes:
        kind: ``"prk"`` (a Runge-Kutta stage) or ``"plms"``.
        stage: the PRK stage 0-3 (0 for PLMS steps).
        timestep: the timestep the model is evaluated at (``scheduler.timesteps[index]``).
        t_from: the timestep the transfer starts from (the PRK step's start for PRK stages).
        t_to: the timestep the transfer ends at (< 0 means the clean end).
    """

    kind: Literal["prk", "plms"]
    stage: int
    timestep: int
    t_from: int
    t_to: int


@dataclass(frozen=True)
class PNDMState(MultistepState):
    """The history of :class:`PNDMScheduler`: everything ``step`` carries from one call to the next.

    Attributes:
        step_index: how many steps of the current schedule have been taken, i.e. the index in
            ``scheduler.timesteps`` (and ``scheduler.plan``) the next ``step`` call must be at.
        timesteps: the timesteps of ``model_outputs``.
        model_outputs: the PLMS buffer ``ets``: the last (up to four) model outputs, oldest first.
        cur_sample: the sample at the start of the current PRK step (or of the first
            ``skip_prk_steps`` step), None when no step is in progress.
        cur_model_output: the running PRK combination of the current step, None between steps.
    """

    cur_sample: torch.Tensor | None = field(default=None, repr=False)
    cur_model_output: torch.Tensor | None = field(default=None, repr=False)


def pndm_plan(
    base_timesteps: npt.NDArray[np.int64],
    num_train_timesteps: int,
    skip_prk_steps: bool,
) -> list[PNDMStepPlan]:
    """The steps of a PNDM schedule over ``base_timesteps`` (n descending timesteps).

    - PRK (default): the first three intervals of the base schedule are each taken with four
      stages evaluated at :math:`t, t-\\delta/2, t-\\delta/2, t-\\delta` (Sec. 3.3), then PLMS runs
      over the remaining base timesteps: 12 + (n - 3) steps.
    - ``skip_prk_steps``: the first base timestep, then the second one twice (its first visit
      redoes the first interval with the averaged prediction), then the rest: n + 1 steps.

    The PLMS step length is :math:`\\delta = T // n` (also for ``linspace`` and ``trailing``
    spacings, as in the original release).

    Raises:
        ValueError: PRK needs n >= 4.
    """
    base = [int(t) for t in base_timesteps]
    n = len(base)
    delta = num_train_timesteps // n
    plan: list[PNDMStepPlan] = []
    if skip_prk_steps:
        ts = [base[0]] if n == 1 else [base[0], base[1], *base[1:]]
        for i, t in enumerate(ts):
            if i == 1:  # the Heun-like correction of the first interval
                plan.append(PNDMStepPlan("plms", 0, t, t + delta, t))
            else:
                plan.append(PNDMStepPlan("plms", 0, t, t, t - delta))
        return plan
    if n < 4:
        raise ValueError(
            f"PNDM's Runge-Kutta warm-up needs at least 4 inference steps, got {n}; use more "
            "steps or skip_prk_steps=True"
        )
    half = delta // 2
    for hi, lo in itertools.pairwise(base[:4]):  # the three largest intervals
        # PRK (Sec. 3.3): four stages for the interval hi -> lo, all transferred from x_hi. The stage
        # times and targets follow the original release: the model is evaluated at hi,
        # lo + delta/2 (twice) and lo; the first stage moves to hi - delta/2.
        times = (hi, lo + half, lo + half, lo)
        targets = (hi - half, lo + half, lo, lo)
        for stage in range(4):
            plan.append(PNDMStepPlan("prk", stage, times[stage], hi, targets[stage]))
    for t in base[3:]:
        plan.append(PNDMStepPlan("plms", 0, t, t, t - delta))
    return plan


# --------------------------------------------------------------------------------------------------
# Scheduler
# --------------------------------------------------------------------------------------------------


class PNDMScheduler(MultistepSchedulerMixin):
    """PNDM sampler: Runge-Kutta warm-up then PLMS (or PLMS alone with ``skip_prk_steps``).

    The buffers PNDM carries between calls (the PLMS noise predictions, the PRK start sample and
    running sum) are an explicit, immutable :class:`PNDMState` (``scheduler.state``), replaced by
    every ``step`` and reset by ``set_timesteps``. What each step does is fixed in advance in
    ``scheduler.plan``. Because PRK visits timesteps twice, the step index comes from the state
    and ``step`` checks that the timestep it gets is ``timesteps[state.step_index]``; a loop can
    be stopped, its state saved (``get_state().to_dict()``) and resumed with ``set_state``.

    References:
        Liu et al. 2022, PNDM, arXiv:2202.09778.

    Example:
        >>> import torch
        >>> from diffusers_hub_pndm import PNDMScheduler
        >>> scheduler = PNDMScheduler(skip_prk_steps=True)
        >>> scheduler.set_timesteps(10)
        >>> len(scheduler.timesteps)
        11
        >>> x = torch.randn(1, 3, 8, 8)
        >>> for t in scheduler.timesteps:
        ...     eps = torch.zeros_like(x)  # a model's noise prediction
        ...     x = scheduler.step(eps, t, x).prev_sample
    """

    config_class = PNDMSchedulerConfig
    config: PNDMSchedulerConfig
    order = 1
    compatibles = (
        "DDPMScheduler",
        "DDIMScheduler",
        "DEISMultistepScheduler",
        "DPMSolverMultistepScheduler",
    )

    state_class = PNDMState
    #: PRK visits timesteps twice, so the step index comes from the state, never the timestep.
    restart_anywhere = False
    _state: PNDMState

    def __init__(self, config: PNDMSchedulerConfig | None = None, **fields: Any) -> None:
        super().__init__(config, **fields)
        #: :math:`\\bar\\alpha` at the clean end of the last step.
        self.final_alpha_cumprod = 1.0 if self.config.set_alpha_to_one else self.alpha_bar(0)
        self.plan: list[PNDMStepPlan] = []

    @property
    def history_size(self) -> int:
        """PLMS combines the last four noise predictions."""
        return 4

    # ---------------------------------------------------------------------------------- schedule

    def spaced_schedule(self, n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Build the PNDM schedule of n base steps (``set_timesteps`` calls it).

        Sets ``self.plan`` and returns the timesteps the model is evaluated at, in order:
        12 + (n - 3) of them with the Runge-Kutta warm-up (some repeated), n + 1 with
        ``skip_prk_steps``, and their noise levels.

        Raises:
            ValueError: n outside [1, T], or n < 4 with the warm-up.
        """
        c = self.config
        base = spaced_timesteps(c.num_train_timesteps, n, c.timestep_spacing, c.steps_offset)
        self.plan = pndm_plan(base, c.num_train_timesteps, c.skip_prk_steps)
        ts = np.array([p.timestep for p in self.plan], dtype=np.int64)
        return ts, self.train_sigmas[ts]

    def explicit_schedule(
        self, timesteps: Sequence[int] | npt.NDArray[Any] | torch.Tensor
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Not supported: PNDM's stages are tied to an evenly spaced schedule."""
        raise ValueError("PNDMScheduler does not take explicit timesteps; pass num_inference_steps")

    def recorded_timesteps(self, step_index: int) -> list[int]:
        """The timesteps of the buffer after ``step_index`` steps: those of the steps that add
        their output (a PRK step's first stage, every PLMS step but the Heun-like correction)."""
        plan = self.plan[:step_index]
        return [p.timestep for p in plan if p.t_from == p.timestep][-self.history_size :]

    # -------------------------------------------------------------------------------------- step

    def _alpha_bar_or_final(self, timestep: int) -> float:
        return self.final_alpha_cumprod if timestep < 0 else self.alpha_bar(timestep)

    def _transfer(
        self, x: torch.Tensor, combined: torch.Tensor, t_from: int, t_to: int
    ) -> torch.Tensor:
        """Turn the combined output into a noise prediction at ``(x, t_from)`` and apply eq. 9."""
        alpha_bar_t = self.alpha_bar(t_from)
        eps = predict_eps(combined, x, alpha_bar_t, self.config.prediction_type)
        return pndm_transfer(x, eps, alpha_bar_t, self._alpha_bar_or_final(t_to))

    def solver_step(
        self, index: int, timestep: int, sample: Tensor, model_output: Tensor, history: History
    ) -> StepResult:
        """Take step ``index`` of the plan: a PRK stage or a PLMS step.

        Notation: ``ets`` is the PLMS buffer, ``cur_sample`` the PRK start sample and
        ``cur_model_output`` the running PRK sum (see the module docstring). For
        ``v_prediction`` the combined output is turned into a noise prediction at the start of
        the transfer, as in the diffusers release.

        Returns:
            the sample at the next timestep, the clean-sample estimate from this call's model
            output, and the new state.
        """
        p, x, e, t, i = self.plan[index], sample, model_output, timestep, index
        state = self._state
        ets, ets_ts = state.model_outputs, state.timesteps
        cur_sample, acc = state.cur_sample, state.cur_model_output
        if p.kind == "prk":
            # PRK (Sec. 3.3): stages at t, t - delta/2, t - delta/2, t - delta, all from x_t.
            if p.stage == 0:
                acc = (1.0 / 6.0) * e
                ets, ets_ts = (*ets, e)[-4:], (*ets_ts, t)[-4:]
                cur_sample = x
                combined = e
            elif p.stage in (1, 2):
                acc = acc + (1.0 / 3.0) * e  # type: ignore[operator]
                combined = e
            else:
                combined = acc + (1.0 / 6.0) * e  # type: ignore[operator]
                acc = None
            start = cur_sample if cur_sample is not None else x
        else:
            start = x
            if i == 1 and self.config.skip_prk_steps:
                # Heun-like correction: redo the first interval with the averaged prediction.
                combined = (e + ets[-1]) / 2
                start = cur_sample if cur_sample is not None else x
                cur_sample = None
            else:
                ets, ets_ts = (*ets, e)[-4:], (*ets_ts, t)[-4:]
                if len(ets) == 1:
                    cur_sample = x
                combined = plms_combine(ets)  # PLMS (lower orders while the buffer fills)
        prev = self._transfer(start, combined, p.t_from, p.t_to)
        x0 = predict_x0(e, x, self.alpha_bar(t), self.config.prediction_type)
        new_state = PNDMState(i + 1, ets_ts, ets, cur_sample=cur_sample, cur_model_output=acc)
        return prev, x0, new_state
