"""``diffusers-hub train bddm``: train a DiffWave score network on procedurally drawn notes.

Example:
    diffusers-hub train bddm --steps 4000 --out bddm-notes
    torchrun --nproc_per_node=2 -m diffusers_hub_bddm.train --steps 4000 --out bddm-notes

Each training item is a short clip of one synthetic note (``diffusers_hub_bddm.data.ToneDataset``)
with its log-mel spectrogram; the network learns to predict the noise of the clip given the mel,
with the DDPM objective over BDDM's T = 200 linear training schedule. The output folder holds the
final ``BDDMPipeline`` (``model_index.json``, ``diffwave/``, ``scheduler/``, ``mel/``; EMA
weights), ``checkpoints/`` and ``train_log.jsonl``; ``--resume`` continues exactly.

References:
    Kong et al. 2021, DiffWave, arXiv:2009.09761 (Algorithm 1); Lam et al. 2022, BDDM,
    arXiv:2203.13508.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``train bddm`` argument parser."""
    p = argparse.ArgumentParser(
        prog="diffusers-hub train bddm",
        description="Train a DiffWave vocoder on synthetic notes and save a BDDMPipeline folder.",
    )
    g = p.add_argument_group("data")
    g.add_argument("--items", type=int, default=20000, help="distinct training notes")
    g.add_argument("--segment", type=int, default=4096, help="samples per training clip")
    g.add_argument("--data-seed", type=int, default=0, help="seed of the notes")
    g.add_argument(
        "--f0-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="fundamentals in Hz, drawn log-uniformly (default 110 880)",
    )

    g = p.add_argument_group("model")
    g.add_argument("--num-res-layers", type=int, default=12)
    g.add_argument("--res-channels", type=int, default=32)
    g.add_argument("--dilation-cycle", type=int, default=6)
    g.add_argument("--embed-dim", type=int, default=128, help="step embedding MLP width")
    g.add_argument(
        "--mel-offset", type=float, default=0.0, help="the mel enters as (mel - offset) * scale"
    )
    g.add_argument("--mel-scale", type=float, default=1.0, help="see --mel-offset")

    g = p.add_argument_group("noise schedule")
    g.add_argument("--num-train-timesteps", type=int, default=200)
    g.add_argument(
        "--noise-schedule",
        default="ljspeech-12",
        help="searched inference betas saved with the pipeline: 'ljspeech-12', 'none', or a "
        "comma list of betas from the clean end",
    )

    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, required=True, help="total optimizer steps")
    g.add_argument("--batch-size", type=int, default=16, help="per process")
    g.add_argument("--lr", type=float, default=2e-4)
    g.add_argument("--ema-decay", type=float, default=0.999)
    g.add_argument("--grad-clip", type=float, default=1.0, help="0 disables clipping")
    g.add_argument("--seed", type=int, default=0)

    g = p.add_argument_group("output")
    g.add_argument("--out", required=True, type=Path, help="output folder")
    g.add_argument("--checkpoint-every", type=int, default=1000, help="0: no checkpoints")
    g.add_argument("--resume", nargs="?", const="latest", default=None)
    g.add_argument("--log-every", type=int, default=100)
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _noise_schedule(text: str) -> list[float] | None:
    from diffusers_hub_bddm.scheduler import LJSPEECH_12_STEPS

    if text == "none":
        return None
    if text == "ljspeech-12":
        return list(LJSPEECH_12_STEPS)
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(
            f"--noise-schedule {text!r}: expected 'ljspeech-12', 'none' or comma-separated betas"
        ) from None


def _forward(model: Any, x_t: torch.Tensor, t: torch.Tensor, mel: torch.Tensor | None) -> Any:
    """The training loop's model call: the DiffWave noise prediction given the clip's mel."""
    if mel is None:
        raise ValueError("BDDM training batches must be (audio, mel) pairs")
    return model(x_t, t, mel).sample


def main(argv: list[str] | None = None) -> int:
    """Run ``train bddm`` with the given arguments; returns the exit code."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from diffusers_hub.training import TrainingConfig, train
    from diffusers_hub_bddm.data import F0_RANGE, ToneDataset
    from diffusers_hub_bddm.diffwave import DiffWave
    from diffusers_hub_bddm.mel import MelSpectrogram
    from diffusers_hub_bddm.pipeline import BDDMPipeline
    from diffusers_hub_bddm.scheduler import BDDMScheduler

    mel = MelSpectrogram()
    f0_range = F0_RANGE if args.f0_range is None else (args.f0_range[0], args.f0_range[1])
    dataset = ToneDataset(args.items, args.segment, seed=args.data_seed, f0_range=f0_range, mel=mel)
    model_config: dict[str, Any] = {
        "num_res_layers": args.num_res_layers,
        "res_channels": args.res_channels,
        "skip_channels": args.res_channels,
        "dilation_cycle": args.dilation_cycle,
        "diffusion_step_embed_dim_in": args.embed_dim,
        "diffusion_step_embed_dim_mid": 4 * args.embed_dim,
        "diffusion_step_embed_dim_out": 4 * args.embed_dim,
        "n_mels": mel.config.n_mels,
        "mel_offset": args.mel_offset,
        "mel_scale": args.mel_scale,
    }
    DiffWave.config_class.model_validate(model_config)  # fail before the run starts
    scheduler = BDDMScheduler(
        num_train_timesteps=args.num_train_timesteps,
        noise_schedule=_noise_schedule(args.noise_schedule),
    )
    config = TrainingConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        ema_decay=args.ema_decay,
        grad_clip=args.grad_clip or None,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        out_dir=args.out,
        log_every=args.log_every,
        resume_from=args.resume,
        device=args.device,
        progress=not args.no_progress,
    )
    result = train(
        lambda: DiffWave(**model_config),
        dataset,
        scheduler,
        config,
        pipeline_factory=lambda model, sched: BDDMPipeline(
            diffwave=model, scheduler=sched, mel=mel
        ),
        forward_fn=_forward,
    )
    if result.output_dir is not None:
        print(f"saved the pipeline to {result.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
