"""``diffusers-hub train ddpm``: train a DDPM UNet on a folder of images or the builtin digits.

Example:
    diffusers-hub train ddpm --data digits --resolution 16 --steps 2000 --out ddpm-digits
    diffusers-hub train ddpm --data ./my_images --resolution 32 --steps 50000 --out ddpm-mine
    torchrun --nproc_per_node=2 -m diffusers_hub_ddpm.train --data ./my_images --out ddpm-mine

The output folder holds the final pipeline (``model_index.json``, ``unet/``, ``scheduler/``, the EMA
weights), ``checkpoints/checkpoint-<step>/`` and ``train_log.jsonl``; ``--resume`` continues from the
newest checkpoint exactly.

References:
    Ho, Jain, Abbeel. Denoising Diffusion Probabilistic Models. arXiv:2006.11239 (Algorithm 1).
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffusers_hub.training import TrainCommand

__all__ = [
    "BUILTIN_DATASETS",
    "COMMAND",
    "build_parser",
    "digits_tensors",
    "load_dataset",
    "main",
]

#: Builtin data sets for ``--data``.
BUILTIN_DATASETS = ("digits",)

_DEFAULT_DOWN = ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D")
_DEFAULT_UP = ("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")


def digits_file() -> Path:
    """Path of the shipped ``digits.npz`` (1,797 8x8 digits, see ``data/README.md``)."""
    return Path(str(resources.files("diffusers_hub_ddpm") / "data" / "digits.npz"))


def digits_tensors(resolution: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The builtin digits as training images and their labels.

    The 8x8 images (ink 0..16) are mapped to [-1, 1] (ink is white, +1) and resized to
    ``resolution`` with bilinear interpolation.

    Args:
        resolution: output height and width.

    Returns:
        ``(images, labels)``: (1797, 1, R, R) float32 in [-1, 1] and (1797,) int64 digits.
    """
    with np.load(digits_file()) as data:
        images = torch.from_numpy(data["images"].astype(np.float32))
        labels = torch.from_numpy(data["labels"].astype(np.int64))
    x = images[:, None] * (2.0 / 16.0) - 1.0
    if resolution != x.shape[-1]:
        x = torch.nn.functional.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False
        )
    return x.clamp(-1.0, 1.0).contiguous(), labels


def load_dataset(data: str, resolution: int, channels: int, random_flip: bool) -> Any:
    """The training dataset for ``--data``: a builtin name or a folder of images."""
    from diffusers_hub.training import ImageFolderDataset, TensorImageDataset

    if data == "digits":
        if channels != 1:
            raise SystemExit("--data digits is grayscale: use --channels 1 (the default for it)")
        images, _ = digits_tensors(resolution)
        return TensorImageDataset(images, random_flip=random_flip)
    folder = Path(data)
    if not folder.is_dir():
        raise SystemExit(
            f"--data {data}: neither a folder of images nor a builtin data set "
            f"({', '.join(BUILTIN_DATASETS)})"
        )
    if channels not in (1, 3):
        raise SystemExit(f"--channels must be 1 or 3 for image folders, got {channels}")
    return ImageFolderDataset(folder, resolution, channels=channels, random_flip=random_flip)  # type: ignore[arg-type]


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _str_tuple(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``train ddpm`` besides the common training ones."""
    g = p.add_argument_group("data")
    g.add_argument(
        "--data", required=True, help="a folder of images, or a builtin data set: digits"
    )
    g.add_argument("--resolution", type=int, default=None, help="image size (digits: 16, else 32)")
    g.add_argument("--channels", type=int, default=None, help="1 or 3 (digits: 1, else 3)")
    g.add_argument("--random-flip", action="store_true", help="random left-right flips")

    g = p.add_argument_group("model")
    g.add_argument("--block-out-channels", type=_int_tuple, default=(32, 64, 64))
    g.add_argument("--layers-per-block", type=int, default=1)
    g.add_argument(
        "--down-block-types",
        type=_str_tuple,
        default=None,
        help=f"comma list (default {','.join(_DEFAULT_DOWN)}, trimmed to the levels)",
    )
    g.add_argument(
        "--up-block-types",
        type=_str_tuple,
        default=None,
        help=f"comma list (default {','.join(_DEFAULT_UP)}, trimmed to the levels)",
    )
    g.add_argument("--norm-num-groups", type=int, default=8)
    g.add_argument("--attention-head-dim", type=int, default=None, help="None: one head")
    g.add_argument("--dropout", type=float, default=0.0)

    g = p.add_argument_group("noise schedule")
    g.add_argument("--num-train-timesteps", type=int, default=1000)
    g.add_argument(
        "--beta-schedule",
        default="linear",
        choices=["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"],
    )
    g.add_argument(
        "--prediction-type", default="epsilon", choices=["epsilon", "sample", "v_prediction"]
    )

    g = p.add_argument_group("samples")
    g.add_argument("--sample-images", type=int, default=16, help="images per --sample-every grid")
    g.add_argument("--sample-steps", type=int, default=1000, help="DDPM steps of those samples")


def _block_types(
    given: tuple[str, ...] | None, default: tuple[str, ...], levels: int, up: bool
) -> tuple[str, ...]:
    if given is not None:
        return given
    if levels == len(default):
        return default
    # Plain blocks, with attention at the lowest resolution.
    plain, attn = ("UpBlock2D", "AttnUpBlock2D") if up else ("DownBlock2D", "AttnDownBlock2D")
    blocks = [plain] * levels
    blocks[0 if up else -1] = attn
    return tuple(blocks)


def _ddpm_pipeline(unet: Any, scheduler: Any) -> Any:
    """The saved object: a ``DDPMPipeline`` of the EMA UNet and the scheduler."""
    from diffusers_hub_ddpm.pipeline import DDPMPipeline

    return DDPMPipeline(unet=unet, scheduler=scheduler)


def _sampler(count: int, steps: int) -> Any:
    """The ``--sample-every`` hook: a grid of ``count`` images from the EMA UNet, fixed seed."""

    def sample(unet: Any, scheduler: Any, folder: Path) -> None:
        from diffusers_hub.cli import image_grid

        pipe = _ddpm_pipeline(unet, scheduler)
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator(unet.device).manual_seed(0)
        steps_used = min(steps, scheduler.config.num_train_timesteps)
        images = pipe(batch_size=count, generator=generator, num_inference_steps=steps_used).images
        folder.mkdir(parents=True, exist_ok=True)
        image_grid(images).save(folder / "samples.png")

    return sample


def _prepare(args: argparse.Namespace, ctx: Any) -> Any:
    """The ``train ddpm`` job: the data set, the UNet factory, the scheduler, the pipeline."""
    from diffusers_hub.training import TrainJob
    from diffusers_hub_ddpm.scheduler import DDPMScheduler
    from diffusers_hub_ddpm.unet_2d import UNet2DModel

    builtin = args.data in BUILTIN_DATASETS
    resolution = args.resolution or (16 if builtin else 32)
    channels = args.channels or (1 if builtin else 3)
    dataset = load_dataset(args.data, resolution, channels, args.random_flip)

    levels = len(args.block_out_channels)
    unet_config: dict[str, Any] = {
        "sample_size": resolution,
        "in_channels": channels,
        "out_channels": channels,
        "block_out_channels": args.block_out_channels,
        "layers_per_block": args.layers_per_block,
        "down_block_types": _block_types(args.down_block_types, _DEFAULT_DOWN, levels, up=False),
        "up_block_types": _block_types(args.up_block_types, _DEFAULT_UP, levels, up=True),
        "norm_num_groups": args.norm_num_groups,
        "attention_head_dim": args.attention_head_dim,
        "dropout": args.dropout,
    }
    # Validate the UNet config before the run starts.
    UNet2DModel.config_class.model_validate(unet_config)
    scheduler = DDPMScheduler(
        num_train_timesteps=args.num_train_timesteps,
        beta_schedule=args.beta_schedule,
        prediction_type=args.prediction_type,
        variance_type="fixed_small",
        clip_sample=True,
    )
    return TrainJob(
        model=lambda: UNet2DModel(**unet_config),
        dataset=dataset,
        scheduler=scheduler,
        export=_ddpm_pipeline,
        sample=_sampler(args.sample_images, args.sample_steps),
        saved="DDPM pipeline",
    )


COMMAND = TrainCommand(
    name="ddpm",
    description="Train a DDPM UNet2DModel (noise prediction) and save a DDPMPipeline folder.",
    add_arguments=_add_arguments,
    prepare=_prepare,
    defaults={"batch_size": 64, "lr": 2e-4, "ema_decay": 0.999, "log_every": 50},
)


#: The ``train ddpm`` parser and entry point (its ``diffusers_hub_trainers`` hook target).
build_parser, main = COMMAND.build_parser, COMMAND.main

if __name__ == "__main__":
    raise SystemExit(main())
