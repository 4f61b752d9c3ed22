"""Shared fixtures of the core tests: real (temporary) plugin distributions.

``plugin_dists`` writes distributions the way pip installs them: a package folder plus a
``<name>-<version>.dist-info/`` folder with ``METADATA`` and ``entry_points.txt``, in a folder that
is put on ``sys.path``. Each test gets package names of its own, so ``sys.modules`` checks are
reliable, and the modules are dropped from ``sys.modules`` afterwards.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from diffusers_hub import registry
from diffusers_hub.registry import Registry

# Minimal components written in plain Python (no torch), satisfying the protocols.
SCHEDULER_SOURCE = '''
class {cls}:
    """A stand-in scheduler."""
    order = 1
    init_noise_sigma = 1.0
    def __init__(self, **config):
        self.config = dict(config)
        self.timesteps = list(range(10))[::-1]
    def set_timesteps(self, num_inference_steps=None, device=None, timesteps=None):
        self.timesteps = list(range(num_inference_steps or 10))[::-1]
    def scale_model_input(self, sample, timestep):
        return sample
    def step(self, model_output, timestep, sample, generator=None):
        return (sample, None)
    def add_noise(self, original_samples, noise, timesteps):
        return original_samples
    def training_target(self, original_samples, noise, timesteps):
        return noise
    @classmethod
    def from_config(cls, config, **overrides):
        return cls(**{{**dict(config), **overrides}})
    @classmethod
    def from_pretrained(cls, path_or_repo, **options):
        return cls()
    def save_pretrained(self, directory):
        pass
'''

MODEL_SOURCE = '''
class {cls}:
    """A stand-in model."""
    def __init__(self, **config):
        self.config = dict(config)
    @classmethod
    def from_pretrained(cls, path_or_repo, **options):
        return cls()
    def save_pretrained(self, directory, **options):
        pass
    def to(self, *args, **kwargs):
        return self
    def forward(self, *args, **kwargs):
        return None
'''

_counter = itertools.count()


@dataclass
class PluginDists:
    """Writes temporary plugin distributions into ``root`` (which is on ``sys.path``)."""

    root: Path
    prefix: str
    written: list[str] = field(default_factory=list)

    def package_name(self, short: str) -> str:
        """A package name unique to this test (``<prefix>_<short>``)."""
        return f"{self.prefix}_{short}"

    def add(
        self,
        name: str,
        files: Mapping[str, str],
        entry_points: Mapping[str, Mapping[str, str]],
        *,
        version: str = "1.0",
        api: str | None = "1",
        package: str | None = None,
    ) -> Path:
        """Write one distribution.

        Args:
            name: the distribution name.
            files: relative path -> source text (dedented).
            entry_points: group -> {entry name: value}; groups may be given short ("schedulers"
                stands for "diffusers_hub.schedulers").
            version: the distribution version.
            api: the plugin-API version declared; ``None`` declares none.
            package: the package named by the API declaration (default: the first file's folder).

        Returns:
            The ``.dist-info`` folder.
        """
        for rel, text in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
            top = Path(rel).parts[0].removesuffix(".py")
            if top not in self.written:
                self.written.append(top)
        groups: dict[str, dict[str, str]] = {}
        for group, table in entry_points.items():
            full = group if "." in group else f"diffusers_hub.{group}"
            groups.setdefault(full, {}).update(table)
        if api is not None:
            pkg = package or Path(next(iter(files))).parts[0].removesuffix(".py")
            groups.setdefault("diffusers_hub.plugin_api", {})[api] = pkg
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = []
        for group, table in groups.items():
            lines.append(f"[{group}]")
            lines.extend(f"{key} = {value}" for key, value in table.items())
            lines.append("")
        (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
        return info

    def scheduler_plugin(
        self,
        name: str,
        short: str,
        names: tuple[str, ...],
        *,
        cls: str | None = None,
        **kwargs: object,
    ) -> str:
        """A distribution registering the scheduler class ``cls`` once under each of ``names``
        (one entry point each; ``cls`` defaults to ``<Short>Sched``); returns its package."""
        pkg = self.package_name(short)
        cls = cls or f"{short.capitalize()}Sched"  # its Hub class name: one per distribution
        self.add(
            name,
            {f"{pkg}/__init__.py": "", f"{pkg}/scheduler.py": SCHEDULER_SOURCE.format(cls=cls)},
            {"schedulers": {n: f"{pkg}.scheduler:{cls}" for n in names}},
            **kwargs,  # type: ignore[arg-type]
        )
        return pkg

    def registry(self, **environ: str) -> Registry:
        """A registry that sees only the distributions written here."""
        return Registry(path=[self.root], environ=dict(environ))

    def imported(self) -> list[str]:
        """The modules of these distributions that are imported right now."""
        return sorted(
            m for m in sys.modules if any(m == w or m.startswith(w + ".") for w in self.written)
        )


@pytest.fixture
def plugin_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginDists]:
    """Temporary plugin distributions on ``sys.path`` (see :class:`PluginDists`)."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    dists = PluginDists(root, f"dhtest{next(_counter)}_{abs(hash(str(tmp_path))) % 10**6}")
    yield dists
    for module in dists.imported():
        sys.modules.pop(module, None)


@pytest.fixture
def default_registry(plugin_dists: PluginDists, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Make a registry over ``plugin_dists`` the default of ``diffusers_hub.registry``."""
    reg = plugin_dists.registry()
    monkeypatch.setattr(registry, "_default", reg)
    return reg


# -- packaging: wheels and fresh virtual environments (see venv_tools.py) ---------------------------


@pytest.fixture(scope="session")
def deps_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of symlinks to the installed requirements of the core (torch, pydantic, ...)."""
    from .venv_tools import link_distributions, requirement_closure

    return link_distributions(
        requirement_closure(["diffusers-hub"]), tmp_path_factory.mktemp("deps")
    )


@pytest.fixture(scope="session")
def core_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the core, built once per session from a clean copy of the checkout."""
    from .venv_tools import CORE_FILES, REPO, build_wheel

    return build_wheel(
        REPO,
        tmp_path_factory.mktemp("core-wheel"),
        tmp_path_factory.mktemp("core-src"),
        only=CORE_FILES,
    )
