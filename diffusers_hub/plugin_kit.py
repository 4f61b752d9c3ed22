"""The plugin authoring kit: render a new plugin from the template, and validate a plugin folder.

``diffusers-hub plugins new NAME`` and ``diffusers-hub plugins validate PATH`` are thin wrappers
around :func:`render_template` and :func:`validate_plugin`.

The template is a folder of text files in which ``{{ variable }}`` placeholders (in file contents
and in file and folder names) are replaced by the plugin's names; a tiny renderer of our own does
it, so rendering needs no extra dependency. Its layout::

    template/
      common/        files of every plugin (pyproject.toml, README, docs stub, CI workflow, ...)
      scheduler/     files added for --kind scheduler (the package's example, its tests)
      model/  pipeline/  processor/

Validation without importing reads ``pyproject.toml`` only: entry points well-formed
(``name = "module:Object"``), groups known, the plugin-API declaration present and compatible with
this core, names valid and not reserved for first-party plugins, the package folders and modules
present. With ``imports=True`` it also imports every object (the plugin folder is put on
``sys.path``) and checks it against its kind's protocol
(:func:`diffusers_hub.protocols.missing_members`), and checks in a fresh interpreter that hook
modules do not import torch.

This module imports neither torch nor any plugin.

Example:
    >>> from diffusers_hub.plugin_kit import plugin_names
    >>> names = plugin_names("my-solver", "scheduler")
    >>> names["distribution"], names["package"], names["class_name"]
    ('diffusers-hub-my-solver', 'diffusers_hub_my_solver', 'MySolverScheduler')
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
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
    check_kind,
    first_party_extras,
    names_of,
    package_roots,
    read_toml,
)

__all__ = [
    "KIND_MODULES",
    "PLUGIN_KINDS",
    "Finding",
    "PluginKitError",
    "find_template",
    "plugin_names",
    "render_string",
    "render_template",
    "template_variables",
    "validate_plugin",
]

PluginKind = Literal["scheduler", "model", "pipeline", "processor"]

#: The kinds ``plugins new`` can render.
PLUGIN_KINDS: tuple[PluginKind, ...] = ("scheduler", "model", "pipeline", "processor")

#: The module of the example component of each kind, inside the rendered package.
KIND_MODULES: Mapping[str, str] = {
    "scheduler": "scheduler",
    "model": "model",
    "pipeline": "pipeline",
    "processor": "processor",
}

_CLASS_SUFFIX: Mapping[str, str] = {
    "scheduler": "Scheduler",
    "model": "Model",
    "pipeline": "Pipeline",
    "processor": "Processor",
}

#: Extra requirements of the example of each kind (beyond the core).
_KIND_DEPENDENCIES: Mapping[str, tuple[str, ...]] = {
    "scheduler": (),
    "model": (),
    # the example pipeline is tested with the ddpm plugin's UNet2DModel and DDPMScheduler
    "pipeline": ("diffusers-hub-ddpm>={major}.{minor},<{major}.{next_minor}",),
    "processor": (),
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SHORT_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_IDENTIFIERS = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_MODULE_PATH = re.compile(rf"^{_IDENTIFIERS}$")
_OBJECT_REFERENCE = re.compile(rf"^{_IDENTIFIERS}\s*:\s*{_IDENTIFIERS}$")
_DIST_PREFIX = "diffusers-hub-"


class PluginKitError(DiffusersHubError, ValueError):
    """A plugin name, kind, template or destination that ``plugins new`` cannot use."""


def _owner(name: str) -> str | None:
    """The first-party distribution reserving ``name`` (metadata only), or ``None``."""
    from diffusers_hub import registry

    try:
        return registry.default().owner(name)
    except DiffusersHubError:  # a broken environment must not stop validation
        return None


# -- names ------------------------------------------------------------------------------------------


def plugin_names(name: str, kind: str = "scheduler") -> dict[str, str]:
    """The names of a new plugin, derived from its short name.

    Args:
        name: the short name (``my-solver``); ``diffusers-hub-my-solver``, ``my_solver`` and
            ``MySolver`` give the same result.
        kind: ``scheduler``, ``model``, ``pipeline`` or ``processor``.

    Returns:
        ``name`` (the registry name, lowercase with dashes), ``distribution``
        (``diffusers-hub-<name>``), ``package`` (``diffusers_hub_<name>``), ``class_name``
        (CamelCase plus the kind: ``MySolverScheduler``), ``module`` (the example's module),
        ``title`` (``My Solver``) and ``kind``.

    Raises:
        PluginKitError: an invalid name or kind, or a name reserved for a first-party plugin.
    """
    if kind not in PLUGIN_KINDS:
        raise PluginKitError(
            f"unknown plugin kind {kind!r}; expected one of {', '.join(PLUGIN_KINDS)}"
        )
    # CamelCase -> dashes ("MySolver" -> "my-solver", "DPMSolver" -> "dpm-solver")
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name.strip())
    short = canonical(spaced.replace(" ", "-"))
    short = short.removeprefix(_DIST_PREFIX)
    if not _SHORT_NAME.match(short):
        raise PluginKitError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and dashes, starting with "
            "a letter (for example 'my-solver')"
        )
    parts = short.split("-")
    camel = "".join(p[:1].upper() + p[1:] for p in parts)
    suffix = _CLASS_SUFFIX[kind]
    class_name = camel if camel.endswith(suffix) else camel + suffix
    distribution = _DIST_PREFIX + short
    if distribution in first_party_extras():
        raise PluginKitError(
            f"the plugin name {short!r} is taken: {distribution} is a first-party plugin; "
            "choose another name"
        )
    for candidate in (short, class_name):
        owner = _owner(candidate)
        if owner is not None:
            raise PluginKitError(
                f"the name {candidate!r} is reserved for the first-party plugin {owner}; "
                "choose another plugin name"
            )
    return {
        "name": short,
        "distribution": distribution,
        "package": distribution.replace("-", "_"),
        "class_name": class_name,
        "module": KIND_MODULES[kind],
        "title": " ".join(p[:1].upper() + p[1:] for p in parts),
        "kind": kind,
    }


# -- rendering --------------------------------------------------------------------------------------


def find_template(template: str | os.PathLike[str] | None = None) -> Path:
    """The template folder: ``template``, else ``$DIFFUSERS_HUB_PLUGIN_TEMPLATE``, else the one of
    the source checkout (``contrib/plugin-template/template`` next to the ``diffusers_hub``
    package).

    Raises:
        PluginKitError: no template folder found.
    """
    candidates: list[Path] = []
    if template is not None:
        candidates.append(Path(template))
    env = os.environ.get("DIFFUSERS_HUB_PLUGIN_TEMPLATE")
    if env:
        candidates.append(Path(env))
    here = Path(__file__).resolve().parent
    candidates.append(here / "_plugin_template")
    candidates.append(here.parent / "contrib" / "plugin-template" / "template")
    for candidate in candidates:
        if (candidate / "common").is_dir():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise PluginKitError(
        f"no plugin template found (looked in {looked}); pass --template PATH or set "
        "DIFFUSERS_HUB_PLUGIN_TEMPLATE to the folder holding common/ and one folder per kind"
    )


def render_string(text: str, variables: Mapping[str, str], *, where: str = "template") -> str:
    """Replace every ``{{ key }}`` in ``text`` by ``variables[key]``.

    Placeholders are identifiers between double braces; anything else between braces (such as
    GitHub Actions' ``${{ matrix.python-version }}``) is left alone.

    Raises:
        PluginKitError: a placeholder names an unknown variable.
    """

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in variables:
            raise PluginKitError(
                f"{where}: unknown placeholder {{{{ {key} }}}}; known: {', '.join(sorted(variables))}"
            )
        return variables[key]

    return _PLACEHOLDER.sub(replace, text)


def _version_range() -> dict[str, str]:
    major, minor = (int(p) for p in __version__.split(".")[:2])
    return {"major": str(major), "minor": str(minor), "next_minor": str(minor + 1)}


def _entry_points_toml(names: Mapping[str, str]) -> str:
    value = f"{names['package']}.{names['module']}:{names['class_name']}"
    return (
        f'[project.entry-points."{GROUPS[check_kind(names["kind"])]}"]\n{names["name"]} = "{value}"'
    )


def template_variables(
    name: str,
    kind: str = "scheduler",
    *,
    author: str | None = None,
    email: str | None = None,
    description: str | None = None,
) -> dict[str, str]:
    """Every variable the template may use (see :func:`plugin_names` for the names)."""
    names = plugin_names(name, kind)
    span = _version_range()
    core_spec = f">={span['major']}.{span['minor']},<{span['major']}.{span['next_minor']}"
    deps = [f"diffusers-hub{core_spec}"] + [d.format(**span) for d in _KIND_DEPENDENCIES[kind]]
    author = author or "Your Name"
    email = email or "you@example.com"
    default_description = {
        "scheduler": "A diffusion sampler",
        "model": "A diffusion model",
        "pipeline": "A diffusion pipeline",
        "processor": "An input processor",
    }[kind]
    return {
        **names,
        "author": author,
        "author_email": email,
        "description": description or f"{default_description} for diffusers-hub.",
        "year": str(datetime.date.today().year),
        "core_version": __version__,
        "core_requirement": f"diffusers-hub{core_spec}",
        "dependencies": ",\n    ".join(json.dumps(d) for d in deps),
        "plugin_api": str(PLUGIN_API_VERSION),
        "entry_points": _entry_points_toml(names),
        "group": GROUPS[check_kind(kind)],
    }


def _template_files(root: Path) -> Iterable[tuple[Path, Path]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path, path.relative_to(root)


def render_template(
    dest: str | os.PathLike[str],
    name: str,
    kind: str = "scheduler",
    *,
    author: str | None = None,
    email: str | None = None,
    description: str | None = None,
    template: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Render the plugin template into the folder ``dest``.

    Args:
        dest: the new project folder (created; it must not exist or be empty unless
            ``overwrite``).
        name: the plugin's short name (``my-solver``).
        kind: ``scheduler``, ``model``, ``pipeline`` or ``processor``.
        author: the author's name for ``pyproject.toml``.
        email: the author's e-mail address.
        description: a one-line description.
        template: the template folder (default: :func:`find_template`).
        overwrite: write into a non-empty ``dest``, replacing files of the same name.

    Returns:
        The files written, in order.

    Raises:
        PluginKitError: an invalid name or kind, a reserved name, a non-empty destination, or a
            template with an unknown placeholder.
    """
    variables = template_variables(name, kind, author=author, email=email, description=description)
    root = find_template(template)
    target = Path(dest)
    if target.exists() and not target.is_dir():
        raise PluginKitError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise PluginKitError(f"{target} exists and is not empty; choose another --dir or name")
    planned: dict[Path, str] = {}
    for layer in ("common", kind):
        folder = root / layer
        if not folder.is_dir():
            raise PluginKitError(f"the template {root} has no {layer}/ folder")
        for source, rel in _template_files(folder):
            out_rel = Path(
                *(render_string(part, variables, where=f"{source} (name)") for part in rel.parts)
            )
            text = source.read_text(encoding="utf-8")
            planned[out_rel] = render_string(text, variables, where=str(source))
    written: list[Path] = []
    for rel, text in planned.items():
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return written


# -- validation -------------------------------------------------------------------------------------


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
        if not _SHORT_NAME.match(comp.name):
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
            owner = _owner(name)
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
