"""The model base class: an ``nn.Module`` with a validated config and the Hub folder round trip."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from diffusers_hub import hub, weights
from diffusers_hub.config import ComponentConfig, ConfigMixin, read_json
from diffusers_hub.errors import ConfigError, WeightsError, describe_mismatch

__all__ = ["ModelMixin", "SampleOutput"]

M = TypeVar("M", bound="ModelMixin")


@dataclass
class SampleOutput:
    """A model output holding one ``sample``; unpacks and indexes like ``(sample,)``."""

    sample: Tensor

    def __getitem__(self, index: int) -> Tensor:
        return (self.sample,)[index]

    def __iter__(self) -> Iterator[Tensor]:
        return iter((self.sample,))

    def __len__(self) -> int:
        return 1


class ModelMixin(nn.Module, ConfigMixin):
    """Base class of every model: config, ``from_pretrained``, ``save_pretrained``, device, dtype.

    Subclasses set ``config_class`` and build their layers from ``self.config`` in ``__init__``.
    They must not register buffers that are absent from the state dict: models are built on the
    meta device and filled from the checkpoint without a second copy in memory.

    Example:
        >>> from diffusers_hub import registry
        >>> UNet2DModel = registry.model("UNet2DModel")  # doctest: +SKIP
        >>> unet = UNet2DModel.from_pretrained("google/ddpm-cifar10-32")  # doctest: +SKIP
    """

    config_name: ClassVar[str] = "config.json"
    default_subfolder: ClassVar[str | None] = "unet"
    #: Base names of the weight files, tried in order.
    weights_names: ClassVar[tuple[str, ...]] = ("diffusion_pytorch_model",)

    def __init__(self, config: ComponentConfig | dict[str, Any] | None = None, **fields: Any):
        nn.Module.__init__(self)
        ConfigMixin.__init__(self, config, **fields)

    # -- properties -------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        """The device of the first parameter (CPU for a model without parameters)."""
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the first floating-point parameter."""
        for tensor in self.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.get_default_dtype()

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (optionally only those with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- loading ----------------------------------------------------------------------------------

    @classmethod
    def remap_state_dict(
        cls, state_dict: dict[str, torch.Tensor], config: ComponentConfig
    ) -> dict[str, torch.Tensor]:
        """Rename legacy checkpoint keys to this model's names. The default keeps them."""
        return state_dict

    @classmethod
    def from_pretrained(
        cls: type[M],
        path_or_repo: str | os.PathLike[str],
        *,
        subfolder: str | None = None,
        torch_dtype: torch.dtype | None = None,
        variant: str | None = None,
        device: str | torch.device | None = None,
        use_safetensors: bool | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> M:
        """Load a model from a component folder, a pipeline folder, or a Hub repo id.

        Args:
            path_or_repo: local folder or Hub repo id.
            subfolder: the component's folder inside a pipeline folder (e.g. ``"unet"``); without
                it the root is tried, then ``default_subfolder``.
            torch_dtype: dtype of the floating-point weights (float32 when None).
            variant: weight variant such as ``"fp16"``.
            device: where to put the weights (CPU when None).
            use_safetensors: require (True) or forbid (False) safetensors; None prefers them.
            revision: Hub branch, tag or commit.
            cache_dir: huggingface_hub cache folder.
            token: Hub token for private repos.
            local_files_only: use the local cache only, never the network.

        Raises:
            HubError: the folder or repo cannot be found.
            ConfigError: the config file is malformed or holds invalid values.
            WeightsError: the weights are missing, corrupt, or do not fit the config.
        """
        hub_options: dict[str, Any] = {
            "revision": revision,
            "cache_dir": cache_dir,
            "token": token,
            "local_files_only": local_files_only,
        }
        folder, files = cls._component_folder(
            path_or_repo, subfolder, variant, use_safetensors, hub_options
        )
        config_path = folder / cls.config_name
        raw = read_json(config_path)
        cls._check_class_name(raw.get("_class_name"), config_path)
        config = cls._build_config(raw, {}, source=str(config_path))
        state = weights.load_state_dict(files)
        state = cls.remap_state_dict(state, config)
        dtype = torch_dtype or torch.float32
        state = {
            k: v.to(dtype) if v.is_floating_point() and v.dtype != dtype else v
            for k, v in state.items()
        }
        with torch.device("meta"):
            model = cls(config)
        model._fill_from_state_dict(state, str(files.index or files.files[0]))
        model.eval()
        if device is not None:
            model.to(device)
        return model

    @classmethod
    def _check_class_name(cls, saved: Any, path: Path) -> None:
        """Refuse a config saved for another model class (a VQModel file read by AutoencoderKL).

        The names of ``cls`` and its base classes are accepted; a file without ``_class_name``
        (transformers-style configs) is too.
        """
        if saved is None:
            return
        accepted = {c.__name__ for c in cls.__mro__}
        if not isinstance(saved, str) or saved not in accepted:
            raise ConfigError(
                f"{path}: '_class_name' is {saved!r}, but {cls.__name__} is loading it; the "
                f"folder holds another model. Load it with {saved} (DiffusionPipeline."
                "from_pretrained picks the class itself), or fix '_class_name' if the file is "
                "wrong."
            )

    @classmethod
    def _component_folder(
        cls,
        path_or_repo: str | os.PathLike[str],
        subfolder: str | None,
        variant: str | None,
        use_safetensors: bool | None,
        hub_options: dict[str, Any],
    ) -> tuple[Path, weights.WeightFiles]:
        """The component folder and its weight files, fetching only those from the Hub."""
        exts = ["bin"] if use_safetensors is False else ["safetensors", "bin"]
        for i, ext in enumerate(exts):
            folder = hub.resolve_component(
                path_or_repo,
                cls.config_name,
                patterns=weights.weight_patterns(cls.weights_names, variant, [ext]),
                subfolder=subfolder,
                default_subfolder=cls.default_subfolder,
                **hub_options,
            )
            try:
                files = weights.find_weights(
                    folder, cls.weights_names, variant=variant, use_safetensors=use_safetensors
                )
            except WeightsError:
                if i + 1 < len(exts) and not hub.is_local(path_or_repo):
                    continue  # the repo has no safetensors: fetch the .bin files
                raise
            return folder, files
        raise AssertionError("unreachable")

    def _fill_from_state_dict(self, state: dict[str, torch.Tensor], source: str) -> None:
        expected = self.state_dict(keep_vars=True)
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        mismatched = [
            (k, tuple(state[k].shape), tuple(v.shape))
            for k, v in expected.items()
            if k in state and tuple(state[k].shape) != tuple(v.shape)
        ]
        if missing or unexpected or mismatched:
            raise WeightsError(describe_mismatch(source, missing, unexpected, mismatched))
        wrong_kind = [
            f"{k} (file {state[k].dtype}, model {v.dtype})"
            for k, v in expected.items()
            if v.is_floating_point() != state[k].is_floating_point()
            or state[k].is_complex() != v.is_complex()
        ]
        if wrong_kind:
            raise WeightsError(
                f"{source}: tensors of the wrong kind of dtype: {', '.join(wrong_kind[:5])}; "
                "the file does not hold this model's weights (or was written with the wrong "
                "dtype). Re-save it from the model."
            )
        self.load_state_dict(state, strict=True, assign=True)
        leftover = [n for n, t in [*self.named_parameters(), *self.named_buffers()] if t.is_meta]
        if leftover:
            raise WeightsError(
                f"{source}: {type(self).__name__} has tensors that no checkpoint can fill "
                f"({', '.join(leftover[:5])}); this is a bug in the model class: compute them in "
                "forward() or register them as persistent buffers."
            )

    # -- saving -----------------------------------------------------------------------------------

    def save_pretrained(
        self,
        directory: str | os.PathLike[str],
        *,
        variant: str | None = None,
        max_shard_size: int | str | None = None,
        safe_serialization: bool = True,
    ) -> None:
        """Save ``config.json`` and the weights into ``directory``, atomically.

        Args:
            directory: the component folder to write (created or replaced).
            variant: infix of the weight file names (``diffusion_pytorch_model.fp16.safetensors``).
            max_shard_size: split the weights into shards of at most this size (``"2GB"``) with an
                index file.
            safe_serialization: safetensors (default) or the legacy ``.bin``.
        """
        name = self.weights_names[0]

        def stale(entry: str) -> bool:
            return entry == self.config_name or weights.is_weight_file(entry, name, variant)

        with weights.atomic_directory(directory, keep=lambda entry: not stale(entry)) as tmp:
            self.save_config(tmp)
            weights.save_state_dict(
                self.state_dict(),
                tmp,
                name=name,
                variant=variant,
                max_shard_size=max_shard_size,
                safe_serialization=safe_serialization,
            )
