"""The scheduler base: config schema, step output, and the behaviour every scheduler shares.

A scheduler turns a model output at timestep ``t`` into the previous (less noisy) sample
(``step``), adds noise for training (``add_noise``, eq. 4 of arXiv:2006.11239) and gives the training
target of its prediction type (``training_target``). :class:`SchedulerMixin` computes the beta
schedule once, in float64, from the config, and keeps the timestep schedule set by
``set_timesteps``. ``step`` depends only on its arguments and that schedule, never on how often it
was called.

Numpy arrays work wherever tensors do: arrays in, arrays out (converted at the boundary).

Example:
    >>> from diffusers_hub.scheduling import SchedulerConfig
    >>> SchedulerConfig.from_dict({"timesteps": 50, "tensor_format": "np"}).num_train_timesteps
    50
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pydantic
import torch
from pydantic import Field

from diffusers_hub import schedules
from diffusers_hub.config import (
    LIMITS,
    ComponentConfig,
    ConfigMixin,
    PretrainedMixin,
    TrainTimesteps,
)
from diffusers_hub.errors import ConfigError
from diffusers_hub.noise import GeneratorLike, step_noise

__all__ = [
    "ArrayLike",
    "Beta",
    "GeneratorLike",
    "SchedulerConfig",
    "SchedulerMixin",
    "SchedulerOutput",
    "StepNoise",
    "TimestepList",
    "Timesteps",
    "as_tensor",
    "restore_type",
    "step_output",
    "timestep_to_int",
]

logger = logging.getLogger(__name__)

#: A sample: a torch tensor or a numpy array (returned as the same type).
ArrayLike = torch.Tensor | npt.NDArray[Any]


#: Where a step gets its noise: ``noise(like)`` is standard normal noise of ``like``'s shape, dtype
#: and device, drawn from ``step``'s ``generator`` or taken from its ``variance_noise``
#: (:func:`diffusers_hub.noise.step_noise`).
StepNoise = Callable[[torch.Tensor], torch.Tensor]

#: An explicit schedule, for ``set_timesteps(timesteps=...)``.
TimestepList = Sequence[int] | npt.NDArray[Any] | torch.Tensor

#: One timestep, or (B,) timesteps (one per batch item).
Timesteps = int | torch.Tensor | npt.NDArray[Any]

#: A beta, the variance of one forward step: in (0, 1) (beta = 1 erases the signal).
Beta = Annotated[float, Field(gt=0.0, lt=1.0)]


class SchedulerConfig(ComponentConfig):
    """Fields shared by every discrete-time scheduler (the diffusers ``scheduler_config.json`` keys).

    Attributes:
        num_train_timesteps: T, the number of diffusion steps the model was trained with.
        beta_start: first beta (linear, scaled_linear, sigmoid schedules).
        beta_end: last beta.
        beta_schedule: how betas are spaced (see :func:`diffusers_hub.schedules.betas_for_schedule`).
        trained_betas: explicit betas (T values); win over ``beta_schedule``.
        prediction_type: what the model predicts: noise, the clean sample, or v.
        timestep_spacing: how ``set_timesteps(n)`` picks n of the T timesteps.
        steps_offset: added to ``leading`` timesteps (latent diffusion uses 1).
        clip_sample: clip the predicted clean sample to ``[-clip_sample_range, clip_sample_range]``.
        clip_sample_range: the clipping bound.
        thresholding: use dynamic thresholding (arXiv:2205.11487) instead of clipping.
        dynamic_thresholding_ratio: the quantile used by dynamic thresholding.
        sample_max_value: the largest dynamic threshold.
        rescale_betas_zero_snr: rescale betas to zero terminal SNR (arXiv:2305.08891).
    """

    legacy_keys: ClassVar[dict[str, str]] = {
        "timesteps": "num_train_timesteps",
        "clip_predicted_image": "clip_sample",
    }
    obsolete_keys: ClassVar[frozenset[str]] = frozenset({"tensor_format", "timestep_values"})

    num_train_timesteps: TrainTimesteps = 1000
    beta_start: Beta = 0.0001
    beta_end: Beta = 0.02
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"] = "linear"
    trained_betas: list[float] | None = Field(default=None, max_length=LIMITS["timesteps"])
    prediction_type: Literal["epsilon", "sample", "v_prediction"] = "epsilon"
    timestep_spacing: Literal["leading", "trailing", "linspace"] = "leading"
    steps_offset: int = Field(default=0, ge=0)
    clip_sample: bool = True
    clip_sample_range: float = Field(default=1.0, gt=0.0)
    thresholding: bool = False
    dynamic_thresholding_ratio: float = Field(default=0.995, gt=0.0, le=1.0)
    sample_max_value: float = Field(default=1.0, ge=1.0)
    rescale_betas_zero_snr: bool = False

    @pydantic.field_validator("trained_betas", mode="before")
    @classmethod
    def _betas_to_list(cls, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().double().reshape(-1).tolist()
        if isinstance(value, np.ndarray | tuple):
            return np.asarray(value, dtype=np.float64).reshape(-1).tolist()
        return value

    @pydantic.model_validator(mode="after")
    def _check_schedule(self) -> SchedulerConfig:
        if self.steps_offset >= self.num_train_timesteps:
            raise ValueError(
                f"steps_offset={self.steps_offset} must be smaller than num_train_timesteps="
                f"{self.num_train_timesteps} (latent diffusion uses 1)"
            )
        betas = self.trained_betas
        if betas is not None:
            if len(betas) != self.num_train_timesteps:
                raise ValueError(
                    f"trained_betas holds {len(betas)} values but num_train_timesteps is "
                    f"{self.num_train_timesteps}; they must agree"
                )
            bad = [b for b in betas if not 0.0 < b <= 1.0]
            if bad:
                raise ValueError(f"trained_betas must lie in (0, 1]; got {bad[:3]}")
        elif self.beta_end < self.beta_start and self.beta_schedule != "squaredcos_cap_v2":
            raise ValueError(
                f"beta_end={self.beta_end} is smaller than beta_start={self.beta_start}: noise "
                "must grow along the schedule; swap the two values"
            )
        return self


@dataclass
class SchedulerOutput:
    """What ``step`` returns; unpacks and indexes like a tuple of its non-None fields.

    Attributes:
        prev_sample: (B, C, ...) the sample at the previous timestep, x_{t-1}.
        pred_original_sample: (B, C, ...) the model's estimate of the clean sample x_0.

    Example:
        >>> out = SchedulerOutput(prev_sample=1, pred_original_sample=2)
        >>> prev, x0 = out
        >>> (prev, x0, out[0], out["pred_original_sample"])
        (1, 2, 1, 2)
    """

    prev_sample: Any
    pred_original_sample: Any = None

    def to_tuple(self) -> tuple[Any, ...]:
        """The non-None fields in declaration order."""
        values = (getattr(self, f.name) for f in dataclasses.fields(self))
        return tuple(v for v in values if v is not None)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.to_tuple())

    def __len__(self) -> int:
        return len(self.to_tuple())

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            return getattr(self, key)
        return self.to_tuple()[key]


# --------------------------------------------------------------------------------------------------
# Boundary helpers (numpy <-> torch, timesteps)
# --------------------------------------------------------------------------------------------------


def as_tensor(value: ArrayLike) -> tuple[torch.Tensor, bool]:
    """``value`` as a torch tensor, and whether it was a numpy array (zero-copy when possible)."""
    if isinstance(value, np.ndarray):
        array = value if value.flags.writeable else value.copy()
        return torch.from_numpy(np.ascontiguousarray(array)), True
    if isinstance(value, torch.Tensor):
        return value, False
    raise TypeError(f"expected a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


def restore_type(value: torch.Tensor, was_numpy: bool) -> ArrayLike:
    """Undo :func:`as_tensor`: a numpy array when the input was one."""
    return value.cpu().numpy() if was_numpy else value


def step_output(
    prev: torch.Tensor, x0: torch.Tensor, was_numpy: bool, return_dict: bool
) -> SchedulerOutput | tuple[ArrayLike, ArrayLike]:
    """What ``step`` returns: the previous sample and the clean-sample estimate, numpy arrays
    again when the input was one (:func:`as_tensor`), as a :class:`SchedulerOutput` or a tuple."""
    out = SchedulerOutput(restore_type(prev, was_numpy), restore_type(x0, was_numpy))
    return out if return_dict else (out.prev_sample, out.pred_original_sample)


def timestep_to_int(timestep: int | float | torch.Tensor | np.integer[Any] | np.ndarray) -> int:
    """A single timestep (Python number, 0-dim or 1-element tensor or array) as an int.

    Raises:
        ValueError: the value holds several timesteps or is not an integer.
    """
    if isinstance(timestep, torch.Tensor | np.ndarray):
        count = timestep.size if isinstance(timestep, np.ndarray) else timestep.numel()
        if count != 1:
            raise ValueError(f"step() takes one timestep, got {tuple(timestep.shape)} values")
        value: Any = timestep.item()
    else:
        value = timestep
    as_int = int(value)
    if as_int != value:
        raise ValueError(f"timestep must be an integer, got {value!r}")
    return as_int


# --------------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------------


class SchedulerMixin(ConfigMixin, PretrainedMixin):
    """Base of every scheduler: the beta schedule, the timestep schedule, noising and targets.

    Subclasses set ``config_class`` and implement ``step_tensors`` (or ``step``). The constructor
    takes a config object and/or its fields as keywords. Beta-related fields are read once, at
    construction.

    Attributes:
        betas: (T,) betas (float64 tensor of the format's float32 values, see
            :mod:`diffusers_hub.schedules`).
        alphas: (T,) ``1 - betas``, likewise.
        alphas_cumprod: (T,) $\\bar\\alpha_t$, likewise.
        timesteps: (n,) int64 timesteps the sampler visits, in order; before ``set_timesteps``,
            all T training timesteps.
        num_inference_steps: n after ``set_timesteps``, else None.
        custom_timesteps: whether the schedule is an explicit list.
    """

    config_class: ClassVar[type[ComponentConfig]] = SchedulerConfig
    config_name: ClassVar[str] = "scheduler_config.json"
    default_subfolder: ClassVar[str | None] = "scheduler"
    #: Model evaluations per step (1 for DDPM and DDIM).
    order: ClassVar[int] = 1
    #: Scale of the initial noise x_T.
    init_noise_sigma: float = 1.0
    #: Registry names of schedulers that read the same config (``B.from_config(a.config)``).
    compatibles: ClassVar[tuple[str, ...]] = ()
    #: Whether ``timesteps`` run from noisy to clean (False for inversion).
    timesteps_descending: ClassVar[bool] = True
    #: How many outputs ``step(..., return_dict=False)`` returns (1: ``prev_sample`` only).
    step_tuple_size: ClassVar[int] = 2

    config: SchedulerConfig

    def __init__(
        self, config: ComponentConfig | Mapping[str, Any] | None = None, **fields: Any
    ) -> None:
        super().__init__(config, **fields)
        c = self.config
        betas = schedules.betas_for_schedule(
            c.beta_schedule, c.num_train_timesteps, c.beta_start, c.beta_end, c.trained_betas
        )
        if c.rescale_betas_zero_snr:
            betas = schedules.rescale_zero_terminal_snr(betas)
        alpha_bar = schedules.alphas_cumprod(betas)
        erased = np.flatnonzero(
            alpha_bar[:-1] <= 0.0 if c.rescale_betas_zero_snr else alpha_bar <= 0.0
        )
        if erased.size:
            raise ConfigError(
                f"{type(self).__name__}: the {c.beta_schedule} schedule (beta_start={c.beta_start}, "
                f"beta_end={c.beta_end}, num_train_timesteps={c.num_train_timesteps}) erases the "
                f"signal: alpha_bar is 0 from timestep {int(erased[0])} on, where samplers divide "
                "by zero. Lower beta_end or num_train_timesteps."
            )
        self.betas = torch.from_numpy(betas)
        self.alphas = torch.from_numpy(schedules.alphas(betas))
        self.alphas_cumprod = torch.from_numpy(alpha_bar)
        #: the same values as Python floats, for fast scalar lookups in ``step``
        self._alpha_bar: list[float] = alpha_bar.tolist()
        self._noise_tables: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, ...]] = {}
        self.num_inference_steps: int | None = None
        self.custom_timesteps = False
        train = np.arange(c.num_train_timesteps, dtype=np.int64)
        self._install_timesteps(train[::-1] if self.timesteps_descending else train, None)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.config.to_dict().items())
        return f"{type(self).__name__}({fields})"

    def __len__(self) -> int:
        """T, the number of training timesteps."""
        return self.config.num_train_timesteps

    # ---------------------------------------------------------------- loading and saving

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write ``scheduler_config.json`` (with ``_class_name``) into ``directory``, atomically."""
        self.save_config(directory)

    @classmethod
    def compatible_classes(cls) -> list[type[SchedulerMixin]]:
        """The installed scheduler classes named in ``compatibles`` (resolved via the registry)."""
        from diffusers_hub.errors import RegistryError

        try:
            from diffusers_hub import registry
        except ImportError:  # the registry is part of the core; tolerate partial installs
            return []
        found: list[type[SchedulerMixin]] = []
        for name in cls.compatibles:
            try:
                obj = registry.scheduler(name)
            except RegistryError:
                continue
            if isinstance(obj, type) and issubclass(obj, SchedulerMixin):
                found.append(obj)
        return found

    # ---------------------------------------------------------------- timesteps

    def _install_timesteps(
        self, timesteps: npt.NDArray[np.int64], device: str | torch.device | None
    ) -> None:
        values = np.array(timesteps, dtype=np.int64, copy=True)  # fresh, positive strides
        self.timesteps = torch.from_numpy(values).to(device) if device else torch.from_numpy(values)
        self._timestep_list: list[int] = values.tolist()
        self._position: dict[int, int] = {t: i for i, t in enumerate(self._timestep_list)}

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        timesteps: TimestepList | None = None,
    ) -> None:
        """Choose the timesteps of sampling (:meth:`plan_timesteps` picks them).

        Args:
            num_inference_steps: n; the config's ``timestep_spacing`` picks n of the T timesteps.
            device: where ``self.timesteps`` goes.
            timesteps: an explicit list instead of n (descending; ascending for inversion).

        Raises:
            ValueError: neither or both of ``num_inference_steps`` and ``timesteps``, or invalid
                values (see :func:`diffusers_hub.schedules.spaced_timesteps`).
        """
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError("pass exactly one of num_inference_steps and timesteps")
        values, n = self.plan_timesteps(num_inference_steps, timesteps)
        self.custom_timesteps = timesteps is not None
        self.num_inference_steps = n
        self._install_timesteps(values, device)

    def plan_timesteps(
        self, num_inference_steps: int | None, timesteps: TimestepList | None
    ) -> tuple[npt.NDArray[np.int64], int]:
        """The timesteps that ``set_timesteps`` installs, and n (exactly one argument is given).

        Raises:
            ValueError: invalid values (see :func:`diffusers_hub.schedules.spaced_timesteps`).
        """
        c = self.config
        if timesteps is not None:
            values = schedules.validate_timesteps(
                timesteps, c.num_train_timesteps, descending=self.timesteps_descending
            )
        else:
            assert num_inference_steps is not None
            values = schedules.spaced_timesteps(
                c.num_train_timesteps, num_inference_steps, c.timestep_spacing, c.steps_offset
            )
            if not self.timesteps_descending:
                values = values[::-1]
        return values, int(values.shape[0])

    def previous_timestep(self, timestep: int) -> int:
        """The timestep that ``step`` moves to from ``timestep``: the next one in the schedule.

        Before ``set_timesteps`` this is ``timestep - 1``; after the last scheduled timestep it
        is -1 (the clean end, $\\bar\\alpha = 1$).

        Raises:
            ValueError: ``timestep`` is not in the schedule set by ``set_timesteps``.
        """
        if self.num_inference_steps is None:
            self.check_timestep(timestep)
            return timestep - 1
        index = self.check_timestep(timestep)
        nxt = index + 1
        return self._timestep_list[nxt] if nxt < len(self._timestep_list) else -1

    def check_timestep(self, timestep: int) -> int:
        """The position of ``timestep`` in the current schedule.

        Raises:
            ValueError: ``timestep`` is outside the training range [0, T), or, after
                ``set_timesteps``, not one of the scheduled timesteps.
        """
        total = self.config.num_train_timesteps
        if not 0 <= timestep < total:
            raise ValueError(
                f"timestep {timestep} is outside the training schedule [0, {total - 1}]; pass one "
                "of scheduler.timesteps"
            )
        if self.num_inference_steps is None:
            return total - 1 - timestep if self.timesteps_descending else timestep
        index = self._position.get(timestep)
        if index is None:
            raise ValueError(
                f"timestep {timestep} is not in the schedule set by set_timesteps "
                f"({self._timestep_list[:3]} ... {self._timestep_list[-3:]}); pass one of "
                "scheduler.timesteps"
            )
        return index

    def scale_model_input(
        self, sample: ArrayLike, timestep: int | torch.Tensor | None = None
    ) -> ArrayLike:
        """The model input at ``timestep``; discrete DDPM-family schedulers return ``sample``."""
        return sample

    def step(
        self,
        model_output: ArrayLike,
        timestep: int | float | torch.Tensor,
        sample: ArrayLike,
        generator: GeneratorLike = None,
        variance_noise: ArrayLike | None = None,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple[ArrayLike, ...]:
        """Move ``sample`` from ``timestep`` to the previous timestep: :meth:`step_tensors` on the
        inputs as tensors, its results in the sample's type (numpy arrays stay numpy arrays).

        Args:
            model_output: (B, C, ...) the model output at ``timestep``.
            timestep: the current timestep (one of ``self.timesteps``).
            sample: (B, C, ...) the current sample.
            generator: torch generator(s) or numpy generator for the noise, if the step draws any.
            variance_noise: (B, C, ...) the noise to use instead of drawing it.
            return_dict: return a :class:`SchedulerOutput` (else a tuple of its first
                ``step_tuple_size`` fields).
        """
        x, was_numpy = as_tensor(sample)
        out = as_tensor(model_output)[0]
        t = self.step_timestep(timestep)
        prev, x0 = self.step_tensors(
            out, t, x, functools.partial(step_noise, generator, variance_noise)
        )
        output = step_output(prev, x0, was_numpy, return_dict)
        return output if return_dict else output[: self.step_tuple_size]

    def step_timestep(self, timestep: int | float | torch.Tensor) -> int:
        """What :meth:`step_tensors` receives for ``step``'s timestep: it as an int."""
        return timestep_to_int(timestep)

    def step_tensors(
        self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, noise: StepNoise
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The step on tensors (what a scheduler implements): the sample at the previous timestep
        and the clean-sample estimate. ``noise(like)`` gives the step's noise (:data:`StepNoise`);
        the other arguments are :meth:`step`'s."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    # ---------------------------------------------------------------- per-sample schedule math

    def alpha_bar(self, timestep: int) -> float:
        """$\\bar\\alpha_t$ of one training timestep as a float (1.0 for t < 0)."""
        return 1.0 if timestep < 0 else self._alpha_bar[timestep]

    def apply_x0_constraints(self, x0: torch.Tensor) -> torch.Tensor:
        """Dynamic thresholding or clipping of a predicted clean sample, as configured (in place
        for clipping, so pass a fresh tensor)."""
        c = self.config
        if c.thresholding:
            return schedules.dynamic_threshold(x0, c.dynamic_thresholding_ratio, c.sample_max_value)
        if c.clip_sample:
            return x0.clamp_(-c.clip_sample_range, c.clip_sample_range)
        return x0

    def _noise_table(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sqrt(alpha_bar), sqrt(1 - alpha_bar), alpha_bar) in ``like``'s dtype and device."""
        key = (like.device, like.dtype)
        table = self._noise_tables.get(key)
        if table is None:
            ab = self.alphas_cumprod
            table = tuple(
                v.to(device=like.device, dtype=like.dtype)
                for v in (ab.sqrt(), (1.0 - ab).sqrt(), ab)
            )
            self._noise_tables[key] = table
        return table[0], table[1], table[2]

    def _gather(
        self, timesteps: Timesteps, like: torch.Tensor
    ) -> tuple[torch.Tensor | float, torch.Tensor | float, torch.Tensor | float]:
        """Per-item sqrt(ab), sqrt(1-ab), ab for ``timesteps``, shaped to broadcast over ``like``."""
        if isinstance(timesteps, int | np.integer):
            value = self._alpha_bar[int(timesteps)]
            return value**0.5, (1.0 - value) ** 0.5, value
        index = torch.as_tensor(timesteps).to(device=like.device, dtype=torch.long)
        sqrt_ab, sqrt_1m, ab = self._noise_table(like)
        shape = (-1,) + (1,) * (like.ndim - 1) if index.ndim > 0 else ()
        return (
            sqrt_ab[index].reshape(shape),
            sqrt_1m[index].reshape(shape),
            ab[index].reshape(shape),
        )

    def add_noise(
        self,
        original_samples: ArrayLike,
        noise: ArrayLike,
        timesteps: Timesteps,
    ) -> ArrayLike:
        """Sample $q(x_t \\mid x_0)$: ``sqrt(ab_t) * x0 + sqrt(1 - ab_t) * noise``.

        Args:
            original_samples: (B, C, ...) clean samples x_0.
            noise: (B, C, ...) standard normal noise.
            timesteps: one timestep, or (B,) timesteps (one per item).

        Returns:
            (B, C, ...) noisy samples x_t, same type and dtype as ``original_samples``.

        References:
            eq. 4, arXiv:2006.11239.
        """
        x0, was_numpy = as_tensor(original_samples)
        eps = as_tensor(noise)[0].to(device=x0.device, dtype=x0.dtype)
        sqrt_ab, sqrt_1m, _ = self._gather(timesteps, x0)
        noisy = x0 * sqrt_ab + eps * sqrt_1m  # eq. 4, arXiv:2006.11239
        return restore_type(noisy, was_numpy)

    def get_velocity(
        self,
        sample: ArrayLike,
        noise: ArrayLike,
        timesteps: Timesteps,
    ) -> ArrayLike:
        """The v target ``sqrt(ab_t) * noise - sqrt(1 - ab_t) * sample`` (section 4, arXiv:2202.00512).

        Args:
            sample: (B, C, ...) clean samples x_0.
            noise: (B, C, ...) the noise added to them.
            timesteps: one timestep, or (B,) timesteps.
        """
        x0, was_numpy = as_tensor(sample)
        eps = as_tensor(noise)[0].to(device=x0.device, dtype=x0.dtype)
        sqrt_ab, sqrt_1m, _ = self._gather(timesteps, x0)
        return restore_type(eps * sqrt_ab - x0 * sqrt_1m, was_numpy)

    def training_target(
        self,
        original_samples: ArrayLike,
        noise: ArrayLike,
        timesteps: Timesteps,
    ) -> ArrayLike:
        """What the model should output for ``add_noise(original_samples, noise, timesteps)``.

        ``epsilon``: the noise (eq. 14, arXiv:2006.11239); ``sample``: the clean samples;
        ``v_prediction``: :meth:`get_velocity` (arXiv:2202.00512).

        Returns:
            (B, C, ...) target, same type as ``original_samples``.
        """
        kind = self.config.prediction_type
        if kind == "epsilon":
            x0, was_numpy = as_tensor(original_samples)
            return restore_type(as_tensor(noise)[0].to(device=x0.device, dtype=x0.dtype), was_numpy)
        if kind == "sample":
            return original_samples
        return self.get_velocity(original_samples, noise, timesteps)
