"""BDDMScheduler: DDPM ancestral sampling over a short, searched noise schedule (Lam et al. 2022).

A bilateral denoising diffusion model trains its score network on a long schedule (T = 200 linear
betas for the vocoders) and samples with a handful of steps whose betas a schedule network found
(12 steps on LJSpeech). Each inference step n has a beta ``b_n``; with
$\\hat\\alpha_n = \\prod_{i \\le n} \\sqrt{1 - b_i}$ the score network is queried at the
*continuous* training step whose noise scale equals $\\hat\\alpha_n$ (linear interpolation between
the training steps), and the update is the DDPM ancestral step

$$x_{n-1} = \\frac{1}{\\sqrt{1 - b_n}}\\Big(x_n - \\frac{b_n}{\\sqrt{1 - \\hat\\alpha_n^2}}\\,
\\epsilon_\\theta(x_n, t_n)\\Big) + \\sigma_n z, \\qquad
\\sigma_n^2 = b_n \\frac{1 - \\hat\\alpha_{n-1}^2}{1 - \\hat\\alpha_n^2},$$

without noise at the last step. ``temperature`` (config field or ``set_timesteps`` argument)
multiplies $\\sigma_n$: 1 is the sampler above; under 1 each step lands nearer its mean, and 0
takes the mean at every step (the idea of sampling a flow vocoder such as WaveGlow at a reduced
standard deviation, applied to each reverse step). Without a searched schedule,
``set_timesteps(n)`` respaces the training schedule (``b = 1 - alpha_bar_t / alpha_bar_prev``
between the chosen steps), and with n = T it is the plain DDPM sampler.

References:
    Lam, Wang, Su, Yu. BDDM: Bilateral Denoising Diffusion Models for Fast and High-Quality Speech
    Synthesis. ICLR 2022, arXiv:2203.13508 (Algorithm 3, sampling; eq. 5).
    Kong et al. DiffWave, arXiv:2009.09761 (Algorithm 3, continuous steps for fast sampling).
    Prenger et al. WaveGlow, arXiv:1811.00002 (sampling at a standard deviation of 0.6).
    Ho et al. 2020, arXiv:2006.11239 (Algorithm 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from pydantic import Field, field_validator

from diffusers_hub import schedules
from diffusers_hub.config import LIMITS, TrainTimesteps
from diffusers_hub.scheduling import Beta, SchedulerConfig, SchedulerMixin, StepNoise

__all__ = [
    "LJSPEECH_12_STEPS",
    "BDDMScheduler",
    "BDDMSchedulerConfig",
    "InferenceSchedule",
    "bddm_step",
    "check_temperature",
    "noise_scale_to_timestep",
]

#: The 12-step schedule BDDM's schedule network found for its LJSpeech DiffWave (PESQ 4.07,
#: STOI 0.978 in the paper's release), betas from the clean end up.
LJSPEECH_12_STEPS: tuple[float, ...] = (
    1.2412e-4,
    9.1087e-4,
    7.4849e-3,
    0.093312,
    0.14349,
    0.15208,
    0.15971,
    0.16683,
    0.17371,
    0.18045,
    0.18714,
    0.19382,
)


class BDDMSchedulerConfig(SchedulerConfig):
    """BDDM scheduler fields: the training schedule (T = 200 linear betas from 1e-4 to 0.02, as
    BDDM's vocoders were trained) and an optional searched inference schedule.

    Attributes:
        noise_schedule: the searched betas $b_1 \\dots b_N$ from the clean end up (for example
            :data:`LJSPEECH_12_STEPS`); ``set_timesteps()`` without arguments uses them.
        temperature: factor on the standard deviation $\\sigma_n$ of the noise each reverse
            step adds (1: the DDPM / BDDM sampler; 0: the mean of every step). A searched
            scheduler folder records the temperature its schedule was scored at.
    """

    num_train_timesteps: TrainTimesteps = 200
    beta_start: Beta = 0.0001
    beta_end: Beta = 0.02
    clip_sample: bool = False
    noise_schedule: list[float] | None = Field(default=None, max_length=LIMITS["timesteps"])
    temperature: float = Field(default=1.0, ge=0.0, le=1.0)

    @field_validator("rescale_betas_zero_snr")
    @classmethod
    def _no_zero_snr(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "BDDM's noise scales need alpha_bar > 0 at every step; zero terminal SNR is not "
                "supported (set it to false)"
            )
        return value

    @field_validator("noise_schedule")
    @classmethod
    def _check_noise_schedule(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("noise_schedule must hold at least one beta (or be null)")
        bad = [b for b in value if not 0.0 < b < 1.0]
        if bad:
            raise ValueError(f"noise_schedule betas must lie in (0, 1); got {bad[:3]}")
        return [float(b) for b in value]


@dataclass(frozen=True)
class InferenceSchedule:
    """The per-step quantities of an inference schedule, indexed from the clean end (n = 0).

    Attributes:
        betas: (N,) $b_n$.
        noise_scales: (N,) $\\hat\\alpha_n = \\sqrt{\\prod_{i \\le n} (1 - b_i)}$.
        sigmas: (N,) $\\sigma_n$ times the temperature (``sigmas[0]``, never used: the last step
            adds no noise).
        timesteps: (N,) the continuous training steps $t_n$ the score network is queried at.
    """

    betas: npt.NDArray[np.float64]
    noise_scales: npt.NDArray[np.float64]
    sigmas: npt.NDArray[np.float64]
    timesteps: npt.NDArray[np.float64]

    @classmethod
    def from_betas(
        cls,
        betas: Sequence[float] | npt.ArrayLike,
        train_noise_scales: npt.NDArray[np.float64],
        timesteps: Sequence[float] | npt.ArrayLike | None = None,
        temperature: float = 1.0,
    ) -> InferenceSchedule:
        """Build the schedule of ``betas`` (clean end first) against the training noise scales.

        Args:
            betas: (N,) betas in (0, 1).
            train_noise_scales: (T,) $\\sqrt{\\bar\\alpha_t}$ of the training schedule.
            timesteps: (N,) the training steps to query; computed with
                :func:`noise_scale_to_timestep` when None.
            temperature: factor on every $\\sigma_n$ (in [0, 1]).
        """
        b = np.asarray(betas, dtype=np.float64).reshape(-1)
        alpha_bar = np.cumprod(1.0 - b)
        sigmas_sq = b.copy()
        sigmas_sq[1:] = b[1:] * (1.0 - alpha_bar[:-1]) / (1.0 - alpha_bar[1:])
        scales = np.sqrt(alpha_bar)
        if timesteps is None:
            steps = np.array([noise_scale_to_timestep(a, train_noise_scales) for a in scales])
        else:
            steps = np.asarray(timesteps, dtype=np.float64).reshape(-1)
            if steps.shape != b.shape:
                raise ValueError(f"{steps.shape[0]} timesteps given for {b.shape[0]} betas")
        sigmas = np.sqrt(sigmas_sq) * check_temperature(temperature)
        return cls(betas=b, noise_scales=scales, sigmas=sigmas, timesteps=steps)


def check_temperature(temperature: float) -> float:
    """``temperature`` as a float, or a ValueError when it lies outside [0, 1]."""
    value = float(temperature)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"temperature must lie in [0, 1]; got {temperature}")
    return value


def noise_scale_to_timestep(
    noise_scale: float, train_noise_scales: npt.NDArray[np.float64]
) -> float:
    """The continuous training step whose noise scale is ``noise_scale``.

    ``train_noise_scales`` ($\\sqrt{\\bar\\alpha_t}$, t = 0 .. T-1) decrease; between the steps t
    and t + 1 that bracket the value the step is interpolated linearly. Values above the first
    scale map to 0, values below the last to T - 1.

    References:
        Algorithm 3 of DiffWave, arXiv:2009.09761; BDDM, arXiv:2203.13508, section 6.
    """
    scales = train_noise_scales
    if noise_scale >= scales[0]:
        return 0.0
    if noise_scale <= scales[-1]:
        return float(len(scales) - 1)
    # first t with scales[t + 1] <= noise_scale (scales descend)
    t = int(np.searchsorted(-scales, -noise_scale, side="left")) - 1
    return t + float((scales[t] - noise_scale) / (scales[t] - scales[t + 1]))


def bddm_step(
    sample: torch.Tensor,
    eps: torch.Tensor,
    beta: float,
    noise_scale: float,
    sigma: float,
    noise: torch.Tensor | None,
) -> torch.Tensor:
    """One reverse step $x_n \\to x_{n-1}$ (see the module docstring).

    Args:
        sample: (B, C, L) the current sample $x_n$.
        eps: (B, C, L) the predicted noise.
        beta: $b_n$.
        noise_scale: $\\hat\\alpha_n$.
        sigma: $\\sigma_n$.
        noise: (B, C, L) standard normal noise, or None for the last step.
    """
    mean = torch.add(sample, eps, alpha=-beta / math.sqrt(1.0 - noise_scale**2))
    mean = mean.div_(math.sqrt(1.0 - beta))  # eq. 5 of arXiv:2203.13508 (the DDPM mean)
    if noise is None:
        return mean
    return mean.add_(noise, alpha=sigma)


class BDDMScheduler(SchedulerMixin):
    """Sampling of BDDM vocoders: few steps, continuous score-network timesteps.

    ``timesteps`` are float training steps, descending; ``step`` takes one of them.

    Example:
        >>> import torch
        >>> scheduler = BDDMScheduler(noise_schedule=list(LJSPEECH_12_STEPS))
        >>> scheduler.set_timesteps()
        >>> tuple(round(float(t), 2) for t in scheduler.timesteps[-3:])
        (11.57, 3.07, 0.12)
        >>> x = torch.randn(1, 1, 512, generator=torch.manual_seed(0))
        >>> for t in scheduler.timesteps:
        ...     eps = torch.zeros_like(x)  # the score network's prediction
        ...     x = scheduler.step(eps, t, x, generator=torch.manual_seed(1)).prev_sample
        >>> tuple(x.shape)
        (1, 1, 512)

    References:
        Lam et al. 2022, arXiv:2203.13508; Kong et al. 2021, arXiv:2009.09761.
    """

    config_class = BDDMSchedulerConfig
    config: BDDMSchedulerConfig
    #: the library name written into ``model_index.json`` (no diffusers class exists)
    hub_library: ClassVar[str] = "bddm"
    compatibles: ClassVar[tuple[str, ...]] = ("BDDMScheduler",)

    def __init__(self, config: Any = None, **fields: Any) -> None:
        super().__init__(config, **fields)
        #: (T,) float64 $\\sqrt{\\bar\\alpha_t}$ of the training schedule.
        self.train_noise_scales: npt.NDArray[np.float64] = np.sqrt(self.alphas_cumprod.numpy())
        self.schedule: InferenceSchedule | None = None
        self._index: dict[float, int] = {}

    def set_timesteps(  # type: ignore[override]
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        *,
        betas: Sequence[float] | None = None,
        temperature: float | None = None,
    ) -> None:
        """Choose the inference schedule.

        Args:
            num_inference_steps: respace the training schedule to this many steps (the config's
                ``timestep_spacing``); None uses ``betas`` or the config's ``noise_schedule``, or
                every training step when neither is set.
            device: where ``self.timesteps`` goes.
            betas: a searched schedule (clean end first) instead of the config's.
            temperature: factor on the noise of each step for this schedule (default: the
                config's ``temperature``).

        Raises:
            ValueError: both a step count and betas, or invalid values.
        """
        c = self.config
        if num_inference_steps is not None and betas is not None:
            raise ValueError("pass num_inference_steps or betas, not both")
        if num_inference_steps is None and betas is None and c.noise_schedule is not None:
            betas = c.noise_schedule
        temp = c.temperature if temperature is None else float(temperature)
        if betas is not None:
            values = np.asarray(betas, dtype=np.float64).reshape(-1)
            if values.size == 0 or not np.all((values > 0) & (values < 1)):
                raise ValueError("betas must be a non-empty list of values in (0, 1)")
            self.schedule = InferenceSchedule.from_betas(
                values, self.train_noise_scales, temperature=temp
            )
            self.custom_timesteps = True
        else:
            steps = c.num_train_timesteps if num_inference_steps is None else num_inference_steps
            picked = schedules.spaced_timesteps(
                c.num_train_timesteps, steps, c.timestep_spacing, c.steps_offset
            )[::-1]  # ascending from the clean end
            # b' = 1 - prod(1 - b_s) over the training steps (prev, t], from the betas in
            # float64 (not from rounded alpha_bar ratios, which lose digits near t = 0)
            log_keep = np.cumsum(np.log1p(-self.betas.numpy()))[picked]
            respaced = -np.expm1(np.diff(log_keep, prepend=0.0))
            self.schedule = InferenceSchedule.from_betas(
                respaced,
                self.train_noise_scales,
                timesteps=picked.astype(np.float64),
                temperature=temp,
            )
            self.custom_timesteps = False
        descending = self.schedule.timesteps[::-1].copy()
        self.timesteps = torch.from_numpy(descending).to(torch.float32)
        if device is not None:
            self.timesteps = self.timesteps.to(device)
        self.num_inference_steps = len(descending)
        n = len(descending)
        self._index = {float(np.float32(t)): n - 1 - i for i, t in enumerate(descending)}

    def _step_index(self, timestep: float | torch.Tensor) -> int:
        if self.schedule is None:
            raise ValueError("call set_timesteps() before step()")
        value = float(timestep.reshape(-1)[0]) if isinstance(timestep, torch.Tensor) else timestep
        index = self._index.get(float(np.float32(value)))
        if index is None:
            shown = [round(float(t), 4) for t in self.timesteps[:4]]
            raise ValueError(
                f"timestep {value} is not in the schedule set by set_timesteps ({shown} ...); "
                "pass the values of scheduler.timesteps"
            )
        return index

    def step_timestep(self, timestep: int | float | torch.Tensor) -> int:
        """The step index n of ``timestep``, a value of ``self.timesteps`` (``step`` passes it to
        :meth:`step_tensors`)."""
        return self._step_index(timestep)

    def step_tensors(
        self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, noise: StepNoise
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One reverse step from the schedule's step n to the next one (``step`` calls it).

        Notation (code name: paper symbol): ``beta``: $b_n$; ``noise_scale``:
        $\\hat\\alpha_n$; ``sigma``: $\\sigma_n$.

        Args:
            model_output: (B, C, L) predicted noise at the step's timestep.
            timestep: the step index n (:meth:`step_timestep`).
            sample: (B, C, L) the current sample.
            noise: the step's noise (none at the last step, n = 0).

        Returns:
            the next sample and $\\hat x_0 = (x_n - \\sqrt{1 - \\hat\\alpha_n^2}\\,\\epsilon)/\\hat\\alpha_n$.
        """
        assert self.schedule is not None
        n, x, eps, s = timestep, sample, model_output, self.schedule
        beta, scale, sigma = float(s.betas[n]), float(s.noise_scales[n]), float(s.sigmas[n])
        prev = bddm_step(x, eps, beta, scale, sigma, noise(x) if n > 0 else None)
        x0 = torch.add(x, eps, alpha=-math.sqrt(1.0 - scale**2)).div_(scale)
        return prev, x0

    # -- noise scheduling -------------------------------------------------------------------------

    def search(self, *args: Any, **kwargs: Any) -> Any:
        """Search a short noise schedule with a trained schedule network (BDDM's Algorithm 2).

        ``scheduler.search(score_model, schedule_network, mel, reference_audio, ...)`` is
        :func:`diffusers_hub_bddm.search.search_noise_schedule` with this scheduler as the
        training schedule; it returns a
        :class:`~diffusers_hub_bddm.search.ScheduleSearchResult` (``result.save(folder)``
        writes a scheduler folder).

        References:
            Lam et al. 2022, arXiv:2203.13508 (Algorithm 2, section 3.4).
        """
        from diffusers_hub_bddm.search import search_noise_schedule

        return search_noise_schedule(self, *args, **kwargs)
