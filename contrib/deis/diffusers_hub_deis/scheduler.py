"""DEIS multistep (Diffusion Exponential Integrator Sampler) for diffusers-hub.

DEIS integrates the probability-flow ODE of a variance-preserving diffusion with an exponential
integrator: in the variables :math:`y = x/\\alpha` and :math:`\\rho = \\sigma/\\alpha` the ODE reads
:math:`dy/d\\rho = \\epsilon_\\theta(x, t)`, so the linear part is exact and only the noise
prediction needs approximating. The multistep variant extrapolates :math:`\\epsilon_\\theta` with
the Lagrange polynomial (in :math:`\\log\\rho`) through the last 1-3 predictions and integrates
it exactly over :math:`[\\rho_{s_0}, \\rho_t]` (an Adams-Bashforth method, one model call per step).

Notation (code name -> paper symbol):

- ``alpha``, ``sigma_vp``: :math:`\\alpha_t = \\sqrt{\\bar\\alpha_t}`, :math:`\\sigma_t = \\sqrt{1-\\bar\\alpha_t}`;
- ``sigma`` (the schedule table ``scheduler.sigmas``) and ``rho``: :math:`\\rho_t = \\sigma_t/\\alpha_t`;
- ``eps``: the noise predictions :math:`\\epsilon_\\theta` at :math:`s_0 > s_1 > s_2` (the current
  step first);
- ``coefficients``: :math:`C_j = \\int_{\\rho_{s_0}}^{\\rho_t} \\ell_j(\\log\\rho)\\,d\\rho`, with
  :math:`\\ell_j` the Lagrange basis polynomials on the nodes :math:`\\log\\rho_{s_j}`.

References:
    Zhang, Chen 2022, "Fast Sampling of Diffusion Models with Exponential Integrator",
    arXiv:2204.13902.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import field_validator
from torch import Tensor

from diffusers_hub.multistep import (
    History,
    MultistepSchedulerConfig,
    MultistepSchedulerMixin,
    MultistepState,
    StepResult,
)
from diffusers_hub.schedules import dynamic_threshold, eps_from_x0, predict_eps, predict_x0

__all__ = [
    "DEISMultistepScheduler",
    "DEISMultistepSchedulerConfig",
    "DEISState",
    "deis_coefficients",
    "deis_update",
    "rho_log_moment",
]


# --------------------------------------------------------------------------------------------------
# DEIS math
# --------------------------------------------------------------------------------------------------


def rho_log_moment(rho: float, power: int) -> float:
    """An antiderivative of :math:`(\\log\\rho)^m` with respect to :math:`\\rho`.

    With :math:`u = \\log\\rho`, integrating by parts m times gives
    :math:`\\int u^m d\\rho = \\rho \\sum_{i=0}^{m} (-1)^{m-i} \\frac{m!}{i!} u^i`
    (m = 0: :math:`\\rho`; m = 1: :math:`\\rho(u - 1)`; m = 2: :math:`\\rho(u^2 - 2u + 2)`).

    Args:
        rho: :math:`\\rho > 0`.
        power: m >= 0.
    """
    u = math.log(rho)
    total = sum(
        (-1) ** (power - i) * math.factorial(power) / math.factorial(i) * u**i
        for i in range(power + 1)
    )
    return float(rho * total)


def deis_coefficients(rho_t: float, rhos: Sequence[float]) -> list[float]:
    """The weights of the stored noise predictions in one multistep DEIS step.

    :math:`C_j = \\int_{\\rho_{s_0}}^{\\rho_t} \\ell_j(\\log\\rho)\\,d\\rho` where
    :math:`\\ell_j(u) = \\prod_{k \\ne j} \\frac{u - u_k}{u_j - u_k}` on the nodes
    :math:`u_k = \\log\\rho_{s_k}`. One node gives :math:`C_0 = \\rho_t - \\rho_{s_0}` (DDIM).

    Args:
        rho_t: :math:`\\rho` of the target timestep.
        rhos: :math:`\\rho_{s_0}, \\rho_{s_1}, ...` of the current and previous timesteps (1-3).

    Returns:
        one coefficient per node, in the order of ``rhos``.

    References:
        The exponential integrator with polynomial extrapolation of
        :math:`\\epsilon_\\theta` (AB-DEIS), Sec. 4 of arXiv:2204.13902, with the polynomial in
        :math:`\\log\\rho` (the "logrho" solver type of the diffusers format).
    """
    nodes = [math.log(r) for r in rhos]
    rho_s0 = rhos[0]
    coefficients = []
    for j, u_j in enumerate(nodes):
        others = [u for k, u in enumerate(nodes) if k != j]
        # prod_k (u - u_k), highest power first; its value at u_j normalises the basis polynomial.
        poly = np.poly(others) if others else np.ones(1)
        degree = len(poly) - 1
        integral = sum(
            float(a) * (rho_log_moment(rho_t, degree - p) - rho_log_moment(rho_s0, degree - p))
            for p, a in enumerate(poly)
        )
        coefficients.append(integral / float(np.prod([u_j - u for u in others])))
    return coefficients


def deis_update(
    x_s: torch.Tensor,
    eps: Sequence[torch.Tensor],
    alpha_s0: float,
    alpha_t: float,
    rho_t: float,
    rhos: Sequence[float],
) -> torch.Tensor:
    """One multistep DEIS step: :math:`x_t = \\alpha_t (x_s/\\alpha_{s_0} + \\sum_j C_j \\epsilon_j)`.

    Exact integration of :math:`d(x/\\alpha) = \\epsilon_\\theta\\,d\\rho` with
    :math:`\\epsilon_\\theta` replaced by its Lagrange extrapolation (see
    :func:`deis_coefficients`).

    Args:
        x_s: (B, C, ...) sample at the current timestep :math:`s_0`.
        eps: (B, C, ...) noise predictions at :math:`s_0, s_1, ...` (current first), 1-3 of them.
        alpha_s0: :math:`\\alpha_{s_0}`.
        alpha_t: :math:`\\alpha_t` of the target timestep.
        rho_t: :math:`\\rho_t = \\sigma_t/\\alpha_t` of the target timestep.
        rhos: :math:`\\rho` of the timesteps of ``eps``.

    Returns:
        (B, C, ...) the sample at the target timestep.

    References:
        Exponential integrator and AB-DEIS, Sec. 3-4 of arXiv:2204.13902.
    """
    out = x_s / alpha_s0
    for c, e in zip(deis_coefficients(rho_t, rhos), eps, strict=True):
        out = out + c * e
    return alpha_t * out


# --------------------------------------------------------------------------------------------------
# Config, state, scheduler
# --------------------------------------------------------------------------------------------------


class DEISMultistepSchedulerConfig(MultistepSchedulerConfig):
    """Config of :class:`DEISMultistepScheduler` (the diffusers ``scheduler_config.json`` keys).

    ``clip_sample`` is inherited but not used (diffusers ignores it too); ``thresholding`` bounds
    the data prediction before it is turned back into a noise prediction.
    """

    algorithm_type: Literal["deis"] = "deis"
    solver_type: Literal["logrho"] = "logrho"

    @field_validator("algorithm_type", mode="before")
    @classmethod
    def _foreign_algorithm(cls, value: Any) -> Any:
        # A DPM-Solver config swapped in names its own algorithm; DEIS is the counterpart.
        return "deis" if value in ("dpmsolver", "dpmsolver++") else value

    @field_validator("solver_type", mode="before")
    @classmethod
    def _foreign_solver_type(cls, value: Any) -> Any:
        return "logrho" if value in ("midpoint", "heun", "bh1", "bh2") else value


#: The multistep history of this scheduler (the core's explicit multistep state).
DEISState = MultistepState


class DEISMultistepScheduler(MultistepSchedulerMixin):
    """DEIS multistep sampler (orders 1-3), a drop-in for DDPM/DDIM schedulers.

    The core's multistep mixin keeps the history explicit (:class:`DEISState`, stop, save and
    resume: see :class:`~diffusers_hub.multistep.MultistepSchedulerMixin`); this class adds the
    DEIS math. ``scheduler.sigmas`` holds the noise levels :math:`\\rho` of the schedule.

    References:
        Zhang, Chen 2022, DEIS, arXiv:2204.13902.

    Example:
        >>> import torch
        >>> from diffusers_hub_deis import DEISMultistepScheduler
        >>> scheduler = DEISMultistepScheduler(solver_order=3)
        >>> scheduler.set_timesteps(10)
        >>> x = torch.randn(1, 3, 8, 8)
        >>> for t in scheduler.timesteps:
        ...     eps = torch.zeros_like(x)  # a model's noise prediction
        ...     x = scheduler.step(eps, t, x).prev_sample
        >>> scheduler.state.step_index
        10
    """

    config_class = DEISMultistepSchedulerConfig
    config: DEISMultistepSchedulerConfig
    compatibles = ("DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler")

    def convert_model_output(
        self, model_output: torch.Tensor, sample: torch.Tensor, sigma: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The noise prediction :math:`\\epsilon_\\theta` DEIS extrapolates, and the data prediction.

        With ``thresholding`` the data prediction is thresholded first and the noise prediction
        recomputed from it.

        Args:
            model_output: (B, C, ...) raw network output (per ``prediction_type``).
            sample: (B, C, ...) the current sample.
            sigma: its noise level :math:`\\rho = \\sigma_t/\\alpha_t`.

        Returns:
            (eps, x0), both (B, C, ...).
        """
        c = self.config
        alpha_bar = 1.0 / (1.0 + sigma * sigma)
        x0 = predict_x0(model_output, sample, alpha_bar, c.prediction_type)
        if c.thresholding:
            x0 = dynamic_threshold(x0, c.dynamic_thresholding_ratio, c.sample_max_value)
            return eps_from_x0(x0, sample, alpha_bar), x0
        return predict_eps(model_output, sample, alpha_bar, c.prediction_type), x0

    def solver_step(
        self, index: int, timestep: int, sample: Tensor, model_output: Tensor, history: History
    ) -> StepResult:
        """One DEIS step from ``timestep`` (step ``index``) to the next timestep.

        Notation: ``eps`` are the noise predictions at the current and previous steps (current
        first), ``rhos`` their :math:`\\rho = \\sigma/\\alpha` (the table ``self.sigmas``),
        ``order`` the number of them used (see the module docstring).

        Returns:
            the sample at the next timestep, the data prediction, the new history.
        """
        i = index
        rho_s0 = float(self.sigmas[i])
        eps0, x0 = self.convert_model_output(model_output, sample, rho_s0)
        order = self.order_at(i, history)
        eps = [eps0, *reversed(history)][:order]
        rhos = [float(self.sigmas[i - k]) for k in range(order)]
        rho_t = float(self.sigmas[i + 1])
        alpha_s0 = 1.0 / math.sqrt(1.0 + rho_s0 * rho_s0)
        alpha_t = 1.0 / math.sqrt(1.0 + rho_t * rho_t)
        prev = deis_update(sample, eps, alpha_s0, alpha_t, rho_t, rhos)
        return prev, x0, self.recorded(i, timestep, eps0, history)
