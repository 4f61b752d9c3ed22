"""pluggy hook implementations of the BDDM plugin: its train, convert and ``bddm`` commands, and
the demo weights.

Import-light on purpose: no torch, no plugin modules; the paths are computed from this file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from diffusers_hub.hookspecs import demo_folder, hookimpl, provides

__all__ = ["DEMO_FOLDER"]

#: The demo pipeline shipped in the package (see docs/plugins/bddm.md, "Demo weights").
DEMO_FOLDER = Path(__file__).resolve().parent / "demo"

#: ``diffusers-hub generate bddm`` without ``--model`` runs the shipped demo vocoder.
diffusers_hub_demo_checkpoints = demo_folder("bddm", DEMO_FOLDER)
#: ``train bddm`` (the DiffWave score network) and ``train bddm-schedule`` (its schedule network,
#: the score network frozen).
diffusers_hub_trainers = provides(
    {
        "bddm": "diffusers_hub_bddm.train:main",
        "bddm-schedule": "diffusers_hub_bddm.schedule_train:main",
    }
)
#: ``diffusers-hub convert bddm`` turns an original BDDM checkpoint into a pipeline folder.
diffusers_hub_converters = provides({"bddm": "diffusers_hub_bddm.convert:main"})


@hookimpl
def diffusers_hub_add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """``diffusers-hub bddm search`` and ``diffusers-hub bddm evaluate``."""
    from diffusers_hub_bddm.commands import add_commands

    add_commands(subparsers)
