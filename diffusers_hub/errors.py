"""Exception types raised on purpose by diffusers-hub.

Every error names what was wrong (the file, the field, the value) and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ConfigError",
    "DiffusersHubError",
    "PluginLoadError",
    "RegistryError",
    "SaveError",
    "WeightsError",
    "config_differences",
    "describe_mismatch",
    "head",
    "key_problems",
]


class DiffusersHubError(Exception):
    """Base class of the errors this library raises deliberately."""


class ConfigError(DiffusersHubError, ValueError):
    """A configuration file or value is invalid."""


class WeightsError(DiffusersHubError, ValueError):
    """A weight file is missing, corrupt, truncated, or does not fit the model."""


class SaveError(DiffusersHubError, OSError):
    """A checkpoint cannot be written where it was asked to go (read-only or missing folder)."""


class RegistryError(DiffusersHubError, LookupError):
    """A registry name is unknown, ambiguous, or points at a broken plugin."""


class PluginLoadError(RegistryError):
    """A plugin failed to import or did not satisfy its protocol.

    Attributes:
        traceback_text: the formatted traceback of the original failure, if any.
    """

    def __init__(self, message: str, traceback_text: str | None = None) -> None:
        super().__init__(message)
        self.traceback_text = traceback_text


# -- message parts shared by the loaders and converters --------------------------------------


def head(items: Sequence[str], limit: int = 8) -> str:
    """The first ``limit`` items joined by commas, with the total when some are left off."""
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def key_problems(
    missing: Sequence[str], unexpected: Sequence[str], mismatched: Sequence[str] = ()
) -> list[str]:
    """The sentences of a state-dict mismatch message: missing, unexpected, wrongly shaped keys."""
    named = (
        ("Missing keys", missing),
        ("Unexpected keys", unexpected),
        ("Shape mismatches", mismatched),
    )
    return [f"{label}: {head(list(keys))}." for label, keys in named if keys]


def describe_mismatch(
    source: str,
    missing: Sequence[str],
    unexpected: Sequence[str],
    mismatched: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]],
) -> str:
    """One error message listing missing, unexpected and wrongly shaped keys (first few of each)."""
    shapes = [f"{k} (file {tuple(a)}, model {tuple(b)})" for k, a, b in mismatched]
    parts = [f"{source}: the weights do not fit the model built from its config."]
    parts += key_problems(missing, unexpected, shapes)
    parts.append(
        "Check that config.json belongs to these weights (same block_out_channels, layers, "
        "channels), or that the right model class is used."
    )
    return " ".join(parts)


def config_differences(
    run: Mapping[str, Any], saved: Mapping[str, Any], ignore: Sequence[str] = ()
) -> list[str]:
    """``field (run X, saved Y)`` for every field, in name order, where a run's model config and
    a saved one differ (fields in ``ignore`` left out): the wording of ``init_from`` errors."""
    fields = sorted((run.keys() | saved.keys()) - set(ignore))
    return [
        f"{k} (run {run.get(k)!r}, saved {saved.get(k)!r})"
        for k in fields
        if run.get(k) != saved.get(k)
    ]
