"""The metadata scan: plugin distributions and their components, read without importing them.

One entry point is one component: ``ddim = "diffusers_hub_ddim.scheduler:DDIMScheduler"`` is the
scheduler ``ddim``, also reachable under its Hub class name ``DDIMScheduler`` (the attribute after
the colon). The first-party plugins are the distributions that the core's extras install, read from
the installed ``diffusers-hub`` metadata (``Requires-Dist: diffusers-hub-ddim; extra == "ddim"``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from diffusers_hub._version import PLUGIN_API_VERSION
from diffusers_hub.errors import RegistryError
from diffusers_hub.registry import _messages as msg

logger = logging.getLogger("diffusers_hub.registry")

Kind = Literal["model", "scheduler", "processor", "pipeline"]
Status = Literal["not loaded", "loaded", "broken", "incompatible", "shadowed"]

#: The component kinds, in listing order.
KINDS: tuple[Kind, ...] = ("model", "scheduler", "processor", "pipeline")
#: The entry-point group of each kind: ``diffusers_hub.<kind>s``.
GROUPS: Mapping[Kind, str] = {kind: f"diffusers_hub.{kind}s" for kind in KINDS}
#: The group in which a distribution declares the plugin API it targets: ``"1" = "<package>"``.
API_GROUP = "diffusers_hub.plugin_api"
#: The group of pluggy hook-implementation modules: ``name = "<module>"``.
HOOKS_GROUP = "diffusers_hub.hooks"
#: The pseudo-distribution of in-process registrations (qualified ids ``<in-process>/name``).
IN_PROCESS = "<in-process>"

KIND_OF_GROUP: Mapping[str, Kind] = {group: kind for kind, group in GROUPS.items()}
OUR_GROUPS = frozenset({*GROUPS.values(), API_GROUP, HOOKS_GROUP})
NAME_RE = re.compile(r"^[^\s/]+$")
_EXTRA_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][\w.-]*)[^;]*;.*\bextra\s*==\s*['\"]([^'\"]+)")


def canonical(name: str) -> str:
    """PEP 503 normalisation of a distribution name (``Diffusers_Hub.x`` -> ``diffusers-hub-x``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def check_kind(kind: str) -> Kind:
    """``kind`` as a :data:`Kind`, or a :class:`RegistryError` listing the kinds."""
    if kind not in GROUPS:
        raise RegistryError(f"unknown component kind {kind!r}; expected one of {', '.join(KINDS)}")
    return cast(Kind, kind)


def check_name(name: object) -> None:
    """Refuse a registry name that is empty or holds spaces or ``/``."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RegistryError(
            f"invalid registry name {name!r}: names are non-empty and contain neither spaces nor '/'"
        )


@functools.cache
def first_party_extras() -> Mapping[str, str]:
    """The first-party plugin distributions and the core extra installing each
    (``{"diffusers-hub-ddim": "ddim", ...}``), from the installed core's metadata."""
    try:
        requirements = importlib.metadata.metadata("diffusers-hub").get_all("Requires-Dist")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - an uninstalled checkout
        return {}
    found: dict[str, str] = {}
    for text in requirements or []:
        match = _EXTRA_REQUIREMENT.match(text)
        if match and canonical(match[1]) == f"diffusers-hub-{canonical(match[2])}":
            found[canonical(match[1])] = canonical(match[2])
    return found


def first_party_extra(name: str) -> str | None:
    """The extra whose plugin a name belongs to by the naming convention, installed or not: the
    paper's name or a dashed name after it (``ddim``, ``ddim-inverse``), or ``<Paper><Role>``
    (``DDIMScheduler``, ``GLIDEPipeline``)."""
    for extra in first_party_extras().values():
        stem = extra.replace("-", "")
        if name == extra or name.startswith(f"{extra}-"):
            return extra
        if name[: len(stem)].lower() == stem and name[len(stem) : len(stem) + 1].isupper():
            return extra
    return None


def top_module(value: str) -> str:
    """The top-level module of a ``module:Object`` reference."""
    return value.split(":", 1)[0].split(".", 1)[0].strip()


@dataclass(frozen=True)
class Dist:
    """A distribution declaring diffusers-hub entry points, as its metadata says."""

    name: str
    key: str
    version: str
    entry_points: tuple[importlib.metadata.EntryPoint, ...]
    origin: str

    @property
    def extra(self) -> str | None:
        """The core extra installing it, for a first-party plugin."""
        return first_party_extras().get(self.key)

    @property
    def api_versions(self) -> tuple[str, ...]:
        return tuple(ep.name for ep in self.entry_points if ep.group == API_GROUP)

    @functools.cached_property
    def api_error(self) -> str | None:
        """Why the plugin API gate refuses it, or ``None`` (checked once, here)."""
        if str(PLUGIN_API_VERSION) in self.api_versions:
            return None
        return msg.api_error(self, API_GROUP)


@dataclass(frozen=True, eq=False)
class Component:
    """One registered component: an entry point, or an object registered in-process."""

    kind: Kind
    dist: Dist | None  # None: registered in-process
    value: str
    names: tuple[str, ...]
    shadowed: tuple[str, ...] = ()
    entry_point: importlib.metadata.EntryPoint | None = None
    obj: Any = None  # in-process registrations only

    @property
    def distribution(self) -> str:
        return self.dist.name if self.dist is not None else IN_PROCESS

    @property
    def version(self) -> str:
        return self.dist.version if self.dist is not None else ""

    def qualified(self, name: str | None = None) -> str:
        return f"{self.distribution}/{name or self.names[0]}"

    def owned_by(self, distribution: str) -> bool:
        return canonical(self.distribution) == canonical(distribution)


@dataclass(frozen=True)
class Entry:
    """One registered component as listed, without importing it.

    Attributes:
        kind: ``"model"``, ``"scheduler"``, ``"processor"`` or ``"pipeline"``.
        name: its entry-point name (``ddim``).
        aliases: its other names: the Hub class name (``DDIMScheduler``).
        distribution: the distribution registering it (``"<in-process>"`` for ``register``).
        version: the distribution's version.
        value: the ``"module:Object"`` reference.
        status: ``"not loaded"``, ``"loaded"``, ``"broken"`` (import or protocol check failed),
            ``"incompatible"`` (wrong or missing plugin-API declaration; never imported) or
            ``"shadowed"`` (every name is reserved for a first-party plugin: qualified id only).
        error: why it is broken, incompatible or shadowed; ``None`` otherwise.
        first_party: whether a core extra installs its distribution.
        traceback: the traceback of a failed import, when there was one.
        shadowed_names: its names reserved for first-party plugins (reachable by qualified id).
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
        """The name followed by the aliases."""
        return (self.name, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields and the qualified id."""
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__}
        lists = {"aliases": [*self.aliases], "shadowed_names": [*self.shadowed_names]}
        return {**fields, **lists, "qualified_id": self.qualified_id}


@dataclass(frozen=True)
class PluginDistribution:
    """A distribution declaring diffusers-hub entry points (see :func:`plugin_distributions`).

    Attributes:
        name: the distribution name as its metadata spells it.
        version: its version.
        first_party: whether a core extra installs it.
        extra: that extra (``pip install "diffusers-hub[EXTRA]"``), for a first-party plugin.
        api_versions: the plugin-API versions it declares.
        compatible: whether one of them is the API this core implements.
        error: why it is incompatible, or ``None``.
        modules: the top-level modules its entry points name (components and hooks).
        hook_modules: its hook-implementation modules.
        origin: where its metadata was read (a ``.dist-info`` folder or a ``pyproject.toml``).
    """

    name: str
    version: str
    first_party: bool
    extra: str | None
    api_versions: tuple[str, ...]
    compatible: bool
    error: str | None
    modules: tuple[str, ...]
    hook_modules: tuple[str, ...]
    origin: str

    @classmethod
    def of(cls, d: Dist) -> PluginDistribution:
        hooks = tuple(ep.value.strip() for ep in d.entry_points if ep.group == HOOKS_GROUP)
        modules = (top_module(ep.value) for ep in d.entry_points if ep.group != API_GROUP)
        return cls(
            d.name, d.version, d.extra is not None, d.extra, d.api_versions, d.api_error is None,
            d.api_error, tuple(dict.fromkeys(modules)), hooks, d.origin,
        )  # fmt: skip


def names_of(value: str, name: str) -> tuple[str, ...]:
    """An entry point's names: its own and the Hub class name after the colon."""
    class_name = value.partition(":")[2].strip().rpartition(".")[2]
    return (name, class_name) if class_name.isidentifier() and class_name != name else (name,)


def owner_of(name: str, reserved: Mapping[str, str]) -> str | None:
    """The first-party distribution a name is reserved for, installed (``reserved``) or not."""
    extra = first_party_extra(name)
    return reserved.get(name) or (f"diffusers-hub-{extra}" if extra else None)


@dataclass(frozen=True)
class Scan:
    """What the metadata says: distributions, components and the bare names they claim."""

    dists: tuple[Dist, ...]
    components: tuple[Component, ...]
    bare: Mapping[Kind, Mapping[str, Sequence[Component]]]  # third-party reserved claims excluded
    reserved: Mapping[str, str]  # name -> the installed first-party distribution registering it

    def owner(self, name: str) -> str | None:
        """The first-party distribution a name is reserved for (see :func:`owner_of`)."""
        return owner_of(name, self.reserved)


def discover(path: Sequence[str] | None, extra: Mapping[str, Dist]) -> list[Dist]:
    """The distributions with diffusers-hub entry points on ``path`` (``None``: ``sys.path``),
    plus ``extra`` (plugins read from a ``pyproject.toml``); an earlier path entry wins."""
    found: dict[str, Dist] = {}
    every = importlib.metadata.distributions(path=[*(sys.path if path is None else path)])
    for dist in every:
        text = dist.read_text("entry_points.txt")  # small: read the METADATA of ours only
        if not text or "diffusers_hub." not in text:
            continue
        eps = tuple(ep for ep in dist.entry_points if ep.group in OUR_GROUPS)
        name = dist.metadata["Name"] or "unknown"
        if eps and canonical(name) not in found:
            origin = str(getattr(dist, "_path", "") or name)
            found[canonical(name)] = Dist(name, canonical(name), dist.version or "", eps, origin)
    return [*{**found, **extra}.values()]


def build_scan(dists: Sequence[Dist]) -> Scan:
    """Components and bare names of ``dists``; third-party claims of reserved names are warned
    about and left out of the bare names."""
    reserved = {
        name: d.name
        for d in dists
        if d.extra is not None
        for ep in d.entry_points
        if ep.group in KIND_OF_GROUP
        for name in names_of(ep.value, ep.name)
    }
    bare: dict[Kind, dict[str, list[Component]]] = {kind: {} for kind in KINDS}
    components: list[Component] = []
    for d in dists:
        for ep in d.entry_points:
            kind = KIND_OF_GROUP.get(ep.group)
            if kind is None:
                continue
            names = names_of(ep.value, ep.name)
            shadowed = () if d.extra else tuple(n for n in names if owner_of(n, reserved))
            comp = Component(kind, d, ep.value, names, shadowed, ep)
            components.append(comp)
            for name in names:
                if name in shadowed:
                    owner = str(owner_of(name, reserved))
                    logger.warning("plugin %s", msg.reserved(comp, name, owner))
                    continue
                claims = bare[kind].setdefault(name, [])
                if not any(c.dist is d and c.value == ep.value for c in claims):
                    claims.append(comp)
    return Scan(tuple(dists), tuple(components), bare, reserved)


# -- plugins read from a pyproject.toml ---------------------------------------------------------


def read_toml(file: Path) -> dict[str, Any]:
    """``file`` parsed, or a :class:`RegistryError` naming it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    if not file.is_file():
        raise RegistryError(f"{file}: no such file; expected a plugin's pyproject.toml")
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{file}: not valid TOML: {exc}") from exc


def package_roots(folder: Path, data: Mapping[str, Any]) -> list[Path]:
    """Where a project's packages may live: ``[tool.setuptools.packages.find] where``, the
    project folder and ``src/``."""
    find: Any = data
    for key in ("tool", "setuptools", "packages", "find"):
        find = find.get(key, {}) if isinstance(find, dict) else {}
    where = find.get("where") if isinstance(find, dict) else None
    return [
        *(folder / str(w) for w in where or [] if isinstance(where, list)),
        folder,
        folder / "src",
    ]


def dist_from_pyproject(file: Path) -> tuple[Dist, Path]:
    """The distribution that ``file`` declares, and the folder holding its package."""
    data = read_toml(file)
    project = data.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise RegistryError(f"{file}: no [project] table with a 'name'")
    groups = project.get("entry-points", {})
    if not isinstance(groups, dict):
        raise RegistryError(f"{file}: [project.entry-points] must be a table")
    eps: list[importlib.metadata.EntryPoint] = []
    for group, table in groups.items():
        if group not in OUR_GROUPS:
            continue
        if not isinstance(table, dict):
            raise RegistryError(f'{file}: [project.entry-points."{group}"] must be a table')
        for name, value in table.items():
            if not isinstance(value, str):
                raise RegistryError(
                    f'{file}: entry point {name!r} in "{group}" must be a "module:Object" '
                    f"string, not {value!r}"
                )
            eps.append(importlib.metadata.EntryPoint(str(name), value, group))
    if not eps:
        raise RegistryError(f"{file}: declares no diffusers_hub.* entry points")
    version = project.get("version")
    name = project["name"]
    dist = Dist(name, canonical(name), version if isinstance(version, str) else "0+unknown",
                tuple(eps), str(file))  # fmt: skip
    modules = sorted({top_module(ep.value) for ep in eps})
    for root in package_roots(file.parent.resolve(), data):
        if any(
            (root / m / "__init__.py").is_file() or (root / f"{m}.py").is_file() for m in modules
        ):
            return dist, root
    raise RegistryError(
        f"{file}: cannot find the package(s) {', '.join(modules)} next to it "
        "(looked in the project folder, src/ and [tool.setuptools.packages.find] where)"
    )
