"""The four component protocols: Model, Scheduler, Processor and Pipeline.

A plugin's component does not have to inherit from the core base classes
(:class:`~diffusers_hub.modeling.ModelMixin`, :class:`~diffusers_hub.scheduling.SchedulerMixin`,
:class:`~diffusers_hub.pipeline.DiffusionPipeline`); it has to *behave* like one. These
``typing.Protocol`` classes say what that means, and the registry checks every registered object
against the protocol of its kind before handing it out (:func:`missing_members`).

The protocols are ``runtime_checkable``: ``isinstance(obj, Scheduler)`` checks that an *instance*
has every member. Registered objects are usually *classes*, whose instance attributes (``config``,
``timesteps``) only exist after construction; for them :func:`missing_members` checks the members
that every conforming class defines on the class itself (:data:`CLASS_MEMBERS`).

This module imports no heavy package (torch is only named for type checkers).

Example:
    >>> from diffusers_hub.protocols import missing_members
    >>> class NotAScheduler:
    ...     pass
    >>> ", ".join(missing_members("scheduler", NotAScheduler)[:3])
    'set_timesteps, step, scale_model_input'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from typing_extensions import Self

__all__ = [
    "CLASS_MEMBERS",
    "PROTOCOLS",
    "Model",
    "Pipeline",
    "Processor",
    "Scheduler",
    "missing_members",
    "satisfies",
]


@runtime_checkable
class Model(Protocol):
    """A neural network with a validated config that loads and saves Hub-format folders.

    UNets, autoencoders, text encoders and vocoders are models. In practice a model is a
    ``torch.nn.Module``; the core base class :class:`~diffusers_hub.modeling.ModelMixin`
    implements everything below.

    Attributes:
        config: the validated configuration the model was built from (a pydantic
            :class:`~diffusers_hub.config.ComponentConfig`); saving writes it next to the weights.
    """

    config: Any

    @classmethod
    def from_pretrained(cls, path_or_repo: str | os.PathLike[str], **options: Any) -> Self:
        """Build the model from a folder or Hub repo id holding ``config.json`` and weights.

        Must validate the config, accept ``subfolder``, ``torch_dtype``, ``variant`` and the Hub
        options (``revision``, ``cache_dir``, ``token``, ``local_files_only``), read
        safetensors before legacy ``.bin`` files, and report missing, unexpected or mismatched
        weights by name and shape.
        """
        ...

    def save_pretrained(self, directory: str | os.PathLike[str], **options: Any) -> None:
        """Write ``config.json`` and the weights (safetensors by default) to ``directory``.

        Must be atomic: an exception midway leaves an earlier checkpoint at that path intact.
        """
        ...

    def to(self, *args: Any, **kwargs: Any) -> Any:
        """Move the weights to a device and/or dtype, like ``torch.nn.Module.to``."""
        ...

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the model output (noise, x0 or v prediction, latents, hidden states, audio)."""
        ...


@runtime_checkable
class Scheduler(Protocol):
    """The sampling and noising algorithm of a diffusion process.

    The same object serves inference (:meth:`set_timesteps`, :meth:`step`) and training
    (:meth:`add_noise`, :meth:`training_target`). :meth:`step` must depend only on its arguments
    and on the schedule set by :meth:`set_timesteps`, never on how often it was called.

    Attributes:
        config: the validated scheduler configuration.
        timesteps: (N,) integer or float tensor of the timesteps to visit, in order.
        order: how many model evaluations one step uses (1 for DDPM/DDIM).
        init_noise_sigma: standard deviation of the initial noise.
    """

    config: Any
    timesteps: torch.Tensor
    order: int
    init_noise_sigma: float

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        timesteps: list[int] | None = None,
    ) -> None:
        """Choose the timesteps of an inference run and store them in :attr:`timesteps`."""
        ...

    def scale_model_input(self, sample: torch.Tensor, timestep: Any) -> torch.Tensor:
        """Scale the sample before the model sees it (identity for DDPM/DDIM).

        Args:
            sample: (B, C, H, W) or (B, C, T) current sample x_t.
            timestep: the current timestep t.
        """
        ...

    def step(
        self,
        model_output: torch.Tensor,
        timestep: Any,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> Any:
        """Turn a model output at ``timestep`` into the previous sample x_{t-1}.

        Must return an object whose ``prev_sample`` (and ``pred_original_sample``, when known)
        are the results, iterable as ``(prev_sample, pred_original_sample)``.
        """
        ...

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """Draw x_t from q(x_t | x_0) with the given noise (the forward process)."""
        ...

    def training_target(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """The regression target for the configured prediction type (eps, x0 or v)."""
        ...

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> Self:
        """Build from a config mapping or another scheduler's config (a scheduler swap)."""
        ...

    @classmethod
    def from_pretrained(cls, path_or_repo: str | os.PathLike[str], **options: Any) -> Self:
        """Build from a folder or Hub repo id holding ``scheduler_config.json``."""
        ...

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write ``scheduler_config.json`` to ``directory``."""
        ...


@runtime_checkable
class Processor(Protocol):
    """Turns user input into model input and back: a tokenizer, a mel-spectrogram front end, an
    image processor.

    A processor is not a neural network; it has no weights, only files (vocabularies, filter
    banks, settings) that it loads and saves.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Process a batch of user inputs (texts, waveforms, images) into model inputs."""
        ...

    @classmethod
    def from_pretrained(cls, path_or_repo: str | os.PathLike[str], **options: Any) -> Self:
        """Build from a folder or Hub repo id holding the processor's files.

        Must accept ``subfolder`` and the Hub options (``revision``, ``cache_dir``, ``token``,
        ``local_files_only``).
        """
        ...

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write the files that :meth:`from_pretrained` reads back to ``directory``."""
        ...


@runtime_checkable
class Pipeline(Protocol):
    """An end-to-end system of models, schedulers and processors, run with one call.

    Attributes:
        components: the components by name, as ``model_index.json`` lists them.
    """

    @property
    def components(self) -> dict[str, Any]:
        """The components by name (``{"unet": ..., "scheduler": ...}``)."""
        ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the pipeline.

        Must accept ``generator`` (a ``torch.Generator`` or one per batch item),
        ``num_inference_steps``, ``output_type`` (``"pil"``, ``"np"``, ``"pt"``; audio: ``"np"``,
        ``"pt"``), ``return_dict`` and a per-step ``callback``, and return an output with
        ``.images`` or ``.audios``.
        """
        ...

    @classmethod
    def from_pretrained(cls, path_or_repo: str | os.PathLike[str], **options: Any) -> Any:
        """Load a pipeline folder (``model_index.json`` plus one subfolder per component)."""
        ...

    def save_pretrained(self, directory: str | os.PathLike[str], **options: Any) -> None:
        """Write ``model_index.json`` and every component to ``directory`` (atomically)."""
        ...

    def to(self, *args: Any, **kwargs: Any) -> Self:
        """Move every model component to a device and/or dtype."""
        ...

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Configure (or with ``disable=True`` turn off) the progress bar."""
        ...


#: The protocol of each registry kind.
PROTOCOLS: Mapping[str, type] = {
    "model": Model,
    "scheduler": Scheduler,
    "processor": Processor,
    "pipeline": Pipeline,
}

#: The members that a conforming *class* of each kind defines on the class itself (methods,
#: properties and class attributes); instance attributes such as ``config`` are left out.
CLASS_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "model": ("from_pretrained", "save_pretrained", "to", "forward"),
    "scheduler": (
        "set_timesteps",
        "step",
        "scale_model_input",
        "add_noise",
        "training_target",
        "from_config",
        "from_pretrained",
        "save_pretrained",
        "order",
        "init_noise_sigma",
    ),
    "processor": ("__call__", "from_pretrained", "save_pretrained"),
    "pipeline": (
        "__call__",
        "components",
        "from_pretrained",
        "save_pretrained",
        "to",
        "set_progress_bar_config",
    ),
}

#: Members every *instance* must have, beyond those of its class.
_INSTANCE_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "model": ("config",),
    "scheduler": ("config", "timesteps"),
    "processor": (),
    "pipeline": (),
}


def _defined_on_class(cls: type, name: str) -> bool:
    # ``hasattr(cls, "__call__")`` is true for every class (through ``type.__call__``), so look at
    # the class's own namespace and its bases only, not at the metaclass.
    return any(name in vars(klass) for klass in cls.__mro__)


def missing_members(kind: str, obj: object) -> list[str]:
    """The protocol members that ``obj`` lacks to be a component of ``kind``.

    A class is checked for the members its instances get from the class
    (:data:`CLASS_MEMBERS`); any other object (an instance, a factory's product) is checked for
    every member of the protocol, instance attributes included.

    Args:
        kind: ``"model"``, ``"scheduler"``, ``"processor"`` or ``"pipeline"``.
        obj: the registered object.

    Returns:
        The missing member names in protocol order; empty when ``obj`` conforms.

    Raises:
        KeyError: ``kind`` is not one of the four kinds.
    """
    required = CLASS_MEMBERS[kind]
    if isinstance(obj, type):
        return [name for name in required if not _defined_on_class(obj, name)]
    names = (*required, *_INSTANCE_MEMBERS[kind])
    missing: list[str] = []
    for name in names:
        if name == "__call__":
            if not callable(obj):
                missing.append(name)
        elif not hasattr(obj, name):
            missing.append(name)
    return missing


def satisfies(kind: str, obj: object) -> bool:
    """Whether ``obj`` satisfies the protocol of ``kind`` (see :func:`missing_members`)."""
    return not missing_members(kind, obj)
