"""``diffusers-hub plugins validate``: check a plugin project folder, from its ``pyproject.toml``.

Without importing, a reader turns ``pyproject.toml`` into declarations and small checks look at
them: entry points well-formed (``name = "module:ClassName"``, one per component), groups known,
the plugin-API declaration present and compatible with this core, names valid and not reserved
for first-party plugins, the package folders and modules present. With ``imports=True`` every
object is also imported (the plugin folder is put on ``sys.path``) and checked against its kind's
protocol (:func:`diffusers_hub.protocols.missing_members`), and each hook module is imported in a
fresh interpreter to check that it does not import torch.

This module imports neither torch nor any plugin.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from diffusers_hub._version import PLUGIN_API_VERSION, __version__
from diffusers_hub.errors import DiffusersHubError, RegistryError
from diffusers_hub.registry._scan import (
    API_GROUP,
    GROUPS,
    HOOKS_GROUP,
    KIND_OF_GROUP,
    NAME_RE,
    Kind,
    canonical,
    first_party_extras,
    names_of,
    package_roots,
    read_toml,
)

__all__ = ["Finding", "reserved_for", "run_probe", "validate_plugin"]

SHORT_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_IDENTIFIERS = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_MODULE_PATH = re.compile(rf"^{_IDENTIFIERS}$")
_OBJECT_REFERENCE = re.compile(rf"^{_IDENTIFIERS}\s*:\s*{_IDENTIFIERS}$")


def reserved_for(name: str) -> str | None:
    """The first-party distribution reserving ``name`` (metadata only), or ``None``."""
    from diffusers_hub import registry

    try:
        return registry.default().owner(name)
    except DiffusersHubError:  # a broken environment must not stop validation
        return None


@dataclass(frozen=True)
class Finding:
    """One result of :func:`validate_plugin`.

    Attributes:
        level: ``"error"`` (the plugin will not work, or not as written) or ``"warning"``.
        code: a short stable identifier, e.g. ``"entry-point"``, ``"api-version"``,
            ``"reserved-name"``, ``"package-missing"``, ``"import"``, ``"protocol"``.
        message: what is wrong and how to fix it.
        where: the file, entry point or object concerned.
    """

    level: Literal["error", "warning"]
    code: str
    message: str
    where: str = ""

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict of the fields."""
        return asdict(self)

    def __str__(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return f"{self.level}: [{self.code}] {self.message}{where}"


def _module_file(roots: Iterable[Path], module: str) -> Path | None:
    parts = module.split(".")
    for root in roots:
        base = root.joinpath(*parts)
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    return None


class _Declared(NamedTuple):
    """One component entry point of a plugin's ``pyproject.toml``."""

    kind: Kind
    name: str
    value: str

    @property
    def where(self) -> str:
        return f'[project.entry-points."{GROUPS[self.kind]}"] {self.name}'


@dataclass
class _Plugin:
    """What validation reads from a plugin's ``pyproject.toml``."""

    file: Path
    data: dict[str, Any]
    name: str = "<unnamed>"
    components: list[_Declared] = field(default_factory=list)
    api: list[tuple[str, str]] = field(default_factory=list)  # (version, package)
    hooks: list[tuple[str, str]] = field(default_factory=list)  # (name, module)
    declared: int = 0  # component entry points, malformed ones included

    @property
    def first_party(self) -> bool:
        return canonical(self.name) in first_party_extras()

    @property
    def modules(self) -> set[str]:
        return {c.value.partition(":")[0] for c in self.components} | {m for _, m in self.hooks}


def _error(code: str, message: str, where: str = "") -> Finding:
    return Finding("error", code, message, where)


def _warning(code: str, message: str, where: str = "") -> Finding:
    return Finding("warning", code, message, where)


def _read_plugin(file: Path) -> tuple[_Plugin | None, list[Finding]]:
    """Parse ``file``: ``[project]`` name, version and dependencies, and every entry point."""
    try:
        data = read_toml(file)
    except RegistryError as exc:
        return None, [_error("pyproject", str(exc), str(file))]
    project = data.get("project")
    if not isinstance(project, dict):
        return None, [_error("pyproject", "no [project] table", str(file))]
    plugin = _Plugin(file, data)
    findings: list[Finding] = []
    if isinstance(project.get("name"), str) and project["name"]:
        plugin.name = project["name"]
    else:
        findings.append(_error("pyproject", "[project] has no 'name'", str(file)))
    if not isinstance(project.get("version"), str) and "version" not in project.get("dynamic", []):
        findings.append(
            _error("pyproject", "[project] has no 'version' (nor a dynamic one)", str(file))
        )
    if plugin.first_party:
        findings.append(
            _warning(
                "first-party",
                f"{plugin.name} is a first-party plugin: reserved-name checks skipped (a "
                "third-party plugin must not use this distribution name)",
                str(file),
            )
        )
    deps = project.get("dependencies", [])
    if not isinstance(deps, list) or not any(
        isinstance(d, str)
        and canonical(re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0]) == "diffusers-hub"
        for d in deps
    ):
        findings.append(
            _warning(
                "dependencies",
                "[project] dependencies do not name diffusers-hub; add "
                f'"diffusers-hub>={__version__.rsplit(".", 1)[0]}" so that pip installs the core',
                str(file),
            )
        )
    groups = project.get("entry-points", {})
    if not isinstance(groups, dict):
        return None, [
            *findings,
            _error("pyproject", "[project.entry-points] must be a table", str(file)),
        ]
    for group, table in groups.items():
        if str(group).startswith("diffusers_hub."):
            findings += _read_group(plugin, str(group), table)
    return plugin, findings


def _read_group(plugin: _Plugin, group: str, table: object) -> list[Finding]:
    """Read one ``diffusers_hub.*`` entry-point table into ``plugin``; malformed entries are
    findings."""
    where_group = f'[project.entry-points."{group}"]'
    known = sorted({*GROUPS.values(), API_GROUP, HOOKS_GROUP})
    if group not in known:
        close = [g for g in known if g.rstrip("s") == group.rstrip("s")]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        message = f"unknown entry-point group {group!r}{hint}; known groups: {', '.join(known)}"
        return [_error("group", message, where_group)]
    if not isinstance(table, dict):
        return [_error("pyproject", f"{where_group} must be a table", where_group)]
    findings: list[Finding] = []
    plugin.declared += len(table) if group in KIND_OF_GROUP else 0
    for name, raw in table.items():
        where = f"{where_group} {name}"
        value = raw.strip() if isinstance(raw, str) else None
        if value is None:
            findings.append(
                _error("entry-point", f"the value must be a string, not {raw!r}", where)
            )
        elif group == API_GROUP:
            plugin.api.append((str(name), value))
            if not _MODULE_PATH.match(value):
                message = (
                    f"the plugin-API declaration must name the plugin's package, not {value!r}"
                )
                findings.append(_error("api-version", message, where))
        elif group == HOOKS_GROUP:
            if _MODULE_PATH.match(value):
                plugin.hooks.append((str(name), value))
            else:
                message = f"a hook entry point names a module ('my_plugin.hooks'), not {value!r}"
                findings.append(_error("entry-point", message, where))
        elif not _OBJECT_REFERENCE.match(value):
            findings.append(
                _error(
                    "entry-point",
                    f"{value!r} is not of the form 'module:Object' "
                    "(e.g. 'my_plugin.scheduler:MyScheduler')",
                    where,
                )
            )
        elif not NAME_RE.match(str(name)):
            message = f"invalid registry name {name!r}: names contain neither spaces nor '/'"
            findings.append(_error("name", message, where))
        else:
            value = re.sub(r"\s*:\s*", ":", value)
            plugin.components.append(_Declared(KIND_OF_GROUP[group], str(name), value))
    return findings


def _check_components(plugin: _Plugin) -> list[Finding]:
    """At least one component; one entry point per component; one object per name and kind;
    a short lowercase name for each."""
    if not plugin.declared and not plugin.hooks:
        groups = ", ".join(GROUPS.values())
        message = f"no component entry points: declare at least one of the groups {groups}"
        return [_error("no-components", message, str(plugin.file))]
    findings: list[Finding] = []
    seen: dict[tuple[Kind, str], _Declared] = {}
    for comp in plugin.components:
        for name in names_of(comp.value, comp.name):
            other = seen.setdefault((comp.kind, name), comp)
            if other.value != comp.value:
                message = (
                    f"the {comp.kind} name {name!r} points at both {other.value} and {comp.value}"
                )
                findings.append(_error("name", message, comp.where))
            elif other is not comp:
                message = (
                    f"{comp.value} is registered twice ({other.name}, {comp.name}): declare one "
                    "entry point per component, under its short name (the class name after the "
                    "colon is a registry name already)"
                )
                findings.append(_error("name", message, comp.where))
        if not SHORT_NAME.match(comp.name):
            message = (
                f"{comp.value} is registered as {comp.name!r}, not under a short lowercase name "
                "(like 'my-solver'): it is the name people type; the class name after the colon "
                "is a registry name already"
            )
            findings.append(_warning("name", message, comp.where))
    return findings


def _check_api(plugin: _Plugin) -> list[Finding]:
    """The plugin-API declaration: present, this core's, naming the plugin's own package."""
    current = str(PLUGIN_API_VERSION)
    where = f'[project.entry-points."{API_GROUP}"]'
    versions = [v for v, _ in plugin.api]
    if not versions:
        package = canonical(plugin.name).replace("-", "_")
        message = (
            "no plugin-API declaration, so the registry will never load this plugin; add "
            f'{where} "{current}" = "{package}"'
        )
        return [_error("api-version", message, str(plugin.file))]
    findings: list[Finding] = []
    if current not in versions:
        message = (
            f"the plugin targets plugin API {', '.join(versions)}, but this diffusers-hub "
            f"{__version__} implements plugin API {current}; port it to API {current} and "
            f'declare "{current}" = "<package>"'
        )
        findings.append(_error("api-version", message, where))
    tops = {m.split(".", 1)[0] for m in plugin.modules}
    for _, package in plugin.api:
        if _MODULE_PATH.match(package) and tops and package.split(".")[0] not in tops:
            message = (
                f"the plugin-API declaration names {package!r}, which none of the entry points "
                f"uses ({', '.join(sorted(tops))}); name the plugin's own package"
            )
            findings.append(_warning("api-version", message, where))
    return findings


def _check_reserved(plugin: _Plugin) -> list[Finding]:
    """No name of a third-party plugin is reserved for a first-party one."""
    findings: list[Finding] = []
    for comp in [] if plugin.first_party else plugin.components:
        for name in names_of(comp.value, comp.name):
            owner = reserved_for(name)
            if owner is not None:
                message = (
                    f"the {comp.kind} name {name!r} is reserved for the first-party plugin "
                    f"{owner}: the registry ignores it (the component is reachable only as "
                    f"'{plugin.name}/{name}'); choose another name"
                )
                findings.append(_error("reserved-name", message, comp.where))
    return findings


def _check_files(plugin: _Plugin) -> list[Finding]:
    """The packages and modules that the entry points name exist on disk."""
    roots = package_roots(plugin.file.parent, plugin.data)
    findings: list[Finding] = []
    folder = str(plugin.file.parent)
    for top in sorted({m.split(".", 1)[0] for m in plugin.modules}):
        if _module_file(roots, top) is None:
            message = (
                f"the package {top!r} named by the entry points is not in the project folder, "
                "src/ or [tool.setuptools.packages.find] where"
            )
            findings.append(_error("package-missing", message, folder))
    for module in sorted(plugin.modules):
        top = module.split(".", 1)[0]
        if _module_file(roots, top) is not None and _module_file(roots, module) is None:
            message = f"the module {module!r} named by an entry point does not exist"
            findings.append(_error("module-missing", message, folder))
    return findings


def validate_plugin(path: str | os.PathLike[str], imports: bool = False) -> list[Finding]:
    """Check a plugin project folder (or its ``pyproject.toml``).

    Without importing anything: ``pyproject.toml`` parses and has ``[project] name`` and
    ``version``; every ``diffusers_hub.*`` group is known; component entry points read
    ``name = "module:Object"``, one per component, under a valid short name; the plugin API is
    declared (``[project.entry-points."diffusers_hub.plugin_api"] "1" = "<package>"``) and
    compatible with this core; no name is reserved for a first-party plugin; the package
    folders and modules named exist.

    With ``imports=True`` (only when the checks above found no error): the package folder is
    put on ``sys.path``, each object is imported and checked against its kind's protocol, and
    each hook module is imported in a fresh interpreter to check that it does not import torch.

    Args:
        path: the plugin's project folder or its ``pyproject.toml``.
        imports: also import and check the objects.

    Returns:
        The findings, errors and warnings; no finding with level ``"error"`` means the plugin is
        valid.
    """
    file = Path(path) / "pyproject.toml" if Path(path).is_dir() else Path(path)
    plugin, findings = _read_plugin(file)
    if plugin is None:
        return findings
    for check in (_check_components, _check_api, _check_reserved, _check_files):
        findings += check(plugin)
    if imports and not any(f.level == "error" for f in findings):
        findings += _validate_imports(plugin)
    return findings


def _validate_imports(plugin: _Plugin) -> list[Finding]:
    """Import every component (checking its protocol) and every hook module (in a fresh
    interpreter, checking that it does not import torch)."""
    from diffusers_hub.protocols import missing_members
    from diffusers_hub.registry import Registry

    try:
        Registry(path=[]).load_plugin_from_pyproject(plugin.file)  # puts the package on sys.path
    except RegistryError as exc:
        return [_error("import", str(exc), str(plugin.file))]
    importlib.invalidate_caches()
    findings: list[Finding] = []
    for comp in plugin.components:
        where = f"{comp.kind} {comp.name} ({comp.value})"
        try:
            obj = importlib.metadata.EntryPoint(comp.name, comp.value, GROUPS[comp.kind]).load()
        except Exception as exc:
            findings.append(_error("import", f"import failed: {type(exc).__name__}: {exc}", where))
            continue
        missing = missing_members(comp.kind, obj)
        if missing:
            message = (
                f"{obj!r} is not a valid {comp.kind}: it lacks {', '.join(missing)} of the "
                f"{comp.kind.capitalize()} protocol (diffusers_hub.protocols)"
            )
            findings.append(_error("protocol", message, where))
    roots = [str(r) for r in package_roots(plugin.file.parent, plugin.data) if r.is_dir()]
    for ep_name, module in plugin.hooks:
        findings.extend(_check_hook_module(ep_name, module, roots))
    return findings


_HOOK_PROBE = r"""
import importlib, json, sys
had = "torch" in sys.modules
try:
    importlib.import_module(sys.argv[1])
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
else:
    print(json.dumps({"torch": (not had) and "torch" in sys.modules}))
"""


def run_probe(
    code: str, argument: str, *, roots: Sequence[str] = (), timeout: float = 120.0
) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (``sys.argv[1]`` is ``argument``; ``roots`` go first on
    its path; strict mode off) and return the JSON object its last output line prints.

    Returns:
        That object, or ``{"probe_error": "..."}`` when the process timed out or printed none.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*roots, *(p for p in sys.path if p)])
    env.pop("DIFFUSERS_HUB_STRICT", None)
    command = [sys.executable, "-c", code, argument]
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"probe_error": f"importing took longer than {timeout:.0f} s"}
    try:
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"probe_error": f"the probe process failed: {tail}"}
    return result


def _check_hook_module(ep_name: str, module: str, roots: list[str]) -> list[Finding]:
    where = f"hooks {ep_name} ({module})"
    result = run_probe(_HOOK_PROBE, module, roots=roots)
    if "probe_error" in result:
        message = f"could not import the hook module: {result['probe_error']}"
        return [_error("hooks", message, where)]
    if "error" in result:
        return [_error("hooks", f"import failed: {result['error']}", where)]
    if result.get("torch"):
        message = (
            "the hook module imports torch at import time; keep hook modules import-light "
            "(import heavy modules inside the hook functions)"
        )
        return [_warning("hooks", message, where)]
    return []
