"""DPM-Solver++ multistep (and the original noise-prediction DPM-Solver) for diffusers-hub.

The solver integrates the probability-flow ODE of a variance-preserving diffusion in the
half-log-SNR variable :math:`\\lambda_t = \\log(\\alpha_t / \\sigma_t)`. The linear part is solved
exactly and the model output is extrapolated with a polynomial through the last 1-3 outputs
(a multistep method, like Adams-Bashforth), so each step costs one model evaluation.

Notation (code name -> paper symbol):

- ``alpha_t``, ``sigma_t``: :math:`\\alpha_t = \\sqrt{\\bar\\alpha_t}`, :math:`\\sigma_t = \\sqrt{1-\\bar\\alpha_t}`;
- ``sigma`` (the schedule table ``scheduler.sigmas``): :math:`\\sigma_t/\\alpha_t`, the
  variance-exploding noise level, from which :math:`\\alpha_t = 1/\\sqrt{1+\\sigma^2}`;
- ``lambda_*``: :math:`\\lambda = \\log\\alpha - \\log\\sigma`; ``h = lambda_t - lambda_s0``;
- ``m0, m1, m2``: the converted model outputs at :math:`s_0 > s_1 > s_2` (the current step and
  the two before it): data predictions :math:`x_\\theta` for ``dpmsolver++``, noise predictions
  :math:`\\epsilon_\\theta` for ``dpmsolver``;
- ``r0 = h_0 / h``, ``r1 = h_1 / h`` with ``h_0 = lambda_s0 - lambda_s1``, ``h_1 = lambda_s1 - lambda_s2``;
- ``D0, D1, D2``: the zeroth, first and second divided-difference estimates of the output.

References:
    Lu, Zhou, Bao, Chen, Li, Zhu 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
    Probabilistic Models", arXiv:2211.01095.
    Lu, Zhou, Bao, Chen, Li, Zhu 2022, "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic
    Model Sampling in Around 10 Steps", arXiv:2206.00927.
    Karras, Aittala, Aila, Laine 2022, "Elucidating the Design Space of Diffusion-Based Generative
    Models", arXiv:2206.00364 (the sigma schedule of ``use_karras_sigmas``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from pydantic import field_validator, model_validator
from torch import Tensor

from diffusers_hub import multistep
from diffusers_hub.multistep import History, StepResult
from diffusers_hub.schedules import dynamic_threshold, eps_from_x0, predict_eps, predict_x0

__all__ = [
    "DPMSolverMultistepScheduler",
    "DPMSolverMultistepSchedulerConfig",
    "DPMSolverState",
    "alpha_sigma_from_sigma",
    "dpm_solver_first_order_update",
    "dpm_solver_second_order_update",
    "dpm_solver_third_order_update",
    "karras_sigmas",
    "timesteps_from_sigmas",
]

AlgorithmType = Literal["dpmsolver++", "dpmsolver"]
SolverType = Literal["midpoint", "heun"]


# --------------------------------------------------------------------------------------------------
# Schedule math
# --------------------------------------------------------------------------------------------------


def karras_sigmas(
    sigma_min: float, sigma_max: float, num_steps: int, rho: float = 7.0
) -> npt.NDArray[np.float64]:
    """The noise levels of Karras et al.: evenly spaced in :math:`\\sigma^{1/\\rho}`.

    :math:`\\sigma_i = (\\sigma_{max}^{1/\\rho} + \\tfrac{i}{n-1}(\\sigma_{min}^{1/\\rho} -
    \\sigma_{max}^{1/\\rho}))^\\rho` for i = 0..n-1.

    Args:
        sigma_min: the smallest noise level (last step).
        sigma_max: the largest noise level (first step).
        num_steps: n, the number of levels.
        rho: the warp exponent (7 in the paper).

    Returns:
        (n,) float64 descending sigmas.

    References:
        eq. 5, arXiv:2206.00364.
    """
    ramp = np.linspace(0.0, 1.0, num_steps, dtype=np.float64)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    out: npt.NDArray[np.float64] = (hi + ramp * (lo - hi)) ** rho
    return out


def timesteps_from_sigmas(
    sigmas: npt.NDArray[np.float64], train_sigmas: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Fractional training timesteps whose noise level is ``sigmas``.

    Interpolates linearly in :math:`\\log\\sigma` between the two training timesteps around each
    value (the training sigmas grow with t); values outside the table clamp to its ends.

    Args:
        sigmas: (n,) noise levels :math:`\\sigma = \\sqrt{(1-\\bar\\alpha)/\\bar\\alpha}`.
        train_sigmas: (T,) the noise level of every training timestep, ascending.

    Returns:
        (n,) float64 timesteps in [0, T - 1].
    """
    log_train = np.log(train_sigmas)
    log_query = np.log(np.maximum(sigmas, 1e-10))
    out: npt.NDArray[np.float64] = np.interp(
        log_query, log_train, np.arange(len(train_sigmas), dtype=np.float64)
    )
    return out


def alpha_sigma_from_sigma(sigma: float) -> tuple[float, float]:
    """:math:`(\\alpha_t, \\sigma_t)` of a variance-preserving process with noise level ``sigma``.

    ``sigma`` is :math:`\\sigma_t/\\alpha_t`; with :math:`\\alpha_t^2 + \\sigma_t^2 = 1`,
    :math:`\\alpha_t = 1/\\sqrt{1 + \\sigma^2}` and :math:`\\sigma_t = \\sigma\\,\\alpha_t`.
    """
    alpha = 1.0 / math.sqrt(1.0 + sigma * sigma)
    return alpha, sigma * alpha


def _log_snr(alpha: float, sigma: float) -> float:
    """:math:`\\lambda = \\log\\alpha - \\log\\sigma` (half log-SNR); +inf at sigma = 0."""
    return math.inf if sigma == 0.0 else math.log(alpha) - math.log(sigma)


# --------------------------------------------------------------------------------------------------
# Solver updates
# --------------------------------------------------------------------------------------------------


def dpm_solver_first_order_update(
    x_s: torch.Tensor,
    m0: torch.Tensor,
    sigma_s0: float,
    sigma_t: float,
    algorithm_type: AlgorithmType = "dpmsolver++",
) -> torch.Tensor:
    """One first-order step from noise level ``sigma_s0`` to ``sigma_t`` (equals DDIM with eta=0).

    - ``dpmsolver++`` (data prediction ``m0`` = :math:`x_\\theta`):
      :math:`x_t = \\frac{\\sigma_t}{\\sigma_s} x_s - \\alpha_t (e^{-h} - 1) x_\\theta`
      (DPM-Solver++1, Sec. 4 of arXiv:2211.01095);
    - ``dpmsolver`` (noise prediction ``m0`` = :math:`\\epsilon_\\theta`):
      :math:`x_t = \\frac{\\alpha_t}{\\alpha_s} x_s - \\sigma_t (e^{h} - 1) \\epsilon_\\theta`
      (DPM-Solver-1, Sec. 3 of arXiv:2206.00927).

    Args:
        x_s: (B, C, ...) sample at the current level.
        m0: (B, C, ...) converted model output at the current level.
        sigma_s0: current noise level :math:`\\sigma_s/\\alpha_s` (> 0).
        sigma_t: target noise level (0 gives the clean sample for ``dpmsolver++``).
        algorithm_type: ``"dpmsolver++"`` or ``"dpmsolver"``.

    Returns:
        (B, C, ...) the sample at ``sigma_t``.
    """
    alpha_t, s_t = alpha_sigma_from_sigma(sigma_t)
    alpha_s, s_s = alpha_sigma_from_sigma(sigma_s0)
    if algorithm_type == "dpmsolver++":
        if s_t == 0.0:  # lambda_t = +inf: exp(-h) = 0 and x_t = x_theta
            return m0.clone()
        h = _log_snr(alpha_t, s_t) - _log_snr(alpha_s, s_s)
        return (s_t / s_s) * x_s - (alpha_t * math.expm1(-h)) * m0
    h = _log_snr(alpha_t, s_t) - _log_snr(alpha_s, s_s)
    return (alpha_t / alpha_s) * x_s - (s_t * math.expm1(h)) * m0


def dpm_solver_second_order_update(
    x_s: torch.Tensor,
    m0: torch.Tensor,
    m1: torch.Tensor,
    sigma_s0: float,
    sigma_s1: float,
    sigma_t: float,
    algorithm_type: AlgorithmType = "dpmsolver++",
    solver_type: SolverType = "midpoint",
) -> torch.Tensor:
    """One second-order multistep step using the current and the previous model output.

    With :math:`D_0 = m_0` and :math:`D_1 = (m_0 - m_1)/r_0`:

    - ``dpmsolver++``, midpoint:
      :math:`x_t = \\frac{\\sigma_t}{\\sigma_{s_0}} x_s - \\alpha_t(e^{-h}-1) D_0
      - \\tfrac12\\alpha_t(e^{-h}-1) D_1` (DPM-Solver++(2M), Algorithm 2 of arXiv:2211.01095);
    - ``dpmsolver++``, heun: the last term becomes :math:`+\\alpha_t(\\frac{e^{-h}-1}{h}+1) D_1`;
    - ``dpmsolver``, midpoint: :math:`x_t = \\frac{\\alpha_t}{\\alpha_{s_0}} x_s
      - \\sigma_t(e^h-1) D_0 - \\tfrac12\\sigma_t(e^h-1) D_1`;
      heun: the last term becomes :math:`-\\sigma_t(\\frac{e^h-1}{h}-1) D_1`
      (multistep DPM-Solver-2, arXiv:2206.00927 as used in Sec. 4 of arXiv:2211.01095).

    Args:
        x_s: (B, C, ...) sample at the current level ``sigma_s0``.
        m0: (B, C, ...) converted output at ``sigma_s0``.
        m1: (B, C, ...) converted output at the previous level ``sigma_s1``.
        sigma_s0: current noise level.
        sigma_s1: previous (larger) noise level.
        sigma_t: target (smaller) noise level, > 0.
        algorithm_type: ``"dpmsolver++"`` or ``"dpmsolver"``.
        solver_type: ``"midpoint"`` or ``"heun"``.

    Returns:
        (B, C, ...) the sample at ``sigma_t``.
    """
    alpha_t, s_t = alpha_sigma_from_sigma(sigma_t)
    alpha_s0, s_s0 = alpha_sigma_from_sigma(sigma_s0)
    alpha_s1, s_s1 = alpha_sigma_from_sigma(sigma_s1)
    lambda_t, lambda_s0 = _log_snr(alpha_t, s_t), _log_snr(alpha_s0, s_s0)
    lambda_s1 = _log_snr(alpha_s1, s_s1)
    h, h_0 = lambda_t - lambda_s0, lambda_s0 - lambda_s1
    r0 = h_0 / h
    d0, d1 = m0, (m0 - m1) / r0
    if algorithm_type == "dpmsolver++":
        phi = math.expm1(-h)  # e^{-h} - 1
        x_t = (s_t / s_s0) * x_s - (alpha_t * phi) * d0
        if solver_type == "midpoint":
            return x_t - (0.5 * alpha_t * phi) * d1
        return x_t + (alpha_t * (phi / h + 1.0)) * d1
    phi = math.expm1(h)  # e^{h} - 1
    x_t = (alpha_t / alpha_s0) * x_s - (s_t * phi) * d0
    if solver_type == "midpoint":
        return x_t - (0.5 * s_t * phi) * d1
    return x_t - (s_t * (phi / h - 1.0)) * d1


def dpm_solver_third_order_update(
    x_s: torch.Tensor,
    m0: torch.Tensor,
    m1: torch.Tensor,
    m2: torch.Tensor,
    sigma_s0: float,
    sigma_s1: float,
    sigma_s2: float,
    sigma_t: float,
    algorithm_type: AlgorithmType = "dpmsolver++",
) -> torch.Tensor:
    """One third-order multistep step using the current and the two previous model outputs.

    The output is extrapolated to second order in :math:`\\lambda` with
    :math:`D_1 = D_{1,0} + \\frac{r_0}{r_0+r_1}(D_{1,0} - D_{1,1})` and
    :math:`D_2 = \\frac{D_{1,0} - D_{1,1}}{r_0 + r_1}`, where
    :math:`D_{1,0} = (m_0 - m_1)/r_0` and :math:`D_{1,1} = (m_1 - m_2)/r_1`; then

    - ``dpmsolver++``: :math:`x_t = \\frac{\\sigma_t}{\\sigma_{s_0}} x_s - \\alpha_t\\varphi_1 D_0
      + \\alpha_t(\\frac{\\varphi_1}{h} + 1) D_1 - \\alpha_t(\\frac{\\varphi_1 + h}{h^2} - \\tfrac12) D_2`
      with :math:`\\varphi_1 = e^{-h} - 1` (the third-order multistep variant of arXiv:2211.01095);
    - ``dpmsolver``: :math:`x_t = \\frac{\\alpha_t}{\\alpha_{s_0}} x_s - \\sigma_t\\psi_1 D_0
      - \\sigma_t(\\frac{\\psi_1}{h} - 1) D_1 - \\sigma_t(\\frac{\\psi_1 - h}{h^2} - \\tfrac12) D_2`
      with :math:`\\psi_1 = e^{h} - 1` (multistep DPM-Solver-3, arXiv:2206.00927).

    Args:
        x_s: (B, C, ...) sample at ``sigma_s0``.
        m0: (B, C, ...) converted output at ``sigma_s0``.
        m1: (B, C, ...) converted output at ``sigma_s1``.
        m2: (B, C, ...) converted output at ``sigma_s2``.
        sigma_s0: current noise level.
        sigma_s1: previous noise level.
        sigma_s2: the level before that.
        sigma_t: target noise level, > 0.
        algorithm_type: ``"dpmsolver++"`` or ``"dpmsolver"``.

    Returns:
        (B, C, ...) the sample at ``sigma_t``.
    """
    alpha_t, s_t = alpha_sigma_from_sigma(sigma_t)
    alpha_s0, s_s0 = alpha_sigma_from_sigma(sigma_s0)
    lambdas = [_log_snr(*alpha_sigma_from_sigma(s)) for s in (sigma_s0, sigma_s1, sigma_s2)]
    lambda_t = _log_snr(alpha_t, s_t)
    h, h_0, h_1 = lambda_t - lambdas[0], lambdas[0] - lambdas[1], lambdas[1] - lambdas[2]
    r0, r1 = h_0 / h, h_1 / h
    d1_0, d1_1 = (m0 - m1) / r0, (m1 - m2) / r1
    d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    if algorithm_type == "dpmsolver++":
        phi = math.expm1(-h)
        return (
            (s_t / s_s0) * x_s
            - (alpha_t * phi) * m0
            + (alpha_t * (phi / h + 1.0)) * d1
            - (alpha_t * ((phi + h) / h**2 - 0.5)) * d2
        )
    psi = math.expm1(h)
    return (
        (alpha_t / alpha_s0) * x_s
        - (s_t * psi) * m0
        - (s_t * (psi / h - 1.0)) * d1
        - (s_t * ((psi - h) / h**2 - 0.5)) * d2
    )


# --------------------------------------------------------------------------------------------------
# Config, state, scheduler
# --------------------------------------------------------------------------------------------------


class DPMSolverMultistepSchedulerConfig(multistep.MultistepSchedulerConfig):
    """Config of :class:`DPMSolverMultistepScheduler` (the diffusers ``scheduler_config.json`` keys).

    ``clip_sample`` is inherited but not used by this solver (diffusers ignores it too); use
    ``thresholding`` to bound the data predictions.
    """

    algorithm_type: AlgorithmType = "dpmsolver++"
    solver_type: SolverType = "midpoint"
    euler_at_final: bool = False
    use_karras_sigmas: bool = False
    final_sigmas_type: Literal["zero", "sigma_min"] = "zero"

    @field_validator("algorithm_type", mode="before")
    @classmethod
    def _foreign_algorithm(cls, value: Any) -> Any:
        # A DEIS config swapped in says "deis"; the data-prediction solver is its counterpart.
        return "dpmsolver++" if value == "deis" else value

    @field_validator("solver_type", mode="before")
    @classmethod
    def _foreign_solver_type(cls, value: Any) -> Any:
        # DEIS ("logrho") and UniPC ("bh1", "bh2") configs name their own solver types.
        return "midpoint" if value in ("logrho", "bh1", "bh2") else value

    @model_validator(mode="after")
    def _check_final_sigma(self) -> DPMSolverMultistepSchedulerConfig:
        if self.algorithm_type == "dpmsolver" and self.final_sigmas_type == "zero":
            raise ValueError(
                "final_sigmas_type='zero' needs algorithm_type='dpmsolver++' (a noise-prediction "
                "step cannot reach sigma = 0); use final_sigmas_type='sigma_min'"
            )
        return self


#: The multistep history of this scheduler (the core's explicit multistep state).
DPMSolverState = multistep.MultistepState


class DPMSolverMultistepScheduler(multistep.MultistepSchedulerMixin):
    """DPM-Solver++ multistep sampler (orders 1-3), a drop-in for DDPM/DDIM schedulers.

    The history a multistep method needs is an explicit, immutable :class:`DPMSolverState`
    (``scheduler.state``) kept by :class:`~diffusers_hub.multistep.MultistepSchedulerMixin`:
    out-of-order steps fail loudly, and a loop can be stopped, saved and resumed.

    References:
        Lu et al. 2022, DPM-Solver++, arXiv:2211.01095; Lu et al. 2022, DPM-Solver,
        arXiv:2206.00927.

    Example:
        >>> import torch
        >>> from diffusers_hub_dpm_solver import DPMSolverMultistepScheduler
        >>> scheduler = DPMSolverMultistepScheduler(solver_order=2, use_karras_sigmas=True)
        >>> scheduler.set_timesteps(10)
        >>> x = torch.randn(1, 3, 8, 8) * float(scheduler.sigmas[0])
        >>> for t in scheduler.timesteps:
        ...     x = scheduler.step(torch.zeros_like(x), t, x).prev_sample  # zero noise predicted
        >>> float(scheduler.sigmas[-1]), len(scheduler.state.model_outputs)
        (0.0, 1)
    """

    config_class = DPMSolverMultistepSchedulerConfig
    config: DPMSolverMultistepSchedulerConfig
    compatibles = ("DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "DEISMultistepScheduler")

    @property
    def final_sigma(self) -> float:
        """0 (``final_sigmas_type="zero"``: the last step lands on the data prediction) or the
        noise level of training timestep 0."""
        return 0.0 if self.config.final_sigmas_type == "zero" else float(self.train_sigmas[0])

    def spaced_schedule(self, n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The configured spacing, or with ``use_karras_sigmas`` the noise levels of Karras et
        al. and the (rounded) training timesteps nearest to them."""
        c = self.config
        if not c.use_karras_sigmas:
            return super().spaced_schedule(n)
        self.check_num_steps(n)
        sigmas = karras_sigmas(float(self.train_sigmas[0]), float(self.train_sigmas[-1]), n)
        frac = timesteps_from_sigmas(sigmas, self.train_sigmas)
        if c.beta_schedule != "squaredcos_cap_v2":
            frac = np.round(frac)
        return frac.astype(np.int64), sigmas

    def explicit_schedule(
        self, timesteps: Sequence[int] | npt.NDArray[Any] | torch.Tensor
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Explicit timesteps (not with ``use_karras_sigmas``, whose levels fix the timesteps)."""
        if self.config.use_karras_sigmas:
            raise ValueError("explicit timesteps cannot be combined with use_karras_sigmas")
        return super().explicit_schedule(timesteps)

    def convert_model_output(
        self, model_output: torch.Tensor, sample: torch.Tensor, sigma: float
    ) -> torch.Tensor:
        """What the solver extrapolates: :math:`x_\\theta` (``dpmsolver++``) or :math:`\\epsilon_\\theta`.

        Args:
            model_output: (B, C, ...) raw network output (per ``prediction_type``).
            sample: (B, C, ...) the current sample.
            sigma: its noise level :math:`\\sigma_t/\\alpha_t`.
        """
        c = self.config
        alpha_bar = 1.0 / (1.0 + sigma * sigma)
        if c.algorithm_type == "dpmsolver++" or c.thresholding:
            x0 = predict_x0(model_output, sample, alpha_bar, c.prediction_type)
            if c.thresholding:
                x0 = dynamic_threshold(x0, c.dynamic_thresholding_ratio, c.sample_max_value)
            if c.algorithm_type == "dpmsolver++":
                return x0
            return eps_from_x0(x0, sample, alpha_bar)
        return predict_eps(model_output, sample, alpha_bar, c.prediction_type)

    def solver_step(
        self, index: int, timestep: int, sample: Tensor, model_output: Tensor, history: History
    ) -> StepResult:
        """One DPM-Solver step from ``timestep`` (step ``index``) to the next timestep.

        Notation: ``m0`` is the converted output at the current step, ``history[-1]`` and
        ``history[-2]`` those of the two previous ones, ``sigmas[i]`` the noise level of step i
        (see the module docstring).

        Returns:
            the sample at the next timestep, the data prediction, the new history.
        """
        c, i, x = self.config, index, sample
        sigma_s0, sigma_t = float(self.sigmas[i]), float(self.sigmas[i + 1])
        m0 = self.convert_model_output(model_output, x, sigma_s0)
        final_euler = c.euler_at_final or c.final_sigmas_type == "zero"
        order = self.order_at(i, history, first_order_final=final_euler)
        if sigma_t == sigma_s0:  # a zero-length step (repeated final Karras level): h = 0
            prev = x.clone()
        elif order == 1:
            prev = dpm_solver_first_order_update(x, m0, sigma_s0, sigma_t, c.algorithm_type)
        elif order == 2:
            sigma_s1 = float(self.sigmas[i - 1])
            prev = dpm_solver_second_order_update(
                x, m0, history[-1], sigma_s0, sigma_s1, sigma_t, c.algorithm_type, c.solver_type
            )
        else:
            sigma_s1, sigma_s2 = float(self.sigmas[i - 1]), float(self.sigmas[i - 2])
            prev = dpm_solver_third_order_update(
                x,
                m0,
                history[-1],
                history[-2],
                sigma_s0,
                sigma_s1,
                sigma_s2,
                sigma_t,
                c.algorithm_type,
            )
        if c.algorithm_type == "dpmsolver++":
            x0 = m0
        else:
            x0 = predict_x0(m0, x, 1.0 / (1.0 + sigma_s0 * sigma_s0), "epsilon")
        return prev, x0, self.recorded(i, timestep, m0, history)
