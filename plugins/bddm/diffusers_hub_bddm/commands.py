"""``diffusers-hub bddm search`` and ``diffusers-hub bddm evaluate``.

Example:
    diffusers-hub bddm search --model bddm-notes-galr --steps 12 --out bddm-notes-galr/scheduler
    diffusers-hub bddm evaluate --model bddm-notes-galr --clips 32
    diffusers-hub bddm evaluate --model bddm-notes-galr --clips 32 --steps 200

Both measure on held-out notes (``ToneDataset`` with ``--data-seed``; the training notes use 0).
The search chooses on seed 2 and the evaluation reports on seed 1 by default, so a searched
schedule is never scored on the notes it was picked on. ``search --wav a.wav b.wav`` scores the
candidates on your own recordings instead (log-mel L1 only, since their pitch is unknown).

References:
    Lam et al. 2022, BDDM, arXiv:2203.13508 (Algorithm 2; section 6).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]


def _add_data_arguments(p: argparse.ArgumentParser, clips: int, segment: int, seed: int) -> None:
    from diffusers_hub_bddm.data import add_note_arguments

    add_note_arguments(p, items=clips, segment=segment, seed=seed, title="held-out notes")


def _add_temperature(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help=f"factor in [0, 1] on the noise each reverse step adds{what} (default: the "
        "scheduler's; 1 is DDPM / BDDM sampling, 0 takes each step's mean)",
    )


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``bddm`` with its ``search`` and ``evaluate`` subcommands."""
    bddm = subparsers.add_parser("bddm", help="BDDM noise-schedule search and evaluation")
    bddm.set_defaults(func=lambda _args: bddm.print_help() or 0)
    sub = bddm.add_subparsers(dest="bddm_command", metavar="SUBCOMMAND")

    s = sub.add_parser(
        "search",
        help="search a short noise schedule with the pipeline's schedule network",
        description="Grid-search BDDM's noise scheduling (Algorithm 2) and write a scheduler "
        "folder that BDDMScheduler.from_pretrained loads.",
    )
    s.add_argument("--model", required=True, type=Path, help="BDDMPipeline folder")
    s.add_argument(
        "--schedule-net",
        type=Path,
        default=None,
        help="a schedule network folder (default: the pipeline's schedule_net/)",
    )
    s.add_argument("--steps", type=int, default=12, help="longest schedule N (12)")
    s.add_argument("--bins", type=int, default=9, help="grid values per axis (9)")
    s.add_argument("--attempts", type=int, default=10, help="perturbed retries per length (10)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="score every candidate over this many noise draws (1)",
    )
    s.add_argument(
        "--wav", type=Path, nargs="+", default=None, help="score on these recordings instead"
    )
    _add_temperature(s, " when scoring a candidate; the written scheduler keeps it")
    s.add_argument("--out", required=True, type=Path, help="scheduler folder to write")
    s.add_argument("--no-progress", action="store_true")
    _add_data_arguments(s, clips=16, segment=8192, seed=2)
    s.set_defaults(func=_cmd_search)

    e = sub.add_parser(
        "evaluate",
        help="pitch reproduced and log-mel L1 of a vocoder on held-out notes",
        description="Vocode held-out notes from their log-mels and print the scores as JSON.",
    )
    e.add_argument("--model", required=True, type=Path, help="BDDMPipeline folder")
    e.add_argument(
        "--steps",
        type=int,
        default=None,
        help="respace the training schedule to this many steps (default: the searched schedule)",
    )
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="vocode every clip this many times with other noise and average (1)",
    )
    _add_temperature(e, "")
    _add_data_arguments(e, clips=32, segment=8192, seed=1)
    e.set_defaults(func=_cmd_evaluate)


def _notes(args: argparse.Namespace, mel: Any) -> Any:
    from diffusers_hub_bddm.data import notes_from_arguments

    return notes_from_arguments(args, mel)


def _read_wavs(paths: list[Path], pipe: Any) -> Any:
    """(B, n_mels, frames) log-mels of the recordings, cut to the shortest."""
    import torch

    from diffusers_hub.cli import read_wav

    mels = []
    for path in paths:
        rate, samples = read_wav(path)
        mels.append(pipe.analyse(samples, rate)[0])
    frames = min(m.shape[-1] for m in mels)
    return torch.stack([m[:, :frames] for m in mels])


def _cmd_search(args: argparse.Namespace) -> int:
    import torch

    from diffusers_hub_bddm.pipeline import BDDMPipeline
    from diffusers_hub_bddm.schedule_net import BDDMScheduleNetwork

    pipe = BDDMPipeline.from_pretrained(args.model)
    net = pipe.schedule_net
    if args.schedule_net is not None:
        net = BDDMScheduleNetwork.from_pretrained(args.schedule_net)
    if net is None:
        raise SystemExit(
            f"{args.model}: the pipeline has no schedule_net/; train one with `diffusers-hub "
            "train bddm-schedule --model ...` or pass --schedule-net FOLDER"
        )
    mel = pipe.mel if pipe.mel is not None else None
    f0s = None
    if args.wav:
        mels = _read_wavs(args.wav, pipe)
        reference = torch.zeros(mels.shape[0], mels.shape[-1] * pipe.diffwave.hop_length)
    else:
        notes = _notes(args, mel)
        items = [notes[i] for i in range(len(notes))]
        reference = torch.stack([a for a, _ in items])
        mels = torch.stack([m for _, m in items])
        f0s = [notes.f0(i) for i in range(len(notes))]
    result = pipe.scheduler.search(
        pipe.diffwave,
        net,
        mels,
        reference,
        f0s=f0s,
        mel=mel,
        max_steps=args.steps,
        bins=args.bins,
        attempts=args.attempts,
        seed=args.seed,
        repeats=args.repeats,
        temperature=args.temperature,
        progress=not args.no_progress,
    )
    result.save(args.out)
    best = result.best
    pitch = "" if best.pitch_accuracy is None else f", pitch {best.pitch_accuracy:.1%}"
    print(
        f"wrote {args.out}: {best.num_steps}-step schedule (log-mel L1 {best.log_mel_l1:.3f}"
        f"{pitch}; {len(result.candidates)} candidates)"
    )
    print("betas: " + ", ".join(f"{b:.6g}" for b in best.betas))
    print(f"temperature: {result.base_config['temperature']:g}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from diffusers_hub_bddm.evaluate import evaluate_vocoder
    from diffusers_hub_bddm.pipeline import BDDMPipeline

    pipe = BDDMPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    scores = evaluate_vocoder(
        pipe,
        _notes(args, pipe.mel),
        num_inference_steps=args.steps,
        seed=args.seed,
        batch_size=args.batch_size,
        repeats=args.repeats,
        temperature=args.temperature,
    )
    print(json.dumps(scores.as_dict()))
    return 0
