"""The plugin registry: components found through entry points, loaded lazily.

Every model, scheduler, processor and pipeline, first-party or not, is registered by its
distribution through an entry-point group, one per kind::

    [project.entry-points."diffusers_hub.schedulers"]
    ddim = "diffusers_hub_ddim.scheduler:DDIMScheduler"
    DDIMScheduler = "diffusers_hub_ddim.scheduler:DDIMScheduler"

    [project.entry-points."diffusers_hub.plugin_api"]
    "1" = "diffusers_hub_ddim"

Names that point at the same object in one distribution are *aliases* of one :class:`Entry`.
Listing reads only the installed metadata; a component's module is imported the first time the
component is asked for, checked against its kind's protocol (:mod:`diffusers_hub.protocols`) and
cached. A plugin that fails to import or to validate is recorded as broken; every other plugin
keeps working.

Name resolution:

- ``<distribution>/<name>`` (a *qualified id*) always resolves to that distribution's entry;
- a bare name claimed by one distribution resolves to it; claimed by several, it raises a
  :class:`~diffusers_hub.errors.RegistryError` listing them, unless a preference chooses
  (:func:`prefer`, or ``DIFFUSERS_HUB_PREFER="name=distribution,..."``);
- first-party names are reserved: a third-party distribution claiming one is warned and reachable
  only by qualified id;
- a known first-party name whose plugin is not installed raises an error naming the extra to install
  (``pip install "diffusers-hub[glide]"``);
- names registered in-process (:func:`register`, :func:`registered`) take precedence over installed
  plugins.

Example:
    >>> from diffusers_hub import registry
    >>> DDIMScheduler = registry.scheduler("ddim")  # doctest: +SKIP
    >>> print(*(e.name for e in registry.list("scheduler")))  # imports nothing  # doctest: +SKIP
    ddim ddim-inverse ddpm
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import importlib.metadata
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from diffusers_hub._version import PLUGIN_API_VERSION, __version__
from diffusers_hub.errors import PluginLoadError, RegistryError

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "API_GROUP",
    "FIRST_PARTY_DISTRIBUTIONS",
    "GROUPS",
    "HOOKS_GROUP",
    "IN_PROCESS",
    "KINDS",
    "KNOWN_FIRST_PARTY_NAMES",
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
    "hook_results",
    "hooks",
    "list",
    "load_all",
    "load_plugin_from_pyproject",
    "lookup",
    "model",
    "pipeline",
    "plugin_distributions",
    "prefer",
    "problems",
    "processor",
    "refresh",
    "register",
    "registered",
    "resolve_class",
    "scheduler",
    "set_default",
    "unregister",
]

logger = logging.getLogger(__name__)

Kind = Literal["model", "scheduler", "processor", "pipeline"]
Status = Literal["not loaded", "loaded", "broken", "incompatible", "shadowed"]

#: The component kinds, in listing order.
KINDS: tuple[Kind, ...] = ("model", "scheduler", "processor", "pipeline")

#: The entry-point group of each kind.
GROUPS: Mapping[Kind, str] = {
    "model": "diffusers_hub.models",
    "scheduler": "diffusers_hub.schedulers",
    "processor": "diffusers_hub.processors",
    "pipeline": "diffusers_hub.pipelines",
}
_KIND_OF_GROUP: Mapping[str, Kind] = {group: kind for kind, group in GROUPS.items()}

#: The group in which a distribution declares the plugin API it targets: ``"1" = "<package>"``.
API_GROUP = "diffusers_hub.plugin_api"

#: The group of pluggy hook-implementation modules: ``name = "<module>"``.
HOOKS_GROUP = "diffusers_hub.hooks"

#: The pseudo-distribution of in-process registrations (qualified ids ``<in-process>/name``).
IN_PROCESS = "<in-process>"

#: First-party plugin distributions and the core extra that installs each.
FIRST_PARTY_DISTRIBUTIONS: Mapping[str, str] = {
    "diffusers-hub-ddpm": "ddpm",
    "diffusers-hub-ddim": "ddim",
    "diffusers-hub-glide": "glide",
    "diffusers-hub-latent-diffusion": "latent-diffusion",
    "diffusers-hub-bddm": "bddm",
}


def _names(
    extra: str, kinds: tuple[Kind, ...], *names: str
) -> dict[str, tuple[str, tuple[Kind, ...]]]:
    return {name: (extra, kinds) for name in names}


#: Names reserved for the first-party plugins, whether or not they are installed:
#: name -> (extra, kinds). A missing one raises an error naming the extra to install.
KNOWN_FIRST_PARTY_NAMES: Mapping[str, tuple[str, tuple[Kind, ...]]] = {
    **_names("ddpm", ("scheduler", "pipeline"), "ddpm"),
    **_names("ddpm", ("scheduler",), "DDPMScheduler"),
    **_names("ddpm", ("pipeline",), "DDPMPipeline"),
    **_names("ddpm", ("model",), "UNet2DModel", "unet-2d"),
    **_names("ddim", ("scheduler", "pipeline"), "ddim"),
    **_names("ddim", ("scheduler",), "DDIMScheduler", "DDIMInverseScheduler", "ddim-inverse"),
    **_names("ddim", ("pipeline",), "DDIMPipeline"),
    **_names(
        "latent-diffusion",
        ("pipeline",),
        "latent-diffusion",
        "latent-diffusion-uncond",
        "LDMTextToImagePipeline",
        "LDMPipeline",
    ),
    **_names(
        "latent-diffusion",
        ("model",),
        "AutoencoderKL",
        "autoencoder-kl",
        "VQModel",
        "vq-model",
        "UNet2DConditionModel",
        "unet-2d-condition",
        "LDMBertModel",
        "ldmbert",
    ),
    **_names(
        "latent-diffusion", ("processor",), "BertTokenizer", "BertTokenizerFast", "bert-tokenizer"
    ),
    **_names("glide", ("pipeline",), "glide", "GLIDEPipeline", "GLIDESuperResPipeline"),
    **_names(
        "glide",
        ("model",),
        "GLIDEUNetModel",
        "GLIDETextTransformer",
        "GLIDETextToImageUNetModel",
        "GLIDESuperResUNetModel",
    ),
    **_names("bddm", ("pipeline",), "bddm", "BDDMPipeline"),
    **_names("bddm", ("model",), "DiffWave", "diffwave"),
    **_names("bddm", ("scheduler",), "bddm", "BDDMScheduler"),
    **_names("bddm", ("processor",), "MelSpectrogram", "mel-spectrogram"),
}

#: ``[library, ClassName]`` library strings of 2022 pipeline folders -> the extra providing them.
_LIBRARY_EXTRAS: Mapping[str, str] = {
    "latent_diffusion": "latent-diffusion",
    "glide": "glide",
    "bddm": "bddm",
}

_TRUE = {"1", "true", "yes", "on"}
_NAME_RE = re.compile(r"^[^\s/]+$")
_SHORT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _canonical(name: str) -> str:
    """PEP 503 normalisation of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _install_command(extra: str) -> str:
    return f'pip install "diffusers-hub[{extra}]"'


def _check_kind(kind: str) -> Kind:
    if kind not in GROUPS:
        raise RegistryError(f"unknown component kind {kind!r}; expected one of {', '.join(KINDS)}")
    return cast(Kind, kind)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistryError(
            f"invalid registry name {name!r}: names are non-empty and contain neither spaces nor '/'"
        )


# -- public records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One registered component (all its names), as listed without importing it.

    Attributes:
        kind: ``"model"``, ``"scheduler"``, ``"processor"`` or ``"pipeline"``.
        name: the primary name: the first short lowercase name (``ddim``) if there is one,
            else the first name in the distribution's metadata.
        aliases: the other names of the same object.
        distribution: the distribution that registers it (``"<in-process>"`` for
            :func:`register`).
        version: the distribution's version.
        value: the ``"module:Object"`` reference.
        status: ``"not loaded"`` (fine, not imported yet), ``"loaded"``, ``"broken"`` (import or
            protocol check failed), ``"incompatible"`` (wrong or missing plugin-API declaration;
            never imported) or ``"shadowed"`` (every name is reserved by a first-party plugin:
            reachable by qualified id only).
        error: why it is broken, incompatible or shadowed; ``None`` otherwise.
        first_party: whether the distribution is one of the first-party plugins.
        traceback: the traceback of a failed import, when there was one.
        shadowed_names: the names that are reserved for first-party plugins and so reachable
            only through the qualified id.
    """

    kind: Kind
    name: str
    aliases: tuple[str, ...]
    distribution: str
    version: str
    value: str
    status: Status
    error: str | None = None
    first_party: bool = False
    traceback: str | None = None
    shadowed_names: tuple[str, ...] = ()

    @property
    def qualified_id(self) -> str:
        """``<distribution>/<name>``, which always resolves to this entry."""
        return f"{self.distribution}/{self.name}"

    @property
    def names(self) -> tuple[str, ...]:
        """The primary name followed by the aliases."""
        return (self.name, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields (and the qualified id)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "aliases": [*self.aliases],
            "distribution": self.distribution,
            "version": self.version,
            "value": self.value,
            "status": self.status,
            "error": self.error,
            "first_party": self.first_party,
            "qualified_id": self.qualified_id,
            "shadowed_names": [*self.shadowed_names],
            "traceback": self.traceback,
        }


@dataclass(frozen=True)
class PluginDistribution:
    """A distribution that declares diffusers-hub entry points.

    Attributes:
        name: the distribution name as its metadata spells it.
        version: its version.
        first_party: whether it is one of the first-party plugins.
        api_versions: the plugin-API versions it declares (group ``diffusers_hub.plugin_api``).
        compatible: whether one of them is the API this core implements.
        error: why it is incompatible, or ``None``.
        modules: the top-level modules its entry points name (components and hooks).
        hook_modules: its hook-implementation modules.
        origin: where its metadata was read (a ``.dist-info`` folder or a ``pyproject.toml``).
    """

    name: str
    version: str
    first_party: bool
    api_versions: tuple[str, ...]
    compatible: bool
    error: str | None
    modules: tuple[str, ...]
    hook_modules: tuple[str, ...]
    origin: str


@dataclass(frozen=True)
class Problem:
    """A problem found by :func:`load_all` or :func:`problems`.

    Attributes:
        category: ``"incompatible"``, ``"broken"``, ``"reserved"``, ``"conflict"`` or ``"hook"``.
        message: one line saying what is wrong and how to fix it.
        distribution: the distribution at fault, when there is one.
        traceback: the traceback of a failed import, when there was one.
    """

    category: Literal["incompatible", "broken", "reserved", "conflict", "hook"]
    message: str
    distribution: str | None = None
    traceback: str | None = None

    def error(self) -> RegistryError:
        """The exception that strict mode raises for this problem."""
        if self.category in ("incompatible", "broken", "hook"):
            return PluginLoadError(self.message, self.traceback)
        return RegistryError(self.message)


# -- internal records -------------------------------------------------------------------------------


@dataclass
class _Dist:
    name: str
    key: str
    version: str
    entry_points: builtins.list[importlib.metadata.EntryPoint]
    origin: str
    api_versions: tuple[str, ...] = ()
    api_error: str | None = None

    @property
    def first_party(self) -> bool:
        return self.key in FIRST_PARTY_DISTRIBUTIONS

    @property
    def compatible(self) -> bool:
        return self.api_error is None

    def group(self, group: str) -> builtins.list[importlib.metadata.EntryPoint]:
        return [ep for ep in self.entry_points if ep.group == group]

    def fix_hint(self) -> str:
        if self.first_party:
            return f'reinstall it with: pip install -U "diffusers-hub[{FIRST_PARTY_DISTRIBUTIONS[self.key]}]"'
        return (
            f"upgrade or reinstall it (pip install -U {self.name}), or uninstall it; "
            "`diffusers-hub plugins doctor` shows every plugin problem"
        )


@dataclass(eq=False)
class _Component:
    kind: Kind
    dist: _Dist | None  # None: registered in-process
    value: str
    names: builtins.list[str]
    entry_point: importlib.metadata.EntryPoint | None = None
    obj: Any = None
    loaded: bool = False
    error: str | None = None
    traceback: str | None = None
    shadowed: builtins.list[str] = field(default_factory=builtins.list)

    @property
    def distribution(self) -> str:
        return self.dist.name if self.dist is not None else IN_PROCESS

    @property
    def dist_key(self) -> str:
        return self.dist.key if self.dist is not None else IN_PROCESS

    def qualified(self, name: str | None = None) -> str:
        return f"{self.distribution}/{name or self.names[0]}"

    @property
    def status(self) -> Status:
        if self.dist is not None and not self.dist.compatible:
            return "incompatible"
        if self.error is not None:
            return "broken"
        if self.shadowed and len(self.shadowed) == len(self.names):
            return "shadowed"
        return "loaded" if self.loaded else "not loaded"

    def entry(self) -> Entry:
        status = self.status
        error = self.error
        if status == "incompatible" and self.dist is not None:
            error = self.dist.api_error
        elif status == "shadowed":
            error = (
                f"the name(s) {', '.join(self.shadowed)} are reserved for first-party plugins; "
                f"use {self.qualified()!r}"
            )
        return Entry(
            kind=self.kind,
            name=self.names[0],
            aliases=tuple(self.names[1:]),
            distribution=self.distribution,
            version=self.dist.version if self.dist is not None else "",
            value=self.value,
            status=status,
            error=error,
            first_party=self.dist.first_party if self.dist is not None else False,
            traceback=self.traceback,
            shadowed_names=tuple(self.shadowed),
        )


@dataclass
class _Scan:
    dists: builtins.list[_Dist]
    components: builtins.list[_Component]
    # kind -> bare name -> components claiming it (reserved claims of third parties excluded)
    bare: dict[Kind, dict[str, builtins.list[_Component]]]
    reserved: dict[str, str]  # name -> first-party distribution (or extra) reserving it


def _object_value(obj: object) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}:{qualname}"
    return repr(obj)


def _api_error(dist: _Dist) -> str | None:
    current = str(PLUGIN_API_VERSION)
    if not dist.api_versions:
        package = dist.key.replace("-", "_")
        return (
            f"{dist.name} {dist.version} declares no plugin API version, so it is not loaded; its "
            f'pyproject.toml needs [project.entry-points."{API_GROUP}"] '
            f'"{current}" = "{package}" (this diffusers-hub {__version__} implements plugin API '
            f"{current})"
        )
    if current not in dist.api_versions:
        declared = ", ".join(dist.api_versions)
        return (
            f"{dist.name} {dist.version} targets plugin API {declared}, but this diffusers-hub "
            f"{__version__} implements plugin API {current}, so it is not loaded; install a "
            f"version of {dist.name} made for plugin API {current}, or a diffusers-hub that "
            f"implements API {declared}"
        )
    return None


def _top_module(value: str) -> str:
    return value.split(":", 1)[0].split(".", 1)[0].strip()


def _parse_preferences(text: str) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, dist = item.partition("=")
        if not sep or not name.strip() or not dist.strip():
            raise RegistryError(
                f"DIFFUSERS_HUB_PREFER={text!r}: expected comma-separated name=distribution pairs "
                "such as 'ddim=diffusers-hub-ddim'"
            )
        prefs[name.strip()] = _canonical(dist.strip())
    return prefs


# -- the registry -----------------------------------------------------------------------------------


class Registry:
    """A registry of components discovered through entry points.

    The module-level functions of :mod:`diffusers_hub.registry` use a default instance that
    scans ``sys.path``; tests can build their own over chosen folders.

    Args:
        path: folders to scan for distributions (``*.dist-info`` with ``entry_points.txt``);
            ``None`` scans ``sys.path`` at scan time. The modules of the distributions found must
            be importable (on ``sys.path``) to be loaded.
        environ: where to read ``DIFFUSERS_HUB_PREFER`` and ``DIFFUSERS_HUB_STRICT``;
            ``None`` reads ``os.environ`` each time.

    Example:
        >>> from diffusers_hub.registry import Registry
        >>> reg = Registry(path=[])          # sees nothing installed
        >>> reg.list()
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
        self._scan_state: _Scan | None = None
        self._extra_dists: dict[str, _Dist] = {}  # loaded from pyproject.toml files
        self._local: dict[Kind, dict[str, _Component]] = {kind: {} for kind in KINDS}
        self._preferences: dict[str, str] = {}
        self._pm: pluggy.PluginManager | None = None
        self._hook_problems: builtins.list[Problem] = []
        self._strict_checked = False
        self._strict_error: RegistryError | None = None

    # -- environment ------------------------------------------------------------------------------

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _strict_env(self) -> bool:
        return self._env().get("DIFFUSERS_HUB_STRICT", "").strip().lower() in _TRUE

    def preferences(self) -> dict[str, str]:
        """The active preferences, name -> distribution (environment first, then :meth:`prefer`)."""
        prefs = _parse_preferences(self._env().get("DIFFUSERS_HUB_PREFER", ""))
        prefs.update(self._preferences)
        return prefs

    def prefer(self, name: str, distribution: str | None) -> None:
        """Resolve the bare ``name`` to ``distribution`` when several distributions claim it.

        A preference only chooses among the distributions that may use the bare name: it cannot
        hand a first-party name to a third party (use the qualified id for that).

        Args:
            name: a bare registry name, in any kind.
            distribution: the distribution to prefer; ``None`` removes the preference.
        """
        _check_name(name)
        with self._lock:
            if distribution is None:
                self._preferences.pop(name, None)
            else:
                self._preferences[name] = _canonical(distribution)

    # -- scanning ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Forget everything loaded from entry points and scan again on next use.

        In-process registrations, plugins loaded from ``pyproject.toml`` and preferences stay.
        Modules already imported stay in ``sys.modules``.
        """
        with self._lock:
            importlib.invalidate_caches()
            self._scan_state = None
            self._pm = None
            self._hook_problems = []
            self._strict_checked = False
            self._strict_error = None

    def _discover(self) -> builtins.list[_Dist]:
        found: dict[str, _Dist] = {}
        if self._path is None:
            dists = importlib.metadata.distributions()
        else:
            dists = importlib.metadata.distributions(path=self._path)
        for dist in dists:
            # Parse the (small) entry_points.txt first and the METADATA only for our plugins.
            text = dist.read_text("entry_points.txt")
            if not text or "diffusers_hub." not in text:
                continue
            eps = [
                ep
                for ep in dist.entry_points
                if ep.group in _KIND_OF_GROUP or ep.group in (API_GROUP, HOOKS_GROUP)
            ]
            if not eps:
                continue
            name = dist.metadata["Name"] or "unknown"
            key = _canonical(name)
            if key in found:  # an earlier sys.path entry wins, as for imports
                continue
            origin = str(getattr(dist, "_path", "") or name)
            found[key] = _Dist(name, key, dist.version or "", eps, origin)
        for key, extra in self._extra_dists.items():
            found[key] = extra
        for d in found.values():
            d.api_versions = tuple(ep.name for ep in d.group(API_GROUP))
            d.api_error = _api_error(d)
        return [*found.values()]

    def _scan(self) -> _Scan:
        with self._lock:
            if self._scan_state is not None:
                return self._scan_state
            dists = self._discover()
            components: builtins.list[_Component] = []
            reserved: dict[str, str] = {
                name: f"diffusers-hub-{extra}"
                for name, (extra, _) in KNOWN_FIRST_PARTY_NAMES.items()
            }
            for d in dists:
                by_value: dict[tuple[Kind, str], _Component] = {}
                for ep in d.entry_points:
                    kind = _KIND_OF_GROUP.get(ep.group)
                    if kind is None:
                        continue
                    comp = by_value.get((kind, ep.value))
                    if comp is None:
                        comp = _Component(kind, d, ep.value, [ep.name], entry_point=ep)
                        by_value[(kind, ep.value)] = comp
                        components.append(comp)
                    elif ep.name not in comp.names:
                        comp.names.append(ep.name)
                    if d.first_party:
                        reserved.setdefault(ep.name, d.name)
            for comp in components:
                # setuptools sorts entry points, so declaration order is lost: the primary name
                # is the first short lowercase name ("ddim"), else the first name.
                short = [n for n in comp.names if _SHORT_NAME_RE.match(n)]
                if short:
                    comp.names.remove(short[0])
                    comp.names.insert(0, short[0])
            bare: dict[Kind, dict[str, builtins.list[_Component]]] = {kind: {} for kind in KINDS}
            for comp in components:
                assert comp.dist is not None
                for name in comp.names:
                    if not comp.dist.first_party and name in reserved:
                        comp.shadowed.append(name)
                        logger.warning(
                            "plugin %s registers the %s name %r, which is reserved for the "
                            "first-party plugin %s; it is reachable only as %r",
                            comp.dist.name,
                            comp.kind,
                            name,
                            reserved[name],
                            comp.qualified(name),
                        )
                        continue
                    bare[comp.kind].setdefault(name, []).append(comp)
            self._scan_state = _Scan(dists, components, bare, reserved)
            return self._scan_state

    # -- strict mode ------------------------------------------------------------------------------

    def _ensure_strict(self) -> None:
        if not self._strict_env():
            return
        with self._lock:
            if not self._strict_checked:
                self._strict_checked = True
                try:
                    self.load_all(strict=True)
                except RegistryError as exc:
                    self._strict_error = exc
            if self._strict_error is not None:
                raise self._strict_error

    def load_all(self, *, strict: bool | None = None) -> builtins.list[Problem]:
        """Import and validate every component and hook module.

        Args:
            strict: raise on the first problem (an incompatible plugin API, a failed import, an
                object not satisfying its protocol, a claimed first-party name, an unresolved
                name conflict, a failing hook module). ``None`` reads ``DIFFUSERS_HUB_STRICT``.

        Returns:
            Every problem found (empty when all is well).

        Raises:
            PluginLoadError: in strict mode, for the first plugin that cannot be loaded.
            RegistryError: in strict mode, for the first reserved-name claim or name conflict.
        """
        if strict is None:
            strict = self._strict_env()
        with self._lock:
            self._strict_checked = True  # no recursion through hooks()
            scan = self._scan()
            for d in scan.dists:
                if strict and d.api_error is not None:
                    raise PluginLoadError(d.api_error)
                for comp in scan.components:
                    if comp.dist is not d or not d.compatible:
                        continue
                    if strict and comp.shadowed:
                        raise RegistryError(self._reserved_message(comp, comp.shadowed[0]))
                    try:
                        self._load(comp)
                    except PluginLoadError:
                        if strict:
                            raise
            if strict:
                for conflict in self._conflicts(scan):
                    raise conflict.error()
            self._build_hooks(strict=strict)
            return self.problems()

    # -- problems ---------------------------------------------------------------------------------

    def _conflicts(self, scan: _Scan) -> builtins.list[Problem]:
        problems: builtins.list[Problem] = []
        for kind in KINDS:
            for name, comps in scan.bare[kind].items():
                usable = [c for c in comps if c.dist is None or c.dist.compatible]
                if len(usable) < 2 or self._preferred(name, usable) is not None:
                    continue
                if name in self._local[kind]:
                    continue
                problems.append(Problem("conflict", self._ambiguity_message(kind, name, usable)))
        return problems

    def problems(self) -> builtins.list[Problem]:
        """Every problem known without importing anything more.

        Incompatible API declarations, reserved-name claims and name conflicts are known from the
        metadata; broken plugins and failing hook modules only once they were imported (see
        :meth:`load_all`).
        """
        with self._lock:
            scan = self._scan()
            found: builtins.list[Problem] = []
            for d in scan.dists:
                if d.api_error is not None:
                    found.append(Problem("incompatible", d.api_error, d.name))
            for comp in scan.components:
                if comp.dist is not None and not comp.dist.compatible:
                    continue
                for name in comp.shadowed:
                    found.append(
                        Problem("reserved", self._reserved_message(comp, name), comp.distribution)
                    )
                if comp.error is not None:
                    found.append(Problem("broken", comp.error, comp.distribution, comp.traceback))
            found.extend(self._conflicts(scan))
            found.extend(self._hook_problems)
            return found

    # -- listing ----------------------------------------------------------------------------------

    def _all_components(self) -> builtins.list[_Component]:
        local = [c for kind in KINDS for c in dict.fromkeys(self._local[kind].values())]
        return [*self._scan().components, *local]

    def list(self, kind: str | None = None, *, include_broken: bool = True) -> builtins.list[Entry]:
        """The registered components, read from metadata only (nothing is imported).

        Args:
            kind: only this kind; ``None`` lists all four.
            include_broken: also list broken and incompatible entries.

        Returns:
            One :class:`Entry` per component (its aliases folded in), sorted by kind,
            distribution and name.
        """
        kinds = KINDS if kind is None else (_check_kind(kind),)
        with self._lock:
            entries = [c.entry() for c in self._all_components() if c.kind in kinds]
        if not include_broken:
            entries = [e for e in entries if e.status not in ("broken", "incompatible")]
        order = {k: i for i, k in enumerate(KINDS)}
        return sorted(entries, key=lambda e: (order[e.kind], e.distribution, e.name))

    def lookup(self, name: str, kind: str | None = None) -> builtins.list[Entry]:
        """Every entry that ``name`` (bare or qualified) may refer to, without importing.

        Unlike :meth:`get`, an ambiguous name gives all its candidates, and a reserved name also
        gives the third-party entries that claim it.
        """
        kinds = KINDS if kind is None else (_check_kind(kind),)
        dist_key, _, bare_name = name.rpartition("/")
        with self._lock:
            found = [
                c
                for c in self._all_components()
                if c.kind in kinds
                and bare_name in c.names
                and (not dist_key or _canonical(dist_key) == _canonical(c.dist_key))
            ]
            return [c.entry() for c in found]

    def plugin_distributions(self) -> builtins.list[PluginDistribution]:
        """The distributions that declare diffusers-hub entry points, from metadata only."""
        with self._lock:
            out = []
            for d in self._scan().dists:
                hooks = tuple(ep.value.strip() for ep in d.group(HOOKS_GROUP))
                modules = dict.fromkeys(
                    _top_module(ep.value)
                    for ep in d.entry_points
                    if ep.group in _KIND_OF_GROUP or ep.group == HOOKS_GROUP
                )
                out.append(
                    PluginDistribution(
                        name=d.name,
                        version=d.version,
                        first_party=d.first_party,
                        api_versions=d.api_versions,
                        compatible=d.compatible,
                        error=d.api_error,
                        modules=tuple(modules),
                        hook_modules=hooks,
                        origin=d.origin,
                    )
                )
            return out

    # -- resolution -------------------------------------------------------------------------------

    def _preferred(self, name: str, comps: Sequence[_Component]) -> _Component | None:
        wanted = self.preferences().get(name)
        if wanted is None:
            return None
        for comp in comps:
            if _canonical(comp.dist_key) == wanted:
                return comp
        return None

    def _ambiguity_message(self, kind: str, name: str, comps: Sequence[_Component]) -> str:
        listed = "; ".join(
            f"{c.distribution} {c.dist.version if c.dist else ''} ({c.value})".replace("  ", " ")
            for c in comps
        )
        ids = " or ".join(repr(c.qualified(name)) for c in comps)
        first = comps[0].distribution
        return (
            f"the {kind} name {name!r} is claimed by {len(comps)} distributions: {listed}. "
            f"Choose one with a qualified id ({ids}), or set a preference: "
            f"registry.prefer({name!r}, {first!r}) or DIFFUSERS_HUB_PREFER='{name}={first}'"
        )

    def _reserved_message(self, comp: _Component, name: str) -> str:
        owner = self._scan().reserved.get(name, "a first-party plugin")
        return (
            f"{comp.distribution} registers the {comp.kind} name {name!r}, which is reserved for "
            f"the first-party plugin {owner}; it is reachable only as {comp.qualified(name)!r}"
        )

    def _find(self, kind: Kind, name: str) -> _Component:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"invalid registry name {name!r}")
        scan = self._scan()
        if "/" in name:
            dist_name, _, bare_name = name.rpartition("/")
            key = _canonical(dist_name)
            candidates = [
                c
                for c in self._all_components()
                if c.kind == kind and _canonical(c.dist_key) == key and bare_name in c.names
            ]
            if candidates:
                return candidates[0]
            provided = sorted(
                n
                for c in self._all_components()
                if c.kind == kind and _canonical(c.dist_key) == key
                for n in c.names
            )
            if provided:
                raise RegistryError(
                    f"{dist_name} provides no {kind} named {bare_name!r}; its {kind}s: "
                    f"{', '.join(provided)}"
                )
            if any(_canonical(c.dist_key) == key for c in self._all_components()):
                raise RegistryError(f"{dist_name} provides no {kind}s (asked for {name!r})")
            raise RegistryError(
                f"no installed plugin distribution is named {dist_name!r} (asked for the {kind} "
                f"{name!r}); `diffusers-hub plugins list` shows the installed ones"
            )
        local = self._local[kind].get(name)
        if local is not None:
            return local
        comps = scan.bare[kind].get(name, [])
        if len(comps) > 1:
            usable = [c for c in comps if c.dist is None or c.dist.compatible]
            comps = usable or comps
        if len(comps) > 1:
            chosen = self._preferred(name, comps)
            if chosen is None:
                raise RegistryError(self._ambiguity_message(kind, name, comps))
            return chosen
        if comps:
            return comps[0]
        raise RegistryError(self._unknown_message(kind, name))

    def _unknown_message(self, kind: Kind, name: str, library: str | None = None) -> str:
        scan = self._scan()
        what = f"{library}.{name}" if library else name
        installed = {d.key for d in scan.dists}
        known = KNOWN_FIRST_PARTY_NAMES.get(name)
        extra: str | None = None
        if known is not None and kind in known[1]:
            extra = known[0]
        elif library is not None and library in _LIBRARY_EXTRAS:
            extra = _LIBRARY_EXTRAS[library]
        claims = [c for c in scan.components if c.kind == kind and name in c.shadowed]
        note = ""
        if claims:
            ids = ", ".join(repr(c.qualified(name)) for c in claims)
            note = (
                "; the name is reserved for first-party plugins, so the third-party claim(s) are "
                f"reachable only by qualified id: {ids}"
            )
        if extra is not None and f"diffusers-hub-{extra}" not in installed:
            return (
                f"the {kind} {what!r} is provided by the first-party plugin diffusers-hub-{extra}, "
                f"which is not installed; install it with: {_install_command(extra)}{note}"
            )
        if claims:
            return f"no first-party {kind} named {name!r} is installed{note}"
        elsewhere = [
            k for k in KINDS if k != kind and (name in scan.bare[k] or name in self._local[k])
        ]
        if elsewhere:
            return (
                f"no {kind} named {what!r}; {name!r} is a {' and a '.join(elsewhere)}: use "
                f"registry.{elsewhere[0]}({name!r})"
            )
        names = sorted(set(scan.bare[kind]) | set(self._local[kind]))
        import difflib

        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        listing = (
            f" Installed {kind}s: {', '.join(names)}." if names else f" No {kind}s are installed."
        )
        return (
            f"no installed plugin provides the {kind} {what!r}.{hint}{listing} "
            "`diffusers-hub plugins list` shows every plugin"
        )

    def describe_missing(self, name: str, kind: str | None = None) -> str:
        """One line saying why ``name`` names no entry, with what to install or try instead.

        Args:
            name: a bare name or a qualified id.
            kind: the kind asked for; ``None`` for any kind.
        """
        if kind is not None or "/" in name:
            k = _check_kind(kind) if kind is not None else "pipeline"
            with self._lock:
                try:
                    self._find(k, name)
                except RegistryError as exc:
                    return str(exc)
            return f"{name!r} is registered as a {k}"
        known = KNOWN_FIRST_PARTY_NAMES.get(name)
        with self._lock:
            if known is not None:
                return self._unknown_message(known[1][0], name)
            names = sorted({n for c in self._all_components() for n in c.names})
        import difflib

        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        return (
            f"no installed plugin registers the name {name!r} (in any kind).{hint} "
            "`diffusers-hub plugins list` shows every registered name"
        )

    def _load(self, comp: _Component) -> Any:
        with self._lock:
            if comp.loaded:
                return comp.obj
            if comp.dist is not None and comp.dist.api_error is not None:
                raise PluginLoadError(comp.dist.api_error)
            if comp.error is not None:
                raise PluginLoadError(comp.error, comp.traceback)
            assert comp.entry_point is not None and comp.dist is not None
            ident = comp.qualified()
            try:
                obj = comp.entry_point.load()
            except Exception as exc:
                comp.traceback = traceback.format_exc()
                comp.error = (
                    f"plugin {ident} ({comp.value}) failed to import: "
                    f"{type(exc).__name__}: {exc}; {comp.dist.fix_hint()}"
                )
                logger.debug("%s", comp.error)
                raise PluginLoadError(comp.error, comp.traceback) from exc
            from diffusers_hub.protocols import missing_members

            missing = missing_members(comp.kind, obj)
            if missing:
                comp.error = (
                    f"plugin {ident} ({comp.value}) is not a valid {comp.kind}: {obj!r} lacks "
                    f"{', '.join(missing)} of the {comp.kind.capitalize()} protocol; "
                    f"{comp.dist.fix_hint()}"
                )
                logger.debug("%s", comp.error)
                raise PluginLoadError(comp.error)
            comp.obj = obj
            comp.loaded = True
            return obj

    def get(self, kind: str, name: str) -> Any:
        """The component of ``kind`` registered as ``name``, imported on first use and cached.

        Args:
            kind: ``"model"``, ``"scheduler"``, ``"processor"`` or ``"pipeline"``.
            name: a bare name (``"ddim"``, ``"DDIMScheduler"``) or a qualified id
                (``"diffusers-hub-ddim/ddim"``).

        Returns:
            The registered object (normally a class).

        Raises:
            RegistryError: the name is unknown (the message names the extra to install for a
                first-party name) or ambiguous (the message lists the candidates).
            PluginLoadError: the plugin failed to import, does not satisfy its protocol, or
                targets another plugin API.
        """
        k = _check_kind(kind)
        self._ensure_strict()
        with self._lock:
            return self._load(self._find(k, name))

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
        """The class for a ``[library, ClassName]`` pair of a ``model_index.json``.

        Only registered names are consulted: no module named in a file is ever imported. When
        ``library`` names an installed plugin (its distribution or its package), that plugin's
        entry is preferred; otherwise ``library`` (``"diffusers"``, ``"transformers"``) only
        serves the error message.

        Args:
            class_name: the class name from the file (``"UNet2DModel"``).
            kinds: the kinds to search, in order.
            library: the library string from the file, if any.

        Raises:
            RegistryError: no installed plugin registers ``class_name``; the message names the
                plugin or extra to install when it is a known first-party name.
            PluginLoadError: the plugin providing it is broken.
        """
        checked = [_check_kind(k) for k in kinds]
        if not isinstance(class_name, str) or not class_name:
            raise RegistryError(f"invalid class name {class_name!r} (library {library!r})")
        self._ensure_strict()
        with self._lock:
            scan = self._scan()
            if library:
                lib = _canonical(library)
                owners = {
                    d.key
                    for d in scan.dists
                    if d.key == lib
                    or lib in {_canonical(_top_module(ep.value)) for ep in d.entry_points}
                }
                for kind in checked:
                    for comp in scan.components:
                        if (
                            comp.kind == kind
                            and comp.dist_key in owners
                            and class_name in comp.names
                        ):
                            return self._load(comp)
            for kind in checked:
                if class_name in self._local[kind] or class_name in scan.bare[kind]:
                    return self._load(self._find(kind, class_name))
            if "/" in class_name:
                for kind in checked:
                    with contextlib.suppress(RegistryError):
                        comp = self._find(kind, class_name)
                        return self._load(comp)
            raise RegistryError(self._resolve_message(class_name, checked, library))

    def _resolve_message(self, class_name: str, kinds: Sequence[Kind], library: str | None) -> str:
        known = KNOWN_FIRST_PARTY_NAMES.get(class_name)
        if known is not None:
            kind = next((k for k in kinds if k in known[1]), kinds[0])
        else:
            kind = kinds[0]
        message = self._unknown_message(kind, class_name, library)
        if message.startswith("no installed plugin provides"):
            what = f"{library}.{class_name}" if library else class_name
            return (
                f"no installed plugin provides the class {what!r} ({' / '.join(kinds)}); "
                "diffusers-hub resolves class names through its registry only and never imports "
                "a module named in a file. Install a plugin that registers "
                f"{class_name!r}; `diffusers-hub plugins list` shows the installed ones"
            )
        return message

    # -- in-process registration ------------------------------------------------------------------

    def register(
        self,
        kind: str,
        name: str,
        obj: Any,
        aliases: Sequence[str] = (),
        *,
        replace: bool = False,
    ) -> Entry:
        """Register ``obj`` in this process, without installing anything.

        In-process names take precedence over installed plugins (also over first-party ones) and
        are reachable as ``"<in-process>/name"``.

        Args:
            kind: ``"model"``, ``"scheduler"``, ``"processor"`` or ``"pipeline"``.
            name: the primary name.
            obj: the component (normally a class); it must satisfy the kind's protocol.
            aliases: more names for the same object.
            replace: replace an earlier in-process registration of the same name(s).

        Returns:
            The new entry.

        Raises:
            RegistryError: invalid kind or name, a name already registered in-process (without
                ``replace``), or ``obj`` does not satisfy the protocol.
        """
        k = _check_kind(kind)
        names = [name, *(a for a in aliases if a != name)]
        for n in names:
            _check_name(n)
        from diffusers_hub.protocols import missing_members

        missing = missing_members(k, obj)
        if missing:
            raise RegistryError(
                f"cannot register {obj!r} as the {k} {name!r}: it lacks {', '.join(missing)} of "
                f"the {k.capitalize()} protocol"
            )
        with self._lock:
            taken = [n for n in names if n in self._local[k]]
            if taken and not replace:
                raise RegistryError(
                    f"the {k} name(s) {', '.join(map(repr, taken))} are already registered in "
                    "this process; pass replace=True or unregister them first"
                )
            for n in taken:
                self._unregister_name(k, n)
            comp = _Component(k, None, _object_value(obj), names, obj=obj, loaded=True)
            for n in names:
                self._local[k][n] = comp
            return comp.entry()

    def _unregister_name(self, kind: Kind, name: str) -> None:
        comp = self._local[kind].pop(name, None)
        if comp is not None and name in comp.names:
            comp.names.remove(name)

    def unregister(self, kind: str, name: str) -> None:
        """Remove the in-process registration holding ``name`` (all its names).

        Raises:
            RegistryError: ``name`` is not registered in-process.
        """
        k = _check_kind(kind)
        with self._lock:
            comp = self._local[k].get(name)
            if comp is None:
                raise RegistryError(f"no {k} named {name!r} is registered in this process")
            for n in [*comp.names]:
                if self._local[k].get(n) is comp:
                    del self._local[k][n]

    @contextlib.contextmanager
    def registered(
        self, kind: str, name: str, obj: Any, aliases: Sequence[str] = ()
    ) -> Iterator[Any]:
        """Register ``obj`` for the duration of a ``with`` block, then undo it.

        An earlier in-process registration of the same names comes back afterwards.

        Example:
            >>> from diffusers_hub.registry import Registry
            >>> reg = Registry(path=[])
            >>> class Tok:
            ...     def __call__(self, text): return text.split()
            ...     @classmethod
            ...     def from_pretrained(cls, path, **options): return cls()
            ...     def save_pretrained(self, directory): pass
            >>> with reg.registered("processor", "whitespace", Tok):
            ...     reg.processor("whitespace") is Tok
            True
        """
        k = _check_kind(kind)
        names = [name, *aliases]
        with self._lock:
            previous = {n: self._local[k][n] for n in names if n in self._local[k]}
            self.register(k, name, obj, aliases, replace=True)
        try:
            yield obj
        finally:
            with self._lock:
                for n in names:
                    self._local[k].pop(n, None)
                for n, comp in previous.items():
                    self._local[k][n] = comp
                    if n not in comp.names:
                        comp.names.append(n)

    # -- uninstalled plugins ----------------------------------------------------------------------

    def load_plugin_from_pyproject(self, path: str | os.PathLike[str]) -> builtins.list[Entry]:
        """Register an uninstalled plugin from its ``pyproject.toml``.

        Reads ``[project]`` (name, version) and ``[project.entry-points."diffusers_hub.*"]``,
        puts the folder holding the plugin's package (the project folder, ``src/`` or
        ``[tool.setuptools.packages.find] where``) on ``sys.path``, and registers the plugin as
        if it were installed (replacing an installed distribution of the same name). Nothing is
        imported until used.

        Args:
            path: the ``pyproject.toml`` file or the folder holding it.

        Returns:
            The plugin's entries.

        Raises:
            RegistryError: the file is missing or malformed, or the package is not found.
        """
        file = Path(path)
        if file.is_dir():
            file = file / "pyproject.toml"
        if not file.is_file():
            raise RegistryError(f"{file}: no such file; expected a plugin's pyproject.toml")
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{file}: not valid TOML: {exc}") from exc
        project = data.get("project")
        if not isinstance(project, dict) or not isinstance(project.get("name"), str):
            raise RegistryError(f"{file}: no [project] table with a 'name'")
        name: str = project["name"]
        version = project.get("version")
        version = version if isinstance(version, str) else "0+unknown"
        groups = project.get("entry-points", {})
        if not isinstance(groups, dict):
            raise RegistryError(f"{file}: [project.entry-points] must be a table")
        eps: builtins.list[importlib.metadata.EntryPoint] = []
        for group, table in groups.items():
            if group not in _KIND_OF_GROUP and group not in (API_GROUP, HOOKS_GROUP):
                continue
            if not isinstance(table, dict):
                raise RegistryError(f'{file}: [project.entry-points."{group}"] must be a table')
            for ep_name, value in table.items():
                if not isinstance(value, str):
                    raise RegistryError(
                        f'{file}: entry point {ep_name!r} in "{group}" must be a "module:Object" '
                        f"string, not {value!r}"
                    )
                eps.append(importlib.metadata.EntryPoint(str(ep_name), value, group))
        if not eps:
            raise RegistryError(f"{file}: declares no diffusers_hub.* entry points")
        root = self._import_root(file, data, eps)
        with self._lock:
            if root not in sys.path:
                sys.path.insert(0, root)
            importlib.invalidate_caches()
            key = _canonical(name)
            self._extra_dists[key] = _Dist(name, key, version, eps, str(file))
            self.refresh()
            return [
                c.entry()
                for c in self._scan().components
                if c.dist is not None and c.dist.key == key
            ]

    @staticmethod
    def _import_root(
        file: Path, data: Mapping[str, Any], eps: Sequence[importlib.metadata.EntryPoint]
    ) -> str:
        folder = file.parent.resolve()
        candidates = [folder, folder / "src"]
        find = data.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
        where = find.get("where") if isinstance(find, dict) else None
        if isinstance(where, builtins.list):
            candidates = [folder / str(w) for w in where] + candidates
        modules = {_top_module(ep.value) for ep in eps}
        for candidate in candidates:
            for module in modules:
                if (candidate / module / "__init__.py").is_file() or (
                    candidate / f"{module}.py"
                ).is_file():
                    return str(candidate)
        raise RegistryError(
            f"{file}: cannot find the package(s) {', '.join(sorted(modules))} next to it "
            "(looked in the project folder, src/ and [tool.setuptools.packages.find] where)"
        )

    # -- hooks ------------------------------------------------------------------------------------

    def hooks(self) -> pluggy.PluginManager:
        """The pluggy plugin manager holding every plugin's hook implementations.

        Hook modules (group ``diffusers_hub.hooks``) are imported the first time this is called.
        A module that fails to import is skipped with a logged warning and reported by
        :meth:`problems`; plugins with an incompatible API are never imported.
        """
        self._ensure_strict()
        return self._build_hooks(strict=False)

    def _build_hooks(self, *, strict: bool) -> pluggy.PluginManager:
        with self._lock:
            if self._pm is not None:
                if strict and self._hook_problems:
                    raise self._hook_problems[0].error()
                return self._pm
            import pluggy

            from diffusers_hub import hookspecs

            pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            pm.add_hookspecs(hookspecs)
            problems: builtins.list[Problem] = []
            for d in self._scan().dists:
                if not d.compatible:
                    continue
                for ep in d.group(HOOKS_GROUP):
                    plugin_name = f"{d.name}:{ep.name}"
                    try:
                        module = ep.load()
                        pm.register(module, name=plugin_name)
                    except Exception as exc:
                        message = (
                            f"hook module {ep.value} of {d.name} failed to load: "
                            f"{type(exc).__name__}: {exc}; {d.fix_hint()}"
                        )
                        problem = Problem("hook", message, d.name, traceback.format_exc())
                        if strict:
                            raise problem.error() from exc
                        logger.warning("%s", message)
                        problems.append(problem)
            self._pm = pm
            self._hook_problems = problems
            return pm

    def hook_results(self, hook_name: str, **kwargs: Any) -> builtins.list[tuple[str, Any]]:
        """Call every implementation of a hook separately, isolating failures.

        Args:
            hook_name: the hook (``"diffusers_hub_trainers"``).
            **kwargs: the hook's arguments.

        Returns:
            ``(plugin name, result)`` for every implementation that returned a value other than
            ``None``; an implementation that raises is skipped with a logged warning.
        """
        pm = self.hooks()
        caller = getattr(pm.hook, hook_name, None)
        if caller is None:
            raise RegistryError(f"no hook named {hook_name!r}")
        results: builtins.list[tuple[str, Any]] = []
        for impl in reversed(caller.get_hookimpls()):  # registration order
            try:
                result = impl.function(**{a: kwargs[a] for a in impl.argnames})
            except Exception as exc:
                logger.warning(
                    "hook %s of %s failed: %s: %s",
                    hook_name,
                    impl.plugin_name,
                    type(exc).__name__,
                    exc,
                )
                continue
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    def hook_mapping_value(self, hook_name: str, key: str, what: str) -> str:
        """The value under ``key`` of a hook that returns name -> value mappings.

        Raises:
            RegistryError: no plugin provides ``key``, or several give different values.
        """
        merged: dict[str, builtins.list[tuple[str, str]]] = {}
        for plugin, mapping in self.hook_results(hook_name):
            if isinstance(mapping, dict):
                for k, value in mapping.items():
                    merged.setdefault(str(k), []).append((plugin, str(value)))
        choices = merged.get(key)
        if not choices:
            known = ", ".join(sorted(merged)) or "none are installed"
            raise RegistryError(f"no {what} named {key!r} (available: {known})")
        if len({value for _, value in choices}) > 1:
            listed = "; ".join(f"{plugin}: {value}" for plugin, value in choices)
            raise RegistryError(f"the {what} {key!r} is provided by several plugins ({listed})")
        return choices[0][1]

    def demo_checkpoint(self, pipeline: str) -> str:
        """The folder of the embedded demo weights of ``pipeline`` (any of its names).

        Example:
            >>> from diffusers_hub import DiffusionPipeline, registry
            >>> pipe = DiffusionPipeline.from_pretrained(registry.demo_checkpoint("ddpm"))

        Raises:
            RegistryError: no installed plugin ships demo weights for that pipeline.
        """
        names = [pipeline]
        for entry in self.lookup(pipeline, "pipeline"):
            names.extend(entry.names)
        for name in dict.fromkeys(names):
            try:
                return self.hook_mapping_value(
                    "diffusers_hub_demo_checkpoints", name, "demo checkpoint"
                )
            except RegistryError as exc:
                if "several plugins" in str(exc):
                    raise
        raise RegistryError(
            f"the pipeline {pipeline!r} has no embedded demo weights; pass a folder or Hub "
            "repo id instead"
        )


# -- the default registry and module-level functions ------------------------------------------------

_default = Registry()


def default() -> Registry:
    """The registry used by the module-level functions (it scans ``sys.path``)."""
    return _default


def set_default(registry: Registry | None) -> Registry:
    """Make ``registry`` the default (``None``: a fresh one over ``sys.path``); returns the old one."""
    global _default
    previous = _default
    _default = registry if registry is not None else Registry()
    return previous


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


def registered(
    kind: str, name: str, obj: Any, aliases: Sequence[str] = ()
) -> contextlib.AbstractContextManager[Any]:
    """Register ``obj`` for a ``with`` block (see :meth:`Registry.registered`)."""
    return _default.registered(kind, name, obj, aliases)


def prefer(name: str, distribution: str | None) -> None:
    """Prefer ``distribution`` for the bare ``name`` (see :meth:`Registry.prefer`)."""
    _default.prefer(name, distribution)


def refresh() -> None:
    """Rescan the entry points on next use (see :meth:`Registry.refresh`)."""
    _default.refresh()


def load_all(*, strict: bool | None = None) -> builtins.list[Problem]:
    """Import and validate everything (see :meth:`Registry.load_all`)."""
    return _default.load_all(strict=strict)


def load_plugin_from_pyproject(path: str | os.PathLike[str]) -> builtins.list[Entry]:
    """Register an uninstalled plugin (see :meth:`Registry.load_plugin_from_pyproject`)."""
    return _default.load_plugin_from_pyproject(path)


def hooks() -> pluggy.PluginManager:
    """The pluggy plugin manager with every plugin's hooks (see :meth:`Registry.hooks`)."""
    return _default.hooks()


def demo_checkpoint(pipeline: str) -> str:
    """The folder of ``pipeline``'s embedded demo weights (see :meth:`Registry.demo_checkpoint`)."""
    return _default.demo_checkpoint(pipeline)


def hook_mapping_value(hook_name: str, key: str, what: str) -> str:
    """A value of a mapping-returning hook (see :meth:`Registry.hook_mapping_value`)."""
    return _default.hook_mapping_value(hook_name, key, what)


def hook_results(hook_name: str, **kwargs: Any) -> builtins.list[tuple[str, Any]]:
    """Each implementation's result of a hook, failures isolated (see :meth:`Registry.hook_results`)."""
    return _default.hook_results(hook_name, **kwargs)
