"""pluggy hook specifications: cross-cutting behaviour that plugins contribute.

Hooks are not how components are registered (that is the job of the entry-point groups read by
:mod:`diffusers_hub.registry`); they let a plugin add behaviour that is not a component: embedded
demo weights, training commands, checkpoint converters and extra ``diffusers-hub`` subcommands.

A plugin points the entry-point group ``diffusers_hub.hooks`` at a module of hook
implementations::

    [project.entry-points."diffusers_hub.hooks"]
    myplugin = "myplugin.hooks"

and marks each implementation with :data:`hookimpl`::

    # myplugin/hooks.py: import-light (no torch, no model code at import time)
    from diffusers_hub.hookspecs import hookimpl

    @hookimpl
    def diffusers_hub_converters() -> dict[str, str]:
        return {"myformat": "myplugin.convert:main"}

pluggy finds the implementations by their names (a hook module's ``__all__`` need not list them).
The mapping hooks are data; :func:`provides` and :func:`demo_folder` write their implementations::

    diffusers_hub_trainers = provides({"my-model": "myplugin.train:main"})
    diffusers_hub_demo_checkpoints = demo_folder("my-pipeline", Path(__file__).parent / "demo")

Hook modules are imported the first time :func:`diffusers_hub.registry.hooks` is called, never by
``import diffusers_hub`` or by listing plugins, so they must import neither torch nor their
plugin's heavy modules at import time: point at them with ``"module:function"`` strings instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

__all__ = [
    "PROJECT_NAME",
    "diffusers_hub_add_commands",
    "diffusers_hub_converters",
    "diffusers_hub_demo_checkpoints",
    "diffusers_hub_trainers",
    "demo_folder",
    "hookimpl",
    "hookspec",
    "provides",
]

#: The pluggy project name shared by the specs and the implementations.
PROJECT_NAME = "diffusers_hub"

#: Decorator marking hook specifications (used by this module).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: Decorator marking hook implementations in a plugin's hook module.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: A mapping hook's implementation (what :func:`provides` and :func:`demo_folder` return).
MappingHook = Callable[[], dict[str, str]]


def provides(mapping: Mapping[str, str]) -> MappingHook:
    """The implementation of a mapping hook that always answers ``mapping``.

    Assign it to the hook's name in the hook module (``diffusers_hub_trainers = provides({...})``).
    """
    answer = dict(mapping)

    @hookimpl
    def implementation() -> dict[str, str]:
        return dict(answer)

    return implementation


def demo_folder(pipeline: str, folder: Path) -> MappingHook:
    """The ``diffusers_hub_demo_checkpoints`` implementation of a demo pipeline shipped in
    ``folder``: ``{pipeline: folder}``, or nothing while the folder holds no ``model_index.json``."""

    @hookimpl
    def implementation() -> dict[str, str]:
        return {pipeline: str(folder)} if (folder / "model_index.json").is_file() else {}

    return implementation


@hookspec
def diffusers_hub_demo_checkpoints() -> dict[str, str]:  # type: ignore[empty-body]
    """Embedded demo weights: pipeline name -> folder holding a loadable pipeline.

    ``diffusers-hub generate PIPELINE`` without ``--model`` loads the folder returned for
    ``PIPELINE`` with ``from_pretrained``. Give the pipeline's entry-point name (``"ddpm"``): the
    registry looks the folder up under every name of the pipeline (``DDPMPipeline`` too). The folder ships
    inside the plugin package (for example ``importlib.resources.files(__package__) / "demo"``).

    Returns:
        A mapping of pipeline registry names to absolute folder paths.
    """


@hookspec
def diffusers_hub_trainers() -> dict[str, str]:  # type: ignore[empty-body]
    """Training commands: trainer name -> ``"module:function"``.

    ``diffusers-hub train NAME ARGS...`` imports ``module``, calls ``function(ARGS)`` with the
    remaining command-line arguments as a list of strings and exits with the integer it returns.
    The function parses its own options (``argparse``).

    Returns:
        A mapping of trainer names to ``"module:function"`` references.
    """


@hookspec
def diffusers_hub_converters() -> dict[str, str]:  # type: ignore[empty-body]
    """Checkpoint converters from original release formats: format name -> ``"module:function"``.

    ``diffusers-hub convert FORMAT ARGS...`` imports ``module``, calls ``function(ARGS)`` with the
    remaining command-line arguments and exits with the integer it returns. A converter writes
    a diffusers-format folder (for example from glide-text2im's ``base.pt``).

    Returns:
        A mapping of format names to ``"module:function"`` references.
    """


@hookspec
def diffusers_hub_add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add subcommands to ``diffusers-hub``.

    Add parsers with ``subparsers.add_parser(name, help=...)`` and give each a handler with
    ``parser.set_defaults(func=handler)``, where ``handler(args: argparse.Namespace)`` returns the
    exit status (``int``; ``None`` means 0). Names already taken by the core (``plugins``,
    ``generate``, ``train``, ``convert``) or by another plugin cannot be reused; a plugin whose
    hook fails is skipped with a warning and the other commands keep working. Plugin commands are
    only added when the command line does not name a core command, so that core commands never
    import plugin hook modules needlessly.

    Args:
        subparsers: the ``argparse`` subparsers object of the ``diffusers-hub`` parser.
    """
