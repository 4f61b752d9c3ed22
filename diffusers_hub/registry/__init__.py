"""The plugin registry: components found through entry points, loaded lazily.

Every model, scheduler, processor and pipeline, first-party or not, is one entry point of its
distribution, in the group of its kind, under its short name::

    [project.entry-points."diffusers_hub.schedulers"]
    ddim = "diffusers_hub_ddim.scheduler:DDIMScheduler"

    [project.entry-points."diffusers_hub.plugin_api"]
    "1" = "diffusers_hub_ddim"

The attribute after the colon (``DDIMScheduler``) is the component's Hub class name, so files
naming it resolve without importing anything. Listing reads only the metadata; a component is
imported the first time it is asked for, checked against its kind's protocol
(:mod:`diffusers_hub.protocols`) and cached. A plugin that fails to import or to validate is
recorded as broken; every other plugin keeps working.

- ``<distribution>/<name>`` (a *qualified id*) always resolves to that distribution's entry;
- a bare name claimed by several distributions is an error listing their qualified ids;
- names of the first-party plugins (the core's extras: ``ddim``, ``ddim-inverse``,
  ``DDIMScheduler``, ...) are reserved: a third party claiming one is warned and reachable only
  by qualified id; one whose plugin is not installed names the extra to install;
- names registered in-process (:func:`register`) come before installed plugins;
- ``DIFFUSERS_HUB_STRICT=1`` turns the first problem anywhere into an error on first use.

Modules: ``_scan`` (metadata and entries), ``_resolve`` (names), ``_loading`` (imports, checks,
problems, hooks), ``_messages`` (every message), ``_registry`` (the :class:`Registry`).

Example:
    >>> from diffusers_hub import registry
    >>> DDIMScheduler = registry.scheduler("ddim")  # doctest: +SKIP
    >>> print(*(e.name for e in registry.list("scheduler")))  # imports nothing  # doctest: +SKIP
    ddim ddim-inverse ddpm
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from diffusers_hub.registry._loading import Problem
from diffusers_hub.registry._registry import Registry
from diffusers_hub.registry._scan import GROUPS, KINDS, Entry, Kind, PluginDistribution, Status

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "GROUPS",
    "KINDS",
    "Entry",
    "Kind",
    "PluginDistribution",
    "Problem",
    "Registry",
    "Status",
    "default",
    "demo_checkpoint",
    "get",
    "hook_mapping_value",
    "hooks",
    "list",
    "load_plugin_from_pyproject",
    "lookup",
    "model",
    "pipeline",
    "plugin_distributions",
    "problems",
    "processor",
    "refresh",
    "register",
    "resolve_class",
    "scheduler",
    "unregister",
]

_default = Registry()


def default() -> Registry:
    """The registry behind the module-level functions (it scans ``sys.path``)."""
    return _default


def get(kind: str, name: str) -> Any:
    """The component of ``kind`` named ``name`` (see :meth:`Registry.get`)."""
    return _default.get(kind, name)


def model(name: str) -> Any:
    """The model class registered as ``name``, e.g. ``registry.model("UNet2DModel")``."""
    return _default.model(name)


def scheduler(name: str) -> Any:
    """The scheduler class registered as ``name``, e.g. ``registry.scheduler("ddim")``."""
    return _default.scheduler(name)


def processor(name: str) -> Any:
    """The processor class registered as ``name``, e.g. ``registry.processor("BertTokenizer")``."""
    return _default.processor(name)


def pipeline(name: str) -> Any:
    """The pipeline class registered as ``name``, e.g. ``registry.pipeline("ddpm")``."""
    return _default.pipeline(name)


def resolve_class(
    class_name: str,
    kinds: Sequence[str] = ("model", "scheduler", "processor"),
    library: str | None = None,
) -> Any:
    """The class of a ``model_index.json`` pair (see :meth:`Registry.resolve_class`)."""
    return _default.resolve_class(class_name, kinds, library)


def list(kind: str | None = None, *, include_broken: bool = True) -> builtins.list[Entry]:
    """The registered components, without importing them (see :meth:`Registry.list`)."""
    return _default.list(kind, include_broken=include_broken)


def lookup(name: str, kind: str | None = None) -> builtins.list[Entry]:
    """The entries ``name`` may refer to, without importing (see :meth:`Registry.lookup`)."""
    return _default.lookup(name, kind)


def plugin_distributions() -> builtins.list[PluginDistribution]:
    """The plugin distributions found (see :meth:`Registry.plugin_distributions`)."""
    return _default.plugin_distributions()


def problems() -> builtins.list[Problem]:
    """The problems known so far (see :meth:`Registry.problems`)."""
    return _default.problems()


def register(
    kind: str, name: str, obj: Any, aliases: Sequence[str] = (), *, replace: bool = False
) -> Entry:
    """Register ``obj`` in-process (see :meth:`Registry.register`)."""
    return _default.register(kind, name, obj, aliases, replace=replace)


def unregister(kind: str, name: str) -> None:
    """Remove an in-process registration (see :meth:`Registry.unregister`)."""
    _default.unregister(kind, name)


def refresh() -> None:
    """Rescan the entry points on next use (see :meth:`Registry.refresh`)."""
    _default.refresh()


def load_plugin_from_pyproject(path: str | os.PathLike[str]) -> builtins.list[Entry]:
    """Register an uninstalled plugin (see :meth:`Registry.load_plugin_from_pyproject`)."""
    return _default.load_plugin_from_pyproject(path)


def hooks() -> pluggy.PluginManager:
    """The pluggy plugin manager with every plugin's hooks (see :meth:`Registry.hooks`)."""
    return _default.hooks()


def hook_mapping_value(hook_name: str, key: str, what: str) -> str:
    """A value of a mapping-returning hook (see :meth:`Registry.hook_mapping_value`)."""
    return _default.hook_mapping_value(hook_name, key, what)


def demo_checkpoint(pipeline: str) -> str:
    """The folder of ``pipeline``'s embedded demo weights (see :meth:`Registry.demo_checkpoint`)."""
    return _default.demo_checkpoint(pipeline)
