"""The plugin authoring kit: ``plugins new`` renders a working plugin, ``plugins validate`` checks it.

The slow tests run the rendered plugins' own test suites (which use the conformance kit) and
install a rendered plugin's wheel into a fresh virtual environment that has the core.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from diffusers_hub import plugin_kit
from diffusers_hub.cli import main
from diffusers_hub.plugin_kit import (
    Finding,
    PluginKitError,
    plugin_names,
    render_string,
    render_template,
    validate_plugin,
)

from .conftest import PluginDists
from .venv_tools import Venv, build_wheel, clean_env, make_venv

KINDS = ("scheduler", "model", "pipeline", "processor")


@pytest.fixture
def isolated_imports() -> Iterator[None]:
    """Undo the ``sys.path`` entries and modules that ``validate_plugin(imports=True)`` adds."""
    path = list(sys.path)
    modules = set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("diffusers_hub_toy"):
            del sys.modules[name]


def render(tmp_path: Path, name: str = "toy-solver", kind: str = "scheduler") -> Path:
    dest = tmp_path / f"diffusers-hub-{name}"
    render_template(dest, name, kind, author="Ada Lovelace", email="ada@example.com")
    return dest


def codes(findings: list[Finding], level: str = "error") -> list[str]:
    return [f.code for f in findings if f.level == level]


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text(encoding="utf-8")
    assert old in text, (old, text)
    file.write_text(text.replace(old, new), encoding="utf-8")


# -- names and rendering ----------------------------------------------------------------------------


def test_plugin_names() -> None:
    names = plugin_names("my-solver", "scheduler")
    assert names == {
        "name": "my-solver",
        "distribution": "diffusers-hub-my-solver",
        "package": "diffusers_hub_my_solver",
        "class_name": "MySolverScheduler",
        "module": "scheduler",
        "title": "My Solver",
        "kind": "scheduler",
    }
    for spelling in ("MySolver", "my_solver", "diffusers-hub-my-solver", "My Solver"):
        assert plugin_names(spelling)["name"] == "my-solver"
    assert plugin_names("tiny-unet", "model")["class_name"] == "TinyUnetModel"
    assert plugin_names("sharp-pipeline", "pipeline")["class_name"] == "SharpPipeline"


@pytest.mark.parametrize("bad", ["", "1st", "my/solver", "my--", "-x", "ü-solver"])
def test_invalid_names_are_refused(bad: str) -> None:
    with pytest.raises(PluginKitError, match="invalid plugin name"):
        plugin_names(bad)


@pytest.mark.parametrize("reserved", ["ddim", "ddpm", "glide", "latent-diffusion", "DDIM"])
def test_first_party_names_are_refused(reserved: str) -> None:
    with pytest.raises(PluginKitError, match="first-party"):
        plugin_names(reserved)


def test_reserved_class_names_are_refused() -> None:
    with pytest.raises(PluginKitError, match="reserved"):
        plugin_names("unet-2d", "model")  # the short name is a first-party model name
    with pytest.raises(PluginKitError, match="reserved"):
        plugin_names("ddim-inverse", "scheduler")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(PluginKitError, match="unknown plugin kind"):
        plugin_names("x", "vocoder")


def test_render_string() -> None:
    variables = {"name": "toy", "kind": "scheduler"}
    assert render_string("{{ name }}/{{kind}}", variables) == "toy/scheduler"
    github = "python-version: ${{ matrix.python-version }} on ${{ runner.os }}"
    assert render_string(github, variables) == github
    with pytest.raises(PluginKitError, match="unknown placeholder"):
        render_string("{{ nmae }}", variables)


@pytest.mark.parametrize("kind", KINDS)
def test_render_every_kind(tmp_path: Path, kind: str) -> None:
    dest = render(tmp_path, f"toy-{kind}-thing", kind)
    names = plugin_names(f"toy-{kind}-thing", kind)
    package = dest / names["package"]
    expected = [
        "pyproject.toml",
        "README.md",
        ".gitignore",
        ".github/workflows/ci.yml",
        "docs/index.md",
        "tests/conftest.py",
        "tests/test_plugin.py",
        f"tests/test_{kind}.py",
        f"{names['package']}/__init__.py",
        f"{names['package']}/py.typed",
        f"{names['package']}/{kind}.py",
    ]
    for rel in expected:
        assert (dest / rel).is_file(), rel
    for file in dest.rglob("*"):
        if file.is_file():
            text = file.read_text(encoding="utf-8")
            assert "{{ " not in text.replace("${{ ", ""), file
            assert "{{" not in file.name
    pyproject = (dest / "pyproject.toml").read_text()
    group = plugin_kit.template_variables(f"toy-{kind}-thing", kind)["group"]
    value = f"{names['package']}.{kind}:{names['class_name']}"
    assert f'[project.entry-points."{group}"]' in pyproject
    assert f'{names["name"]} = "{value}"' in pyproject
    assert f"{names['class_name']} = " not in pyproject  # one entry point per component
    assert f'"1" = "{names["package"]}"' in pyproject
    assert 'name = "Ada Lovelace", email = "ada@example.com"' in pyproject
    assert f"class {names['class_name']}" in (package / f"{kind}.py").read_text()
    ci = (dest / ".github/workflows/ci.yml").read_text()
    assert "${{ matrix.python-version }}" in ci and "plugins validate . --imports" in ci
    assert validate_plugin(dest) == []


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_rendered_plugins_pass_ruff(tmp_path: Path) -> None:
    for kind in KINDS:
        dest = render(tmp_path, f"toy-ancestral-{kind}-thing", kind)  # long names, long lines
        for args in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
            proc = subprocess.run(
                ["ruff", *args], cwd=dest, capture_output=True, text=True, check=False
            )
            assert proc.returncode == 0, (kind, args, proc.stdout, proc.stderr)


def test_render_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(PluginKitError, match="not empty"):
        render_template(dest, "toy-solver")
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_render_with_a_template_of_ones_own(tmp_path: Path) -> None:
    template = tmp_path / "tpl"
    (template / "common" / "{{ package }}").mkdir(parents=True)
    (template / "scheduler").mkdir()
    (template / "common" / "{{ package }}" / "NAME.txt").write_text("{{ title }} by {{ author }}")
    written = render_template(tmp_path / "out", "toy-solver", template=template, author="Me")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == [
        "diffusers_hub_toy_solver/NAME.txt"
    ]
    assert written[0].read_text() == "Toy Solver by Me"
    (template / "common" / "bad.txt").write_text("{{ nope }}")
    with pytest.raises(PluginKitError, match="unknown placeholder"):
        render_template(tmp_path / "out2", "toy-solver", template=template)
    assert not (tmp_path / "out2").exists()  # nothing written when the template is broken


# -- validate -----------------------------------------------------------------------------------


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    return render(tmp_path)


def test_validate_ok(plugin: Path, isolated_imports: None) -> None:
    assert validate_plugin(plugin) == []
    assert validate_plugin(plugin / "pyproject.toml") == []
    assert validate_plugin(plugin, imports=True) == []


def test_validate_bad_entry_point(plugin: Path) -> None:
    edit(
        plugin / "pyproject.toml",
        'toy-solver = "diffusers_hub_toy_solver.scheduler:ToySolverScheduler"',
        'toy-solver = "diffusers_hub_toy_solver.scheduler.ToySolverScheduler"',
    )
    findings = validate_plugin(plugin)
    assert codes(findings) == ["entry-point"]
    assert "module:Object" in findings[0].message and "toy-solver" in findings[0].where


@pytest.mark.parametrize(
    ("old", "new", "code", "message_parts"),
    [
        pytest.param(
            '"1" = "diffusers_hub_toy_solver"',
            '"2" = "diffusers_hub_toy_solver"',
            "api-version",
            ["plugin API 2", "implements plugin API 1"],
            id="wrong-api-version",
        ),
        pytest.param(
            '[project.entry-points."diffusers_hub.plugin_api"]\n"1" = "diffusers_hub_toy_solver"\n',
            "",
            "api-version",
            ['"1" = "diffusers_hub_toy_solver"'],
            id="missing-api-declaration",
        ),
        pytest.param(
            'toy-solver = "diffusers_hub_toy_solver.scheduler:',
            'ddim = "diffusers_hub_toy_solver.scheduler:Other"\n'
            'toy-solver = "diffusers_hub_toy_solver.scheduler:',
            "reserved-name",
            ["'ddim'", "diffusers-hub-ddim"],
            id="first-party-name-clash",
        ),
    ],
)
def test_validate_pyproject_error(
    plugin: Path, old: str, new: str, code: str, message_parts: list[str]
) -> None:
    """One edit of the rendered pyproject.toml: one error, whose message names the problem."""
    edit(plugin / "pyproject.toml", old, new)
    findings = validate_plugin(plugin)
    assert codes(findings) == [code]
    for part in message_parts:
        assert part in findings[0].message


def test_validate_missing_package(plugin: Path) -> None:
    (plugin / "diffusers_hub_toy_solver").rename(plugin / "elsewhere")
    findings = validate_plugin(plugin)
    assert codes(findings) == ["package-missing"]
    assert "diffusers_hub_toy_solver" in findings[0].message


def test_validate_missing_module_and_unknown_group(plugin: Path) -> None:
    edit(
        plugin / "pyproject.toml",
        '[project.entry-points."diffusers_hub.schedulers"]',
        '[project.entry-points."diffusers_hub.scheduler"]\n'
        'other = "diffusers_hub_toy_solver.nope:X"\n\n'
        '[project.entry-points."diffusers_hub.models"]\n'
        'toy-model = "diffusers_hub_toy_solver.nope:X"\n\n'
        '[project.entry-points."diffusers_hub.schedulers"]',
    )
    findings = validate_plugin(plugin)
    assert sorted(codes(findings)) == ["group", "module-missing"]
    group = next(f for f in findings if f.code == "group")
    assert "did you mean 'diffusers_hub.schedulers'" in group.message


def test_validate_invalid_toml_and_missing_file(tmp_path: Path, plugin: Path) -> None:
    (plugin / "pyproject.toml").write_text("[project\nname = 1")
    assert codes(validate_plugin(plugin)) == ["pyproject"]
    assert codes(validate_plugin(tmp_path / "nowhere")) == ["pyproject"]


def test_validate_warnings_do_not_fail(plugin: Path) -> None:
    edit(plugin / "pyproject.toml", '    "diffusers-hub>=0.1,<0.2",\n', "")
    anchor = 'toy-solver = "diffusers_hub_toy_solver.scheduler:'
    edit(plugin / "pyproject.toml", anchor, anchor.replace("toy-solver", "ToySolver"))
    findings = validate_plugin(plugin)
    assert codes(findings) == []
    assert sorted(codes(findings, "warning")) == ["dependencies", "name"]


def test_validate_imports_finds_objects_that_are_not_schedulers(
    plugin: Path, isolated_imports: None
) -> None:
    package = plugin / "diffusers_hub_toy_solver"
    (package / "broken.py").write_text(
        "class AlsoNotAScheduler:\n    def step(self):\n        pass\n\n\n"
        "import a_module_that_does_not_exist  # noqa: E402\n"
    )
    (package / "fake.py").write_text("class NotAScheduler:\n    def step(self):\n        pass\n")
    edit(
        plugin / "pyproject.toml",
        'toy-solver = "diffusers_hub_toy_solver.scheduler:',
        'toy-fake = "diffusers_hub_toy_solver.fake:NotAScheduler"\n'
        'toy-broken = "diffusers_hub_toy_solver.broken:AlsoNotAScheduler"\n'
        'toy-missing = "diffusers_hub_toy_solver.scheduler:NoSuchClass"\n'
        'toy-solver = "diffusers_hub_toy_solver.scheduler:',
    )
    assert validate_plugin(plugin) == []  # fine as far as metadata goes
    findings = validate_plugin(plugin, imports=True)
    by_where = {f.where.split()[1]: f for f in findings}
    assert sorted(codes(findings)) == ["import", "import", "protocol"]
    assert by_where["toy-fake"].code == "protocol"
    assert "set_timesteps" in by_where["toy-fake"].message
    assert "a_module_that_does_not_exist" in by_where["toy-broken"].message
    assert "NoSuchClass" in by_where["toy-missing"].message


def test_validate_hook_modules(plugin: Path, isolated_imports: None) -> None:
    package = plugin / "diffusers_hub_toy_solver"
    (package / "hooks.py").write_text(
        "import torch  # heavy at import time: warned\n"
        "from diffusers_hub.hookspecs import hookimpl\n\n\n"
        "@hookimpl\ndef diffusers_hub_converters():\n    return {}\n"
    )
    edit(
        plugin / "pyproject.toml",
        '# [project.entry-points."diffusers_hub.hooks"]\n# toy-solver = ',
        '[project.entry-points."diffusers_hub.hooks"]\ntoy-solver = ',
    )
    findings = validate_plugin(plugin, imports=True)
    assert codes(findings) == [] and codes(findings, "warning") == ["hooks"]
    assert "imports torch" in findings[0].message


# -- the command line -------------------------------------------------------------------------------


def test_cli_new_and_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], isolated_imports: None
) -> None:
    status = main(
        [
            "plugins",
            "new",
            "toy-cli",
            "--kind",
            "processor",
            "--dir",
            str(tmp_path),
            "--author",
            "Me",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    dest = tmp_path / "diffusers-hub-toy-cli"
    assert str(dest) in out and "ToyCliProcessor" in out
    assert (dest / "diffusers_hub_toy_cli" / "processor.py").is_file()
    assert 'name = "Me"' in (dest / "pyproject.toml").read_text()

    assert main(["plugins", "validate", str(dest), "--imports"]) == 0
    assert "ok, 0 warning(s)" in capsys.readouterr().out
    assert main(["plugins", "validate", str(dest), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["findings"] == []

    edit(dest / "pyproject.toml", '"1" = ', '"7" = ')
    assert main(["plugins", "validate", str(dest)]) == 1
    out = capsys.readouterr().out
    assert "error: [api-version]" in out and "1 error(s)" in out
    assert main(["plugins", "validate", str(dest), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["findings"][0]["code"] == "api-version"


def test_cli_new_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "new", "ddim", "--dir", str(tmp_path)]) == 1
    assert "first-party" in capsys.readouterr().err
    assert main(["plugins", "new", "toy-solver", "--dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["plugins", "new", "toy-solver", "--dir", str(tmp_path)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["plugins", "new", "x", "--kind", "vocoder", "--dir", str(tmp_path)]) == 2


# -- the rendered plugins' own test suites, and an installed wheel (slow) ---------------------------


def run_rendered_tests(project: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_rendered_plugin_test_suite_passes(tmp_path: Path, kind: str) -> None:
    if kind == "pipeline":
        pytest.importorskip("diffusers_hub_ddpm")  # the example pipeline is tested with ddpm's UNet
    project = render(tmp_path, f"toy-{kind}-suite", kind)
    proc = run_rendered_tests(project)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary
    if kind in ("scheduler", "model", "pipeline"):  # the conformance kit ran
        assert int(summary.split(" passed")[0].split()[-1]) >= 8, summary


@pytest.mark.slow
def test_rendered_plugin_test_suite_catches_a_bug(tmp_path: Path) -> None:
    project = render(tmp_path, "toy-buggy", "scheduler")
    # a hidden counter in step(): the conformance kit must notice
    edit(
        project / "diffusers_hub_toy_buggy" / "scheduler.py",
        "        t_prev = self.previous_timestep(timestep)\n",
        "        t_prev = self.previous_timestep(timestep)\n"
        "        self._calls = getattr(self, '_calls', 0) + 1\n"
        "        sample = sample * (1.0 + 1e-3 * self._calls)\n",
    )
    proc = run_rendered_tests(project)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "failed" in proc.stdout


@pytest.mark.slow
def test_rendered_plugin_wheel_installs_and_registers(
    tmp_path: Path, core_wheel: Path, deps_site: Path
) -> None:
    project = render(tmp_path / "src", "toy-solver")
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    shutil.copy2(core_wheel, wheelhouse)
    wheel = build_wheel(project, wheelhouse, tmp_path / "build")
    assert wheel.name == "diffusers_hub_toy_solver-0.1.0-py3-none-any.whl"
    venv: Venv = make_venv(tmp_path / "venv", deps_site)
    log = venv.pip_install(wheelhouse, "diffusers-hub-toy-solver")
    assert "Successfully installed diffusers-hub-0.1.0 diffusers-hub-toy-solver-0.1.0" in log

    listing = venv.run(["diffusers-hub", "plugins", "list"]).stdout
    rows = [line.split() for line in listing.splitlines()]
    assert ["scheduler", "toy-solver", "ToySolverScheduler", "diffusers-hub-toy-solver", "*"] in [
        r[:5] for r in rows
    ], listing
    assert "* third-party plugin" in listing

    code = (
        "import json, torch\n"
        "from diffusers_hub import registry\n"
        "cls = registry.scheduler('toy-solver')\n"
        "assert cls is registry.scheduler('diffusers-hub-toy-solver/ToySolverScheduler')\n"
        "s = cls(num_train_timesteps=50, eta=0.0)\n"
        "s.set_timesteps(5)\n"
        "x = torch.ones(1, 1, 2, 2)\n"
        "for t in s.timesteps:\n"
        "    x = s.step(torch.zeros_like(x), t, x).prev_sample\n"
        "entry = next(e for e in registry.list('scheduler') if e.name == 'toy-solver')\n"
        "print(json.dumps({'module': cls.__module__, 'file': __import__(cls.__module__,"
        " fromlist=['x']).__file__, 'status': entry.status, 'first_party': entry.first_party,"
        " 'x': x.flatten().tolist()}))\n"
    )
    out = json.loads(venv.python_code(code).stdout.strip().splitlines()[-1])
    assert out["module"] == "diffusers_hub_toy_solver.scheduler"
    assert out["file"].startswith(str(venv.site_packages))
    assert out["status"] == "loaded" and out["first_party"] is False
    # zero predicted noise: x0 = x_T / sqrt(alpha_bar_T), clipped to 1, is the end point
    assert out["x"] == pytest.approx([1.0] * 4, abs=1e-6)

    doctor = venv.run(["diffusers-hub", "plugins", "doctor", "--json"], check=False, timeout=180)
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 0, report["problems"]
    assert [d["name"] for d in report["distributions"]] == ["diffusers-hub-toy-solver"]
    assert os.path.isdir(venv.site_packages / "diffusers_hub_toy_solver")


# -- the docs' plugin catalog -----------------------------------------------------------------------


def test_docs_catalog_hook(plugin_dists: PluginDists, default_registry: object) -> None:
    import importlib.util

    plugin_dists.scheduler_plugin("toy-catalog-plugin", "cat", ("toy-cat",), cls="ToyCatScheduler")
    spec = importlib.util.spec_from_file_location(
        "docs_catalog_hook", Path(__file__).resolve().parents[1] / "docs" / "hooks" / "catalog.py"
    )
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    catalog = hook.render_catalog(set())
    assert "1 distributions, 1 components" in catalog
    assert "| [toy-catalog-plugin](#toy-catalog-plugin) | 1.0 | community | 1 |" in catalog
    assert "| scheduler | `toy-cat` | `ToyCatScheduler` |" in catalog
    assert "install: `pip install toy-catalog-plugin`" in catalog
    assert plugin_dists.imported() == []  # metadata only

    class Page:
        class file:
            src_uri = "writing-plugins/catalog.md"

    filled = hook.on_page_markdown("# Catalog\n\n<!-- plugin-catalog -->\n", Page(), None, [])
    assert "toy-catalog-plugin" in filled and "<!-- plugin-catalog -->" not in filled
    Page.file.src_uri = "index.md"
    assert hook.on_page_markdown("<!-- plugin-catalog -->", Page(), None, []) == (
        "<!-- plugin-catalog -->"
    )
