"""Loading: import a component behind the plugin-API gate, check its protocol, record the outcome;
the problems known so far; the pluggy plugin manager of the plugins' hook modules."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from diffusers_hub.errors import PluginLoadError, RegistryError
from diffusers_hub.registry import _messages as msg
from diffusers_hub.registry._scan import HOOKS_GROUP, KINDS, Component, Entry, Kind, Scan, Status

if TYPE_CHECKING:
    import pluggy

logger = logging.getLogger("diffusers_hub.registry")


@dataclass(frozen=True)
class Outcome:
    """What importing a component gave: the object, or the error (and its traceback)."""

    obj: Any = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class Problem:
    """A problem found by :func:`problems` or by strict mode.

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


def status(comp: Component, outcome: Outcome | None) -> Status:
    """A component's status: the one place it is derived."""
    if comp.dist is not None and comp.dist.api_error is not None:
        return "incompatible"
    if outcome is not None and outcome.error is not None:
        return "broken"
    if len(comp.shadowed) == len(comp.names):
        return "shadowed"
    return "loaded" if outcome is not None or comp.dist is None else "not loaded"


def entry(comp: Component, outcome: Outcome | None) -> Entry:
    """The public record of a component."""
    state = status(comp, outcome)
    error = {
        "incompatible": comp.dist.api_error if comp.dist is not None else None,
        "broken": outcome.error if outcome is not None else None,
        "shadowed": msg.shadowed(comp),
    }.get(state)
    return Entry(
        kind=comp.kind,
        name=comp.names[0],
        aliases=comp.names[1:],
        distribution=comp.distribution,
        version=comp.version,
        value=comp.value,
        status=state,
        error=error,
        first_party=comp.dist is not None and comp.dist.extra is not None,
        traceback=outcome.traceback if outcome is not None else None,
        shadowed_names=comp.shadowed,
    )


def load(comp: Component) -> Outcome:
    """Import an entry-point component and check it against its kind's protocol.

    Raises:
        PluginLoadError: its distribution targets another plugin API (nothing is imported).
    """
    from diffusers_hub.protocols import missing_members

    if comp.dist is None or comp.entry_point is None:
        return Outcome(comp.obj)
    if comp.dist.api_error is not None:
        raise PluginLoadError(comp.dist.api_error)
    try:
        obj = comp.entry_point.load()
    except Exception as exc:
        logger.debug("%s", msg.import_failed(comp, exc))
        return Outcome(error=msg.import_failed(comp, exc), traceback=traceback.format_exc())
    missing = missing_members(comp.kind, obj)
    return Outcome(error=msg.not_protocol(comp, obj, missing)) if missing else Outcome(obj)


def usable(comps: Sequence[Component]) -> list[Component]:
    """The claims of a name that the API gate lets through (all of them if none)."""
    return [c for c in comps if c.dist is None or c.dist.api_error is None] or [*comps]


def conflicts(scan: Scan, local: Mapping[Kind, Mapping[str, Component]]) -> list[Problem]:
    """Bare names that several usable distributions claim (and no in-process name overrides)."""
    return [
        Problem("conflict", msg.ambiguous(kind, name, claims))
        for kind in KINDS
        for name, comps in scan.bare[kind].items()
        if len(claims := usable(comps)) > 1 and name not in local[kind]
    ]


def problems(
    scan: Scan,
    outcomes: Mapping[Component, Outcome],
    local: Mapping[Kind, Mapping[str, Component]],
    hook_problems: Iterable[Problem],
) -> list[Problem]:
    """Every problem known without importing more: API declarations, reserved names and
    conflicts from the metadata; broken components and hook modules once imported."""
    found = [Problem("incompatible", d.api_error, d.name) for d in scan.dists if d.api_error]
    for comp in scan.components:
        if comp.dist is not None and comp.dist.api_error is not None:
            continue
        found += [
            Problem("reserved", msg.reserved(comp, n, str(scan.owner(n))), comp.distribution)
            for n in comp.shadowed
        ]
        outcome = outcomes.get(comp)
        if outcome is not None and outcome.error is not None:
            found.append(Problem("broken", outcome.error, comp.distribution, outcome.traceback))
    return [*found, *conflicts(scan, local), *hook_problems]


def plugin_manager(scan: Scan) -> tuple[pluggy.PluginManager, list[Problem]]:
    """A plugin manager holding the hook modules of every compatible distribution, and the
    problems of the modules that failed to load (skipped with a logged warning)."""
    import pluggy

    from diffusers_hub import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    failed: list[Problem] = []
    for d in scan.dists:
        for ep in d.entry_points if d.api_error is None else ():
            if ep.group != HOOKS_GROUP:
                continue
            try:
                pm.register(ep.load(), name=f"{d.name}:{ep.name}")
            except Exception as exc:
                logger.warning("%s", msg.hook_failed(d, ep.value, exc))
                failed.append(
                    Problem(
                        "hook", msg.hook_failed(d, ep.value, exc), d.name, traceback.format_exc()
                    )
                )
    return pm, failed


def hook_values(pm: pluggy.PluginManager, hook_name: str) -> dict[str, list[str]]:
    """The merged answers of a hook whose implementations return name -> value mappings.

    Raises:
        PluginLoadError: an implementation raised.
    """
    try:
        answers = getattr(pm.hook, hook_name)()
    except Exception as exc:
        raise PluginLoadError(msg.hook_call_failed(hook_name, exc)) from exc
    merged: dict[str, list[str]] = {}
    for mapping in answers:
        for name, value in dict(mapping).items():
            merged.setdefault(str(name), []).append(str(value))
    return merged


def one_value(merged: Mapping[str, Sequence[str]], key: str, what: str) -> str:
    """The value under ``key`` of :func:`hook_values`.

    Raises:
        RegistryError: no plugin provides ``key``, or several give different values.
    """
    values = sorted(set(merged.get(key, ())))
    if not values:
        raise RegistryError(msg.no_hook_value(what, key, sorted(merged)))
    if len(values) > 1:
        raise RegistryError(msg.several_hook_values(what, key, values))
    return values[0]
