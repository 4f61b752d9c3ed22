"""A/B in one process: a DDIM pipeline with and without the held oneDNN kernels.

The held kernels (``diffusers_hub.nn._kernels._held_kernel``: re-laid convolution kernels and the
phase kernels of nearest-upsampling convolutions) apply whenever gradients are off, as the
pipelines sample under ``torch.no_grad``. This runs the DDIM pipeline on the google/ddpm-cifar10-32
UNet config (random weights) alternately with them and with the plain oneDNN calls, and prints
the median times and the largest difference between the two paths' images.

Usage:
    python benchmarks/ab_held_kernels.py [--batch 1] [--steps 10] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers_hub_ddim.pipeline import DDIMPipeline
from diffusers_hub_ddim.scheduler import DDIMScheduler
from diffusers_hub_ddpm.unet_2d import CIFAR10_CONFIG, UNet2DModel

from diffusers_hub.nn import _kernels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pipe = DDIMPipeline(UNet2DModel(**CIFAR10_CONFIG).eval(), DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    held = _kernels._held_kernel
    paths = {"held": held, "plain": lambda *_: None}

    def sample(path: str) -> torch.Tensor:
        _kernels._held_kernel = paths[path]  # type: ignore[assignment]
        gen = torch.Generator().manual_seed(0)
        out = pipe(batch_size=args.batch, num_inference_steps=args.steps, generator=gen,
                   output_type="pt")  # fmt: skip
        return out.images  # type: ignore[union-attr]

    try:
        diff = (sample("held") - sample("plain")).abs().max().item()
        times: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.repeats):
            for name in paths:
                start = time.perf_counter()
                sample(name)
                times[name].append(time.perf_counter() - start)
    finally:
        _kernels._held_kernel = held  # type: ignore[assignment]
    med = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"DDIM pipeline, batch {args.batch}, {args.steps} steps, threads {args.threads}: "
        f"held {med['held']:.2f} s, plain {med['plain']:.2f} s, "
        f"ratio {med['held'] / med['plain']:.3f}; max image difference {diff:.1e}"
    )


if __name__ == "__main__":
    main()
