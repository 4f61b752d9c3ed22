"""The ``diffusers-hub`` command line, over temporary plugin distributions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from diffusers_hub.cli import image_grid, main
from diffusers_hub.errors import RegistryError
from diffusers_hub.registry import Registry

from .conftest import SCHEDULER_SOURCE, PluginDists

PIPELINE_SOURCE = """
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image


@dataclass
class Output:
    images: list


@dataclass
class AudioOutput:
    audios: np.ndarray
    sampling_rate: int = 22050


class Base:
    def __init__(self, size):
        self.size = size
        self.device = "cpu"

    @property
    def components(self):
        return {}

    @classmethod
    def from_pretrained(cls, path_or_repo, **options):
        config = json.loads((Path(path_or_repo) / "pipe.json").read_text())
        return cls(config["size"])

    def save_pretrained(self, directory, **options):
        pass

    def to(self, device=None, dtype=None):
        self.device = device
        return self

    def set_progress_bar_config(self, **kwargs):
        pass


class FakeImagePipeline(Base):
    def __call__(self, generator=None, num_inference_steps=5, batch_size=1, output_type="pil",
                 return_dict=True):
        rng = np.random.default_rng(generator.initial_seed() + num_inference_steps)
        images = [
            PIL.Image.fromarray(rng.integers(0, 255, (self.size, self.size, 3), dtype=np.uint8))
            for _ in range(batch_size)
        ]
        return Output(images)


class FakeAudioPipeline(Base):
    def __call__(self, generator=None, num_inference_steps=5, output_type="np", return_dict=True):
        return AudioOutput(np.linspace(-1, 1, self.size * 10, dtype=np.float32)[None, None])
"""

HOOKS_SOURCE = """
import os

from diffusers_hub.hookspecs import hookimpl


@hookimpl
def diffusers_hub_demo_checkpoints():
    return {{"fake-image": os.path.join(os.path.dirname(__file__), "demo")}}


@hookimpl
def diffusers_hub_trainers():
    return {{"fake-train": "{pkg}.tools:train"}}


@hookimpl
def diffusers_hub_converters():
    return {{"fake-format": "{pkg}.tools:convert"}}


@hookimpl
def diffusers_hub_add_commands(subparsers):
    parser = subparsers.add_parser("hello", help="say hello")
    parser.add_argument("--name", default="world")
    parser.set_defaults(func=lambda args: print(f"hello {{args.name}}"))
"""

TOOLS_SOURCE = """
import json, os


def train(argv):
    print("train", json.dumps(argv))
    return 3


def convert(argv):
    print("convert", json.dumps(argv))
"""


@pytest.fixture
def cli_plugins(plugin_dists: PluginDists, default_registry: Registry) -> str:
    """A plugin with an image and an audio pipeline, demo weights, trainers, converters and a
    subcommand, plus a plugin whose subcommand hook fails; returns the first one's package."""
    pkg = plugin_dists.package_name("clifake")
    plugin_dists.add(
        "fake-pipelines",
        {
            f"{pkg}/__init__.py": "",
            f"{pkg}/pipes.py": PIPELINE_SOURCE,
            f"{pkg}/hooks.py": HOOKS_SOURCE.format(pkg=pkg),
            f"{pkg}/tools.py": TOOLS_SOURCE,
            f"{pkg}/demo/pipe.json": '{"size": 8}',
            f"{pkg}/scheduler.py": SCHEDULER_SOURCE.format(cls="Sched"),
        },
        {
            "pipelines": {
                "fake-image": f"{pkg}.pipes:FakeImagePipeline",
                "fake-audio": f"{pkg}.pipes:FakeAudioPipeline",
            },
            "schedulers": {"fake": f"{pkg}.scheduler:Sched"},
            "hooks": {"fake": f"{pkg}.hooks"},
        },
    )
    bad = plugin_dists.package_name("clibad")
    plugin_dists.add(
        "bad-commands",
        {
            f"{bad}/__init__.py": "",
            f"{bad}/hooks.py": """
                from diffusers_hub.hookspecs import hookimpl

                @hookimpl
                def diffusers_hub_add_commands(subparsers):
                    subparsers.add_parser("plugins")  # taken by the core
            """,
        },
        {"hooks": {"bad": f"{bad}.hooks"}},
    )
    return pkg


def test_plugins_list_table_and_json(
    cli_plugins: str, plugin_dists: PluginDists, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins", "list"]) == 0
    out = capsys.readouterr().out
    header, _rule, *rows = out.splitlines()
    assert header.split() == ["kind", "name", "aliases", "distribution", "version", "status"]
    assert any(
        r.split()[:5] == ["pipeline", "fake-image", "FakeImagePipeline", "fake-pipelines", "*"]
        for r in rows
    )
    assert "third-party" in out
    assert plugin_dists.imported() == []

    assert main(["plugins", "list", "--json", "--kind", "scheduler"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["name"], d["status"], d["qualified_id"]) for d in data] == [
        ("fake", "not loaded", "fake-pipelines/fake")
    ]
    assert plugin_dists.imported() == []


def test_plugins_list_hides_incompatible_unless_all(
    plugin_dists: PluginDists, default_registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin_dists.scheduler_plugin("good-plugin", "good", ("good",))
    plugin_dists.scheduler_plugin("old-plugin", "old", ("old",), api="0")

    assert main(["plugins", "list"]) == 0
    table, hidden, footer = capsys.readouterr().out.partition("\n\nhidden, ")
    assert "good" in table and "old-plugin" not in table
    assert hidden and footer.startswith("1 broken or incompatible entry")
    # the footer names the plugin, the entry and the error, one line each
    (line,) = [row for row in footer.splitlines() if "old-plugin" in row]
    assert line.split()[:4] == ["old-plugin", "scheduler", "old", "incompatible:"]
    assert "targets plugin API 0" in line and "; " not in line
    assert main(["plugins", "list", "--all"]) == 0
    assert "incompatible" in capsys.readouterr().out


def test_plugins_info(
    cli_plugins: str, plugin_dists: PluginDists, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins", "info", "FakeImagePipeline"]) == 0
    out = capsys.readouterr().out
    assert "pipeline fake-image" in out
    assert "fake-pipelines/fake-image" in out and "not loaded" in out
    assert plugin_dists.imported() == []

    assert main(["plugins", "info", "fake", "--load", "--json"]) == 0
    (info,) = json.loads(capsys.readouterr().out)
    assert info["status"] == "loaded"

    assert main(["plugins", "info", "GLIDEPipeline"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert 'pip install "diffusers-hub[glide]"' in err


def test_plugins_info_load_shows_a_broken_plugin(
    plugin_dists: PluginDists, default_registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = plugin_dists.package_name("infobad")
    plugin_dists.add(
        "info-bad",
        {f"{bad}/__init__.py": "", f"{bad}/s.py": "raise ImportError('no luck')\n"},
        {"schedulers": {"infobad": f"{bad}.s:S"}},
    )
    assert main(["plugins", "info", "infobad", "--load"]) == 1
    out = capsys.readouterr().out
    assert "broken" in out and "no luck" in out and "traceback:" in out


def test_plugins_doctor(
    plugin_dists: PluginDists, default_registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin_dists.scheduler_plugin("good-plugin", "good", ("shared", "good"))
    plugin_dists.scheduler_plugin("twin-plugin", "twin", ("shared",))
    plugin_dists.scheduler_plugin("old-plugin", "old", ("old",), api="2")
    bad = plugin_dists.package_name("docbad")
    plugin_dists.add(
        "bad-plugin",
        {f"{bad}/__init__.py": "", f"{bad}/s.py": "raise RuntimeError('kaput')\n"},
        {"schedulers": {"docbad": f"{bad}.s:S"}},
    )

    assert main(["plugins", "doctor"]) == 1
    out = capsys.readouterr().out
    assert "[conflict]" in out and "'shared'" in out
    assert "[incompatible]" in out and "targets plugin API 2" in out
    assert "[broken]" in out and "kaput" in out
    assert plugin_dists.imported() == []  # imports happen in subprocesses

    assert main(["plugins", "doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    timing = {d["name"]: d for d in report["distributions"]}
    assert timing["good-plugin"]["import_s"] >= 0.0
    assert timing["good-plugin"]["errors"] == []
    assert "import_s" not in timing["old-plugin"]  # incompatible: never imported
    assert {p["category"] for p in report["problems"]} == {"conflict", "incompatible", "broken"}

    assert main(["plugins", "doctor", "--no-timing"]) == 1
    assert "kaput" not in capsys.readouterr().out


def test_plugins_doctor_healthy(
    plugin_dists: PluginDists, default_registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin_dists.scheduler_plugin("good-plugin", "good", ("good",))
    assert main(["plugins", "doctor"]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out and "good-plugin" in out


def test_generate_image_grid_from_demo_weights(
    cli_plugins: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    out = tmp_path / "out" / "grid.png"
    args = ["generate", "FakeImagePipeline", "--steps", "2", "--seed", "7", "--out", str(out)]
    assert main([*args, "--batch-size", "4"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out} (4 images, sampled in "), printed
    assert printed.count(str(out)) == 1
    with Image.open(out) as grid:
        assert grid.size == (17, 17)  # 2 x 2 grid of 8 px images, 1 px gap
        first = grid.copy()
    assert main([*args, "--batch-size", "4"]) == 0
    with Image.open(out) as again:
        assert again.tobytes() == first.tobytes()  # same seed, same picture
    assert main([*args[:-2], "--out", str(tmp_path / "b.png"), "--seed", "8"]) == 0
    with Image.open(tmp_path / "b.png") as other:
        assert other.size == (8, 8)
    capsys.readouterr()

    assert main(["generate", "fake-image", "--prompt", "a cat", "--out", str(out)]) == 1
    assert "does not take --prompt" in capsys.readouterr().err


def test_generate_with_model_and_audio(
    cli_plugins: str, plugin_dists: PluginDists, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scipy.io import wavfile

    model = tmp_path / "model"
    model.mkdir()
    (model / "pipe.json").write_text('{"size": 5}')
    out = tmp_path / "speech.wav"
    assert main(["generate", "fake-audio", "--model", str(model), "--out", str(out)]) == 0
    assert "22050 Hz" in capsys.readouterr().out
    rate, data = wavfile.read(out)
    assert rate == 22050 and data.shape == (50,)

    assert main(["generate", "fake-audio"]) == 1  # no demo weights for this one
    assert "has no embedded demo weights" in capsys.readouterr().err


def test_train_convert_and_plugin_commands(
    cli_plugins: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "fake-train", "--epochs", "2", "data"]) == 3
    assert 'train ["--epochs", "2", "data"]' in capsys.readouterr().out
    assert main(["convert", "fake-format", "in.pt", "out"]) == 0
    assert 'convert ["in.pt", "out"]' in capsys.readouterr().out
    assert main(["train", "nope"]) == 1
    assert "no trainer named 'nope' (available: fake-train)" in capsys.readouterr().err

    assert main(["hello", "--name", "plugins"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "hello plugins\n"
    assert "the commands of plugin bad-commands:bad were not added" in captured.err


def test_errors_are_one_line_unless_debug(
    cli_plugins: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "no-such-pipeline"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no installed plugin provides the pipeline 'no-such-pipeline'")
    assert err.count("\n") == 1
    with pytest.raises(RegistryError):
        main(["--debug", "generate", "no-such-pipeline"])
    assert main(["generate", "fake-image", "--model", "/no/such/folder"]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["plugins", "list", "--kind", "bogus"]) == 2  # argparse usage error


def test_image_grid_layout() -> None:
    from PIL import Image

    images = [Image.new("L", (3, 2), color=i * 40) for i in range(5)]
    grid = image_grid(images, gap=0)
    assert grid.size == (9, 4)  # 3 columns, 2 rows
    assert grid.getpixel((3, 0)) == 40 and grid.getpixel((3, 2)) == 160
    spaced = image_grid(images)  # 1 px grey gaps between cells
    assert spaced.size == (11, 5)
    assert spaced.getpixel((3, 0)) == 128 and spaced.getpixel((4, 0)) == 40
    assert spaced.getpixel((4, 3)) == 160


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "diffusers_hub", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("diffusers-hub ")
