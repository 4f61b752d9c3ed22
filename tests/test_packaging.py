"""The ``pip install "diffusers-hub[ddim]"`` path, for real: wheels into a fresh venv, offline.

Wheels of the core and of the ddpm and ddim plugins are built from clean copies of the checkout,
then ``diffusers-hub[ddim]`` is installed from them alone (``--no-index``) into a new virtual
environment that reuses the torch (and other requirements) already installed here through a
folder of symlinks (see ``venv_tools.py``). Everything is checked by the venv's own interpreter,
outside the repository.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .venv_tools import REPO, Venv, build_wheel, make_venv

pytestmark = pytest.mark.slow

CHECKS = r"""
import json, sys
from diffusers_hub import registry
from diffusers_hub.errors import RegistryError

import diffusers_hub, diffusers_hub_ddim
out = {"core": diffusers_hub.__file__, "ddim": diffusers_hub_ddim.__file__, "path": sys.path}
ddim = registry.scheduler("ddim")
scheduler = ddim(num_train_timesteps=50)
scheduler.set_timesteps(5)
out["ddim"] = [ddim.__module__, ddim.__name__, scheduler.timesteps.tolist()]
out["ddpm_pipeline"] = registry.pipeline("ddpm").__name__
try:
    registry.pipeline("glide")
except RegistryError as exc:
    out["glide"] = str(exc)
out["dists"] = sorted(d.name for d in registry.plugin_distributions())
print(json.dumps(out))
"""


def venv_from_wheels(
    tmp_path_factory: pytest.TempPathFactory,
    core_wheel: Path,
    deps: Path,
    plugins: tuple[str, ...],
    extra: str,
) -> Venv:
    """A new venv over ``deps`` with ``diffusers-hub[extra]`` installed from the core wheel and
    wheels of ``plugins`` alone."""
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    shutil.copy2(core_wheel, wheelhouse)
    scratch = tmp_path_factory.mktemp("plugin-src")
    for plugin in plugins:
        build_wheel(REPO / "plugins" / plugin, wheelhouse, scratch)
    venv = make_venv(tmp_path_factory.mktemp("venv") / "venv", deps)
    log = venv.pip_install(wheelhouse, f"diffusers-hub[{extra}]")
    assert "Successfully installed" in log
    return venv


@pytest.fixture(scope="module")
def ddim_venv(tmp_path_factory: pytest.TempPathFactory, core_wheel: Path, deps_site: Path) -> Venv:
    return venv_from_wheels(tmp_path_factory, core_wheel, deps_site, ("ddpm", "ddim"), "ddim")


def test_installed_from_the_wheels_only(ddim_venv: Venv) -> None:
    names = ddim_venv.python_code(
        "import importlib.metadata as m, json;"
        "print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))"
    )
    installed = set(json.loads(names.stdout))
    assert {"diffusers-hub", "diffusers-hub-ddim", "diffusers-hub-ddpm"} <= installed
    assert "diffusers-hub-latent-diffusion" not in installed  # not part of [ddim]
    assert "diffusers" not in installed and "pytest" not in installed  # nothing leaked in
    site = str(ddim_venv.site_packages)
    for module in ("diffusers_hub", "diffusers_hub_ddim", "diffusers_hub_ddpm"):
        where = ddim_venv.python_code(f"import {module}; print({module}.__file__)").stdout
        assert where.strip().startswith(site), (module, where)


def test_registry_works_in_the_venv(ddim_venv: Venv) -> None:
    out = json.loads(ddim_venv.python_code(CHECKS).stdout.strip().splitlines()[-1])
    module, name, timesteps = out["ddim"]
    assert (module, name) == ("diffusers_hub_ddim.scheduler", "DDIMScheduler")
    assert timesteps == [40, 30, 20, 10, 0]
    assert out["ddpm_pipeline"] == "DDPMPipeline"
    assert out["dists"] == ["diffusers-hub-ddim", "diffusers-hub-ddpm"]
    assert not any(str(REPO) in p for p in out["path"]), out["path"]
    assert 'pip install "diffusers-hub[glide]"' in out["glide"]


def test_cli_in_the_venv(ddim_venv: Venv) -> None:
    listing = ddim_venv.run(["diffusers-hub", "plugins", "list"]).stdout
    rows = [line.split() for line in listing.splitlines()]
    assert ["scheduler", "ddim", "DDIMScheduler", "diffusers-hub-ddim"] in [r[:4] for r in rows]
    assert ["scheduler", "ddpm", "DDPMScheduler", "diffusers-hub-ddpm"] in [r[:4] for r in rows]
    assert "third-party" not in listing
    entries = json.loads(ddim_venv.run(["diffusers-hub", "plugins", "list", "--json"]).stdout)
    assert {(e["kind"], e["name"]) for e in entries} >= {
        ("scheduler", "ddim"),
        ("scheduler", "ddpm"),
        ("pipeline", "ddim"),
        ("model", "unet-2d"),
    }
    assert all(e["first_party"] for e in entries)
    hint = ddim_venv.run(["diffusers-hub", "plugins", "info", "glide"], check=False)
    assert hint.returncode == 1
    assert 'pip install "diffusers-hub[glide]"' in hint.stderr


def test_plugins_new_works_from_the_installed_wheel(ddim_venv: Venv, tmp_path: Path) -> None:
    """The template ships inside the core wheel: no checkout needed to start a plugin."""
    made = ddim_venv.run(
        [
            "diffusers-hub",
            "plugins",
            "new",
            "my-euler",
            "--kind",
            "scheduler",
            "--dir",
            str(tmp_path),
        ]
    )
    project = tmp_path / "diffusers-hub-my-euler"
    assert (project / "pyproject.toml").is_file(), made.stdout
    assert (project / "diffusers_hub_my_euler" / "scheduler.py").is_file()
    checked = ddim_venv.run(["diffusers-hub", "plugins", "validate", str(project)])
    assert checked.returncode == 0, checked.stdout + checked.stderr


GLIDE_CHECKS = r"""
import json
from diffusers_hub import registry
pipe = registry.pipeline("glide")
tok = registry.processor("GLIDETokenizer").from_release()
out = {
    "pipeline": [pipe.__module__, pipe.__name__],
    "ids": tok.encode("an oil painting of a corgi"),
    "demo": registry.demo_checkpoint("glide"),
    "dists": sorted(d.name for d in registry.plugin_distributions()),
}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def glide_venv(tmp_path_factory: pytest.TempPathFactory, core_wheel: Path) -> Venv:
    from .venv_tools import link_distributions, requirement_closure

    first_party = [f"diffusers-hub-{p}" for p in ("ddpm", "ddim", "latent-diffusion")]
    closure = requirement_closure(["diffusers-hub-glide"], exclude=["diffusers-hub", *first_party])
    deps = link_distributions(
        [*requirement_closure(["diffusers-hub"]), *closure], tmp_path_factory.mktemp("deps")
    )
    plugins = ("ddpm", "ddim", "latent-diffusion", "glide")
    return venv_from_wheels(tmp_path_factory, core_wheel, deps, plugins, "glide")


def test_glide_from_the_wheels(glide_venv: Venv) -> None:
    out = json.loads(glide_venv.python_code(GLIDE_CHECKS).stdout.strip().splitlines()[-1])
    assert out["pipeline"] == ["diffusers_hub_glide.pipeline", "GLIDEPipeline"]
    assert out["ids"] == [272, 3056, 12036, 286, 257, 1162, 12397]  # the vocabulary is shipped
    assert out["demo"].startswith(str(glide_venv.site_packages))
    assert "diffusers-hub-glide" in out["dists"]
    listing = glide_venv.run(["diffusers-hub", "plugins", "list"]).stdout
    assert ["pipeline", "glide", "GLIDEPipeline", "diffusers-hub-glide"] in [
        line.split()[:4] for line in listing.splitlines()
    ]
    info = glide_venv.run(["diffusers-hub", "plugins", "info", "glide"], check=False)
    assert info.returncode == 0 and "diffusers-hub[glide]" not in info.stderr
