"""{{ description }}

Registered with diffusers-hub as the {{ kind }}
``{{ name }}`` (alias ``{{ class_name }}``): get it with
``registry.{{ kind }}("{{ name }}")``.

Keep this module import-light: the registry lists plugins from their metadata and imports a
component module only when it is used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
