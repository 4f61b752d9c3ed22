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
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from diffusers_hub._version import PLUGIN_API_VERSION, __version__
from diffusers_hub.errors import DiffusersHubError

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
_REGISTRY_NAME = re.compile(r"^[^\s/]+$")
_MODULE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_OBJECT_PATH = _MODULE_PATH
_DIST_PREFIX = "diffusers-hub-"


class PluginKitError(DiffusersHubError, ValueError):
    """A plugin name, kind, template or destination that ``plugins new`` cannot use."""


# -- names ------------------------------------------------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _reserved_names() -> dict[str, str]:
    """Names reserved for first-party plugins -> the distribution reserving them (metadata only)."""
    from diffusers_hub import registry

    reserved = {
        name: f"diffusers-hub-{extra}"
        for name, (extra, _) in registry.KNOWN_FIRST_PARTY_NAMES.items()
    }
    try:
        entries = registry.default().list()
    except DiffusersHubError:  # a broken environment must not stop validation
        entries = []
    for entry in entries:
        if entry.first_party:
            for name in entry.names:
                reserved.setdefault(name, entry.distribution)
    return reserved


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
    short = _canonical(spaced.replace(" ", "-"))
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
    from diffusers_hub.registry import FIRST_PARTY_DISTRIBUTIONS

    if distribution in FIRST_PARTY_DISTRIBUTIONS:
        raise PluginKitError(
            f"the plugin name {short!r} is taken: {distribution} is a first-party plugin; "
            "choose another name"
        )
    reserved = _reserved_names()
    for candidate in (short, class_name):
        if candidate in reserved:
            raise PluginKitError(
                f"the name {candidate!r} is reserved for the first-party plugin "
                f"{reserved[candidate]}; choose another plugin name"
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
    group = {
        "scheduler": "diffusers_hub.schedulers",
        "model": "diffusers_hub.models",
        "pipeline": "diffusers_hub.pipelines",
        "processor": "diffusers_hub.processors",
    }[names["kind"]]
    value = f"{names['package']}.{names['module']}:{names['class_name']}"
    return (
        f'[project.entry-points."{group}"]\n'
        f'{names["name"]} = "{value}"\n'
        f'{names["class_name"]} = "{value}"'
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
        "group": {
            "scheduler": "diffusers_hub.schedulers",
            "model": "diffusers_hub.models",
            "pipeline": "diffusers_hub.pipelines",
            "processor": "diffusers_hub.processors",
        }[kind],
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


def _load_toml(file: Path) -> tuple[dict[str, Any] | None, str | None]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(file.read_text(encoding="utf-8")), None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return None, str(exc)


def _package_roots(folder: Path, data: Mapping[str, Any]) -> list[Path]:
    roots = [folder, folder / "src"]
    tool = data.get("tool")
    setuptools_cfg = tool.get("setuptools", {}) if isinstance(tool, dict) else {}
    packages = setuptools_cfg.get("packages", {}) if isinstance(setuptools_cfg, dict) else {}
    find = packages.get("find", {}) if isinstance(packages, dict) else {}
    where = find.get("where") if isinstance(find, dict) else None
    if isinstance(where, list):
        roots = [folder / str(w) for w in where] + roots
    return roots


def _module_file(roots: Iterable[Path], module: str) -> Path | None:
    parts = module.split(".")
    for root in roots:
        base = root.joinpath(*parts)
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
    return None


@dataclass
class _Component:
    kind: str
    group: str
    value: str
    names: list[str]


def validate_plugin(path: str | os.PathLike[str], imports: bool = False) -> list[Finding]:
    """Check a plugin project folder (or its ``pyproject.toml``).

    Without importing anything: ``pyproject.toml`` parses and has ``[project] name`` and
    ``version``; every ``diffusers_hub.*`` group is known; component entry points read
    ``name = "module:Object"`` with a valid name; the plugin API is declared
    (``[project.entry-points."diffusers_hub.plugin_api"] "1" = "<package>"``) and compatible with
    this core (:data:`diffusers_hub.PLUGIN_API_VERSION`); no name or distribution name is
    reserved for a first-party plugin; one name does not point at two objects of one kind; the
    package folders and modules named exist.

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
    from diffusers_hub import registry

    file = Path(path)
    if file.is_dir():
        file = file / "pyproject.toml"
    findings: list[Finding] = []

    def error(code: str, message: str, where: str = "") -> None:
        findings.append(Finding("error", code, message, where))

    def warning(code: str, message: str, where: str = "") -> None:
        findings.append(Finding("warning", code, message, where))

    if not file.is_file():
        error("pyproject", f"{file}: no such file; a plugin is a project with a pyproject.toml")
        return findings
    data, parse_error = _load_toml(file)
    if data is None:
        error("pyproject", f"{file}: not valid TOML: {parse_error}", str(file))
        return findings
    project = data.get("project")
    if not isinstance(project, dict):
        error("pyproject", "no [project] table", str(file))
        return findings
    dist_name = project.get("name")
    if not isinstance(dist_name, str) or not dist_name:
        error("pyproject", "[project] has no 'name'", str(file))
        dist_name = "<unnamed>"
    if not isinstance(project.get("version"), str) and "version" not in project.get("dynamic", []):
        error("pyproject", "[project] has no 'version' (nor a dynamic one)", str(file))
    dist_key = _canonical(dist_name)
    if dist_key in registry.FIRST_PARTY_DISTRIBUTIONS:
        warning(
            "first-party",
            f"{dist_name} is a first-party plugin: reserved-name checks skipped (a third-party "
            "plugin must not use this distribution name)",
            str(file),
        )
        first_party = True
    else:
        first_party = False
    deps = project.get("dependencies", [])
    if not isinstance(deps, list) or not any(
        isinstance(d, str)
        and _canonical(re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0]) == "diffusers-hub"
        for d in deps
    ):
        warning(
            "dependencies",
            "[project] dependencies do not name diffusers-hub; add "
            f'"diffusers-hub>={__version__.rsplit(".", 1)[0]}" so that pip installs the core',
            str(file),
        )
    groups = project.get("entry-points", {})
    if not isinstance(groups, dict):
        error("pyproject", "[project.entry-points] must be a table", str(file))
        return findings
    known_groups = {*registry.GROUPS.values(), registry.API_GROUP, registry.HOOKS_GROUP}
    kind_of_group = {group: kind for kind, group in registry.GROUPS.items()}
    components: dict[tuple[str, str], _Component] = {}
    api_versions: list[str] = []
    api_packages: list[str] = []
    hook_modules: list[tuple[str, str]] = []
    modules: set[str] = set()
    for group, table in groups.items():
        if not str(group).startswith("diffusers_hub."):
            continue
        where_group = f'[project.entry-points."{group}"]'
        if group not in known_groups:
            close = [g for g in sorted(known_groups) if g.rstrip("s") == str(group).rstrip("s")]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            error(
                "group",
                f"unknown entry-point group {group!r}{hint}; known groups: "
                f"{', '.join(sorted(known_groups))}",
                where_group,
            )
            continue
        if not isinstance(table, dict):
            error("pyproject", f"{where_group} must be a table", where_group)
            continue
        for ep_name, value in table.items():
            where = f"{where_group} {ep_name}"
            if not isinstance(value, str):
                error("entry-point", f"the value must be a string, not {value!r}", where)
                continue
            value = value.strip()
            if group == registry.API_GROUP:
                api_versions.append(str(ep_name))
                api_packages.append(value)
                if not _MODULE_PATH.match(value):
                    error(
                        "api-version",
                        f"the plugin-API declaration must name the plugin's package, not {value!r}",
                        where,
                    )
                continue
            if group == registry.HOOKS_GROUP:
                if not _MODULE_PATH.match(value):
                    error(
                        "entry-point",
                        f"a hook entry point names a module ('my_plugin.hooks'), not {value!r}",
                        where,
                    )
                    continue
                hook_modules.append((str(ep_name), value))
                modules.add(value)
                continue
            module, sep, obj = value.partition(":")
            module, obj = module.strip(), obj.strip()
            if not sep or not _MODULE_PATH.match(module) or not _OBJECT_PATH.match(obj):
                error(
                    "entry-point",
                    f"{value!r} is not of the form 'module:Object' "
                    "(e.g. 'my_plugin.scheduler:MyScheduler')",
                    where,
                )
                continue
            if not _REGISTRY_NAME.match(str(ep_name)):
                error(
                    "name",
                    f"invalid registry name {ep_name!r}: names contain neither spaces nor '/'",
                    where,
                )
                continue
            kind = kind_of_group[group]
            modules.add(module)
            key = (kind, f"{module}:{obj}")
            comp = components.setdefault(key, _Component(kind, group, f"{module}:{obj}", []))
            comp.names.append(str(ep_name))
    # one name, two objects of one kind
    seen: dict[tuple[str, str], str] = {}
    for comp in components.values():
        for ep_name in comp.names:
            other = seen.setdefault((comp.kind, ep_name), comp.value)
            if other != comp.value:
                error(
                    "name",
                    f"the {comp.kind} name {ep_name!r} points at both {other} and {comp.value}",
                    f'[project.entry-points."{comp.group}"] {ep_name}',
                )
    if not components and not hook_modules:
        error(
            "no-components",
            "no component entry points: declare at least one of the groups "
            f"{', '.join(registry.GROUPS.values())}",
            str(file),
        )
    # plugin API
    current = str(PLUGIN_API_VERSION)
    if not api_versions:
        package = dist_key.replace("-", "_")
        error(
            "api-version",
            "no plugin-API declaration, so the registry will never load this plugin; add "
            f'[project.entry-points."{registry.API_GROUP}"] "{current}" = "{package}"',
            str(file),
        )
    elif current not in api_versions:
        error(
            "api-version",
            f"the plugin targets plugin API {', '.join(api_versions)}, but this diffusers-hub "
            f"{__version__} implements plugin API {current}; port it to API {current} and "
            f'declare "{current}" = "<package>"',
            f'[project.entry-points."{registry.API_GROUP}"]',
        )
    top_modules = {m.split(".", 1)[0] for m in modules}
    for package in api_packages:
        if _MODULE_PATH.match(package) and top_modules and package.split(".")[0] not in top_modules:
            warning(
                "api-version",
                f"the plugin-API declaration names {package!r}, which none of the entry points "
                f"uses ({', '.join(sorted(top_modules))}); name the plugin's own package",
                f'[project.entry-points."{registry.API_GROUP}"]',
            )
    # reserved names
    if not first_party:
        reserved = _reserved_names()
        for comp in components.values():
            for ep_name in comp.names:
                if ep_name in reserved:
                    error(
                        "reserved-name",
                        f"the {comp.kind} name {ep_name!r} is reserved for the first-party plugin "
                        f"{reserved[ep_name]}: the registry ignores it (the component is reachable "
                        f"only as '{dist_name}/{ep_name}'); choose another name",
                        f'[project.entry-points."{comp.group}"] {ep_name}',
                    )
    for comp in components.values():
        if not any(re.match(r"^[a-z0-9][a-z0-9-]*$", n) for n in comp.names):
            warning(
                "name",
                f"{comp.value} has no short lowercase name (like 'my-solver'); add one next to "
                f"the class name ({', '.join(comp.names)}): it is the name people type",
                f'[project.entry-points."{comp.group}"]',
            )
    # packages and modules on disk
    roots = _package_roots(file.parent, data)
    for top in sorted(top_modules):
        if _module_file(roots, top) is None:
            error(
                "package-missing",
                f"the package {top!r} named by the entry points is not in the project folder, "
                "src/ or [tool.setuptools.packages.find] where",
                str(file.parent),
            )
    for module in sorted(modules):
        top = module.split(".", 1)[0]
        if _module_file(roots, top) is not None and _module_file(roots, module) is None:
            error(
                "module-missing",
                f"the module {module!r} named by an entry point does not exist",
                str(file.parent),
            )
    if imports and not any(f.level == "error" for f in findings):
        findings.extend(_validate_imports(file, components.values(), hook_modules, roots))
    return findings


def _validate_imports(
    file: Path,
    components: Iterable[_Component],
    hook_modules: list[tuple[str, str]],
    roots: list[Path],
) -> list[Finding]:
    from diffusers_hub.errors import RegistryError
    from diffusers_hub.protocols import missing_members
    from diffusers_hub.registry import Registry

    findings: list[Finding] = []
    try:
        Registry(path=[]).load_plugin_from_pyproject(file)  # puts the package folder on sys.path
    except RegistryError as exc:
        findings.append(Finding("error", "import", str(exc), str(file)))
        return findings
    importlib.invalidate_caches()
    for comp in components:
        module_name, _, attr = comp.value.partition(":")
        where = f"{comp.kind} {comp.names[0]} ({comp.value})"
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            findings.append(
                Finding("error", "import", f"import failed: {type(exc).__name__}: {exc}", where)
            )
            continue
        missing = missing_members(comp.kind, obj)
        if missing:
            findings.append(
                Finding(
                    "error",
                    "protocol",
                    f"{obj!r} is not a valid {comp.kind}: it lacks {', '.join(missing)} of the "
                    f"{comp.kind.capitalize()} protocol (diffusers_hub.protocols)",
                    where,
                )
            )
    for ep_name, module in hook_modules:
        findings.extend(_check_hook_module(ep_name, module, [str(r) for r in roots if r.is_dir()]))
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


def _check_hook_module(ep_name: str, module: str, roots: list[str]) -> list[Finding]:
    where = f"hooks {ep_name} ({module})"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*roots, *(p for p in sys.path if p)])
    env.pop("DIFFUSERS_HUB_STRICT", None)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _HOOK_PROBE, module],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, IndexError, json.JSONDecodeError) as exc:
        return [Finding("error", "hooks", f"could not import the hook module: {exc}", where)]
    if "error" in result:
        return [Finding("error", "hooks", f"import failed: {result['error']}", where)]
    if result.get("torch"):
        return [
            Finding(
                "warning",
                "hooks",
                "the hook module imports torch at import time; keep hook modules import-light "
                "(import heavy modules inside the hook functions)",
                where,
            )
        ]
    return []
