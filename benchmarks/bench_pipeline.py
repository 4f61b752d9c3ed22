"""Benchmark: where the time of a sampling loop goes (pipeline overhead vs UNet forwards).

Targets: DDPM pipeline overhead (pipeline time minus the sum of UNet forwards) under 5%; a 50-step
DDIM pipeline on the google/ddpm-cifar10-32 config spends over 95% of its time in the UNet.
Random weights, fp32 CPU, batch 1. Also the same 50-step DDIM pipeline in diffusers, same weights,
measured in the same run.

Usage: python benchmarks/bench_pipeline.py [--steps N]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from typing import Any

import torch
from bench_unet import CIFAR10_CONFIG


class _ForwardTimer:
    """Adds up the wall time of a module's forwards through forward hooks."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.seconds = 0.0
        self._start = 0.0
        self._handles = [
            module.register_forward_pre_hook(self._pre),
            module.register_forward_hook(self._post),
        ]

    def _pre(self, *_: Any) -> None:
        self._start = time.perf_counter()

    def _post(self, *_: Any) -> None:
        self.seconds += time.perf_counter() - self._start

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def measure(
    pipeline_cls: Any, unet: torch.nn.Module, scheduler: Any, steps: int, **call: Any
) -> tuple[float, float]:
    """(total seconds, seconds inside the UNet) of one generation."""
    pipe = pipeline_cls(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    pipe(
        generator=torch.Generator().manual_seed(0), num_inference_steps=2, output_type="np", **call
    )
    timer = _ForwardTimer(unet)
    start = time.perf_counter()
    pipe(
        generator=torch.Generator().manual_seed(0),
        num_inference_steps=steps,
        output_type="np",
        **call,
    )
    total = time.perf_counter() - start
    timer.remove()
    return total, timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from diffusers_hub_ddim.pipeline import DDIMPipeline
    from diffusers_hub_ddim.scheduler import DDIMScheduler
    from diffusers_hub_ddpm.pipeline import DDPMPipeline
    from diffusers_hub_ddpm.scheduler import DDPMScheduler
    from diffusers_hub_ddpm.unet_2d import UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(**CIFAR10_CONFIG).eval()
    rows = []
    with torch.inference_mode():
        for name, cls, sched in (
            ("DDPM", DDPMPipeline, DDPMScheduler(variance_type="fixed_large")),
            ("DDIM", DDIMPipeline, DDIMScheduler()),
        ):
            total, in_unet = measure(cls, unet, sched, args.steps)
            rows.append((f"ours {name} {args.steps} steps", total, in_unet))
        if importlib.util.find_spec("diffusers") is not None:
            import diffusers

            ref_unet = diffusers.UNet2DModel(**CIFAR10_CONFIG).eval()
            ref_unet.load_state_dict(unet.state_dict())
            total, in_unet = measure(
                diffusers.DDIMPipeline, ref_unet, diffusers.DDIMScheduler(), args.steps
            )
            rows.append((f"diffusers DDIM {args.steps} steps", total, in_unet))
    print(f"{'run':28s} {'total s':>9s} {'in UNet s':>10s} {'UNet share':>11s} {'overhead':>9s}")
    for name, total, in_unet in rows:
        share = in_unet / total
        print(f"{name:28s} {total:9.3f} {in_unet:10.3f} {share:10.1%} {1 - share:9.1%}")
    print("targets: overhead < 5% (DDPM), UNet share > 95% (DDIM)")


if __name__ == "__main__":
    main()
