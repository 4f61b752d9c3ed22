"""The pipeline base class: components by name, the Hub folder round trip, outputs.

A pipeline folder holds ``model_index.json`` (``"_class_name"`` and ``"<component>": [library,
ClassName]``) and one subfolder per component, or keeps the components' files at its root (the flat
layout of the google/ddpm-* repos). Class names are resolved through the registry only: a file never
makes the library import a module that it names.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import numpy as np
import torch

from diffusers_hub import hub, registry, weights
from diffusers_hub._version import DIFFUSERS_FORMAT_VERSION, __version__
from diffusers_hub.checks import check_device, check_float, check_generator, check_int
from diffusers_hub.config import read_json, write_json_atomic
from diffusers_hub.denoising import (
    DenoisingLoop,
    guided_noise,
    sample_shape,
    step_options,
)
from diffusers_hub.errors import ConfigError, DiffusersHubError

if TYPE_CHECKING:
    import PIL.Image

__all__ = [
    "AudioPipelineOutput",
    "DiffusionPipeline",
    "ImagePipelineOutput",
    "OutputType",
    "guided_noise",
    "sample_shape",
    "step_options",
    "tensor_to_images",
]

P = TypeVar("P", bound="DiffusionPipeline")
OutputType = Literal["pil", "np", "pt"]

MODEL_INDEX = "model_index.json"


@dataclass
class ImagePipelineOutput:
    """The images of an image pipeline.

    Attributes:
        images: a list of PIL images, a (B, H, W, C) float array in [0, 1], or a (B, C, H, W)
            tensor in [0, 1], per ``output_type``.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor

    def __getitem__(self, index: int) -> Any:
        return (self.images,)[index]


@dataclass
class AudioPipelineOutput:
    """The waveforms of an audio pipeline.

    Attributes:
        audios: (B, channels, samples) array or tensor in [-1, 1].
        sampling_rate: samples per second.
    """

    audios: np.ndarray | torch.Tensor
    sampling_rate: int = 22050

    def __getitem__(self, index: int) -> Any:
        return (self.audios,)[index]


def tensor_to_images(
    images: torch.Tensor,
    output_type: OutputType = "pil",
    *,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> list[PIL.Image.Image] | np.ndarray | torch.Tensor:
    """Convert a batch of model-space images to the requested output type.

    Args:
        images: (B, C, H, W) images with values in ``value_range``.
        output_type: ``"pt"`` (tensor in [0, 1]), ``"np"`` ((B, H, W, C) float32 in [0, 1]) or
            ``"pil"`` (list of PIL images; one channel gives grayscale images).
        value_range: the range the model produces.
    """
    if output_type not in ("pil", "np", "pt"):
        raise ValueError(f"output_type={output_type!r} is not one of 'pil', 'np', 'pt'")
    low, high = value_range
    x = ((images.detach().float() - low) / (high - low)).clamp(0, 1)
    if output_type == "pt":
        return x
    array = x.cpu().permute(0, 2, 3, 1).numpy()
    if output_type == "np":
        return array
    return numpy_to_pil(array)


def numpy_to_pil(images: np.ndarray) -> list[PIL.Image.Image]:
    """(B, H, W, C) floats in [0, 1] to PIL images (RGB, RGBA, or grayscale for one channel)."""
    import PIL.Image

    as_uint8 = (images * 255).round().astype(np.uint8)
    if as_uint8.shape[-1] == 1:
        return [PIL.Image.fromarray(img[..., 0]) for img in as_uint8]
    return [PIL.Image.fromarray(img) for img in as_uint8]


def _accepted_kwargs(func: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that ``func`` names as parameters (never through ``**kwargs``)."""
    params = inspect.signature(func).parameters
    return {k: v for k, v in options.items() if k in params}


class DiffusionPipeline(DenoisingLoop):
    """Base of every pipeline: named components plus the loop in ``__call__``.

    Subclasses declare their components as the parameters of ``__init__`` and pass them on:

    ```python
    class DDPMPipeline(DiffusionPipeline):
        def __init__(self, unet: UNet2DModel, scheduler: DDPMScheduler) -> None:
            super().__init__(unet=unet, scheduler=scheduler)
    ```

    Example:
        >>> from diffusers_hub import DiffusionPipeline
        >>> pipe = DiffusionPipeline.from_pretrained("google/ddpm-cifar10-32")  # doctest: +SKIP
        >>> image = pipe(num_inference_steps=50).images[0]  # doctest: +SKIP
    """

    #: Components that may be absent (``[null, null]`` in model_index.json).
    optional_components: ClassVar[tuple[str, ...]] = ()
    #: The networks evaluated at every denoising step: what :meth:`compile` wraps.
    denoisers: ClassVar[tuple[str, ...]] = ("unet",)
    #: The ``output_type`` values ``__call__`` accepts.
    output_types: ClassVar[tuple[str, ...]] = ("pil", "np", "pt")

    def __init__(self, **components: Any) -> None:
        self._components: dict[str, Any] = {}
        self._progress_bar_config: dict[str, Any] = {}
        for name, component in components.items():
            self._components[name] = component
            setattr(self, name, component)

    def __setattr__(self, name: str, value: Any) -> None:
        components = self.__dict__.get("_components")
        if components is not None and name in components:
            components[name] = value
        object.__setattr__(self, name, value)

    # -- components, devices ----------------------------------------------------------------------

    @property
    def components(self) -> dict[str, Any]:
        """The components by name (a copy: pass them to another pipeline's constructor)."""
        return dict(self._components)

    def _modules(self) -> list[torch.nn.Module]:
        return [c for c in self._components.values() if isinstance(c, torch.nn.Module)]

    @property
    def device(self) -> torch.device:
        """The device of the first model component."""
        for module in self._modules():
            for tensor in module.parameters():
                return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the first model component's floating-point weights."""
        for module in self._modules():
            for tensor in module.parameters():
                if tensor.is_floating_point():
                    return tensor.dtype
        return torch.float32

    def to(
        self: P,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> P:
        """Move every model component to ``device`` and/or cast it to ``dtype``; returns self."""
        checked = check_device(device) if device is not None else None
        for module in self._modules():
            module.to(device=checked, dtype=dtype)
        return self

    def compile(
        self: P,
        *,
        mode: Literal["default", "reduce-overhead", "max-autotune"] | None = None,
        fullgraph: bool = False,
        dynamic: bool | None = None,
        components: Sequence[str] | None = None,
    ) -> P:
        """Compile the denoiser(s) with ``torch.compile``, in place; returns self.

        Each module's ``forward`` is compiled (``nn.Module.compile``), so the components keep
        their class, config, weights and ``save_pretrained``. The first call per input shape,
        device and dtype compiles (seconds to minutes; on CPU the Inductor backend needs a C++
        compiler); later calls reuse the code. Outputs equal eager ones up to float rounding.

        Args:
            mode: ``torch.compile``'s mode (None: its default).
            fullgraph: fail instead of splitting the graph where tracing stops.
            dynamic: trace shapes symbolically (None: only after a shape changes).
            components: the component names to compile (default: :attr:`denoisers`).

        Raises:
            ValueError: a named component is missing or is not a ``torch.nn.Module``.
        """
        names = tuple(self.denoisers if components is None else components)
        for name in names:
            module = self._components.get(name)
            if not isinstance(module, torch.nn.Module):
                raise ValueError(
                    f"{type(self).__name__} has no network component {name!r} to compile "
                    f"(components: {', '.join(self._components)}); pass components=[...]"
                )
            module.compile(mode=mode, fullgraph=fullgraph, dynamic=dynamic)
        return self

    # -- call arguments ---------------------------------------------------------------------------

    def check_inputs(
        self,
        *,
        batch_size: int | None = None,
        prompt: object = ...,
        num_images_per_prompt: int | None = None,
        num_inference_steps: int | None = None,
        output_type: str | None = None,
        generator: object = None,
        callback_steps: int | None = None,
        guidance_scale: float | None = None,
        eta: float | None = None,
    ) -> int:
        """Check the call arguments every pipeline shares; returns the number of samples.

        Each pipeline's ``__call__`` passes the arguments it has, so a bad value fails before any
        work with a message naming the argument. The number of samples is ``batch_size``, or
        ``len(prompts) * num_images_per_prompt`` for a text pipeline.

        Raises:
            TypeError: an argument of the wrong type (``prompt=None``, ``generator="cuda:7"``).
            ValueError: a value out of range (``batch_size=0``, ``num_inference_steps`` beyond
                the training schedule, an unknown ``output_type``, NaN guidance).
        """
        samples = 1
        if batch_size is not None:
            samples = check_int("batch_size", batch_size)
        if prompt is not ...:
            prompts = [prompt] if isinstance(prompt, str) else prompt
            if (
                not isinstance(prompts, list | tuple)
                or not prompts
                or not all(isinstance(p, str) for p in prompts)
            ):
                raise TypeError(
                    f"prompt must be a string or a non-empty list of strings, got {prompt!r}"
                )
            samples = len(prompts)
        if num_images_per_prompt is not None:
            samples *= check_int("num_images_per_prompt", num_images_per_prompt)
        if num_inference_steps is not None:
            scheduler_config = getattr(getattr(self, "scheduler", None), "config", None)
            steps = getattr(scheduler_config, "num_train_timesteps", None)
            check_int("num_inference_steps", num_inference_steps, maximum=steps)
        if output_type is not None and output_type not in self.output_types:
            raise ValueError(
                f"output_type={output_type!r} is not one of "
                f"{', '.join(repr(t) for t in self.output_types)}"
            )
        if callback_steps is not None:
            check_int("callback_steps", callback_steps)
        if guidance_scale is not None:
            check_float("guidance_scale", guidance_scale)
        if eta is not None:
            check_float("eta", eta, minimum=0.0)
        check_generator(generator, samples, self.device)
        return samples

    def check_arguments(self, arguments: Mapping[str, Any]) -> int:
        """:meth:`check_inputs` with those of ``arguments`` it takes: a ``__call__`` passes
        ``locals()`` as its first statement, so every shared argument it has is checked."""
        return self.check_inputs(**_accepted_kwargs(self.check_inputs, arguments))

    # -- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo: str | os.PathLike[str],
        *,
        torch_dtype: torch.dtype | None = None,
        variant: str | None = None,
        device: str | torch.device | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        **components: Any,
    ) -> Any:
        """Load a pipeline folder or Hub repo.

        ``DiffusionPipeline.from_pretrained`` picks the registered pipeline class named by
        ``model_index.json``; ``SomePipeline.from_pretrained`` uses ``SomePipeline`` whatever the
        file says (a DDIM pipeline over a DDPM repo). Keyword arguments replace components.

        Args:
            path_or_repo: a local pipeline folder or a Hub repo id.
            torch_dtype: dtype of the models' floating-point weights.
            variant: weight variant such as ``"fp16"``.
            device: where to put the models.
            revision: Hub branch, tag or commit.
            cache_dir: huggingface_hub cache folder.
            token: Hub token for private repos.
            local_files_only: use the local cache only, never the network.
            **components: components to use instead of loading them (``scheduler=...``).

        Raises:
            RegistryError: a pipeline or component class is not provided by any installed plugin;
                the message says what to install.
            HubError, ConfigError, WeightsError: as for the components' ``from_pretrained``.
        """
        hub_options: dict[str, Any] = {
            "revision": revision,
            "cache_dir": cache_dir,
            "token": token,
            "local_files_only": local_files_only,
        }
        root = hub.resolve_folder(
            path_or_repo,
            allow_patterns=[MODEL_INDEX, "*.json", "*/*.json", "*/*.txt"],
            **hub_options,
        )
        index_path = root / MODEL_INDEX
        if index_path.is_file():
            index = read_json(index_path)
            source = str(index_path)
        else:
            index = cls._flat_index(root)
            source = str(root)
        pipeline_cls = cls._pipeline_class(index, source)
        expected = pipeline_cls._component_names()
        loaded: dict[str, Any] = {}
        for name, spec in index.items():
            if name.startswith("_"):
                continue
            if name in components:
                continue
            if name not in expected:
                raise ConfigError(
                    f"{source}: component '{name}' is not a parameter of "
                    f"{pipeline_cls.__name__} (expects {', '.join(expected)})"
                )
            loaded[name] = cls._load_component(
                path_or_repo, root, name, spec, source, torch_dtype, variant, hub_options
            )
        loaded.update(components)
        missing = [
            n for n in expected if n not in loaded and n not in pipeline_cls.optional_components
        ]
        if missing:
            raise ConfigError(
                f"{source}: {pipeline_cls.__name__} needs the components {', '.join(missing)}, "
                "which the folder does not provide; add them to model_index.json or pass them "
                f"as keywords (e.g. {missing[0]}=...)."
            )
        for name in pipeline_cls.optional_components:
            loaded.setdefault(name, None)
        pipeline = pipeline_cls(**loaded)
        if device is not None:
            pipeline.to(device)
        return pipeline

    @classmethod
    def _component_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters
        return [
            n
            for n, p in params.items()
            if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]

    @classmethod
    def _pipeline_class(cls, index: Mapping[str, Any], source: str) -> type[DiffusionPipeline]:
        if cls is not DiffusionPipeline:
            return cls
        class_name = index.get("_class_name")
        if not isinstance(class_name, str):
            raise ConfigError(
                f"{source}: no '_class_name' naming the pipeline; call the pipeline class's own "
                "from_pretrained (e.g. DDPMPipeline.from_pretrained) or add '_class_name'."
            )
        pipeline_cls = registry.pipeline(class_name)
        if not (isinstance(pipeline_cls, type) and issubclass(pipeline_cls, DiffusionPipeline)):
            raise ConfigError(f"{source}: {class_name} is registered but is not a pipeline class")
        return pipeline_cls

    @classmethod
    def _flat_index(cls, root: Path) -> dict[str, Any]:
        """A model_index for a flat folder without one: a model and a scheduler at the root."""
        index: dict[str, Any] = {}
        for name, filename in (("unet", "config.json"), ("scheduler", "scheduler_config.json")):
            path = root / filename
            if path.is_file():
                class_name = read_json(path).get("_class_name")
                if isinstance(class_name, str):
                    index[name] = [None, class_name]
        if not index:
            raise ConfigError(
                f"{root}: neither model_index.json nor component configs (config.json, "
                "scheduler_config.json) found; this is not a pipeline folder."
            )
        return index

    @classmethod
    def _load_component(
        cls,
        path_or_repo: str | os.PathLike[str],
        root: Path,
        name: str,
        spec: Any,
        source: str,
        torch_dtype: torch.dtype | None,
        variant: str | None,
        hub_options: Mapping[str, Any],
    ) -> Any:
        if spec is None or (isinstance(spec, list) and all(s is None for s in spec)):
            return None
        if not (
            isinstance(spec, list | tuple)
            and len(spec) == 2
            and isinstance(spec[1], str)
            and (spec[0] is None or isinstance(spec[0], str))
        ):
            raise ConfigError(
                f"{source}: component '{name}' = {spec!r} is invalid; expected "
                '["library", "ClassName"] such as ["diffusers", "UNet2DModel"]'
            )
        library, class_name = spec
        component_cls = registry.resolve_class(class_name, library=library)
        loader = getattr(component_cls, "from_pretrained", None)
        if loader is None:
            raise ConfigError(f"{source}: {class_name} has no from_pretrained(); cannot load it")
        subfolder = name if (root / name).is_dir() else None
        options = {
            "subfolder": subfolder,
            "torch_dtype": torch_dtype,
            "variant": variant,
            **hub_options,
        }
        try:
            return loader(path_or_repo, **_accepted_kwargs(loader, options))
        except DiffusersHubError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{source}: could not load component '{name}' ({class_name}): {exc}"
            ) from exc

    # -- saving -----------------------------------------------------------------------------------

    def save_pretrained(
        self,
        directory: str | os.PathLike[str],
        *,
        variant: str | None = None,
        safe_serialization: bool = True,
    ) -> None:
        """Write ``model_index.json`` and one subfolder per component, atomically."""
        names = set(self._components) | {MODEL_INDEX}
        with weights.atomic_directory(directory, keep=lambda entry: entry not in names) as tmp:
            index: dict[str, Any] = {
                "_class_name": type(self).__name__,
                "_diffusers_version": DIFFUSERS_FORMAT_VERSION,
                "_diffusers_hub_version": __version__,
            }
            for name, component in self._components.items():
                if component is None:
                    index[name] = [None, None]
                    continue
                library = getattr(type(component), "hub_library", "diffusers")
                index[name] = [library, type(component).__name__]
                saver = component.save_pretrained
                options = {"variant": variant, "safe_serialization": safe_serialization}
                saver(tmp / name, **_accepted_kwargs(saver, options))
            write_json_atomic(tmp / MODEL_INDEX, index)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={type(v).__name__}" for k, v in self._components.items())
        return f"{type(self).__name__}({parts})"
