"""pluggy hook implementations of the BDDM plugin: its train, convert and ``bddm`` commands.

Import-light on purpose: no torch, no plugin modules; the paths are computed from this file.
"""

from __future__ import annotations

import argparse
from typing import Any

from diffusers_hub.hookspecs import hookimpl

__all__ = ["diffusers_hub_add_commands", "diffusers_hub_converters", "diffusers_hub_trainers"]


@hookimpl
def diffusers_hub_trainers() -> dict[str, str]:
    """``train bddm`` (the DiffWave score network) and ``train bddm-schedule`` (its schedule
    network, the score network frozen)."""
    return {
        "bddm": "diffusers_hub_bddm.train:main",
        "bddm-schedule": "diffusers_hub_bddm.schedule_train:main",
    }


@hookimpl
def diffusers_hub_converters() -> dict[str, str]:
    """``diffusers-hub convert bddm`` turns an original BDDM checkpoint into a pipeline folder."""
    return {"bddm": "diffusers_hub_bddm.convert:main"}


@hookimpl
def diffusers_hub_add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``diffusers-hub bddm search`` and ``diffusers-hub bddm evaluate``."""
    from diffusers_hub_bddm.commands import add_commands

    add_commands(subparsers)
