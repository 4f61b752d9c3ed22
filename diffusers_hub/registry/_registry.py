"""The :class:`Registry`: the scan, resolution and loading modules behind one lock."""

from __future__ import annotations

import builtins
import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffusers_hub.errors import PluginLoadError, RegistryError
from diffusers_hub.registry import _messages as msg
from diffusers_hub.registry import _resolve
from diffusers_hub.registry._loading import (
    Outcome,
    Problem,
    entry,
    hook_values,
    load,
    one_value,
    plugin_manager,
    problems,
)
from diffusers_hub.registry._scan import (
    KINDS,
    Component,
    Dist,
    Entry,
    Kind,
    PluginDistribution,
    Scan,
    build_scan,
    check_kind,
    check_name,
    discover,
    dist_from_pyproject,
)

if TYPE_CHECKING:
    import pluggy

_TRUE = {"1", "true", "yes", "on"}


class Registry:
    """Components discovered through entry points, imported on first use.

    The module-level functions of :mod:`diffusers_hub.registry` use a default instance that
    scans ``sys.path``; tests can build their own over chosen folders.

    Args:
        path: folders to scan for distributions (``*.dist-info`` with ``entry_points.txt``);
            ``None`` scans ``sys.path``. Their modules must be importable to be loaded.
        environ: where to read ``DIFFUSERS_HUB_STRICT``; ``None`` reads ``os.environ``.

    Example:
        >>> from diffusers_hub.registry import Registry
        >>> Registry(path=[]).list()  # sees nothing installed
        []
    """

    def __init__(
        self,
        path: Sequence[str | os.PathLike[str]] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._path = None if path is None else [os.fspath(p) for p in path]
        self._environ = environ
        self._lock = threading.RLock()
        self._extra: dict[str, Dist] = {}  # plugins read from a pyproject.toml
        self._local: dict[Kind, dict[str, Component]] = {kind: {} for kind in KINDS}
        self.refresh()

    def refresh(self) -> None:
        """Forget the scan and what was imported through it; rescan on next use.

        In-process registrations and plugins read from a ``pyproject.toml`` stay.
        """
        with self._lock:
            importlib.invalidate_caches()
            self._scan_state: Scan | None = None
            self._outcomes: dict[Component, Outcome] = {}
            self._hooks: tuple[pluggy.PluginManager, builtins.list[Problem]] | None = None
            self._strict_problems: builtins.list[Problem] | None = None

    def _scan(self) -> Scan:
        with self._lock:
            if self._scan_state is None:
                self._scan_state = build_scan(discover(self._path, self._extra))
            return self._scan_state

    def _load(self, comp: Component) -> Any:
        with self._lock:
            outcome = self._outcomes.get(comp) or load(comp)
            if comp.dist is not None:
                self._outcomes[comp] = outcome
        if outcome.error is not None:
            raise PluginLoadError(outcome.error, outcome.traceback)
        return outcome.obj

    def _plugin_manager(self) -> tuple[pluggy.PluginManager, builtins.list[Problem]]:
        with self._lock:
            if self._hooks is None:
                self._hooks = plugin_manager(self._scan())
            return self._hooks

    def _strict_gate(self) -> None:
        """In strict mode (``DIFFUSERS_HUB_STRICT=1``), import everything once and raise the
        first problem found, now and on every later use."""
        env = os.environ if self._environ is None else self._environ
        if env.get("DIFFUSERS_HUB_STRICT", "").strip().lower() not in _TRUE:
            return
        with self._lock:
            if self._strict_problems is None:
                for comp in self._scan().components:
                    if comp.dist is not None and comp.dist.api_error is None:
                        with contextlib.suppress(PluginLoadError):  # problems() reports it
                            self._load(comp)
                self._plugin_manager()
                self._strict_problems = self.problems()
            if self._strict_problems:
                raise self._strict_problems[0].error()

    # -- listing (metadata only) ------------------------------------------------------------------

    def list(self, kind: str | None = None, *, include_broken: bool = True) -> builtins.list[Entry]:
        """The registered components, sorted by kind, distribution and name; imports nothing.

        Args:
            kind: only this kind; ``None`` lists all four.
            include_broken: also list broken and incompatible entries.
        """
        kinds = KINDS if kind is None else (check_kind(kind),)
        with self._lock:
            comps = _resolve.every(self._scan(), self._local)
            entries = [entry(c, self._outcomes.get(c)) for c in comps if c.kind in kinds]
        if not include_broken:
            entries = [e for e in entries if e.status not in ("broken", "incompatible")]
        return sorted(entries, key=lambda e: (KINDS.index(e.kind), e.distribution, e.name))

    def lookup(self, name: str, kind: str | None = None) -> builtins.list[Entry]:
        """Every entry ``name`` (bare or qualified) may refer to, without importing: all the
        candidates of an ambiguous name, and the third-party claims of a reserved one."""
        kinds = KINDS if kind is None else (check_kind(kind),)
        with self._lock:
            found = _resolve.lookup(self._scan(), self._local, name, kinds)
            return [entry(c, self._outcomes.get(c)) for c in found]

    def describe_missing(self, name: str, kind: str | None = None) -> str:
        """One line saying why ``name`` names no entry, with what to install or try instead."""
        checked = None if kind is None else check_kind(kind)
        with self._lock:
            return _resolve.describe_missing(self._scan(), self._local, name, checked)

    def owner(self, name: str) -> str | None:
        """The first-party distribution that reserves ``name``, whether installed or not."""
        return self._scan().owner(name)

    def plugin_distributions(self) -> builtins.list[PluginDistribution]:
        """The distributions declaring diffusers-hub entry points, from metadata only."""
        return [PluginDistribution.of(d) for d in self._scan().dists]

    def problems(self) -> builtins.list[Problem]:
        """Every problem known without importing more: incompatible API declarations, reserved
        names and conflicts from the metadata; broken plugins and hook modules once imported."""
        with self._lock:
            hook_problems = self._hooks[1] if self._hooks is not None else []
            return problems(self._scan(), self._outcomes, self._local, hook_problems)

    # -- resolution and loading -------------------------------------------------------------------

    def get(self, kind: str, name: str) -> Any:
        """The component of ``kind`` registered as ``name``, imported on first use and cached.

        Args:
            kind: ``"model"``, ``"scheduler"``, ``"processor"`` or ``"pipeline"``.
            name: a bare name (``"ddim"``, ``"DDIMScheduler"``) or a qualified id
                (``"diffusers-hub-ddim/ddim"``).

        Raises:
            RegistryError: the name is unknown (naming the extra to install for a first-party
                name) or ambiguous (listing the candidates).
            PluginLoadError: the plugin failed to import, does not satisfy its protocol, or
                targets another plugin API.
        """
        checked = check_kind(kind)
        self._strict_gate()
        with self._lock:
            return self._load(_resolve.find(self._scan(), self._local, checked, name))

    def model(self, name: str) -> Any:
        """The model class registered as ``name`` (see :meth:`get`)."""
        return self.get("model", name)

    def scheduler(self, name: str) -> Any:
        """The scheduler class registered as ``name`` (see :meth:`get`)."""
        return self.get("scheduler", name)

    def processor(self, name: str) -> Any:
        """The processor class registered as ``name`` (see :meth:`get`)."""
        return self.get("processor", name)

    def pipeline(self, name: str) -> Any:
        """The pipeline class registered as ``name`` (see :meth:`get`)."""
        return self.get("pipeline", name)

    def resolve_class(
        self,
        class_name: str,
        kinds: Sequence[str] = ("model", "scheduler", "processor"),
        library: str | None = None,
    ) -> Any:
        """The class of a ``model_index.json`` pair ``[library, ClassName]``.

        Only registered names are consulted: no module named in a file is ever imported. When
        ``library`` names an installed plugin (distribution or package), its entry is preferred;
        otherwise ``library`` (``"diffusers"``, ``"transformers"``) only serves the message.

        Raises:
            RegistryError: no installed plugin registers ``class_name`` (naming the extra to
                install for a first-party name).
            PluginLoadError: the plugin providing it is broken.
        """
        checked = [check_kind(k) for k in kinds]
        if not isinstance(class_name, str) or not class_name:
            raise RegistryError(f"invalid class name {class_name!r} (library {library!r})")
        self._strict_gate()
        with self._lock:
            scan = self._scan()
            return self._load(_resolve.find_class(scan, self._local, class_name, checked, library))

    # -- in-process registration ------------------------------------------------------------------

    def register(
        self, kind: str, name: str, obj: Any, aliases: Sequence[str] = (), *, replace: bool = False
    ) -> Entry:
        """Register ``obj`` in this process, without installing anything.

        In-process names come before installed plugins (first-party ones too) and are also
        reachable as ``"<in-process>/name"``.

        Args:
            kind: ``"model"``, ``"scheduler"``, ``"processor"`` or ``"pipeline"``.
            name: the name.
            obj: the component (normally a class); it must satisfy the kind's protocol.
            aliases: more names for it.
            replace: replace the earlier in-process registrations holding these names.

        Raises:
            RegistryError: invalid kind or name, a name already registered in-process (without
                ``replace``), or ``obj`` does not satisfy the protocol.
        """
        from diffusers_hub.protocols import missing_members

        checked = check_kind(kind)
        names = tuple(dict.fromkeys((name, *aliases)))
        for n in names:
            check_name(n)
        missing = missing_members(checked, obj)
        if missing:
            raise RegistryError(msg.not_registrable(checked, name, obj, missing))
        with self._lock:
            taken = [n for n in names if n in self._local[checked]]
            if taken and not replace:
                raise RegistryError(
                    f"the {checked} name(s) {', '.join(map(repr, taken))} are already registered "
                    "in this process; pass replace=True or unregister them first"
                )
            for n in taken:
                self.unregister(checked, n)
            value = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', obj)}"
            comp = Component(checked, None, value, names, obj=obj)
            self._local[checked].update(dict.fromkeys(names, comp))
            return entry(comp, None)

    def unregister(self, kind: str, name: str) -> None:
        """Remove the in-process registration holding ``name`` (all its names).

        Raises:
            RegistryError: ``name`` is not registered in-process.
        """
        local = self._local[check_kind(kind)]
        with self._lock:
            comp = local.get(name)
            if comp is None:
                raise RegistryError(f"no {kind} named {name!r} is registered in this process")
            for n in comp.names:
                if local.get(n) is comp:
                    del local[n]

    def load_plugin_from_pyproject(self, path: str | os.PathLike[str]) -> builtins.list[Entry]:
        """Register an uninstalled plugin from its ``pyproject.toml`` (or the folder holding it).

        Its entry points are read as if it were installed (replacing an installed distribution
        of the same name) and the folder holding its package (the project folder, ``src/`` or
        ``[tool.setuptools.packages.find] where``) goes on ``sys.path``. Nothing is imported.

        Raises:
            RegistryError: the file is missing or malformed, or the package is not found.
        """
        file = Path(path) / "pyproject.toml" if Path(path).is_dir() else Path(path)
        dist, root = dist_from_pyproject(file)
        with self._lock:
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            self._extra[dist.key] = dist
            self.refresh()
            return [entry(c, None) for c in self._scan().components if c.dist is dist]

    # -- hooks ------------------------------------------------------------------------------------

    def hooks(self) -> pluggy.PluginManager:
        """The pluggy plugin manager holding every compatible plugin's hook implementations.

        Hook modules (group ``diffusers_hub.hooks``) are imported the first time this is called;
        one that fails to import is skipped with a logged warning and reported by
        :meth:`problems`.
        """
        self._strict_gate()
        return self._plugin_manager()[0]

    def hook_mapping_value(self, hook_name: str, key: str, what: str) -> str:
        """The value under ``key`` of a hook returning name -> value mappings
        (``hook_mapping_value("diffusers_hub_trainers", "ddpm", "trainer")``).

        Raises:
            RegistryError: no plugin provides ``key``, or several give different values.
        """
        return one_value(hook_values(self.hooks(), hook_name), key, what)

    def demo_checkpoint(self, pipeline: str) -> str:
        """The folder of the embedded demo weights of ``pipeline`` (any of its names).

        Example:
            >>> from diffusers_hub import DiffusionPipeline, registry
            >>> pipe = DiffusionPipeline.from_pretrained(registry.demo_checkpoint("ddpm"))

        Raises:
            RegistryError: no installed plugin ships demo weights for that pipeline.
        """
        merged = hook_values(self.hooks(), "diffusers_hub_demo_checkpoints")
        names = [pipeline, *(n for e in self.lookup(pipeline, "pipeline") for n in e.names)]
        for name in dict.fromkeys(names):
            if name in merged:
                return one_value(merged, name, "demo checkpoint")
        raise RegistryError(msg.no_demo(pipeline))
