"""Make the plugin visible to the registry when the tests run from a checkout that is not installed.

Installed (``pip install -e .``), the plugin is found through its entry points. Not installed, its
``pyproject.toml`` is loaded: the package folder goes on ``sys.path`` and the entry points are
registered as if installed.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from diffusers_hub import registry

ROOT = Path(__file__).resolve().parents[1]

try:
    importlib.metadata.distribution("{{ distribution }}")
except importlib.metadata.PackageNotFoundError:
    registry.load_plugin_from_pyproject(ROOT)
