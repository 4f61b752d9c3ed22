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

Validation lives in :mod:`diffusers_hub.plugin_check` (re-exported here).

This module imports neither torch nor any plugin.

Example:
    >>> from diffusers_hub.plugin_kit import plugin_names
    >>> names = plugin_names("my-solver", "scheduler")
    >>> names["distribution"], names["package"], names["class_name"]
    ('diffusers-hub-my-solver', 'diffusers_hub_my_solver', 'MySolverScheduler')
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from diffusers_hub._version import PLUGIN_API_VERSION, __version__
from diffusers_hub.errors import DiffusersHubError
from diffusers_hub.plugin_check import SHORT_NAME, Finding, reserved_for, validate_plugin
from diffusers_hub.registry._scan import GROUPS, canonical, check_kind, first_party_extras

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
_DIST_PREFIX = "diffusers-hub-"


class PluginKitError(DiffusersHubError, ValueError):
    """A plugin name, kind, template or destination that ``plugins new`` cannot use."""


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
    if not SHORT_NAME.match(short):
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
        owner = reserved_for(candidate)
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
