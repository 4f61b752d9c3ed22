"""``diffusers-hub train glide``: train a small GLIDE (base + upsampler) on captioned shapes.

The data are the latent-diffusion plugin's procedurally drawn shapes (one coloured shape per
image, captions such as ``"a small red circle on the left"``), drawn at twice the base resolution:
the base model learns the box-downsampled images (32 px by default), the upsampler learns the
drawn images (64 px) given the downsampled ones. Captions are tokenised by a byte-level BPE
trained here with ``tokenizers`` on the captions (or the release's GPT-2 vocabulary with
``--release-vocab``). Each step draws t uniformly, noises x0 with the model's scheduler, and
minimises the hybrid loss (MSE on the noise + the VLB term with the mean detached, for the
learned-range variance); 20% of captions are dropped to the empty prompt so that
classifier-free guidance works. An EMA of each model is saved as a GLIDEPipeline folder every
``--save-every`` steps and at the end. Runs as one process or under ``torchrun``
(DistributedDataParallel; rank 0 writes).

Example:
    diffusers-hub train glide --out glide-demo --steps 3000 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers_hub_ddim.scheduler import DDIMScheduler
from diffusers_hub_ddpm.scheduler import DDPMScheduler
from diffusers_hub_latent_diffusion import shapes
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from diffusers_hub.training.distributed import (
    init_distributed,
    mean_across_ranks,
    shutdown_distributed,
)
from diffusers_hub.training.ema import EMAModel
from diffusers_hub.training.losses import sample_timesteps
from diffusers_hub_glide.losses import hybrid_loss
from diffusers_hub_glide.pipeline import GLIDEPipeline
from diffusers_hub_glide.tokenizer import END_OF_TEXT, GLIDETokenizer
from diffusers_hub_glide.unet import GLIDEUNetModel

__all__ = [
    "base_config",
    "base_scheduler",
    "build_parser",
    "caption_tokenizer",
    "main",
    "shapes_data",
    "upsample_config",
    "upsample_scheduler",
]

logger = logging.getLogger(__name__)


def caption_tokenizer(
    texts: Sequence[str], vocab_size: int = 96, text_ctx: int = 16
) -> GLIDETokenizer:
    """A byte-level BPE trained with ``tokenizers`` on ``texts``; ``<|endoftext|>`` is the last id.

    Args:
        texts: the training captions.
        vocab_size: target vocabulary size (characters seen plus merges).
        text_ctx: the padded token length.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=[], show_progress=False, special_tokens=[]
    )
    backend.train_from_iterator(list(texts), trainer=trainer)
    model = json.loads(backend.to_str())["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    vocab[END_OF_TEXT] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return GLIDETokenizer(vocab, merges, model_max_length=text_ctx)  # type: ignore[arg-type]


def base_config(resolution: int, vocab_size: int, text_ctx: int, width: int = 32) -> dict[str, Any]:
    """The demo base UNet: 3 levels, one residual block each, attention at the two lowest."""
    return {
        "sample_size": resolution,
        "in_channels": 3,
        "out_channels": 6,
        "model_channels": width,
        "channel_mult": (1, 2, 2),
        "num_res_blocks": 1,
        "attention_resolutions": (resolution // 2, resolution // 4),
        "num_head_channels": min(32, width),
        "dropout": 0.0,
        "norm_num_groups": 8,
        "text_ctx": text_ctx,
        "xf_width": 64,
        "xf_layers": 2,
        "xf_heads": 2,
        "vocab_size": vocab_size,
    }


def upsample_config(
    resolution: int, vocab_size: int, text_ctx: int, width: int = 32
) -> dict[str, Any]:
    """The demo upsampler at 2x ``resolution``: 6 input channels, attention at the lowest level."""
    size = 2 * resolution
    return {
        **base_config(size, vocab_size, text_ctx, width),
        "in_channels": 6,
        "channel_mult": (1, 1, 2, 2),
        "attention_resolutions": (size // 8,),
    }


def base_scheduler() -> DDPMScheduler:
    """The base model's scheduler, as in the release: cosine schedule, learned-range variance."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", variance_type="learned_range"
    )


def upsample_scheduler() -> DDIMScheduler:
    """The upsampler's scheduler, as in the release: linear betas, DDIM sampling."""
    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear")


def shapes_data(num: int, seed: int, resolution: int) -> tuple[Tensor, Tensor, list[str]]:
    """Drawn shapes: (N, 3, 2R, 2R) images and their (N, 3, R, R) box-downsampled versions in
    [-1, 1], and the captions (the held-out evaluation prompts are never used)."""
    images, captions, _ = shapes.make_dataset(num, seed=seed, resolution=2 * resolution)
    high = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    low = F.avg_pool2d(high, 2)
    return high, low, captions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffusers-hub train glide",
        description="Train a small GLIDE (base + upsampler) on procedurally drawn captioned shapes.",
    )
    parser.add_argument("--out", type=Path, default=Path("glide-output"), help="pipeline folder")
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps per model")
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--num-images", type=int, default=4000, help="training images drawn")
    parser.add_argument("--resolution", type=int, default=32, help="base side (upsampler: 2x)")
    parser.add_argument("--width", type=int, default=32, help="model_channels of both UNets")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--uncond-prob", type=float, default=0.2, help="caption drop rate")
    parser.add_argument("--text-ctx", type=int, default=16)
    parser.add_argument("--vocab-size", type=int, default=96, help="BPE size (own vocabulary)")
    parser.add_argument(
        "--release-vocab", action="store_true", help="use the release's GPT-2 BPE (50,257 tokens)"
    )
    parser.add_argument(
        "--stage", choices=("both", "base", "upsample"), default="both", help="models to train"
    )
    parser.add_argument("--save-every", type=int, default=500, help="save the EMA pipeline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    return parser


class _Stage:
    """One model under training: its DDP wrapper, optimizer, EMA and scheduler."""

    def __init__(
        self, name: str, model: GLIDEUNetModel, scheduler: Any, args: argparse.Namespace, ctx: Any
    ) -> None:
        self.name = name
        self.model = model.to(ctx.device).train()
        self.scheduler = scheduler
        self.ema = EMAModel(self.model, decay=args.ema_decay)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=args.lr)
        self.runner: nn.Module = (
            DistributedDataParallel(self.model) if ctx.distributed else self.model
        )
        self.alphas_cumprod = scheduler.alphas_cumprod.to(ctx.device)

    def step(
        self,
        x0: Tensor,
        tokens: Tensor,
        mask: Tensor,
        generator: torch.Generator,
        low_res: Tensor | None = None,
    ) -> tuple[float, float]:
        t = sample_timesteps(
            x0.shape[0],
            self.scheduler.config.num_train_timesteps,
            generator=generator,
            device=x0.device,
        )
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        x_t = self.scheduler.add_noise(x0, noise, t)
        out = self.runner(x_t, t, tokens, mask, low_res).sample
        loss, mse, vlb = hybrid_loss(out, x0, x_t, noise, t, self.alphas_cumprod)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.ema.update(self.model)
        return float(mse), float(vlb)


def _save(out: Path, tokenizer: GLIDETokenizer, stages: dict[str, _Stage]) -> None:
    base, up = stages.get("base"), stages.get("upsample")
    existing = out if (out / "model_index.json").is_file() else None
    previous = GLIDEPipeline.from_pretrained(existing) if existing is not None else None

    def pick(stage: _Stage | None, fallback: Any) -> Any:
        if stage is not None:
            return stage.ema.shadow.to("cpu").eval()
        return fallback

    unet = pick(base, previous.unet if previous is not None else None)
    if unet is None:
        raise SystemExit(f"{out}: no base model to save; train --stage base (or both) first")
    pipe = GLIDEPipeline(
        unet=unet,
        scheduler=base.scheduler if base is not None else previous.scheduler,  # type: ignore[union-attr]
        tokenizer=tokenizer,
        upsample_unet=pick(up, previous.upsample_unet if previous is not None else None),
        upsample_scheduler=(
            up.scheduler
            if up is not None
            else (previous.upsample_scheduler if previous is not None else None)
        ),
    )
    pipe.save_pretrained(out)
    for stage in stages.values():
        stage.ema.shadow.to(stage.model.device)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``diffusers-hub train glide``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.num_images < args.batch_size:
        raise SystemExit("--steps and --batch-size must be >= 1 and --num-images >= --batch-size")
    if args.resolution % 8:
        raise SystemExit(f"--resolution must be a multiple of 8, got {args.resolution}")
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ctx = init_distributed(args.device)
    try:
        return _run(args, ctx)
    finally:
        shutdown_distributed(ctx)


def _run(args: argparse.Namespace, ctx: Any) -> int:
    device = ctx.device
    high, low, captions = shapes_data(args.num_images, args.seed, args.resolution)
    if args.release_vocab:
        tokenizer = GLIDETokenizer.from_release()
        tokenizer.model_max_length = args.text_ctx
    else:
        tokenizer = caption_tokenizer(captions, args.vocab_size, args.text_ctx)
    enc = tokenizer(captions)
    tokens, mask = enc.input_ids, enc.attention_mask
    empty = tokenizer([""])
    torch.manual_seed(args.seed)
    stages: dict[str, _Stage] = {}
    if args.stage in ("both", "base"):
        model = GLIDEUNetModel(
            base_config(args.resolution, tokenizer.vocab_size, args.text_ctx, args.width)
        )
        stages["base"] = _Stage("base", model, base_scheduler(), args, ctx)
    if args.stage in ("both", "upsample"):
        model = GLIDEUNetModel(
            upsample_config(args.resolution, tokenizer.vocab_size, args.text_ctx, args.width)
        )
        stages["upsample"] = _Stage("upsample", model, upsample_scheduler(), args, ctx)
    if ctx.is_main:
        for stage in stages.values():
            logger.info("%s: %d parameters", stage.name, stage.model.num_parameters())
    generator = torch.Generator(device=device).manual_seed(args.seed * 1_000_003 + ctx.rank + 1)
    picker = np.random.default_rng(args.seed * 7919 + ctx.rank)
    log_file = args.out / "train_log.jsonl"
    if ctx.is_main:
        args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        index = torch.from_numpy(picker.choice(len(captions), args.batch_size, replace=False))
        drop = torch.from_numpy(picker.random(args.batch_size) < args.uncond_prob)
        batch_tokens = torch.where(drop[:, None], empty.input_ids, tokens[index]).to(device)
        batch_mask = torch.where(drop[:, None], empty.attention_mask, mask[index]).to(device)
        record: dict[str, Any] = {"step": step}
        for name, stage in stages.items():
            if name == "base":
                mse, vlb = stage.step(low[index].to(device), batch_tokens, batch_mask, generator)
            else:
                mse, vlb = stage.step(
                    high[index].to(device),
                    batch_tokens,
                    batch_mask,
                    generator,
                    low[index].to(device),
                )
            values = mean_across_ranks(torch.tensor([mse, vlb], device=device), ctx).tolist()
            record[f"{name}_mse"], record[f"{name}_vlb"] = values
        record["seconds"] = round(time.perf_counter() - start, 1)
        if ctx.is_main:
            with log_file.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            if step % 50 == 0:
                logger.info("%s", record)
            if step % args.save_every == 0 or step == args.steps:
                _save(args.out, tokenizer, stages)
    return 0
