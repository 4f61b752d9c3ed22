"""Name resolution: a bare name, a qualified id ``<distribution>/<name>`` or a file's
``[library, ClassName]`` pair to one component, or a message saying why none (and what to install).

In-process registrations come first; a bare name claimed by several distributions is an error
that lists them; a name reserved for a first-party plugin reaches third-party claims only by
qualified id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from diffusers_hub.errors import RegistryError
from diffusers_hub.registry import _messages as msg
from diffusers_hub.registry._loading import usable
from diffusers_hub.registry._scan import (
    KINDS,
    Component,
    Kind,
    Scan,
    canonical,
    first_party_extra,
    top_module,
)

Local = Mapping[Kind, Mapping[str, Component]]


def every(scan: Scan, local: Local) -> list[Component]:
    """The scanned components followed by the in-process ones."""
    return [*scan.components, *(c for kind in KINDS for c in dict.fromkeys(local[kind].values()))]


def lookup(scan: Scan, local: Local, name: str, kinds: Sequence[Kind]) -> list[Component]:
    """Every component ``name`` (bare or qualified) may refer to, reserved claims included."""
    dist_name, _, bare = name.rpartition("/")
    return [
        c
        for c in every(scan, local)
        if c.kind in kinds and bare in c.names and (not dist_name or c.owned_by(dist_name))
    ]


def find(scan: Scan, local: Local, kind: Kind, name: str) -> Component:
    """The one component of ``kind`` that ``name`` names.

    Raises:
        RegistryError: the name is invalid, unknown or ambiguous.
    """
    if not isinstance(name, str) or not name:
        raise RegistryError(f"invalid registry name {name!r}")
    if "/" in name:
        return _find_qualified(scan, local, kind, name)
    if name in local[kind]:
        return local[kind][name]
    claims = usable(scan.bare[kind].get(name, []))
    if len(claims) > 1:
        raise RegistryError(msg.ambiguous(kind, name, claims))
    if claims:
        return claims[0]
    raise RegistryError(missing(scan, local, kind, name))


def _find_qualified(scan: Scan, local: Local, kind: Kind, name: str) -> Component:
    dist_name, _, bare = name.rpartition("/")
    owned = [c for c in every(scan, local) if c.owned_by(dist_name)]
    found = [c for c in owned if c.kind == kind and bare in c.names]
    if found:
        return found[0]
    if owned:
        provided = sorted(n for c in owned if c.kind == kind for n in c.names)
        raise RegistryError(msg.not_in_distribution(kind, dist_name, bare, provided))
    raise RegistryError(msg.no_distribution(kind, dist_name, name))


def _uninstalled_extra(scan: Scan, name: str, library: str | None = None) -> str | None:
    """The extra to install for a first-party name (or library) whose plugin is missing."""
    extra = first_party_extra(name) or (first_party_extra(canonical(library)) if library else None)
    installed = {d.key for d in scan.dists}
    return extra if extra is not None and f"diffusers-hub-{extra}" not in installed else None


def missing(scan: Scan, local: Local, kind: Kind, name: str, library: str | None = None) -> str:
    """Why no installed component of ``kind`` is named ``name``, and what to do about it."""
    what = f"{library}.{name}" if library else name
    claims = [c for c in scan.components if c.kind == kind and name in c.shadowed]
    extra = _uninstalled_extra(scan, name, library)
    if extra is not None:
        return msg.not_installed(f"the {kind} {what!r}", extra, claims)
    if claims:
        return msg.reserved_only(kind, name, claims)
    elsewhere = [k for k in KINDS if k != kind and (name in scan.bare[k] or name in local[k])]
    if elsewhere:
        return msg.other_kind(kind, what, name, elsewhere)
    return msg.unknown(kind, what, name, sorted({*scan.bare[kind], *local[kind]}))


def describe_missing(scan: Scan, local: Local, name: str, kind: Kind | None) -> str:
    """One line saying why ``name`` names no entry (of ``kind``, or of any kind)."""
    if kind is not None or "/" in name:
        try:
            find(scan, local, kind or "pipeline", name)
        except RegistryError as exc:
            return str(exc)
        return f"{name!r} is registered as a {kind or 'pipeline'}"
    extra = _uninstalled_extra(scan, name)
    if extra is not None:
        return msg.not_installed(f"the name {name!r}", extra)
    return msg.unknown_anywhere(name, sorted({n for c in every(scan, local) for n in c.names}))


def find_class(
    scan: Scan, local: Local, class_name: str, kinds: Sequence[Kind], library: str | None
) -> Component:
    """The component for a file's ``[library, ClassName]`` pair: the named library's own entry
    when ``library`` names an installed plugin (its distribution or package), else the bare name.

    Raises:
        RegistryError: no installed plugin registers ``class_name`` in ``kinds``.
    """
    if library:
        lib = canonical(library)
        owners = {
            d.key
            for d in scan.dists
            if d.key == lib or lib in {canonical(top_module(ep.value)) for ep in d.entry_points}
        }
        for kind in kinds:
            for comp in scan.components:
                owner = comp.dist.key if comp.dist is not None else None
                if comp.kind == kind and class_name in comp.names and owner in owners:
                    return comp
    for kind in kinds:
        if class_name in local[kind] or class_name in scan.bare[kind]:
            return find(scan, local, kind, class_name)
    for kind in kinds if "/" in class_name else ():
        try:
            return find(scan, local, kind, class_name)
        except RegistryError:
            continue
    extra = _uninstalled_extra(scan, class_name, library)
    if extra is not None:
        raise RegistryError(msg.not_installed(f"the class {class_name!r}", extra))
    raise RegistryError(msg.unresolved_class(class_name, kinds, library))
