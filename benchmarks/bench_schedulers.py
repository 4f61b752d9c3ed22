"""Scheduler step time: DDPMScheduler and DDIMScheduler against the diffusers package.

Targets (issues: ddpm, ddim): our ``step`` takes at most the diffusers time. Both schedulers get
the same inputs (fp32 CPU tensors, batch (1, 3, 32, 32) and (8, 3, 32, 32)); the median over many
calls of each configuration is reported with the ratio ours / diffusers (< 1 is faster).

Usage: ``python benchmarks/bench_schedulers.py`` (or ``make bench``).
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

CALLS = 400
REPEATS = 7


def median_call_time(fn: Callable[[], Any], calls: int = CALLS, repeats: int = REPEATS) -> float:
    """Median over ``repeats`` blocks of the mean seconds per call of ``fn`` (after warm-up)."""
    for _ in range(20):
        fn()
    blocks = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        blocks.append((time.perf_counter() - start) / calls)
    return statistics.median(blocks)


def _cases() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(label, scheduler kind, config, step kwargs)."""
    return [
        ("DDPM fixed_small eps clip", "ddpm", {}, {}),
        (
            "DDPM fixed_large, no clip",
            "ddpm",
            {"variance_type": "fixed_large", "clip_sample": False},
            {},
        ),
        (
            "DDIM eta=0 (LDM config)",
            "ddim",
            {
                "beta_schedule": "scaled_linear",
                "beta_start": 0.00085,
                "beta_end": 0.012,
                "steps_offset": 1,
                "set_alpha_to_one": False,
                "clip_sample": False,
            },
            {"eta": 0.0},
        ),
        ("DDIM eta=0 clip", "ddim", {}, {"eta": 0.0}),
        ("DDIM eta=1 v_prediction", "ddim", {"prediction_type": "v_prediction"}, {"eta": 1.0}),
    ]


def run() -> list[tuple[str, tuple[int, ...], float, float]]:
    """Rows of (case, batch shape, ours seconds/step, diffusers seconds/step)."""
    import diffusers
    from diffusers_hub_ddim.scheduler import DDIMScheduler
    from diffusers_hub_ddpm.scheduler import DDPMScheduler

    torch.set_num_threads(1)
    ours_classes = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}
    ref_classes = {"ddpm": diffusers.DDPMScheduler, "ddim": diffusers.DDIMScheduler}
    rows = []
    for shape in ((1, 3, 32, 32), (8, 3, 32, 32)):
        g = torch.Generator().manual_seed(0)
        sample = torch.randn(shape, generator=g)
        model_output = torch.randn(shape, generator=g)
        for label, kind, config, step_kwargs in _cases():
            ours, ref = ours_classes[kind](**config), ref_classes[kind](**config)
            ours.set_timesteps(50)
            ref.set_timesteps(50)
            t = ours.timesteps[10]  # a 0-dim tensor, as a pipeline loop passes it
            gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)

            def call_ours(o=ours, t=t, kw=step_kwargs, gen=gen_a, m=model_output, x=sample) -> Any:
                return o.step(m, t, x, generator=gen, **kw)

            def call_ref(r=ref, t=t, kw=step_kwargs, gen=gen_b, m=model_output, x=sample) -> Any:
                return r.step(m, t, x, generator=gen, **kw)

            # interleave the two measurements so that machine noise hits both alike
            a, b = [], []
            for _ in range(3):
                a.append(median_call_time(call_ours))
                b.append(median_call_time(call_ref))
            rows.append((label, shape, min(a), min(b)))
    return rows


def main() -> int:
    if importlib.util.find_spec("diffusers") is None:
        print("diffusers is not installed: nothing to compare against")
        return 0
    rows = run()
    print(f"{'case':28s} {'batch':>14s} {'ours us':>9s} {'diffusers us':>13s} {'ratio':>6s}")
    worst = 0.0
    for label, shape, ours, ref in rows:
        ratio = ours / ref
        worst = max(worst, ratio)
        print(
            f"{label:28s} {'x'.join(map(str, shape)):>14s} {ours * 1e6:9.1f} "
            f"{ref * 1e6:13.1f} {ratio:6.2f}"
        )
    print(f"worst ratio ours/diffusers: {worst:.2f} (target <= 1.00)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
