"""Import lightness, checked in fresh interpreters: ``import diffusers_hub`` and ``diffusers-hub
plugins list`` import neither torch nor any plugin module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import PluginDists

# Prints the sorted module names at interpreter exit (after the CLI's SystemExit), to a file.
_DUMP_AT_EXIT = """
import atexit, json, sys
def _dump():
    with open({path!r}, "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(_dump)
"""


def _run(code: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DIFFUSERS_HUB_STRICT", None)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def _plugin_modules(root: Path) -> set[str]:
    """Top-level modules of every plugin distribution visible with ``root`` on the path."""
    code = (
        "import json\nfrom diffusers_hub import registry\n"
        "print(json.dumps(sorted({m for d in registry.plugin_distributions() for m in d.modules})))"
    )
    proc = _run(code, root)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def _offenders(modules: list[str], plugin_modules: set[str]) -> list[str]:
    return [
        m
        for m in modules
        if m.split(".")[0] in plugin_modules or m == "torch" or m.startswith("torch.")
    ]


def _light_plugin(plugin_dists: PluginDists) -> str:
    # A plugin whose import would be visible (and would fail loudly if it happened).
    return plugin_dists.scheduler_plugin("light-check-plugin", "lightcheck", ("light-check",))


def test_import_diffusers_hub_imports_no_torch_and_no_plugin(plugin_dists: PluginDists) -> None:
    pkg = _light_plugin(plugin_dists)
    plugin_modules = _plugin_modules(plugin_dists.root)
    assert pkg in plugin_modules

    code = (
        "import json, sys\nimport diffusers_hub\nimport diffusers_hub.registry\n"
        "import diffusers_hub.protocols\nimport diffusers_hub.cli\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    proc = _run(code, plugin_dists.root)

    assert proc.returncode == 0, proc.stderr
    assert _offenders(json.loads(proc.stdout), plugin_modules) == []


def test_plugins_list_imports_no_plugin_module(plugin_dists: PluginDists, tmp_path: Path) -> None:
    pkg = _light_plugin(plugin_dists)
    plugin_modules = _plugin_modules(plugin_dists.root)
    dump = tmp_path / "modules.json"
    code = _DUMP_AT_EXIT.format(path=str(dump)) + (
        "import runpy\nsys.argv = ['diffusers-hub', 'plugins', 'list', '--all']\n"
        "runpy.run_module('diffusers_hub', run_name='__main__', alter_sys=True)\n"
    )

    proc = _run(code, plugin_dists.root)

    assert proc.returncode == 0, proc.stderr
    assert "light-check" in proc.stdout and "light-check-plugin" in proc.stdout
    modules = json.loads(dump.read_text())
    assert "diffusers_hub.cli" in modules  # the command really ran
    assert pkg in plugin_modules
    assert _offenders(modules, plugin_modules) == []
