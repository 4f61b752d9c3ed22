"""Train commands: the part every ``diffusers-hub train NAME`` shares.

A plugin's ``train.py`` declares one ``TrainCommand``: its name, its own argparse options
(``add_arguments``) and a ``prepare(args, ctx)`` that turns the parsed arguments into a
``TrainJob`` (the dataset, the model factory, the noise scheduler, the export to a pipeline or
model folder, and optionally its own loss, frozen sub-modules and a sample hook). The command adds
the options every trainer shares (steps, batch size, AdamW, EMA, clipping, mixed precision, seed,
output folder, checkpoints, ``--resume``, logging, sampling, workers, threads, device), builds the
``TrainingConfig``, joins ``torchrun``'s process group, and runs ``train`` (checkpoints, exact
resume, EMA, DDP). A trainer's module then holds only its own logic.

Example:
    A complete command that trains a one-level DDPM UNet on random images (the ``train ddpm``
    command of ``plugins/ddpm`` is the full version):

    >>> import tempfile
    >>> import torch
    >>> from diffusers_hub.training import TensorImageDataset, TrainCommand, TrainJob
    >>> from diffusers_hub_ddpm.pipeline import DDPMPipeline
    >>> from diffusers_hub_ddpm.scheduler import DDPMScheduler
    >>> from diffusers_hub_ddpm.unet_2d import UNet2DModel
    >>> def add_arguments(parser):
    ...     parser.add_argument("--width", type=int, default=8, help="UNet width")
    >>> def prepare(args, ctx):
    ...     def unet():
    ...         return UNet2DModel(
    ...             sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
    ...             block_out_channels=(args.width,), norm_num_groups=4,
    ...             down_block_types=("DownBlock2D",), up_block_types=("UpBlock2D",))
    ...     return TrainJob(
    ...         model=unet,
    ...         dataset=TensorImageDataset(torch.rand(8, 1, 8, 8) * 2 - 1),
    ...         scheduler=DDPMScheduler(num_train_timesteps=100),
    ...         export=lambda ema_unet, sched: DDPMPipeline(unet=ema_unet, scheduler=sched),
    ...         saved="DDPM pipeline",
    ...     )
    >>> command = TrainCommand(
    ...     "tiny", "Train a tiny DDPM.", add_arguments, prepare, defaults={"batch_size": 4})
    >>> out = tempfile.mkdtemp()
    >>> command.main(["--steps", "2", "--out", out, "--no-progress", "--device", "cpu"])
    ... # doctest: +ELLIPSIS
    saved the DDPM pipeline (EMA weights) to ... at step 2, last loss ...
    0

    A plugin's ``train.py`` sets ``main = COMMAND.main`` (the target of its
    ``diffusers_hub_trainers`` hook) and ends with ``if __name__ == "__main__": raise
    SystemExit(main())`` for ``python -m`` and ``torchrun -m``.

References:
    Ho et al. 2020, arXiv:2006.11239 (Algorithm 1, the default objective).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import Dataset

from diffusers_hub.training.distributed import (
    DistributedContext,
    init_distributed,
    shutdown_distributed,
)
from diffusers_hub.training.loop import (
    PipelineFactory,
    SampleFn,
    TrainingConfig,
    TrainingResult,
    train,
)
from diffusers_hub.training.losses import ForwardFn, LossFn

__all__ = [
    "COMMON_OPTIONS",
    "TrainCommand",
    "TrainJob",
    "comma_list",
    "run_training",
    "training_config",
]

_T = TypeVar("_T")

#: TrainingConfig fields set by options of other names (or not plain values).
_FLAG_OF = {
    "out_dir": "--out",
    "resume_from": "--resume",
    "device": "--device",
    "progress": "--no-progress",
}

#: The ``TrainingConfig`` fields that are options of every train command under their own name
#: (``--batch-size`` sets ``batch_size``); ``TrainCommand.defaults`` may override their defaults.
COMMON_OPTIONS = tuple(
    name
    for name in TrainingConfig.model_fields
    if name not in _FLAG_OF and name not in ("adam_betas", "adam_eps", "ema_warmup")
)


@dataclass
class TrainJob:
    """What one train command trains: what ``prepare(args, ctx)`` returns.

    Attributes:
        model: the model, or a factory called after seeding (every rank builds the same
            weights). It holds everything the loss runs, frozen parts included.
        dataset: the training items (collated by a ``DataLoader``; ``drop_last``).
        scheduler: the noise scheduler the loss and the export use.
        export: builds the final folder's object from ``(ema_model, scheduler)``: a pipeline
            (``DDPMPipeline(unet=m, scheduler=s)``) or a model (``m.schedule_net``); anything
            with ``save_pretrained(out_dir)``.
        loss: the objective ``(model, batch, scheduler, generator) -> scalar`` (or a mapping
            with the scalar ``"loss"`` and more scalar terms to log beside it; default: the
            noise-prediction MSE of ``forward``). Under ``torchrun`` ``model`` is the DDP
            wrapper: call ``model(...)``, not its sub-modules.
        forward: how the default objective calls the model, ``(model, x_t, t, labels) ->
            prediction``; only without ``loss``.
        frozen: sub-module names (``model.get_submodule``) kept in eval mode and not optimised.
        sample: ``(ema_model, scheduler, folder) -> None``, called every ``--sample-every``
            steps on rank 0 without changing the run.
        saved: what the final folder holds, for the closing message.
    """

    model: nn.Module | Callable[[], nn.Module]
    dataset: Dataset[Any]
    scheduler: Any
    export: PipelineFactory
    loss: LossFn | None = None
    forward: ForwardFn | None = None
    frozen: tuple[str, ...] = ()
    sample: SampleFn | None = None
    saved: str = "pipeline"


def run_training(
    job: TrainJob, config: TrainingConfig, *, ctx: DistributedContext | None = None
) -> TrainingResult:
    """Train ``job`` with ``config`` (``diffusers_hub.training.train`` with the job's parts).

    Args:
        job: what to train.
        config: the loop's options.
        ctx: the distributed context (default: from ``torchrun``'s environment).

    Returns:
        The ``TrainingResult``.
    """
    return train(
        job.model,
        job.dataset,
        job.scheduler,
        config,
        ctx=ctx,
        pipeline_factory=job.export,
        forward_fn=job.forward,
        loss_fn=job.loss,
        frozen=job.frozen,
        sample_fn=job.sample,
    )


def comma_list(item: Callable[[str], _T]) -> Callable[[str], tuple[_T, ...]]:
    """An ``argparse`` type for a comma list: ``comma_list(int)("32,64,64") == (32, 64, 64)``.

    Args:
        item: parses one item (``int``, ``float``, ``str``); a ``ValueError`` is a usage error.

    Returns:
        The parser of ``"a,b,c"`` (blank items skipped; at least one item).
    """
    name = getattr(item, "__name__", "value")

    def parse(text: str) -> tuple[_T, ...]:
        try:
            values = tuple(item(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma list of {name} values, got {text!r}"
            ) from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one {name} value")
        return values

    return parse


def _add_common_arguments(parser: argparse.ArgumentParser, defaults: Mapping[str, Any]) -> None:
    """The options every train command shares, defaults from ``TrainingConfig``."""
    unknown = sorted(set(defaults) - set(COMMON_OPTIONS))
    if unknown:
        raise ValueError(
            f"TrainCommand.defaults: {', '.join(unknown)} are not common options "
            f"({', '.join(COMMON_OPTIONS)}); add the plugin's own options in add_arguments"
        )
    base = {name: f.default for name, f in TrainingConfig.model_fields.items()}
    d = {**base, "steps": None, **defaults}
    g = parser.add_argument_group("optimisation")
    g.add_argument(
        "--steps",
        type=int,
        required=d["steps"] is None,
        default=argparse.SUPPRESS if d["steps"] is None else d["steps"],
        help="total optimizer steps (a resumed run continues up to this number)",
    )
    g.add_argument("--batch-size", type=int, default=d["batch_size"], help="per process")
    g.add_argument("--lr", type=float, default=d["lr"], help="AdamW learning rate")
    g.add_argument("--weight-decay", type=float, default=d["weight_decay"], help="AdamW")
    g.add_argument(
        "--lr-warmup-steps", type=int, default=d["lr_warmup_steps"], help="linear LR warmup"
    )
    g.add_argument(
        "--lr-schedule",
        default=d["lr_schedule"],
        choices=["constant", "cosine"],
        help="after the warmup: constant, or a cosine decay to 0 at --steps",
    )
    g.add_argument("--ema-decay", type=float, default=d["ema_decay"], help="after warmup")
    g.add_argument(
        "--grad-clip", type=float, default=d["grad_clip"] or 0.0, help="0 disables clipping"
    )
    g.add_argument(
        "--mixed-precision",
        default=d["mixed_precision"],
        choices=["no", "fp16", "bf16"],
        help="on CUDA",
    )
    g.add_argument("--seed", type=int, default=d["seed"], help="weights, data, noise")
    g.add_argument(
        "--init-from",
        default=d["init_from"],
        metavar="FOLDER",
        help="fine-tune: start from this saved model or pipeline folder's weights (same "
        "architecture options), or a checkpoint-<step> folder's EMA weights, with a fresh "
        "optimizer and step count",
    )

    g = parser.add_argument_group("output and run")
    g.add_argument("--out", required=True, type=Path, help="output folder")
    g.add_argument(
        "--checkpoint-every", type=int, default=d["checkpoint_every"], help="0: no checkpoints"
    )
    g.add_argument(
        "--checkpoints-to-keep", type=int, default=d["checkpoints_to_keep"] or 0, help="0: all"
    )
    g.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="FOLDER",
        help="resume from the newest checkpoint in --out (or the given checkpoint folder)",
    )
    g.add_argument("--log-every", type=int, default=d["log_every"], help="steps per log line")
    g.add_argument(
        "--sample-every",
        type=int,
        default=d["sample_every"],
        help="write samples every this many steps into --out/samples (0: never)",
    )
    g.add_argument("--num-workers", type=int, default=d["num_workers"], help="DataLoader workers")
    g.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def training_config(args: argparse.Namespace) -> TrainingConfig:
    """The ``TrainingConfig`` of a train command's parsed common options.

    Raises:
        pydantic.ValidationError: a value out of range (``TrainCommand.main`` reports it as a
            usage error naming the option).
    """
    values = {name: getattr(args, name) for name in COMMON_OPTIONS}
    values["grad_clip"] = values["grad_clip"] or None  # 0: no clipping
    values["checkpoints_to_keep"] = values["checkpoints_to_keep"] or None  # 0: keep all
    return TrainingConfig.model_validate(
        {
            **values,
            "out_dir": args.out,
            "resume_from": args.resume,
            "device": args.device,
            "progress": not args.no_progress,
        }
    )


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default when it has one (not for None, False or required options)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        return f"{text} (default: %(default)s)" if shown and "%(default)" not in text else text


@dataclass(frozen=True)
class TrainCommand:
    """A ``diffusers-hub train NAME`` command: the plugin's options and job, the shared rest.

    Attributes:
        name: the trainer name (``prog`` is ``diffusers-hub train NAME``).
        description: one sentence for ``--help``.
        add_arguments: adds the plugin's own options (data, model, schedule, ...) to the parser.
        prepare: ``(args, ctx) -> TrainJob``, called once the process group is joined (so a
            plugin stage that writes files can run on ``ctx.is_main`` only).
        defaults: this command's defaults of common options (``COMMON_OPTIONS``), e.g.
            ``{"batch_size": 64, "lr": 2e-4}``; ``steps`` without a default is required.
    """

    name: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    prepare: Callable[[argparse.Namespace, DistributedContext], TrainJob]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def build_parser(self) -> argparse.ArgumentParser:
        """The command's parser: the plugin's options, then the common ones."""
        parser = argparse.ArgumentParser(
            prog=f"diffusers-hub train {self.name}",
            description=self.description,
            formatter_class=_HelpFormatter,
        )
        self.add_arguments(parser)
        _add_common_arguments(parser, self.defaults)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Parse ``argv``, prepare the job, train it; returns the exit code.

        Args:
            argv: the arguments after ``train NAME`` (default ``sys.argv[1:]``).

        Returns:
            0 on success (bad options exit through ``argparse`` with status 2).
        """
        parser = self.build_parser()
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        try:
            config = training_config(args)
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0])
            flag = _FLAG_OF.get(key, "--" + key.replace("_", "-"))
            parser.error(f"{flag} {getattr(args, key, '')}: {error['msg']}")
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        started = time.perf_counter()
        ctx = init_distributed(args.device)
        try:
            job = self.prepare(args, ctx)
            if config.sample_every and job.sample is None:
                parser.error(f"--sample-every: train {self.name} has no sample hook")
            result = run_training(job, config, ctx=ctx)
        finally:
            shutdown_distributed(ctx)
        if result.output_dir is not None:
            last = f", last loss {result.losses[-1][1]:.4f}" if result.losses else ""
            print(
                f"saved the {job.saved} (EMA weights) to {result.output_dir} at step "
                f"{result.step}{last}; {time.perf_counter() - started:.0f} s in all"
            )
        return 0
