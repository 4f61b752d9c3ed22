"""Training checkpoints: where they are, writing them atomically, and the random states.

A checkpoint is a folder ``out_dir/checkpoints/checkpoint-<step>`` holding ``training_state.pt``
(everything a step consumes, readable with ``torch.load(weights_only=True)``) and
``trainer_state.json`` (the step and config, for people).
"""

from __future__ import annotations

import json
import pickle
import random
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CHECKPOINT_FILE",
    "capture_rng",
    "find_latest_checkpoint",
    "load_checkpoint_weights",
    "resolve_checkpoint",
    "restore_rng",
    "write_checkpoint",
]

CHECKPOINT_FILE = "training_state.pt"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


# -- RNG state ------------------------------------------------------------------------------------


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a step consumes, in a form ``torch.load(weights_only=True)`` reads."""
    np_state: dict[str, Any] = np.random.get_state(legacy=False)  # type: ignore[assignment]
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": str(np_state["bit_generator"]),
            "keys": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "cached_gaussian": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    """Put back what ``capture_rng`` took."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": npy["name"],
            "state": {"key": npy["keys"].numpy().astype(np.uint32), "pos": npy["pos"]},
            "has_gauss": npy["has_gauss"],
            "gauss": npy["cached_gaussian"],
        }
    )
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- checkpoints ----------------------------------------------------------------------------------


def find_latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete ``checkpoint-<step>`` folder under ``out_dir/checkpoints``, or None."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for entry in root.iterdir():
        match = _CHECKPOINT_RE.match(entry.name)
        if match and (entry / CHECKPOINT_FILE).is_file():
            found.append((int(match.group(1)), entry))
    return max(found)[1] if found else None


def write_checkpoint(out_dir: Path, step: int, state: dict[str, Any], keep: int | None) -> Path:
    """Write ``out_dir/checkpoints/checkpoint-<step>`` atomically; keep the newest ``keep``."""
    root = out_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step:08d}"
    tmp = root / f".checkpoint-{step:08d}.saving-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        torch.save(state, tmp / CHECKPOINT_FILE)
        summary = {"step": step, "config": state["config"], "world_size": state["world_size"]}
        (tmp / "trainer_state.json").write_text(json.dumps(summary, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        existing = sorted(
            (int(m.group(1)), p)
            for p in root.iterdir()
            if (m := _CHECKPOINT_RE.match(p.name)) is not None
        )
        for _, old in existing[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def resolve_checkpoint(resume_from: str | None, out_dir: str | Path) -> Path | None:
    """The checkpoint folder that ``resume_from`` names, or None for a fresh start.

    Args:
        resume_from: None, ``"latest"`` (the newest under ``out_dir``; None when there is none
            yet), or a ``checkpoint-<step>`` folder or its ``training_state.pt``.
        out_dir: the run's output folder.
    """
    if resume_from is None:
        return None
    if resume_from == "latest":
        return find_latest_checkpoint(out_dir)
    path = Path(resume_from)
    if path.is_file():
        path = path.parent
    if not (path / CHECKPOINT_FILE).is_file():
        raise FileNotFoundError(
            f"{path}: not a training checkpoint (no {CHECKPOINT_FILE}); pass a "
            "'checkpoints/checkpoint-<step>' folder or 'latest'"
        )
    return path


def load_checkpoint_weights(model: torch.nn.Module, source: str | Path) -> bool:
    """Load the averaged (EMA) weights of a checkpoint into ``model``, for ``init_from``.

    Args:
        model: the freshly built model of the run.
        source: a ``checkpoint-<step>`` folder or its ``training_state.pt``; anything else is
            left to the caller (returns False).

    Returns:
        Whether ``source`` was a checkpoint (and ``model`` now holds its EMA weights, the ones the
        run would have exported at that step).

    Raises:
        ValueError: the checkpoint's weights do not fit ``model`` (keys or shapes named).
    """
    path = Path(source)
    path = path / CHECKPOINT_FILE if path.is_dir() else path
    if path.name != CHECKPOINT_FILE or not path.is_file():
        return False
    from diffusers_hub.errors import key_problems

    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)["ema"]["shadow"]
    except (RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError) as exc:
        raise ValueError(
            f"init_from={str(source)!r}: {path} is not a readable training checkpoint "
            f"({type(exc).__name__}: {exc}); pass a checkpoint-<step> folder a run wrote, or a "
            "saved model or pipeline folder"
        ) from None
    ours = model.state_dict()
    shapes = [
        f"{k} (checkpoint {tuple(v.shape)}, run {tuple(ours[k].shape)})"
        for k, v in weights.items()
        if k in ours and tuple(v.shape) != tuple(ours[k].shape)
    ]
    missing, unexpected = sorted(ours.keys() - weights.keys()), sorted(weights.keys() - ours.keys())
    if shapes or missing or unexpected:
        problems = " ".join(key_problems(missing, unexpected, shapes))
        raise ValueError(
            f"init_from={str(source)!r}: the checkpoint's weights do not fit the run's model. "
            f"{problems} Give the run the options of the run that wrote the checkpoint."
        )
    model.load_state_dict(weights)
    return True
