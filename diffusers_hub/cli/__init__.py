"""The ``diffusers-hub`` command line.

Commands::

    diffusers-hub plugins list [--json] [--all] [--kind KIND]
    diffusers-hub plugins info NAME [--kind KIND] [--load] [--json]
    diffusers-hub plugins doctor [--json] [--no-timing]
    diffusers-hub plugins new NAME [--kind KIND] [--dir PATH] [--author NAME] [--email ADDRESS]
    diffusers-hub plugins validate PATH [--imports] [--json]
    diffusers-hub generate PIPELINE [--model PATH_OR_REPO] [--prompt TEXT] [--steps N] [--seed S]
                           [--batch-size B] [--out FILE] [--device D]
    diffusers-hub demo [--out FILE] [--samples N] [--ddpm-steps N] [--ddim-steps N] [--ldm-steps N]
                       [--seed S] [--device D] [--threads T]
    diffusers-hub sample PIPELINE --num-samples N --out-dir DIR [--batch-size B] [--seed S] [--npz]
                         [--prompts FILE] [--mels DIR] [--batch-invariant]   (also under torchrun)
    diffusers-hub train NAME [ARGS...]
    diffusers-hub convert FORMAT [ARGS...]
    diffusers-hub PLUGIN-COMMAND ...

Errors print one line (``error: ...``) on stderr and exit with status 1; the global ``--debug``
flag shows the traceback instead. Importing this module is cheap: torch is imported by
``generate`` only, and plugin modules only when a command needs them (``plugins list`` and
``plugins info`` never import one).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from diffusers_hub import registry
from diffusers_hub._version import __version__
from diffusers_hub.cli import _generate, _plugins
from diffusers_hub.errors import DiffusersHubError, RegistryError
from diffusers_hub.media import image_grid as image_grid
from diffusers_hub.media import read_wav as read_wav

__all__ = ["BUILTIN_COMMANDS", "build_parser", "main"]

#: The commands of the core; plugins cannot take these names.
BUILTIN_COMMANDS = ("plugins", "generate", "demo", "sample", "train", "convert")


def _dispatch(hook_name: str, what: str, key: str, args: argparse.Namespace) -> int:
    """``train NAME ARGS...`` and ``convert FORMAT ARGS...``: call the function (a 'module:function'
    reference) that a plugin's ``hook_name`` hook maps NAME or FORMAT to with ARGS."""
    reference = registry.hook_mapping_value(hook_name, getattr(args, key), what)
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(
            f"the {what} reference {reference!r} is not of the form 'module:function'"
        )
    function: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        function = getattr(function, part)
    if not callable(function):
        raise RegistryError(f"the {what} {reference!r} is not callable")
    status = function(args.args)
    return 0 if status is None else int(status)


def _add_plugin_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    try:
        pm = registry.hooks()
    except DiffusersHubError as exc:
        print(f"warning: plugin commands unavailable: {exc}", file=sys.stderr)
        return
    plugins = pm.list_name_plugin()  # registration order
    for name, plugin in plugins:
        # one plugin at a time, so that a failing plugin costs only its own commands
        others = [p for _, p in plugins if p is not plugin]
        add = pm.subset_hook_caller("diffusers_hub_add_commands", remove_plugins=others)
        try:
            add(subparsers=subparsers)
        except Exception as exc:
            print(
                f"warning: the commands of plugin {name} were not added: "
                f"{type(exc).__name__}: {exc}",
                file=sys.stderr,
            )


def build_parser(*, plugin_commands: bool = True) -> argparse.ArgumentParser:
    """The ``diffusers-hub`` argument parser.

    Args:
        plugin_commands: also add the subcommands contributed by plugins (this imports the
            plugins' hook modules).
    """
    parser = argparse.ArgumentParser(
        prog="diffusers-hub",
        description="Run diffusion pipelines and manage diffusers-hub plugins.",
    )
    parser.add_argument("--version", action="version", version=f"diffusers-hub {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _plugins.add_parser(sub)
    _generate.add_parsers(sub)

    train = sub.add_parser("train", help="run a plugin's training command")
    train.add_argument("name", help="trainer name (see the plugins' docs)")
    train.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the trainer")
    train.set_defaults(func=partial(_dispatch, "diffusers_hub_trainers", "trainer", "name"))

    conv = sub.add_parser("convert", help="convert an original checkpoint to diffusers format")
    conv.add_argument("format", help="source format name (see the plugins' docs)")
    conv.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the converter")
    conv.set_defaults(func=partial(_dispatch, "diffusers_hub_converters", "converter", "format"))

    if plugin_commands:
        _add_plugin_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``diffusers-hub`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    arguments = [*(sys.argv[1:] if argv is None else argv)]
    command = next((token for token in arguments if not token.startswith("-")), None)
    parser = build_parser(plugin_commands=command not in BUILTIN_COMMANDS)
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    handler: Callable[[argparse.Namespace], int | None] | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        status = handler(args)
    except BrokenPipeError:  # the reader went away (``diffusers-hub plugins list | head``)
        with contextlib.suppress(Exception):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        if not isinstance(exc, DiffusersHubError | OSError):
            message = f"{type(exc).__name__}: {message} (--debug shows the traceback)"
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0 if status is None else int(status)
