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
from typing import Any

import torch

from diffusers_hub.training import TrainCommand, TrainJob
from diffusers_hub.training.distributed import DistributedContext

__all__ = ["COMMAND", "build_parser", "main"]


def _add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``train bddm`` besides the common training ones."""
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
    g.add_argument(
        "--grow-from",
        metavar="FOLDER",
        default=None,
        help="start from this saved DiffWave (or BDDMPipeline) with fewer residual layers or "
        "channels and otherwise this config: its weights come first and the new ones start "
        "where they change nothing, so training starts from the same function (see "
        "diffwave.widen and diffwave.deepen)",
    )

    g = p.add_argument_group("noise schedule")
    g.add_argument("--num-train-timesteps", type=int, default=200)
    g.add_argument(
        "--noise-schedule",
        default="ljspeech-12",
        help="searched inference betas saved with the pipeline: 'ljspeech-12', 'none', or a "
        "comma list of betas from the clean end",
    )


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


def _prepare(args: argparse.Namespace, ctx: DistributedContext) -> TrainJob:
    """The ``train bddm`` job: synthetic notes, a DiffWave factory, BDDM's schedule, the pipeline."""
    from diffusers_hub_bddm.data import F0_RANGE, ToneDataset
    from diffusers_hub_bddm.diffwave import DiffWave
    from diffusers_hub_bddm.mel import MelSpectrogram
    from diffusers_hub_bddm.pipeline import BDDMPipeline
    from diffusers_hub_bddm.scheduler import BDDMScheduler

    mel = MelSpectrogram()
    f0_range = F0_RANGE if args.f0_range is None else (args.f0_range[0], args.f0_range[1])
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
    model = (
        (lambda: DiffWave(**model_config))
        if args.grow_from is None
        else _grower(args, model_config)
    )
    return TrainJob(
        model=model,
        dataset=ToneDataset(
            args.items, args.segment, seed=args.data_seed, f0_range=f0_range, mel=mel
        ),
        scheduler=BDDMScheduler(
            num_train_timesteps=args.num_train_timesteps,
            noise_schedule=_noise_schedule(args.noise_schedule),
        ),
        export=lambda model, sched: BDDMPipeline(diffwave=model, scheduler=sched, mel=mel),
        forward=_forward,
        saved="BDDMPipeline",
    )


def _grower(args: argparse.Namespace, model_config: dict[str, Any]) -> Any:
    """The model factory of ``--grow-from``: the saved network widened to ``--res-channels`` and
    deepened to ``--num-res-layers`` (see ``diffwave.widen`` and ``diffwave.deepen``)."""
    from diffusers_hub.errors import config_differences
    from diffusers_hub_bddm.diffwave import DiffWave, deepen, widen

    if args.init_from is not None:
        raise SystemExit("--grow-from and --init-from both set the starting weights; give one")
    source = DiffWave.from_pretrained(args.grow_from)
    run = DiffWave.config_class.model_validate(model_config).to_dict()
    grown = ["num_res_layers", "res_channels", "skip_channels"]
    differ = config_differences(run, source.config.to_dict(), ignore=grown)
    if differ:
        raise SystemExit(
            f"--grow-from {args.grow_from}: only the layers and channels may differ, but "
            f"{', '.join(differ)} do; pass the saved network's options"
        )
    layers, channels = source.config.num_res_layers, source.config.res_channels
    wide = args.res_channels, args.res_channels  # the run's residual and skip widths
    same_width = wide == (channels, source.config.skip_channels)
    if (args.num_res_layers == layers and same_width) or (
        args.num_res_layers < layers
        or args.res_channels < max(channels, source.config.skip_channels)
    ):
        raise SystemExit(
            f"--grow-from {args.grow_from}: it has {layers} residual layers of {channels} "
            f"channels; --num-res-layers and --res-channels may not be smaller and one must be "
            f"larger (got {args.num_res_layers} and {args.res_channels})"
        )

    def factory() -> DiffWave:
        model = source if same_width else widen(source, *wide)
        return model if args.num_res_layers == layers else deepen(model, args.num_res_layers)

    return factory


COMMAND = TrainCommand(
    "bddm",
    "Train a DiffWave vocoder on synthetic notes and save a BDDMPipeline folder.",
    _add_arguments,
    _prepare,
    defaults={"lr": 2e-4, "ema_decay": 0.999, "checkpoint_every": 1000, "log_every": 100},
)


#: The ``train bddm`` parser and entry point (its ``diffusers_hub_trainers`` hook target).
build_parser, main = COMMAND.build_parser, COMMAND.main

if __name__ == "__main__":
    raise SystemExit(main())
