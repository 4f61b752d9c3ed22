"""diffusers-hub: a modular diffusion library whose components arrive as plugins.

``import diffusers_hub`` is cheap: it imports neither torch nor any plugin. The heavier names below
are loaded on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from diffusers_hub._version import PLUGIN_API_VERSION, __version__

if TYPE_CHECKING:
    from diffusers_hub import registry
    from diffusers_hub.config import ComponentConfig, ConfigMixin
    from diffusers_hub.modeling import ModelMixin
    from diffusers_hub.pipeline import AudioPipelineOutput, DiffusionPipeline, ImagePipelineOutput
    from diffusers_hub.scheduling import SchedulerConfig, SchedulerMixin, SchedulerOutput

__all__ = [
    "PLUGIN_API_VERSION",
    "AudioPipelineOutput",
    "ComponentConfig",
    "ConfigMixin",
    "DiffusionPipeline",
    "ImagePipelineOutput",
    "ModelMixin",
    "SchedulerConfig",
    "SchedulerMixin",
    "SchedulerOutput",
    "__version__",
    "registry",
]

_LAZY = {
    "registry": ("diffusers_hub.registry", None),
    "ComponentConfig": ("diffusers_hub.config", "ComponentConfig"),
    "ConfigMixin": ("diffusers_hub.config", "ConfigMixin"),
    "ModelMixin": ("diffusers_hub.modeling", "ModelMixin"),
    "SchedulerConfig": ("diffusers_hub.scheduling", "SchedulerConfig"),
    "SchedulerMixin": ("diffusers_hub.scheduling", "SchedulerMixin"),
    "SchedulerOutput": ("diffusers_hub.scheduling", "SchedulerOutput"),
    "DiffusionPipeline": ("diffusers_hub.pipeline", "DiffusionPipeline"),
    "ImagePipelineOutput": ("diffusers_hub.pipeline", "ImagePipelineOutput"),
    "AudioPipelineOutput": ("diffusers_hub.pipeline", "AudioPipelineOutput"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'diffusers_hub' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
