"""Resolve a local folder or a Hugging Face Hub repo id to files on disk.

Local folders are used as they are. A repo id goes through ``huggingface_hub``, downloading only the
files a component needs (``allow_patterns``) and honouring ``revision``, ``cache_dir``, ``token``,
``local_files_only`` and the ``HF_HUB_OFFLINE`` environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from diffusers_hub.errors import DiffusersHubError

__all__ = [
    "HubError",
    "confine",
    "is_local",
    "is_offline",
    "resolve_component",
    "resolve_folder",
]


class HubError(DiffusersHubError, FileNotFoundError):
    """A folder or repo could not be found or fetched."""


def _allowed_area(folder: Path) -> list[Path]:
    """Where files of ``folder`` may resolve: inside it, and for a folder inside a
    huggingface_hub cache snapshot (``<repo>/snapshots/<revision>/...``), the repo's own cache
    folder, whose ``blobs/`` the snapshot's symlinks point at."""
    real = folder.resolve()
    areas = [real]
    for parent in [folder.absolute(), *folder.absolute().parents]:
        if parent.parent.name == "snapshots" and (parent.parent.parent / "blobs").is_dir():
            areas.append(parent.parent.parent.resolve())
            break
    return areas


def confine(path: Path, folder: Path) -> Path:
    """Return ``path`` if it resolves inside ``folder`` (see below); refuse it otherwise.

    A checkpoint's component folders, configs and weight files must stay inside the checkpoint:
    a symbolic link (or a ``../`` or absolute path in a file) that leads elsewhere, such as to
    ``/etc/passwd``, is refused. The links of a huggingface_hub cache snapshot into the repo's
    ``blobs/`` folder are allowed.

    Raises:
        HubError: ``path`` leads outside ``folder``; the message names the link.
    """
    target = path.resolve()
    if any(target == area or area in target.parents for area in _allowed_area(folder)):
        return path
    link = next((p for p in [path, *path.parents] if p.is_symlink()), None)
    what = (
        f"{link} is a symbolic link to {link.resolve()}" if link else f"{path} resolves to {target}"
    )
    raise HubError(
        f"{what}, outside the checkpoint folder {folder}; refusing to read it. Copy the files "
        "into the checkpoint folder instead of linking them."
    )


def is_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for no network access."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def is_local(path_or_repo: str | os.PathLike[str]) -> bool:
    text = os.fspath(path_or_repo)
    if Path(text).exists():
        return True
    # "org/name" is a repo id; anything else with separators or dots is meant as a path.
    parts = text.split("/")
    return not (1 <= len(parts) <= 2 and all(p and not p.startswith(".") for p in parts))


def resolve_folder(
    path_or_repo: str | os.PathLike[str],
    *,
    allow_patterns: Sequence[str] | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> Path:
    """Return a local folder holding (at least) the files matching ``allow_patterns``.

    Args:
        path_or_repo: a local folder, or a Hub repo id such as ``"google/ddpm-cifar10-32"``.
        allow_patterns: glob patterns of the files to fetch from the Hub (all files when None).
        revision: branch, tag or commit of the repo.
        cache_dir: the huggingface_hub cache folder to use.
        token: Hub token for private repos.
        local_files_only: never touch the network; use the local cache only.

    Raises:
        HubError: the folder does not exist, or the repo is neither cached nor reachable.
    """
    if is_local(path_or_repo):
        folder = Path(path_or_repo)
        from diffusers_hub.weights import remove_stale_saves

        remove_stale_saves(folder, wait=False)  # what killed saves left (restores a target)
        if not folder.is_dir():
            raise HubError(
                f"{folder}: no such folder. Pass an existing local folder or a Hub repo id "
                "('organisation/name')."
            )
        return folder
    repo_id = os.fspath(path_or_repo)
    offline = local_files_only or is_offline()
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        snapshot = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            token=token,
            local_files_only=offline,
            allow_patterns=list(allow_patterns) if allow_patterns is not None else None,
        )
    except LocalEntryNotFoundError as exc:
        hint = (
            "it is not in the local cache and the network is off (HF_HUB_OFFLINE or "
            "local_files_only); download it once with network access, or pass a local folder"
            if offline
            else "the Hub could not be reached and it is not cached"
        )
        raise HubError(f"{repo_id}: {hint}") from exc
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise HubError(f"{repo_id}: could not fetch from the Hugging Face Hub: {exc}") from exc
    return Path(str(snapshot))


def resolve_component(
    path_or_repo: str | os.PathLike[str],
    marker: str,
    *,
    patterns: Sequence[str] = (),
    subfolder: str | None = None,
    default_subfolder: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> Path:
    """Find the folder of one component: the place where its ``marker`` file (its config) is.

    With ``subfolder`` the marker must be there. Without it, the root is tried first (flat
    layout), then ``default_subfolder`` (a pipeline folder's component, e.g. ``scheduler/``).
    From the Hub, only the marker and the files matching ``patterns`` (relative to the component
    folder) are fetched.

    Raises:
        HubError: the marker is in none of the places tried; the message lists them.
    """
    candidates = [subfolder] if subfolder else [None, default_subfolder]
    prefixes = [f"{c.strip('/')}/" if c else "" for c in dict.fromkeys(candidates)]
    root = resolve_folder(
        path_or_repo,
        allow_patterns=[p + name for p in prefixes for name in (marker, *patterns)],
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        local_files_only=local_files_only,
    )
    for prefix in prefixes:
        if (root / prefix / marker).is_file():
            confine(root / prefix / marker, root)
            return confine(root / prefix, root)
    tried = ", ".join(str(root / p / marker) for p in prefixes)
    raise HubError(f"{path_or_repo}: no {marker} found (looked for {tried})")
