"""``diffusers-hub train glide``: train a small GLIDE (base + upsampler) on captioned shapes.

The data are the latent-diffusion plugin's procedurally drawn shapes (one coloured shape per
image, captions such as ``"a small red circle on the left"``), drawn at twice the base resolution:
the base model learns the box-downsampled images (32 px by default), the upsampler learns the
drawn images (64 px) given the downsampled ones. Captions are tokenised by a byte-level BPE
trained here with ``tokenizers`` on the captions (or the release's GPT-2 vocabulary with
``--release-vocab``). Each step draws t uniformly, noises x0 with the model's scheduler, and
minimises the hybrid loss (MSE on the noise + the VLB term with the mean detached, for the
learned-range variance); 20% of captions are dropped to the empty prompt so that
classifier-free guidance works. ``--stage both`` trains the two models side by side (one
optimizer, one EMA); ``--stage base`` trains the base alone; ``--stage upsample --base FOLDER``
trains an upsampler for an existing GLIDE pipeline folder (its tokenizer and base model are kept).
The core ``TrainCommand`` does the rest: AdamW, EMA, clipping, checkpoints and ``--resume``,
``torchrun`` (DDP), and the final GLIDEPipeline folder of EMA weights.

Example:
    diffusers-hub train glide --out glide-demo --steps 3000 --batch-size 16 --threads 1
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers_hub_ddim.scheduler import DDIMScheduler
from diffusers_hub_ddpm.scheduler import DDPMScheduler
from diffusers_hub_latent_diffusion import shapes
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from diffusers_hub.training import TrainCommand, TrainJob
from diffusers_hub.training.distributed import DistributedContext
from diffusers_hub.training.losses import sample_timesteps
from diffusers_hub_glide.losses import hybrid_loss
from diffusers_hub_glide.pipeline import GLIDEPipeline
from diffusers_hub_glide.tokenizer import END_OF_TEXT, GLIDETokenizer
from diffusers_hub_glide.unet import GLIDEUNetModel

__all__ = [
    "COMMAND",
    "GLIDEStages",
    "base_config",
    "base_scheduler",
    "build_parser",
    "caption_tokenizer",
    "main",
    "shapes_data",
    "stages_loss",
    "upsample_config",
    "upsample_scheduler",
]


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


def _add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``train glide`` besides the common training ones."""
    g = p.add_argument_group("data")
    g.add_argument("--num-images", type=int, default=4000, help="training images drawn")
    g.add_argument("--resolution", type=int, default=32, help="base side (upsampler: 2x)")
    g.add_argument("--data-seed", type=int, default=0, help="seed of the drawn images")
    g.add_argument("--uncond-prob", type=float, default=0.2, help="caption drop rate")

    g = p.add_argument_group("text")
    g.add_argument("--text-ctx", type=int, default=16, help="padded token length")
    g.add_argument("--vocab-size", type=int, default=96, help="BPE size (own vocabulary)")
    g.add_argument(
        "--release-vocab", action="store_true", help="use the release's GPT-2 BPE (50,257 tokens)"
    )

    g = p.add_argument_group("model")
    g.add_argument("--width", type=int, default=16, help="model_channels of both UNets")
    g.add_argument(
        "--stage", choices=("both", "base", "upsample"), default="both", help="models to train"
    )
    g.add_argument("--base", type=Path, default=None, help="--stage upsample: a GLIDE folder")
    g.add_argument(
        "--upsample-x0-weight",
        type=float,
        default=1.0,
        metavar="W",
        help="weight the upsampler's noise MSE by min(max(1, 1/SNR(t)), W), so that at high "
        "noise it counts as an image MSE (1: the plain hybrid loss)",
    )
    g.add_argument(
        "--init",
        type=Path,
        default=None,
        help="a GLIDE folder: start from its weights and tokenizer (continue or fine-tune)",
    )


class GLIDEStages(nn.Module):
    """The models trained by one run: ``base`` and/or ``upsample`` (GLIDEUNetModel or None).

    ``forward`` runs each model present on its own inputs, so that one DDP wrapper sees both.
    """

    def __init__(self, base: GLIDEUNetModel | None, upsample: GLIDEUNetModel | None) -> None:
        super().__init__()
        self.base = base
        self.upsample = upsample

    def forward(self, inputs: Mapping[str, tuple[Any, ...]]) -> dict[str, Tensor]:
        """``{"base": (x_t, t, tokens, mask, None), "upsample": (..., low_res)}`` -> outputs."""
        out: dict[str, Tensor] = {}
        for name, args in inputs.items():
            model = getattr(self, name)
            out[name] = model(*args).sample
        return out


def stages_loss(
    schedulers: Mapping[str, Any], pad_id: int, uncond_prob: float, upsample_x0_weight: float = 1.0
) -> Any:
    """The ``TrainJob`` loss: the hybrid loss of each stage, summed, its terms logged.

    A batch is ``(high, low, tokens, mask)``; each caption is dropped (all padding) with
    probability ``uncond_prob``; each stage draws its own t and noise.

    ``upsample_x0_weight`` W > 1 weights each upsampler sample's noise MSE by
    ``min(max(1, 1 / SNR(t)), W)``, ``SNR = abar / (1 - abar)``. The noise error equals
    ``sqrt(SNR)`` times the error of the implied image, so the plain noise MSE barely sees the
    image where SNR is small, and there the low-resolution input is all the model has to go on;
    with the weight the loss counts as an image MSE down to SNR = 1 / W (a truncated-SNR
    weighting).
    """

    def loss(model: nn.Module, batch: Any, _scheduler: Any, generator: torch.Generator) -> Any:
        high, low, tokens, mask = batch
        device = high.device
        drop = torch.rand(high.shape[0], generator=generator, device=generator.device) < uncond_prob
        drop = drop.to(device)[:, None]
        tokens = torch.where(drop, torch.full_like(tokens, pad_id), tokens)
        mask = mask & ~drop
        inputs: dict[str, tuple[Any, ...]] = {}
        draws: dict[str, tuple[Tensor, Tensor, Tensor, Tensor]] = {}
        for name, scheduler in schedulers.items():
            x0 = low if name == "base" else high
            t = sample_timesteps(
                x0.shape[0],
                int(scheduler.config.num_train_timesteps),
                generator=generator,
                device=device,
            )
            noise = torch.randn(x0.shape, generator=generator, device=generator.device).to(device)
            x_t = scheduler.add_noise(x0, noise, t)
            inputs[name] = (x_t, t, tokens, mask, None if name == "base" else low)
            draws[name] = (x0, x_t, noise, t)
        outputs = model(inputs)
        terms: dict[str, Tensor] = {}
        total = torch.zeros((), device=device)
        for name, (x0, x_t, noise, t) in draws.items():
            abar = schedulers[name].alphas_cumprod.to(device)
            weights = None
            if name == "upsample" and upsample_x0_weight != 1.0:
                weights = ((1.0 - abar[t]) / abar[t]).clamp(min=1.0, max=upsample_x0_weight)
            value, mse, vlb = hybrid_loss(outputs[name], x0, x_t, noise, t, abar, weights)
            total = total + value
            terms[f"{name}_mse"], terms[f"{name}_vlb"] = mse, vlb
        return {"loss": total, **terms}

    return loss


def _prepare(args: argparse.Namespace, ctx: DistributedContext) -> TrainJob:
    """The ``train glide`` job: drawn shapes, the stage models, their schedulers, the pipeline."""
    if args.resolution % 8:
        raise SystemExit(f"--resolution must be a multiple of 8, got {args.resolution}")
    if args.upsample_x0_weight < 1.0:
        raise SystemExit(f"--upsample-x0-weight must be at least 1, got {args.upsample_x0_weight}")
    if args.base is not None and (args.stage != "upsample" or args.init is not None):
        raise SystemExit("--base FOLDER goes with --stage upsample, without --init")
    if args.stage == "upsample" and args.base is None and args.init is None:
        raise SystemExit("--stage upsample needs --base FOLDER (or --init FOLDER)")
    source = args.init or args.base
    previous = GLIDEPipeline.from_pretrained(source) if source is not None else None
    high, low, captions = shapes_data(args.num_images, args.data_seed, args.resolution)
    if previous is not None:
        tokenizer = previous.tokenizer
        if previous.unet.config.sample_size != args.resolution:
            raise SystemExit(
                f"{source}: its base model is {previous.unet.config.sample_size} px, "
                f"--resolution is {args.resolution}"
            )
    elif args.release_vocab:
        tokenizer = GLIDETokenizer.from_release()
        tokenizer.model_max_length = args.text_ctx
    else:
        tokenizer = caption_tokenizer(captions, args.vocab_size, args.text_ctx)
    enc = tokenizer(captions, max_length=args.text_ctx)
    schedulers: dict[str, Any] = {}
    if args.stage in ("both", "base"):
        schedulers["base"] = base_scheduler()
    if args.stage in ("both", "upsample"):
        schedulers["upsample"] = upsample_scheduler()
    fields = {
        "base": base_config(args.resolution, tokenizer.vocab_size, args.text_ctx, args.width),
        "upsample": upsample_config(
            args.resolution, tokenizer.vocab_size, args.text_ctx, args.width
        ),
    }

    def start(name: str) -> GLIDEUNetModel | None:
        if name not in schedulers:
            return None
        found = getattr(previous, "unet" if name == "base" else "upsample_unet", None)
        if args.init is not None and found is not None:
            model = GLIDEUNetModel(found.config)
            model.load_state_dict(found.state_dict())
            return model
        return GLIDEUNetModel(fields[name])

    def build() -> GLIDEStages:
        return GLIDEStages(start("base"), start("upsample"))

    def export(stages: nn.Module, _scheduler: Any) -> GLIDEPipeline:
        assert isinstance(stages, GLIDEStages)
        kept = getattr(previous, "upsample_unet", None)
        upsample = stages.upsample if stages.upsample is not None else kept
        return GLIDEPipeline(
            unet=stages.base if stages.base is not None else previous.unet,  # type: ignore[union-attr]
            scheduler=schedulers.get("base") or previous.scheduler,  # type: ignore[union-attr]
            tokenizer=tokenizer,
            upsample_unet=upsample,
            upsample_scheduler=(
                schedulers.get("upsample") or getattr(previous, "upsample_scheduler", None)
                if upsample is not None
                else None
            ),
        )

    return TrainJob(
        model=build,
        dataset=TensorDataset(high, low, enc.input_ids, enc.attention_mask),
        scheduler=next(iter(schedulers.values())),
        export=export,
        loss=stages_loss(
            schedulers, tokenizer.pad_token_id, args.uncond_prob, args.upsample_x0_weight
        ),
        saved="GLIDEPipeline",
    )


COMMAND = TrainCommand(
    "glide",
    "Train a small GLIDE (base + upsampler) on drawn captioned shapes; save a GLIDEPipeline.",
    _add_arguments,
    _prepare,
    defaults={
        "steps": 3000,
        "batch_size": 16,
        "lr": 5e-4,
        "ema_decay": 0.995,
        "checkpoint_every": 250,
        "log_every": 50,
    },
)

#: The ``train glide`` parser and entry point (its ``diffusers_hub_trainers`` hook target).
build_parser, main = COMMAND.build_parser, COMMAND.main

if __name__ == "__main__":
    raise SystemExit(main())
