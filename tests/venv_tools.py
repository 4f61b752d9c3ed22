"""Fresh virtual environments for packaging tests, without network access.

A plain ``python -m venv`` has neither torch nor the core's other requirements, and pip cannot
download them here. So the tests:

1. build wheels (``pip wheel --no-deps --no-build-isolation``) of a clean copy of each project;
2. create a venv without pip (``--without-pip``: fast) and put in its ``site-packages`` a ``.pth``
   file naming a folder of symlinks to exactly the distributions that the core requires, with their
   transitive requirements (found with ``importlib.metadata`` from the running interpreter): each
   distribution's top-level files and folders and its ``.dist-info``. pip then sees those
   requirements as installed, and Python imports them, while the editable installs of the core and
   of every plugin in the running interpreter stay invisible;
3. run the running interpreter's pip against the venv (``pip --python VENV_PYTHON install
   --no-index --find-links WHEELHOUSE ...``), so only our wheels are installed.

Commands in the venv run with an environment without ``PYTHONPATH`` and from a folder outside the
repository, so nothing leaks in from the checkout.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

__all__ = [
    "CORE_FILES",
    "REPO",
    "Venv",
    "build_wheel",
    "clean_env",
    "link_distributions",
    "make_venv",
    "requirement_closure",
]

REPO = Path(__file__).resolve().parents[1]

_IGNORED = shutil.ignore_patterns(
    "__pycache__",
    "*.pyc",
    "build",
    "dist",
    "*.egg-info",
    ".git",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "tests",
)

#: What the core's wheel is built from.
CORE_FILES = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "diffusers_hub",
    "contrib/plugin-template/template",
)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without anything that would leak the running environment into a venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
        and not k.startswith(("PIP_", "DIFFUSERS_HUB_"))
    }
    env.update(
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_NO_CACHE_DIR="1",
        PIP_CONFIG_FILE=os.devnull,  # no site pip.conf (extra find-links or indexes)
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
    )
    env.update(extra)
    return env


def requirement_closure(
    names: Iterable[str], *, exclude: Iterable[str] = ()
) -> list[importlib.metadata.Distribution]:
    """The installed distributions that ``names`` require, transitively (``names`` excluded).

    Requirements whose environment marker is false here (other Python versions, extras) are
    skipped.

    Raises:
        LookupError: a required distribution is not installed.
    """
    skip = {_canonical(n) for n in (*names, *exclude)}
    queue = [_canonical(n) for n in names]
    seen: dict[str, importlib.metadata.Distribution] = {}
    while queue:
        name = queue.pop()
        dist = importlib.metadata.distribution(name)
        for text in dist.requires or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            key = _canonical(req.name)
            if key in seen or key in skip:
                continue
            try:
                seen[key] = importlib.metadata.distribution(key)
            except importlib.metadata.PackageNotFoundError as exc:
                raise LookupError(f"{req} (required by {name}) is not installed") from exc
            queue.append(key)
    return sorted(seen.values(), key=lambda d: _canonical(d.metadata["Name"]))


def _top_level_entries(dist: importlib.metadata.Distribution) -> set[Path]:
    site = Path(str(dist.locate_file(""))).resolve()
    entries: set[Path] = set()
    for file in dist.files or []:
        parts = Path(str(file)).parts
        if not parts or parts[0] in ("..", "__pycache__") or Path(parts[0]).is_absolute():
            continue
        entries.add(site / parts[0])
    meta = getattr(dist, "_path", None)
    if meta is not None:
        entries.add(Path(str(meta)).resolve())
    return {e for e in entries if e.exists()}


def link_distributions(dists: Sequence[importlib.metadata.Distribution], folder: Path) -> Path:
    """Make ``folder`` a site folder of symlinks to the files of ``dists``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for dist in dists:
        for entry in _top_level_entries(dist):
            link = folder / entry.name
            if not link.exists():
                link.symlink_to(entry, target_is_directory=entry.is_dir())
    return folder


def build_wheel(
    project: Path, wheelhouse: Path, scratch: Path, *, only: Sequence[str] | None = None
) -> Path:
    """Build the wheel of ``project`` from a clean copy (no build artefacts in the checkout).

    Args:
        project: the project folder (holding ``pyproject.toml``).
        wheelhouse: where the wheel goes.
        scratch: a folder for the copy.
        only: copy only these top-level entries of ``project`` (default: all but tests and
            build artefacts).

    Returns:
        The wheel file.
    """
    copy = scratch / (project.name or "project")
    if only is None:
        shutil.copytree(project, copy, ignore=_IGNORED, symlinks=True)
    else:
        copy.mkdir(parents=True)
        for name in only:
            source = project / name
            if source.is_dir():
                shutil.copytree(source, copy / name, ignore=_IGNORED, symlinks=True)
            elif source.is_file():
                shutil.copy2(source, copy / name)
    before = set(wheelhouse.glob("*.whl")) if wheelhouse.is_dir() else set()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(wheelhouse),
            str(copy),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=scratch,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"building the wheel of {project} failed:\n{proc.stdout}\n{proc.stderr}")
    new = sorted(set(wheelhouse.glob("*.whl")) - before)
    if len(new) != 1:
        raise RuntimeError(f"expected one new wheel from {project}, got {new}")
    return new[0]


@dataclass
class Venv:
    """A virtual environment made by :func:`make_venv`.

    Attributes:
        root: its folder.
        python: its interpreter.
        site_packages: its ``site-packages``.
        workdir: a folder outside the repository to run commands from.
    """

    root: Path
    python: Path
    site_packages: Path
    workdir: Path

    @property
    def bin(self) -> Path:
        """The folder of its scripts (``diffusers-hub``)."""
        return self.python.parent

    def run(
        self, args: Sequence[str], *, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` (a command of the venv's ``bin`` or any path) in a clean environment."""
        env = clean_env(VIRTUAL_ENV=str(self.root))
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", "")])
        proc = subprocess.run(
            [*args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.workdir,
            check=False,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(map(str, args))} exited with {proc.returncode}:\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def python_code(self, code: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code`` with the venv's interpreter."""
        return self.run([str(self.python), "-c", code], **kwargs)  # type: ignore[arg-type]

    def pip_install(self, wheelhouse: Path, *requirements: str) -> str:
        """Install ``requirements`` from ``wheelhouse`` only (no index), with the running pip."""
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(self.python),
                "install",
                "--no-index",
                "--find-links",
                str(wheelhouse),
                *requirements,
            ],
            capture_output=True,
            text=True,
            env=clean_env(),
            cwd=self.workdir,
            check=False,
            timeout=300,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"pip install {' '.join(requirements)} failed:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc.stdout


def make_venv(root: Path, deps_site: Path) -> Venv:
    """A fresh venv at ``root`` (no pip) that sees ``deps_site`` through a ``.pth`` file."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)],
        check=True,
        capture_output=True,
        env=clean_env(),
        timeout=120,
    )
    python = root / "bin" / "python"
    purelib = sysconfig.get_path(
        "purelib", vars={"base": str(root), "platbase": str(root)}, scheme="venv"
    )
    site = Path(purelib)
    site.mkdir(parents=True, exist_ok=True)
    (site / "_diffusers_hub_test_deps.pth").write_text(f"{deps_site}\n", encoding="utf-8")
    workdir = root / "work"
    workdir.mkdir()
    return Venv(root, python, site, workdir)
