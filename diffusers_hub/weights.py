"""Find, read and write state dicts in the diffusers / transformers file layouts.

Reading: ``<name>[.<variant>].safetensors`` first, then sharded safetensors with their index file,
then the legacy pickle ``<name>[.<variant>].bin`` (read with ``torch.load(weights_only=True)``, which
never runs code from the file), then sharded ``.bin``. Both index spellings of a sharded variant are
accepted (``<name>.safetensors.index.fp16.json`` and ``<name>.fp16.safetensors.index.json``).

Writing goes into a temporary sibling folder that replaces the target only once every file is on
disk (:func:`atomic_directory`), so a crash mid-save leaves an earlier checkpoint intact.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import glob
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from diffusers_hub.config import read_json, write_json_atomic
from diffusers_hub.errors import ConfigError, SaveError, WeightsError

if TYPE_CHECKING:
    import torch

__all__ = [
    "WeightFiles",
    "atomic_directory",
    "check_finite",
    "find_weights",
    "load_state_dict",
    "parse_size",
    "read_torch_file",
    "remove_stale_saves",
    "save_state_dict",
    "weight_patterns",
]


@dataclass(frozen=True)
class WeightFiles:
    """The files holding one component's weights.

    Attributes:
        format: ``"safetensors"`` or ``"bin"``.
        files: the weight files, in shard order.
        index: the shard index file, if sharded.
    """

    format: Literal["safetensors", "bin"]
    files: tuple[Path, ...]
    index: Path | None = None


def _variant_names(name: str, ext: str, variant: str | None) -> tuple[str, list[str]]:
    """The single-file name and the index-file spellings for ``name`` and ``variant``."""
    if variant:
        single = f"{name}.{variant}.{ext}"
        indexes = [f"{name}.{ext}.index.{variant}.json", f"{name}.{variant}.{ext}.index.json"]
    else:
        single = f"{name}.{ext}"
        indexes = [f"{name}.{ext}.index.json"]
    return single, indexes


def weight_patterns(
    names: Sequence[str],
    variant: str | None = None,
    exts: Sequence[str] = ("safetensors", "bin"),
) -> list[str]:
    """Glob patterns that match the weight files of ``names`` (for selective Hub downloads)."""
    patterns = []
    for name in names:
        for ext in exts:
            single, indexes = _variant_names(name, ext, variant)
            shards = f"{name}-*-of-*.{variant}.{ext}" if variant else f"{name}-*-of-*.{ext}"
            patterns += [single, *indexes, shards]
    return patterns


def find_weights(
    folder: str | os.PathLike[str],
    names: Sequence[str] = ("diffusion_pytorch_model",),
    *,
    variant: str | None = None,
    use_safetensors: bool | None = None,
) -> WeightFiles:
    """Locate the weight files of a component folder.

    Args:
        folder: the component folder (holding ``config.json``).
        names: base names to try in order (``"diffusion_pytorch_model"``; transformers-style
            components use ``"model"`` then ``"pytorch_model"``).
        variant: e.g. ``"fp16"`` for ``diffusion_pytorch_model.fp16.safetensors``.
        use_safetensors: True to require safetensors, False to require ``.bin``, None for either
            (safetensors preferred).

    Raises:
        WeightsError: no weight file was found; the message lists the files looked for.
    """
    folder = Path(folder)
    exts: list[Literal["safetensors", "bin"]] = ["safetensors", "bin"]
    if use_safetensors is True:
        exts = ["safetensors"]
    elif use_safetensors is False:
        exts = ["bin"]
    looked: list[str] = []
    for ext in exts:
        for name in names:
            single, indexes = _variant_names(name, ext, variant)
            looked.append(single)
            if (folder / single).is_file():
                return WeightFiles(ext, (_confined(folder / single, folder),))
            for index_name in indexes:
                looked.append(index_name)
                index = folder / index_name
                if index.is_file():
                    shards = tuple(_confined(p, folder) for p in _shards_from_index(index))
                    return WeightFiles(ext, shards, _confined(index, folder))
    hint = ""
    if variant:
        plain = find_weights_or_none(folder, names, use_safetensors=use_safetensors)
        if plain is not None:
            hint = f" Files without the variant exist: load without variant={variant!r}."
    raise WeightsError(
        f"{folder}: no weight file found (looked for {', '.join(looked)}).{hint} "
        "Check the folder, or save the model there with save_pretrained()."
    )


def _confined(path: Path, folder: Path) -> Path:
    from diffusers_hub import hub

    try:
        return hub.confine(path, folder)
    except hub.HubError as exc:
        raise WeightsError(str(exc)) from None


def is_weight_file(entry: str, name: str, variant: str | None) -> bool:
    """Whether the file name ``entry`` is one of the weight files of ``name`` and ``variant``."""
    matches = any(fnmatch.fnmatchcase(entry, p) for p in weight_patterns([name], variant))
    return matches and _has_variant(entry, name) == (variant is not None)


def _has_variant(entry: str, name: str) -> bool:
    rest = entry[len(name) :].lstrip("-0123456789of")
    parts = [p for p in rest.split(".") if p]
    return any(p not in {"safetensors", "bin", "index", "json"} for p in parts)


def find_weights_or_none(
    folder: Path, names: Sequence[str], *, use_safetensors: bool | None = None
) -> WeightFiles | None:
    """Like :func:`find_weights` without a variant, returning None instead of raising."""
    try:
        return find_weights(folder, names, use_safetensors=use_safetensors)
    except WeightsError:
        return None


def _shards_from_index(index: Path) -> tuple[Path, ...]:
    try:
        data = read_json(index)
    except ConfigError as exc:
        raise WeightsError(f"{exc}. The shard index is corrupt: re-download or re-save.") from None
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise WeightsError(f"{index}: the shard index has no 'weight_map' object; re-save it.")
    shards = []
    for shard in dict.fromkeys(weight_map.values()):
        if not isinstance(shard, str) or Path(shard).name != shard:
            raise WeightsError(
                f"{index}: shard name {shard!r} is not a file name in the index's folder; "
                "shard entries must be plain file names such as "
                "'diffusion_pytorch_model-00001-of-00002.safetensors'"
            )
        path = index.parent / shard
        if not path.is_file():
            raise WeightsError(
                f"{index}: shard {shard} is listed in the index but missing from {index.parent}; "
                "download the missing shard or re-save the checkpoint."
            )
        shards.append(path)
    return tuple(shards)


def read_torch_file(
    path: str | os.PathLike[str], what: str, *, allowed: Sequence[type] = (), mmap: bool = False
) -> Any:
    """Unpickle a ``torch.save`` file with ``torch.load(weights_only=True)``: only tensors, plain
    containers and the ``allowed`` classes are rebuilt, so nothing in the file is run.

    Args:
        path: the file.
        what: what the file should hold, for the messages (``"a GLIDE state dict"``).
        allowed: further plain classes to accept (``argparse.Namespace``).
        mmap: map the file instead of reading it (zip-format files only).

    Raises:
        FileNotFoundError: no such file.
        WeightsError: the file cannot be read as ``what``; the message names it.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected {what}")
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise WeightsError(
            f"{path}: cannot be read as {what} ({type(exc).__name__}: {reason}). Only tensors and "
            "plain containers are unpickled (torch.load with weights_only=True: no code is run); "
            "the file may be corrupt or truncated (re-download or re-save it), or something else."
        ) from exc


def _read_file(path: Path, fmt: str) -> dict[str, torch.Tensor]:
    import torch

    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: the file is empty; re-download or re-save the checkpoint.")
    if fmt == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise WeightsError(
                f"{path}: not a readable safetensors file ({exc}). It is corrupt or truncated; "
                "re-download it or re-save the checkpoint."
            ) from None
    loaded = read_torch_file(path, "a PyTorch weights file (a state dict of tensors)", mmap=True)
    if (
        isinstance(loaded, dict)
        and "state_dict" in loaded
        and isinstance(loaded["state_dict"], dict)
    ):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise WeightsError(
            f"{path}: expected a state dict of tensors, found {type(loaded).__name__}"
        )
    return {str(k): v for k, v in loaded.items()}


def load_state_dict(files: WeightFiles) -> dict[str, torch.Tensor]:
    """Read every file of ``files`` into one CPU state dict (safetensors is memory-mapped).

    Raises:
        WeightsError: a file is empty, corrupt, truncated, or holds something else than tensors.
    """
    state: dict[str, torch.Tensor] = {}
    for path in files.files:
        part = _read_file(path, files.format)
        check_finite(part, path)
        duplicated = state.keys() & part.keys()
        if duplicated:
            raise WeightsError(
                f"{path}: tensors also found in another shard: {sorted(duplicated)[:5]}"
            )
        state.update(part)
    return state


def check_finite(state: Mapping[str, torch.Tensor], source: str | os.PathLike[str]) -> None:
    """Refuse floating-point tensors that hold NaN or infinite values.

    A model with such a weight produces NaN images; the file is corrupt or the training that
    wrote it diverged.

    Raises:
        WeightsError: naming the file, the first bad tensor and how many values are bad.
    """
    import torch

    for key, tensor in state.items():
        if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.numel() == 0:
            continue
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            bad = int(finite.numel() - int(finite.sum()))
            raise WeightsError(
                f"{source}: tensor '{key}' holds {bad} NaN or infinite value"
                f"{'s' if bad != 1 else ''} of {tensor.numel()}; the checkpoint is corrupt or its "
                "training diverged. Re-download it or save it again from a healthy model."
            )


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_size(size: int | str) -> int:
    """Bytes in ``size`` (an int, or a string such as ``"5GB"`` or ``"200MiB"``)."""
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"max_shard_size must be positive, got {size}")
        return size
    match = _SIZE.match(size)
    if not match:
        raise ValueError(f"max_shard_size={size!r} is not a size such as '5GB' or '200MiB'")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").upper()])


def save_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    folder: str | os.PathLike[str],
    *,
    name: str = "diffusion_pytorch_model",
    variant: str | None = None,
    max_shard_size: int | str | None = None,
    safe_serialization: bool = True,
) -> list[Path]:
    """Write ``state_dict`` into ``folder`` (which should be a fresh folder, see atomic_directory).

    Returns:
        The files written (shards, then the index when sharded).
    """
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ext = "safetensors" if safe_serialization else "bin"
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    # safetensors refuses tensors that share storage: give each its own.
    seen: set[int] = set()
    for key, tensor in tensors.items():
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in seen and tensor.numel() > 0:
            tensors[key] = tensor.clone()
        seen.add(ptr)

    shards: list[dict[str, torch.Tensor]] = [{}]
    if max_shard_size is not None:
        limit = parse_size(max_shard_size)
        size = 0
        for key, tensor in tensors.items():
            nbytes = tensor.numel() * tensor.element_size()
            if shards[-1] and size + nbytes > limit:
                shards.append({})
                size = 0
            shards[-1][key] = tensor
            size += nbytes
    else:
        shards = [tensors]

    def write(part: dict[str, torch.Tensor], path: Path) -> None:
        if safe_serialization:
            from safetensors.torch import save_file

            save_file(part, str(path), metadata={"format": "pt"})
        else:
            torch.save(part, path)

    single, indexes = _variant_names(name, ext, variant)
    if len(shards) == 1:
        write(shards[0], folder / single)
        return [folder / single]
    written = []
    weight_map: dict[str, str] = {}
    total = 0
    for i, part in enumerate(shards, start=1):
        shard_name = f"{name}-{i:05d}-of-{len(shards):05d}" + (f".{variant}" if variant else "")
        shard_name += f".{ext}"
        write(part, folder / shard_name)
        written.append(folder / shard_name)
        for key, tensor in part.items():
            weight_map[key] = shard_name
            total += tensor.numel() * tensor.element_size()
    index = folder / indexes[0]
    write_json_atomic(index, {"metadata": {"total_size": total}, "weight_map": weight_map})
    return [*written, index]


@contextlib.contextmanager
def atomic_directory(
    target: str | os.PathLike[str],
    *,
    keep: Callable[[str], bool] = lambda name: True,
) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` when the block finishes without error.

    Entries of an existing ``target`` for which ``keep(name)`` is true and that the block did not
    write are carried over (hard-linked where possible), so saving a model into a folder keeps
    unrelated files such as a README. On an exception the temporary folder is removed and
    ``target`` is untouched.

    Saves into one parent folder take turns: each holds an exclusive lock on the parent folder
    (``flock``; none on Windows) from start to swap, so two processes saving the same checkpoint
    end with the whole checkpoint of the last one (last writer wins). The swap exchanges the two
    folders in one step where the system can (Linux ``renameat2``), so readers never see the
    target missing. Holding the lock, a save first removes what killed saves left behind
    (``.<name>.saving-*`` and ``.<name>.old-*``; an ``.old-*`` folder is moved back when the
    target is missing).

    Raises:
        FileExistsError: ``target`` exists and is not a folder.
        SaveError: the parent folder cannot be created or written (read-only, not a folder).
    """
    target = Path(target)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(
            f"{target}: cannot create the parent folder {parent} ({exc.strerror or exc}); "
            "choose a location you can write to"
        ) from None
    with _save_lock(parent):
        remove_stale_saves(target)
        if target.exists() and not target.is_dir():
            raise FileExistsError(f"{target}: exists and is not a folder; choose another save path")
        token = uuid.uuid4().hex[:8]
        tmp = parent / f".{target.name}.saving-{token}"
        try:
            tmp.mkdir()
        except OSError as exc:
            raise SaveError(
                f"{target}: cannot write into {parent} ({exc.strerror or exc}); nothing was "
                "changed. Make the folder writable or save somewhere else."
            ) from None
        try:
            yield tmp
            if target.is_dir():
                for entry in target.iterdir():
                    if (tmp / entry.name).exists() or not keep(entry.name):
                        continue
                    _link_or_copy(entry, tmp / entry.name)
            _swap_into_place(tmp, target, token)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextlib.contextmanager
def _save_lock(folder: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``folder``; yields False when ``blocking`` is False and
    another process holds it (and True where locks are unavailable: Windows, some network
    file systems)."""
    try:
        import fcntl
    except ImportError:  # Windows: saves do not take turns
        yield True
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        except OSError:  # no flock on this file system
            yield True
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def remove_stale_saves(target: str | os.PathLike[str], *, wait: bool = True) -> None:
    """Remove the temporary folders that killed saves of ``target`` left beside it.

    The caller holds the save lock of the parent folder, or passes ``wait=False`` to take it
    only if it is free (loading does that; without the lock nothing is touched). A backup
    (``.<name>.old-*``) is moved back when ``target`` is missing; errors (a read-only folder)
    are ignored.
    """
    target = Path(target)
    parent = target.parent
    if not wait:
        with _save_lock(parent, blocking=False) as free:
            if free:
                remove_stale_saves(target)
        return
    try:
        leftovers = sorted(parent.glob(f".{glob.escape(target.name)}.*-*"))
    except OSError:
        return
    for path in leftovers:
        kind = path.name[len(target.name) + 2 :].split("-", 1)[0]
        if kind not in ("saving", "old") or not path.is_dir():
            continue
        with contextlib.suppress(OSError):
            if kind == "old" and not target.exists():
                os.rename(path, target)  # killed between the two renames: restore the old one
                continue
            shutil.rmtree(path)


def _link_or_copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=_link_or_copy_file)
    else:
        _link_or_copy_file(src, dst)


def _link_or_copy_file(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the system or file system cannot.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_into_place(tmp: Path, target: Path, token: str) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the previous checkpoint
        return
    backup = target.parent / f".{target.name}.old-{token}"
    os.rename(target, backup)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)
