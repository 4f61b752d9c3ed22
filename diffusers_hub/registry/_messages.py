"""The registry's error and warning messages: one builder per message, each one line that says
what is wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from diffusers_hub._version import PLUGIN_API_VERSION, __version__

if TYPE_CHECKING:
    from diffusers_hub.registry._scan import Component, Dist

_LISTS = "`diffusers-hub plugins list` shows every plugin"


def install(extra: str) -> str:
    """The command installing the first-party plugin of the core extra ``extra``."""
    return f'pip install "diffusers-hub[{extra}]"'


def api_error(dist: Dist, group: str) -> str:
    """Why ``dist`` is not loaded: it declares no plugin API, or another one than this core's."""
    current = str(PLUGIN_API_VERSION)
    if not dist.api_versions:
        return (
            f"{dist.name} {dist.version} declares no plugin API version, so it is not loaded; its "
            f'pyproject.toml needs [project.entry-points."{group}"] "{current}" = '
            f'"{dist.key.replace("-", "_")}" (this diffusers-hub {__version__} implements plugin '
            f"API {current})"
        )
    declared = ", ".join(dist.api_versions)
    return (
        f"{dist.name} {dist.version} targets plugin API {declared}, but this diffusers-hub "
        f"{__version__} implements plugin API {current}, so it is not loaded; install a version "
        f"of {dist.name} made for plugin API {current}, or a diffusers-hub that implements API "
        f"{declared}"
    )


def fix_hint(dist: Dist | None) -> str:
    """How to repair a broken distribution: reinstall the extra, or upgrade the third party."""
    if dist is not None and dist.extra is not None:
        return f'reinstall it with: pip install -U "diffusers-hub[{dist.extra}]"'
    name = dist.name if dist is not None else "it"
    return (
        f"upgrade or reinstall it (pip install -U {name}), or uninstall it; "
        "`diffusers-hub plugins doctor` shows every plugin problem"
    )


def import_failed(comp: Component, exc: BaseException) -> str:
    """A component's module (or object) failed to import."""
    return (
        f"plugin {comp.qualified()} ({comp.value}) failed to import: "
        f"{type(exc).__name__}: {exc}; {fix_hint(comp.dist)}"
    )


def not_protocol(comp: Component, obj: object, missing: Sequence[str]) -> str:
    """A component's object lacks members of its kind's protocol."""
    return (
        f"plugin {comp.qualified()} ({comp.value}) is not a valid {comp.kind}: {obj!r} lacks "
        f"{', '.join(missing)} of the {comp.kind.capitalize()} protocol; {fix_hint(comp.dist)}"
    )


def not_registrable(kind: str, name: str, obj: object, missing: Sequence[str]) -> str:
    """An in-process registration whose object lacks members of the protocol."""
    return (
        f"cannot register {obj!r} as the {kind} {name!r}: it lacks {', '.join(missing)} of the "
        f"{kind.capitalize()} protocol"
    )


def hook_failed(dist: Dist, module: str, exc: BaseException) -> str:
    """A hook-implementation module failed to import or to register."""
    return (
        f"hook module {module} of {dist.name} failed to load: {type(exc).__name__}: {exc}; "
        f"{fix_hint(dist)}"
    )


def hook_call_failed(hook_name: str, exc: BaseException) -> str:
    """A plugin's hook implementation raised."""
    return (
        f"a plugin's {hook_name} hook failed: {type(exc).__name__}: {exc}; "
        "`diffusers-hub plugins doctor` shows every plugin problem"
    )


def reserved(comp: Component, name: str, owner: str) -> str:
    """A third-party component claims a name reserved for a first-party plugin."""
    return (
        f"{comp.distribution} registers the {comp.kind} name {name!r}, which is reserved for "
        f"the first-party plugin {owner}; it is reachable only as {comp.qualified(name)!r}"
    )


def shadowed(comp: Component) -> str:
    """Every name of a component is reserved: only its qualified id reaches it."""
    return (
        f"the name(s) {', '.join(comp.shadowed)} are reserved for first-party plugins; "
        f"use {comp.qualified()!r}"
    )


def ambiguous(kind: str, name: str, comps: Sequence[Component]) -> str:
    """Several distributions claim one bare name."""
    listed = "; ".join(f"{c.distribution} {c.version} ({c.value})" for c in comps)
    ids = " or ".join(repr(c.qualified(name)) for c in comps)
    return (
        f"the {kind} name {name!r} is claimed by {len(comps)} distributions: {listed}. "
        f"Choose one with a qualified id ({ids}), or uninstall all but one of them"
    )


def not_installed(what: str, extra: str, claims: Sequence[Component] = ()) -> str:
    """A first-party name whose plugin is not installed (third-party claims noted)."""
    return (
        f"{what} belongs to the first-party plugin diffusers-hub-{extra}, which is not "
        f"installed; install it with: {install(extra)}{_claims_note(claims)}"
    )


def reserved_only(kind: str, name: str, claims: Sequence[Component]) -> str:
    """A reserved name that only third parties claim."""
    return f"no first-party {kind} named {name!r} is installed{_claims_note(claims)}"


def _claims_note(claims: Sequence[Component]) -> str:
    if not claims:
        return ""
    ids = ", ".join(repr(c.qualified(c.shadowed[0])) for c in claims)
    return (
        "; the name is reserved for first-party plugins, so the third-party claim(s) are "
        f"reachable only by qualified id: {ids}"
    )


def other_kind(kind: str, what: str, name: str, kinds: Sequence[str]) -> str:
    """A name registered, but as another kind."""
    return (
        f"no {kind} named {what!r}; {name!r} is a {' and a '.join(kinds)}: use "
        f"registry.{kinds[0]}({name!r})"
    )


def unknown(kind: str, what: str, name: str, known: Sequence[str]) -> str:
    """No installed plugin registers the name: close matches and what is installed."""
    listing = f" Installed {kind}s: {', '.join(known)}." if known else f" No {kind}s are installed."
    return (
        f"no installed plugin provides the {kind} {what!r}.{_close(name, known)}{listing} {_LISTS}"
    )


def unknown_anywhere(name: str, known: Iterable[str]) -> str:
    """No installed plugin registers the name in any kind."""
    return (
        f"no installed plugin registers the name {name!r} (in any kind).{_close(name, known)} "
        "`diffusers-hub plugins list` shows every registered name"
    )


def unresolved_class(class_name: str, kinds: Sequence[str], library: str | None) -> str:
    """A ``[library, ClassName]`` pair of a file that no installed plugin registers."""
    what = f"{library}.{class_name}" if library else class_name
    return (
        f"no installed plugin provides the class {what!r} ({' / '.join(kinds)}); diffusers-hub "
        "resolves class names through its registry only and never imports a module named in a "
        f"file. Install a plugin that registers {class_name!r}; {_LISTS}"
    )


def _close(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, [*known], n=3)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


def not_in_distribution(kind: str, dist_name: str, name: str, provided: Sequence[str]) -> str:
    """A qualified id whose distribution exists but lacks the name (or the kind)."""
    if provided:
        return f"{dist_name} provides no {kind} named {name!r}; its {kind}s: {', '.join(provided)}"
    return f"{dist_name} provides no {kind}s (asked for '{dist_name}/{name}')"


def no_distribution(kind: str, dist_name: str, qualified: str) -> str:
    """A qualified id naming no installed distribution."""
    return (
        f"no installed plugin distribution is named {dist_name!r} (asked for the {kind} "
        f"{qualified!r}); `diffusers-hub plugins list` shows the installed ones"
    )


def no_hook_value(what: str, key: str, known: Sequence[str]) -> str:
    """No plugin's mapping hook provides ``key``."""
    return f"no {what} named {key!r} (available: {', '.join(known) or 'none are installed'})"


def several_hook_values(what: str, key: str, values: Sequence[str]) -> str:
    """Several plugins' mapping hooks give different values for ``key``."""
    return f"the {what} {key!r} is provided by several plugins ({'; '.join(values)})"


def no_demo(pipeline: str) -> str:
    """A pipeline without embedded demo weights."""
    return (
        f"the pipeline {pipeline!r} has no embedded demo weights; pass a folder or Hub repo id "
        "instead"
    )
