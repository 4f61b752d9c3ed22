"""Exception types raised on purpose by diffusers-hub.

Every error names what was wrong (the file, the field, the value) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DiffusersHubError",
    "PluginLoadError",
    "RegistryError",
    "SaveError",
    "WeightsError",
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
