"""The training loop of diffusion models.

``train(model, dataset, scheduler, config)`` trains any model that maps ``(x_t, t)`` (and
optionally class labels) to the scheduler's training target, or minimises any ``loss_fn(model,
batch, scheduler, generator)``: AdamW over the parameters that are not frozen, an EMA of the
weights, gradient clipping, mixed precision on CUDA, checkpoints every N steps with exact resume,
an optional sample hook, a progress bar, and a final ``save_pretrained`` folder holding the EMA
weights. It runs unchanged as one process or under ``torchrun --nproc_per_node=N``
(DistributedDataParallel; only rank 0 writes).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from diffusers_hub.errors import config_differences
from diffusers_hub.modeling import ModelMixin
from diffusers_hub.training.checkpoints import (
    CHECKPOINT_FILE,
    capture_rng,
    load_checkpoint_weights,
    resolve_checkpoint,
    restore_rng,
    write_checkpoint,
)
from diffusers_hub.training.data import ResumableDistributedSampler, batches_per_epoch
from diffusers_hub.training.distributed import (
    DistributedContext,
    all_gather_objects,
    barrier,
    init_distributed,
    mean_across_ranks,
    shutdown_distributed,
)
from diffusers_hub.training.ema import EMAModel
from diffusers_hub.training.losses import (
    ForwardFn,
    LossFn,
    NoiseScheduler,
    loss_terms,
    noise_prediction_objective,
)

__all__ = [
    "PipelineFactory",
    "SampleFn",
    "TrainingConfig",
    "TrainingResult",
    "train",
]

logger = logging.getLogger(__name__)


class TrainingConfig(BaseModel):
    """Options of ``train``.

    Attributes:
        steps: total optimizer steps (a resumed run continues up to this number).
        batch_size: samples per step *per process* (the global batch is ``batch_size * N``).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        adam_betas: AdamW betas.
        adam_eps: AdamW epsilon.
        lr_warmup_steps: linear learning-rate warmup from ~0 to ``lr``.
        lr_schedule: after the warmup, ``"constant"`` keeps ``lr``; ``"cosine"`` lowers it along
            half a cosine to 0 at ``steps`` (Loshchilov & Hutter 2017, arXiv:1608.03983).
        ema_decay: EMA decay after warmup.
        ema_warmup: ramp the EMA decay as ``(1 + n) / (10 + n)`` up to ``ema_decay``.
        grad_clip: clip the global gradient norm to this value (None: no clipping).
        checkpoint_every: write a checkpoint every this many steps (0: never).
        checkpoints_to_keep: keep only the newest this many checkpoints (None: all).
        mixed_precision: ``"no"``, ``"fp16"`` (autocast + GradScaler) or ``"bf16"`` (autocast);
            applies on CUDA only, CPU training runs in float32.
        seed: seed of the weights, the data order, the noise and the timesteps.
        init_from: fine-tune: start from the weights of a saved model (a model or pipeline
            folder, local or a Hub id; its config must equal the run's) or the EMA weights of a
            ``checkpoint-<step>`` folder; the optimizer, step and EMA start afresh
            (``resume_from`` continues a run instead, and wins when both are given).
        out_dir: output folder: the final pipeline folder, ``checkpoints/`` and ``train_log.jsonl``.
        log_every: log the (rank-averaged) loss every this many steps.
        sample_every: call the sample hook every this many steps and after the last (0: never).
        num_workers: DataLoader worker processes.
        resume_from: ``"latest"`` (newest checkpoint under ``out_dir/checkpoints``, or a fresh
            start when there is none), a checkpoint folder, or None (fresh start).
        device: ``"cpu"``, ``"cuda"``, or None (CUDA when available).
        progress: show a tqdm progress bar (rank 0).
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=1000, gt=0)
    batch_size: int = Field(default=16, gt=0)
    lr: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = Field(default=1e-8, gt=0)
    lr_warmup_steps: int = Field(default=0, ge=0)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    ema_decay: float = Field(default=0.9999, ge=0, le=1)
    ema_warmup: bool = True
    grad_clip: float | None = Field(default=1.0, gt=0)
    checkpoint_every: int = Field(default=500, ge=0)
    checkpoints_to_keep: int | None = Field(default=2, gt=0)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    seed: int = 0
    init_from: str | None = None
    out_dir: Path = Path("ddpm-output")
    log_every: int = Field(default=10, gt=0)
    sample_every: int = Field(default=0, ge=0)
    num_workers: int = Field(default=0, ge=0)
    resume_from: str | None = None
    device: str | None = None
    progress: bool = True


class SavesPretrained(Protocol):
    """Anything with ``save_pretrained(directory)`` (a pipeline, a model)."""

    def save_pretrained(self, directory: Any) -> None:
        """Write the folder."""


#: Builds the object saved at the end from the EMA model and the noise scheduler.
PipelineFactory = Callable[[nn.Module, Any], SavesPretrained]
#: Writes samples of the EMA model: ``(ema_model, scheduler copy, folder) -> None``.
SampleFn = Callable[[nn.Module, Any, Path], None]


@dataclass
class TrainingResult:
    """What ``train`` returns.

    Attributes:
        step: the last optimizer step done.
        losses: ``(step, loss)`` pairs logged every ``log_every`` steps (rank-averaged).
        model: the trained model (unwrapped from DDP).
        ema_model: the EMA copy of the model.
        output_dir: the final ``save_pretrained`` folder (None on ranks other than 0).
        resumed_from: the checkpoint the run resumed from, if any.
    """

    step: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    model: nn.Module | None = None
    ema_model: nn.Module | None = None
    output_dir: Path | None = None
    resumed_from: Path | None = None


def _to_device(batch: Any, device: torch.device) -> Any:
    """The batch with every tensor (in tuples, lists and dicts too) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


# -- the loop -------------------------------------------------------------------------------------


def _lr_factor(config: TrainingConfig) -> Callable[[int], float]:
    """The multiplier of ``lr`` at each step: the warmup ramp, then the schedule."""
    warmup, total = config.lr_warmup_steps, config.steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.lr_schedule == "constant" or total <= warmup:
            return 1.0
        progress = min(1.0, (step - warmup) / (total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _initial_weights(model: nn.Module, source: str) -> None:
    """Fill ``model`` with the weights saved at ``source``, refusing another architecture."""
    if load_checkpoint_weights(model, source):
        return
    if not isinstance(model, ModelMixin):
        raise TypeError(
            f"init_from={source!r}: {type(model).__name__} is not a ModelMixin, so it cannot "
            "load a saved folder; load the weights in the model factory instead"
        )
    saved = type(model).from_pretrained(source)
    differ = config_differences(model.config.to_dict(), saved.config.to_dict())
    if differ:
        shown = ", ".join(differ)
        raise ValueError(
            f"init_from={source!r}: the saved {type(model).__name__} is another architecture: "
            f"{shown}. Give the run the saved model's options."
        )
    model.load_state_dict(saved.state_dict())


def _autocast_dtype(config: TrainingConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.mixed_precision == "no":
        return None
    return torch.float16 if config.mixed_precision == "fp16" else torch.bfloat16


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _infinite_batches(
    loader: DataLoader[Any],
    sampler: ResumableDistributedSampler,
    loader_generator: torch.Generator,
    epoch: int,
    seed: int,
) -> Iterator[Any]:
    """Batches forever; each epoch's worker seeds depend only on (seed, rank, epoch).

    Seeding the loader's own generator per epoch keeps ``iter(loader)`` from consuming the global
    torch RNG (which dropout uses), so a resumed run draws the same numbers as an uninterrupted one.
    """
    while True:
        loader_generator.manual_seed(seed + 104729 * epoch)
        yield from loader
        epoch += 1
        sampler.set_epoch(epoch)


def train(
    model: nn.Module | Callable[[], nn.Module],
    dataset: Dataset[Any],
    scheduler: NoiseScheduler,
    config: TrainingConfig,
    *,
    pipeline_factory: PipelineFactory | None = None,
    forward_fn: ForwardFn | None = None,
    ctx: DistributedContext | None = None,
    loss_fn: LossFn | None = None,
    frozen: Sequence[str] = (),
    sample_fn: SampleFn | None = None,
) -> TrainingResult:
    """Train a diffusion model; write checkpoints and the final EMA pipeline folder.

    By default each step draws a batch x0, timesteps t ~ U{0..T-1} and noise eps, and minimises
    ``|| model(scheduler.add_noise(x0, eps, t), t) - scheduler.training_target(x0, eps, t) ||^2``;
    ``loss_fn`` replaces that objective with any other.

    Args:
        model: the model, or a factory called after seeding (so every rank builds the same
            weights). Trained in float32 (autocast handles mixed precision).
        dataset: yields (C, H, W) images in [-1, 1], or (image, label) pairs (any collatable
            item when ``loss_fn`` reads it).
        scheduler: gives ``add_noise``, ``training_target`` and ``config.num_train_timesteps``
            (the default objective's needs; a ``loss_fn`` may need other things).
        config: the options.
        pipeline_factory: builds the saved object from (EMA model, scheduler), e.g.
            ``lambda unet, sched: DDPMPipeline(unet=unet, scheduler=sched)``; a model is fine
            too. Without it the EMA model and the scheduler are saved side by side into
            ``out_dir`` (a flat folder).
        forward_fn: how the default objective calls the model (default ``default_forward``).
        ctx: a distributed context; by default read from ``torchrun``'s environment (and the
            process group created and destroyed here).
        loss_fn: the objective ``(model, batch, scheduler, generator) -> scalar`` (or a mapping
            with the scalar ``"loss"`` and more scalar terms, logged beside it), run under
            autocast with the batch on the device; draw randomness from ``generator`` (or the
            global torch RNG), which checkpoints restore. Under ``torchrun`` ``model`` is the
            DistributedDataParallel wrapper: call ``model(...)``, not its sub-modules. Default:
            ``noise_prediction_objective(forward_fn)``.
        frozen: names of sub-modules (``model.get_submodule``) that are not trained: they are put
            in eval mode, their parameters get no gradient and no optimizer state.
        sample_fn: called (when ``config.sample_every > 0``) on rank 0 every
            ``config.sample_every`` steps and after the last step as ``sample_fn(ema_model, copy_of_scheduler, out_dir / "samples" /
            "step-<step>")``, under ``torch.no_grad`` and with every RNG state put back after it,
            so sampling does not change the run.

    Returns:
        The ``TrainingResult``.

    References:
        Algorithm 1 and eq. 14, Ho et al. 2020, arXiv:2006.11239.
    """
    own_ctx = ctx is None
    ctx = init_distributed(config.device) if ctx is None else ctx
    try:
        if loss_fn is not None and forward_fn is not None:
            raise TypeError("pass loss_fn= or forward_fn= to train(), not both")
        objective = loss_fn or noise_prediction_objective(forward_fn)
        hooks = _Hooks(objective, tuple(frozen), pipeline_factory, sample_fn)
        return _train(model, dataset, scheduler, config, hooks, ctx)
    finally:
        if own_ctx:
            shutdown_distributed(ctx)


@dataclass(frozen=True)
class _Hooks:
    """What ``train`` calls besides the model: the objective, freezing, export, sampling."""

    loss: LossFn
    frozen: tuple[str, ...]
    pipeline_factory: PipelineFactory | None
    sample: SampleFn | None


def _freeze(model: nn.Module, names: tuple[str, ...]) -> list[nn.Parameter]:
    """Put the named sub-modules in eval mode without gradients; the parameters left to train."""
    for name in names:
        try:
            part = model.get_submodule(name)
        except AttributeError:
            raise ValueError(
                f"frozen={name!r}: {type(model).__name__} has no sub-module of that name"
            ) from None
        part.eval()
        part.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (all are frozen)")
    return params


def _train(
    model_or_factory: nn.Module | Callable[[], nn.Module],
    dataset: Dataset[Any],
    scheduler: NoiseScheduler,
    config: TrainingConfig,
    hooks: _Hooks,
    ctx: DistributedContext,
) -> TrainingResult:
    device = ctx.device
    out_dir = Path(config.out_dir)
    if config.sample_every and hooks.sample is None:
        raise ValueError("sample_every is set but there is no sample hook (sample_fn=)")

    # Same weights on every rank: seed, then build.
    _seed_everything(config.seed)
    model = model_or_factory if isinstance(model_or_factory, nn.Module) else model_or_factory()
    resumed_from = resolve_checkpoint(config.resume_from, config.out_dir)
    if config.init_from is not None and resumed_from is None:
        _initial_weights(model, config.init_from)
    model.to(device=device, dtype=torch.float32)
    model.train()
    params = _freeze(model, hooks.frozen)
    ema = EMAModel(model, decay=config.ema_decay, warmup=config.ema_warmup)

    optimizer = torch.optim.AdamW(
        params,
        lr=config.lr,
        betas=config.adam_betas,
        eps=config.adam_eps,
        weight_decay=config.weight_decay,
    )
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config))
    amp_dtype = _autocast_dtype(config, device)
    if config.mixed_precision != "no" and amp_dtype is None and ctx.is_main:
        logger.info(
            "mixed_precision=%s applies on CUDA only; training in float32", config.mixed_precision
        )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    # Per-rank random streams (dropout, augmentation, noise, timesteps).
    _seed_everything(config.seed + 7919 * ctx.rank)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed * 1_000_003 + ctx.rank + 1)

    sampler = ResumableDistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=config.seed
    )
    per_epoch = batches_per_epoch(sampler.num_samples, config.batch_size)
    if per_epoch == 0:
        raise ValueError(
            f"the dataset has {len(sampler.dataset)} items: too few for a batch of "  # type: ignore[arg-type]
            f"{config.batch_size} on each of {ctx.world_size} processes; lower --batch-size"
        )

    # Resume.
    step = 0
    if resumed_from is not None:
        state = torch.load(resumed_from / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        scaler.load_state_dict(state["scaler"])
        ema.load_state_dict(state["ema"])
        step = int(state["step"])
        rng_states = state["rng"]
        if len(rng_states) != ctx.world_size:
            logger.warning(
                "%s was written by %d processes, this run has %d: the random streams and the "
                "data order restart, so the resumed run will not match an uninterrupted one",
                resumed_from,
                len(rng_states),
                ctx.world_size,
            )
        if ctx.rank < len(rng_states):
            restore_rng(rng_states[ctx.rank], generator)
        if ctx.is_main:
            logger.info("resumed from %s at step %d", resumed_from, step)

    train_model: nn.Module = model
    if ctx.distributed:
        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    epoch, batch_in_epoch = divmod(step, per_epoch)
    sampler.set_epoch(epoch, start=batch_in_epoch * config.batch_size)
    loader_generator = torch.Generator()
    loader: DataLoader[Any] = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        generator=loader_generator,
    )
    batches = _infinite_batches(
        loader, sampler, loader_generator, epoch, config.seed * 1_000_003 + 31 * ctx.rank
    )

    result = TrainingResult(step=step, resumed_from=resumed_from)
    log_file = out_dir / "train_log.jsonl"
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    progress = _progress_bar(config, ctx, step)
    window: list[torch.Tensor] = []
    term_names: list[str] = []
    try:
        while step < config.steps:
            batch = _to_device(next(batches), device)
            autocast = (
                torch.autocast(device_type=device.type, dtype=amp_dtype)
                if amp_dtype is not None
                else contextlib.nullcontext()
            )
            with autocast:
                terms = loss_terms(hooks.loss(train_model, batch, scheduler, generator))
            loss = terms[0][1]
            if window and [name for name, _ in terms] != term_names:
                raise ValueError(f"the loss terms changed from {term_names} at step {step + 1}")
            term_names = [name for name, _ in terms]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step + 1}")

            optimizer.zero_grad(set_to_none=True)
            scaled: torch.Tensor = scaler.scale(loss)
            scaled.backward()  # type: ignore[no-untyped-call]
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            lr_scheduler.step()
            ema.update(model)
            step += 1
            window.append(torch.stack([value.detach() for _, value in terms]))

            if step % config.log_every == 0 or step == config.steps:
                means = mean_across_ranks(torch.stack(window).mean(0), ctx).tolist()
                window.clear()
                mean_loss = means[0]
                result.losses.append((step, mean_loss))
                if ctx.is_main:
                    progress.set_postfix(loss=f"{mean_loss:.4f}")
                    with log_file.open("a") as fh:
                        record = {
                            "step": step,
                            **dict(zip(term_names, means, strict=True)),
                            "lr": lr_scheduler.get_last_lr()[0],
                        }
                        fh.write(json.dumps(record) + "\n")
            progress.update(1)

            if config.checkpoint_every and step % config.checkpoint_every == 0:
                _save_checkpoint(
                    config, ctx, step, model, optimizer, lr_scheduler, scaler, ema, generator
                )
            if (
                hooks.sample is not None
                and config.sample_every
                and (step % config.sample_every == 0 or step == config.steps)
            ):
                _sample(hooks.sample, ema.shadow, scheduler, out_dir, step, ctx, generator)
    finally:
        progress.close()

    result.step = step
    result.model = model
    result.ema_model = ema.shadow
    if ctx.is_main:
        ema.shadow.to("cpu")
        _export(ema.shadow, scheduler, out_dir, hooks.pipeline_factory)
        ema.shadow.to(device)
        result.output_dir = out_dir
    barrier(ctx)
    return result


def _progress_bar(config: TrainingConfig, ctx: DistributedContext, step: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=config.steps,
        initial=step,
        desc="train",
        unit="step",
        disable=not (config.progress and ctx.is_main),
        dynamic_ncols=True,
    )


def _save_checkpoint(
    config: TrainingConfig,
    ctx: DistributedContext,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LambdaLR,
    scaler: torch.amp.GradScaler,
    ema: EMAModel,
    generator: torch.Generator,
) -> None:
    # Every rank's random streams travel to rank 0, the only writer.
    rng_states = all_gather_objects(capture_rng(generator), ctx)
    if ctx.is_main:
        state = {
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": lr_scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "ema": ema.state_dict(),
            "rng": rng_states,
            "world_size": ctx.world_size,
            "config": json.loads(config.model_dump_json()),
        }
        path = write_checkpoint(Path(config.out_dir), step, state, config.checkpoints_to_keep)
        logger.info("saved %s", path)
    barrier(ctx)


def _sample(
    sample: SampleFn,
    ema_model: nn.Module,
    scheduler: Any,
    out_dir: Path,
    step: int,
    ctx: DistributedContext,
    generator: torch.Generator,
) -> None:
    """Run the sample hook on rank 0 without touching the run's random streams or scheduler."""
    if ctx.is_main:
        rng = capture_rng(generator)
        try:
            with torch.no_grad():
                sample(
                    ema_model, copy.deepcopy(scheduler), out_dir / "samples" / f"step-{step:08d}"
                )
        finally:
            restore_rng(rng, generator)
    barrier(ctx)


def _export(
    ema_model: nn.Module,
    scheduler: Any,
    out_dir: Path,
    pipeline_factory: PipelineFactory | None,
) -> None:
    if pipeline_factory is not None:
        pipeline_factory(ema_model, scheduler).save_pretrained(out_dir)
        return
    for name, component in (("model", ema_model), ("scheduler", scheduler)):
        save = getattr(component, "save_pretrained", None)
        if save is None:
            raise TypeError(
                f"the {name} ({type(component).__name__}) has no save_pretrained; pass "
                "pipeline_factory= to train()"
            )
        save(out_dir)
