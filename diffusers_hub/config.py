"""Validated component configs that read and write the diffusers JSON format.

Every model, scheduler and processor carries a :class:`ComponentConfig`: a pydantic model whose fields
are the constructor arguments saved in ``config.json`` / ``scheduler_config.json``. Files written by any
diffusers version load: keys starting with ``_`` are metadata, unknown keys are ignored with one
warning that names them, missing keys take their defaults, and legacy spellings are renamed.
"""

from __future__ import annotations

import json
import logging
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

from diffusers_hub._version import DIFFUSERS_FORMAT_VERSION, __version__
from diffusers_hub.errors import ConfigError

__all__ = [
    "LIMITS",
    "Activation",
    "Channels",
    "ComponentConfig",
    "ComponentFiles",
    "ConfigMixin",
    "Count",
    "Features",
    "PretrainedMixin",
    "SampleSize",
    "TrainTimesteps",
    "Vocabulary",
    "check_divides",
    "read_json",
    "write_json_atomic",
]

logger = logging.getLogger(__name__)

C = TypeVar("C", bound="ComponentConfig")
M = TypeVar("M", bound="ConfigMixin")
P = TypeVar("P", bound="PretrainedMixin")


#: The largest sizes a config may ask for. Each is far above every published checkpoint (Stable
#: Diffusion: 1280 channels, 1000 timesteps, 30522 tokens) and low enough that a model or a schedule
#: built from a hostile or mistyped file fails with a ConfigError instead of exhausting memory.
LIMITS: dict[str, int] = {
    "channels": 8192,
    "features": 65536,
    "vocabulary": 262144,
    "count": 256,
    "sample_size": 4096,
    "timesteps": 100_000,
}

#: Channels of a convolution or attention layer (in/out/latent/block channels).
Channels = Annotated[int, Field(ge=1, le=LIMITS["channels"])]
#: Widths of linear layers, embeddings and positions (feed-forward widths, ``d_model``).
Features = Annotated[int, Field(ge=1, le=LIMITS["features"])]
#: Entries of a vocabulary or codebook.
Vocabulary = Annotated[int, Field(ge=1, le=LIMITS["vocabulary"])]
#: A number of layers, blocks, heads or groups.
Count = Annotated[int, Field(ge=1, le=LIMITS["count"])]
#: Height or width of a sample, in pixels or latent pixels.
SampleSize = Annotated[int, Field(ge=1, le=LIMITS["sample_size"])]
#: T, the length of a training schedule.
TrainTimesteps = Annotated[int, Field(ge=1, le=LIMITS["timesteps"])]
#: The activation names of :func:`diffusers_hub.nn.get_activation`.
Activation = Literal["silu", "swish", "mish", "gelu", "relu"]


def check_divides(groups: int, field: str, channels: Mapping[str, int | tuple[int, ...]]) -> None:
    """Raise ``ValueError`` unless ``groups`` divides every channel count in ``channels``.

    Args:
        groups: the divisor (GroupNorm groups, attention heads).
        field: its config field, named in the message.
        channels: config field name -> one channel count or a tuple of them.
    """
    for name, value in channels.items():
        counts = (value,) if isinstance(value, int) else value
        bad = [c for c in counts if c % groups]
        if bad:
            raise ValueError(
                f"{field}={groups} must divide every entry of {name} {tuple(counts)} "
                f"(it does not divide {bad[0]}); pick a common divisor such as "
                f"{_common_divisor(counts)}"
            )


def _common_divisor(counts: tuple[int, ...]) -> int:
    import math

    return math.gcd(*counts) if counts else 1


def _flatten(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly Annotated, Optional or union) annotation, or of a list
    of annotations."""
    if isinstance(annotation, list):
        return [a for item in annotation for a in _flatten(item)]
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [a for arg in typing.get_args(annotation) for a in _flatten(arg)]
    return [annotation]


def _admits(annotation: Any, kind: type) -> bool:
    """Whether ``annotation`` itself allows values of ``kind`` (str or bool) without conversion."""
    for option in _flatten(annotation):
        if option is Any or option is kind:
            return True
        if typing.get_origin(option) is Literal and any(
            type(v) is kind for v in typing.get_args(option)
        ):
            return True
    return False


def _coercion(annotation: Any, value: Any) -> str | None:
    """Why ``value`` would fit ``annotation`` only by a conversion pydantic's lax mode makes
    (``"1"`` or ``true`` read as the number 1, ``"no"`` as False), or None if it needs none."""
    if isinstance(value, bool) and not _admits(annotation, bool):
        return f"{value!r} is a boolean, not a number"
    if isinstance(value, str) and not _admits(annotation, str):
        return f"{value!r} is a string; write the value without quotes"
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and _admits(annotation, bool)
        and not (_admits(annotation, int) or _admits(annotation, float))
    ):
        return f"{value!r} is a number; write true or false"
    if isinstance(value, list | tuple):
        items: list[Any] = []
        for option in _flatten(annotation):
            if typing.get_origin(option) in (tuple, list):
                items += [a for a in typing.get_args(option) if a is not Ellipsis]
        if items:
            for item in value:
                reason = _coercion(items, item)
                if reason is not None:
                    return reason
    return None


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object from ``path``, with an error that names the file on failure.

    Raises:
        ConfigError: the file is not valid JSON or does not hold an object.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file ({exc}); expected a JSON config") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}. "
            "Fix the file or re-save it with save_pretrained()."
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def write_json_atomic(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON so that a crash never leaves a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class ComponentConfig(BaseModel):
    """Base of every component's config schema.

    Subclasses declare the constructor arguments of their component as pydantic fields with the
    same names and defaults as the diffusers format. ``legacy_keys`` maps old spellings found in
    early Hub files to current field names.

    Example:
        >>> class MyConfig(ComponentConfig):
        ...     num_train_timesteps: int = 1000
        >>> MyConfig.from_dict({"timesteps": 10, "_class_name": "X"}).num_train_timesteps
        10
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_assignment=True,
        protected_namespaces=(),
        allow_inf_nan=False,
    )

    legacy_keys: ClassVar[dict[str, str]] = {}
    #: Keys that old files carry and that are dropped without a warning (obsolete settings).
    obsolete_keys: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_dict(
        cls: type[C],
        data: Mapping[str, Any],
        *,
        source: str | None = None,
        warn_unknown: bool = True,
    ) -> C:
        """Validate ``data`` into a config.

        Args:
            data: the JSON object (metadata keys starting with ``_`` are ignored).
            source: the file it came from, named in errors and warnings.
            warn_unknown: log one warning naming keys this config does not know.

        Raises:
            ConfigError: a value is invalid; the message names the file, field, value and what is
                allowed.
        """
        values: dict[str, Any] = {}
        unknown: list[str] = []
        fields = cls.model_fields
        for key, value in data.items():
            if key.startswith("_"):
                continue
            name = cls.legacy_keys.get(key, key)
            if name in fields:
                if name != key and name in data:
                    continue  # the current spelling wins over the legacy one
                values[name] = value
            elif key not in cls.obsolete_keys:
                unknown.append(key)
        if unknown and warn_unknown:
            where = f" in {source}" if source else ""
            logger.warning(
                "%s: ignoring unknown config keys%s: %s",
                cls.__name__,
                where,
                ", ".join(sorted(unknown)),
            )
        try:
            return cls.model_validate(values)
        except pydantic.ValidationError as exc:
            raise ConfigError(_describe_validation_error(cls, exc, values, source)) from None

    @pydantic.field_validator("*", mode="before")
    @classmethod
    def _no_type_conversion(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse strings and booleans where the field holds numbers (``"1"``, ``true``)."""
        field = cls.model_fields.get(info.field_name or "")
        if field is not None:
            reason = _coercion(field.annotation, value)
            if reason is not None:
                raise ValueError(f"expected {_type_name(field.annotation)}: {reason}")
        return value

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (tuples become lists)."""
        return {k: _jsonable(v) for k, v in self.model_dump(mode="python").items()}

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with ``changes`` applied."""
        return type(self).from_dict({**self.to_dict(), **changes}, warn_unknown=False)


def _type_name(annotation: Any) -> str:
    """``annotation`` in words for messages: ``int``, ``list of int``, ``int or null``."""
    names = []
    for option in _flatten(annotation):
        origin = typing.get_origin(option)
        if option is type(None):
            names.append("null")
        elif origin is Literal:
            names.append(" or ".join(repr(v) for v in typing.get_args(option)))
        elif origin in (tuple, list):
            args = [a for a in typing.get_args(option) if a is not Ellipsis]
            inner = " or ".join(dict.fromkeys(_type_name(a) for a in args)) or "values"
            names.append(f"a list of {inner}")
        else:
            names.append(getattr(option, "__name__", str(option)))
    return " or ".join(dict.fromkeys(names))


_LIMIT_HINT = (
    " (a safety bound: no published checkpoint comes near it, and larger values would allocate "
    "more memory than a machine has)"
)


def _describe_validation_error(
    cls: type[ComponentConfig],
    exc: pydantic.ValidationError,
    values: Mapping[str, Any],
    source: str | None,
) -> str:
    where = source or f"{cls.__name__} config"
    lines = []
    for err in _one_error_per_field(exc.errors(), values):
        field = str(err["loc"][0]) if err["loc"] else ""
        # the field, then list indices; pydantic's union-branch tags ("constrained-int") go
        loc = ".".join([field, *(str(p) for p in err["loc"][1:] if isinstance(p, int))])
        value = values.get(field, err.get("input"))
        allowed = ""
        ctx = err.get("ctx") or {}
        if "expected" in ctx:
            allowed = f"; allowed: {ctx['expected']}"
        elif err["type"] in ("less_than_equal", "less_than") and ctx.get("le") in LIMITS.values():
            allowed = _LIMIT_HINT
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a check across fields: its message names them
            lines.append(f"{where}: {message}")
            continue
        lines.append(f"{where}: field '{loc}' = {value!r} is invalid: {message}{allowed}")
    return "\n".join(lines)


def _one_error_per_field(errors: list[Any], values: Mapping[str, Any]) -> list[Any]:
    """For a field with a union type, the error of the branch that matches the value's shape
    (the list branch for a list, the scalar branch otherwise) instead of one per branch."""
    chosen: dict[tuple[str, ...], Any] = {}
    for err in errors:
        loc = err["loc"]
        key = (str(loc[0]),) if loc else ()
        branch = str(loc[1]) if len(loc) > 1 and isinstance(loc[1], str) else ""
        if not branch:
            chosen[(*key, str(len(chosen)))] = err
            continue
        is_list = isinstance(values.get(str(loc[0])), list | tuple)
        fits = branch.startswith(("tuple", "list")) == is_list
        if key not in chosen or (fits and not chosen[key][1]):
            chosen[key] = (err, fits)
    return [v[0] if isinstance(v, tuple) else v for v in chosen.values()]


class ConfigMixin:
    """Gives a component a validated ``config`` and the diffusers config file round trip.

    Subclasses set ``config_class`` (a :class:`ComponentConfig` subclass) and, for schedulers,
    ``config_name = "scheduler_config.json"``. The constructor takes a config object and/or its
    fields as keywords.
    """

    config_class: ClassVar[type[ComponentConfig]] = ComponentConfig
    config_name: ClassVar[str] = "config.json"
    #: Where this component lives inside a pipeline folder when no subfolder is named.
    default_subfolder: ClassVar[str | None] = None
    config: ComponentConfig

    def __init__(self, config: ComponentConfig | Mapping[str, Any] | None = None, **fields: Any):
        self.config = self._build_config(config, fields)

    @classmethod
    def _build_config(
        cls,
        config: ComponentConfig | Mapping[str, Any] | None,
        fields: Mapping[str, Any],
        *,
        source: str | None = None,
        warn_unknown: bool = True,
    ) -> ComponentConfig:
        if config is None and not fields:
            return cls.config_class()
        base: dict[str, Any]
        if config is None:
            base = {}
        elif isinstance(config, cls.config_class) and not fields:
            return config.model_copy(deep=True)
        elif isinstance(config, ComponentConfig):
            base = config.to_dict()
            warn_unknown = False  # a swap between compatible components
        else:
            base = dict(config)
        known = set(cls.config_class.model_fields) | set(cls.config_class.legacy_keys)
        unknown_fields = set(fields) - known - cls.config_class.obsolete_keys
        if unknown_fields:
            raise TypeError(
                f"{cls.__name__}() got unexpected config fields: {', '.join(sorted(unknown_fields))}"
            )
        return cls.config_class.from_dict(
            {**base, **fields}, source=source, warn_unknown=warn_unknown
        )

    @classmethod
    def load_config(cls, source: str | os.PathLike[str] | ComponentFiles) -> dict[str, Any]:
        """Read this component's config JSON from a folder, a Hub repo id, or ``files``.

        A pipeline folder whose config sits in a component subfolder is searched too
        (``scheduler/`` for schedulers, ``unet/`` for models); a :class:`ComponentFiles` carries
        the other lookup options. The result holds the file's path under ``"__source__"``.

        Raises:
            HubError: the file is not found.
            ConfigError: the file is not a JSON object.
        """
        files = (
            source
            if isinstance(source, ComponentFiles)
            else ComponentFiles(source, default_subfolder=cls.default_subfolder)
        )
        path = files.get(cls.config_name)
        return read_json(path) | {"__source__": str(path)}

    @classmethod
    def from_files(cls: type[M], files: ComponentFiles, **overrides: Any) -> M:
        """Build the component from the config file in ``files`` (``from_pretrained`` calls it).

        A file saved for another class (a DDPM scheduler config read by DDIM) converts quietly;
        otherwise keys this class does not know are ignored with one warning that names them.
        """
        data = cls.load_config(files)
        source = data.pop("__source__", None)
        saved_class = data.get("_class_name")
        swap = isinstance(saved_class, str) and saved_class != cls.__name__
        config = cls.config_class.from_dict(data, source=source, warn_unknown=not swap)
        return cls(config, **overrides)

    @classmethod
    def from_config(
        cls: type[M],
        config: ComponentConfig | Mapping[str, Any] | str | os.PathLike[str],
        **overrides: Any,
    ) -> M:
        """Build the component from a config object, a dict, or a folder / Hub repo id.

        Another component's config works (``DDIMScheduler.from_config(ddpm.config)``): keys this
        class does not know are dropped quietly; keys read from a file are dropped with a warning.
        """
        source: str | None = None
        data: ComponentConfig | Mapping[str, Any]
        warn = True
        if isinstance(config, str | os.PathLike):
            loaded = cls.load_config(config)
            source = loaded.pop("__source__", None)
            data = loaded
        elif isinstance(config, ComponentConfig):
            data = config
            warn = False
        else:
            data = dict(config)
            source = data.pop("__source__", None)
            warn = source is not None
        built = cls._build_config(data, {}, source=source, warn_unknown=warn)
        if overrides:
            built = cls._build_config(built, overrides, source=source)
        return cls(built)

    def config_dict(self) -> dict[str, Any]:
        """The config as written to disk, with the format markers."""
        return {
            "_class_name": type(self).__name__,
            "_diffusers_version": DIFFUSERS_FORMAT_VERSION,
            "_diffusers_hub_version": __version__,
            **self.config.to_dict(),
        }

    def save_config(self, directory: str | os.PathLike[str]) -> None:
        """Write ``config_name`` into ``directory`` (created if needed), atomically."""
        directory = Path(directory)
        if directory.is_file():
            raise ConfigError(f"{directory}: is a file; save_config needs a folder path")
        directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(directory / self.config_name, self.config_dict())


@dataclass(frozen=True)
class ComponentFiles:
    """Where one component's files are: a local folder or Hub repo id and the lookup options.

    Attributes:
        path_or_repo: a local folder or a Hub repo id.
        subfolder: the component folder inside it (default: the root, then ``default_subfolder``).
        default_subfolder: the component's folder in a pipeline folder (``"tokenizer"``, ...).
        revision: Hub branch, tag or commit.
        cache_dir: Hub cache folder.
        token: Hub token for private repos.
        local_files_only: never touch the network.
    """

    path_or_repo: str | os.PathLike[str]
    subfolder: str | None = None
    default_subfolder: str | None = None
    revision: str | None = None
    cache_dir: str | os.PathLike[str] | None = None
    token: str | bool | None = None
    local_files_only: bool = False

    def get(self, filename: str) -> Path:
        """The local path of ``filename`` (downloaded when it comes from the Hub).

        Raises:
            HubError: the file is not there; the message says where it was looked for.
        """
        from diffusers_hub import hub

        return hub.resolve_component(marker=filename, **vars(self)) / filename

    def find(self, filename: str) -> Path | None:
        """:meth:`get`, or None when the file is not there."""
        from diffusers_hub import hub

        try:
            return self.get(filename)
        except hub.HubError:
            return None


class PretrainedMixin:
    """The one ``from_pretrained`` of components stored as files in a folder: processors
    (tokenizers, feature extractors) and schedulers.

    A subclass implements :meth:`from_files`, which reads what it needs through a
    :class:`ComponentFiles`; :class:`ConfigMixin` provides it for components that are one config
    file (list ``ConfigMixin`` first among the bases).
    """

    default_subfolder: ClassVar[str | None] = None

    @classmethod
    def from_pretrained(
        cls: type[P],
        path_or_repo: str | os.PathLike[str],
        *,
        subfolder: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        **overrides: Any,
    ) -> P:
        """Load from a component folder, a pipeline folder (its ``default_subfolder``), or a Hub
        repo id.

        Args:
            path_or_repo: a local folder or a Hub repo id.
            subfolder: the component folder inside ``path_or_repo`` (default: the root, then
                ``default_subfolder``).
            revision: Hub branch, tag or commit.
            cache_dir: Hub cache folder.
            token: Hub token for private repos.
            local_files_only: never touch the network.
            **overrides: config fields that replace the saved ones (``prediction_type=...``).

        Raises:
            HubError: a file is not found.
            ConfigError: a file is malformed or a value is invalid (the message names the file
                and the field).
        """
        files = ComponentFiles(
            path_or_repo,
            subfolder,
            cls.default_subfolder,
            revision,
            cache_dir,
            token,
            local_files_only,
        )
        return cls.from_files(files, **overrides)

    @classmethod
    def from_files(cls: type[P], files: ComponentFiles, **overrides: Any) -> P:
        """Build the component from its files (implemented by each component)."""
        raise NotImplementedError(f"{cls.__name__} does not implement from_files()")
