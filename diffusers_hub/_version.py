"""Version numbers of the core distribution and of the plugin API it offers."""

__version__ = "0.1.0"

#: The plugin API this core implements. A plugin declares the API it targets with an entry point
#: ``"<api>" = "<its package>"`` in the group ``diffusers_hub.plugin_api``.
PLUGIN_API_VERSION = 1

#: The diffusers version written into ``_diffusers_version`` of saved configs, so that files saved here
#: are read by diffusers as the format they follow.
DIFFUSERS_FORMAT_VERSION = "0.12.0"
