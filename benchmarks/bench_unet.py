"""Benchmark: UNet2DModel forward with the google/ddpm-cifar10-32 config, ours vs diffusers.

Random weights, loaded identically into both models; float32 on CPU under ``torch.inference_mode``;
batch 1 and batch 8. Each repetition runs the two models back to back (interleaved, so that load
from other processes hits both alike); we report the median. The FLOP floor is the forward's FLOP
count (``torch.utils.flop_counter.FlopCounterMode``) divided by the measured float32 throughput of
a large ``torch.mm``; the ratio ``ours / floor`` says how far the forward is from that bound (it can
fall below 1 where convolutions run faster than ``torch.mm``, as with oneDNN vs MKL on AMD CPUs).

The profile (``--profile``, on by default in ``main``) shows where one forward's time goes, for
both libraries: ``torch.profiler`` self CPU time of the ATen operators grouped by class
(convolution, matmul, attention, norm, activation, elementwise, layout/copy, other) beside the
forward's wall time; the rest of the wall time (Python, module calls, dispatch) is "overhead".

``--only ours`` (or ``diffusers``) times one model alone, as a sampling loop runs it: the two
models' forwards are not interleaved, so the C allocator may hand the memory of each forward's
largest tensors back to the kernel between forwards and fault it in again (minor page faults,
printed per forward). Run it once per model, each in its own process, to compare.

Usage:
    python benchmarks/bench_unet.py [--repeats N] [--threads T] [--channels-last] [--no-profile]
    python benchmarks/bench_unet.py --only {ours,diffusers} [--repeats N] [--threads T]

``run(report)`` is the entry point for ``make bench``: it calls ``report(row)`` once per batch size
with a dict (keys below) and returns the rows.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from diffusers_hub_ddpm.unet_2d import CIFAR10_CONFIG

TARGET_RATIO = 0.85  # issue 12: ours <= 0.85x the diffusers time


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Float32 GFLOP/s of an (n x n) @ (n x n) ``torch.mm`` on CPU (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def count_flops(model: torch.nn.Module, sample: torch.Tensor, timestep: torch.Tensor) -> int:
    """FLOPs of one forward, counted on the functional (non-oneDNN) path."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.backends.mkldnn.flags(enabled=False), torch.inference_mode(), counter:
        model(sample, timestep)
    return int(counter.get_total_flops())


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _minor_faults() -> int:
    """Minor page faults of this process so far (each a 4 KiB page first touched)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_alone(
    which: str, batch_sizes: tuple[int, ...], repeats: int, warmup: int = 3
) -> list[dict[str, Any]]:
    """Median ms and minor page faults per forward of one model (``"ours"`` or ``"diffusers"``)
    run alone, forward after forward."""
    model = _models(channels_last=False)[0 if which == "ours" else 1]  # the other is dropped
    rows = []
    for batch in batch_sizes:
        sample = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
        timestep = torch.tensor(500)
        times, faults = [], 0
        with torch.inference_mode():
            for _ in range(warmup):
                model(sample, timestep)
            for _ in range(repeats):
                before = _minor_faults()
                times.append(_timed(lambda: model(sample, timestep)))  # noqa: B023
                faults += _minor_faults() - before
        ms = statistics.median(times) * 1e3
        rows.append({"model": which, "batch": batch, "ms": ms, "faults": faults / repeats})
    return rows


def _models(channels_last: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    import diffusers
    from diffusers_hub_ddpm.unet_2d import UNet2DModel

    torch.manual_seed(0)
    reference = diffusers.UNet2DModel(**CIFAR10_CONFIG).eval()
    ours = UNet2DModel(**CIFAR10_CONFIG).eval()
    ours.load_state_dict(reference.state_dict())
    if channels_last:
        reference.to(memory_format=torch.channels_last)
        ours.to(memory_format=torch.channels_last)
    return ours, reference


def run(
    report: Callable[[dict[str, Any]], None] | None = None,
    *,
    batch_sizes: tuple[int, ...] = (1, 8),
    repeats: int = 7,
    warmup: int = 2,
    channels_last: bool = False,
) -> list[dict[str, Any]]:
    """Time both forwards and report one row per batch size.

    Row keys: ``benchmark``, ``batch``, ``threads``, ``ours_ms``, ``diffusers_ms``, ``ratio``
    (ours / diffusers, target <= 0.9), ``gflop`` (per forward), ``matmul_gflops``, ``floor_ms``,
    ``ours_over_floor``, ``max_abs_diff`` (outputs of the two models), ``meets_target``.
    """
    ours, reference = _models(channels_last)
    rate = matmul_gflops()
    rows = []
    for batch in batch_sizes:
        gen = torch.Generator().manual_seed(batch)
        sample = torch.randn(batch, 3, 32, 32, generator=gen)
        if channels_last:
            sample = sample.contiguous(memory_format=torch.channels_last)
        timestep = torch.tensor(500)
        flops = count_flops(ours, sample, timestep)
        ours_times: list[float] = []
        ref_times: list[float] = []
        with torch.inference_mode():
            for _ in range(warmup):
                ours(sample, timestep)
                reference(sample, timestep)
            for _ in range(repeats):
                ours_times.append(_timed(lambda: ours(sample, timestep)))  # noqa: B023
                ref_times.append(_timed(lambda: reference(sample, timestep)))  # noqa: B023
            diff = (ours(sample, timestep).sample - reference(sample, timestep).sample).abs().max()
        ours_s, ref_s = statistics.median(ours_times), statistics.median(ref_times)
        floor_s = flops / (rate * 1e9)
        row = {
            "benchmark": "unet2d-cifar10-forward" + ("-channels-last" if channels_last else ""),
            "batch": batch,
            "threads": torch.get_num_threads(),
            "ours_ms": ours_s * 1e3,
            "diffusers_ms": ref_s * 1e3,
            "ratio": ours_s / ref_s,
            "gflop": flops / 1e9,
            "matmul_gflops": rate,
            "floor_ms": floor_s * 1e3,
            "ours_over_floor": ours_s / floor_s,
            "max_abs_diff": float(diff),
            "meets_target": ours_s / ref_s <= TARGET_RATIO,
        }
        rows.append(row)
        if report is not None:
            report(row)
    return rows


#: Operator classes of the profile: the first class whose pattern is in an operator name wins.
OP_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("attention", ("scaled_dot_product", "softmax", "bmm", "baddbmm")),
    ("convolution", ("conv", "mkldnn_convolution", "mkldnn::_convolution_pointwise")),
    ("matmul", ("addmm", "aten::mm", "linear", "matmul")),
    ("norm", ("group_norm", "layer_norm", "batch_norm")),
    ("activation", ("silu", "gelu", "sigmoid")),
    ("layout/copy", ("copy_", "contiguous", "clone", "cat", "empty", "to", "permute", "view",
                     "reshape", "transpose", "expand", "slice", "as_strided", "unfold")),
    ("elementwise", ("add", "mul", "div", "sub", "exp", "sin", "cos", "pow", "sqrt", "neg")),
)  # fmt: skip


def op_class(name: str) -> str:
    """The profile class of an ATen operator name (``"other"`` when none matches)."""
    for label, patterns in OP_CLASSES:
        if any(p in name for p in patterns):
            return label
    return "other"


def profile_forward(
    model: torch.nn.Module, sample: torch.Tensor, timestep: torch.Tensor, repeats: int = 3
) -> dict[str, float]:
    """Milliseconds per forward by operator class (self CPU time), plus ``wall`` and
    ``overhead`` (wall time not spent inside any ATen operator)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        model(sample, timestep)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(repeats):
                model(sample, timestep)
            wall = (time.perf_counter() - start) / repeats
    per_class: dict[str, float] = {}
    for event in prof.key_averages():
        if not event.key.startswith(("aten::", "mkldnn::")):
            continue
        label = op_class(event.key)
        per_class[label] = per_class.get(label, 0.0) + event.self_cpu_time_total / 1e3 / repeats
    per_class["wall"] = wall * 1e3
    per_class["overhead"] = per_class["wall"] - sum(v for k, v in per_class.items() if k != "wall")
    return per_class


def print_profiles(batch_sizes: tuple[int, ...] = (1, 8), channels_last: bool = False) -> None:
    """Print the per-class profile of both forwards for each batch size."""
    ours, reference = _models(channels_last)
    for batch in batch_sizes:
        sample = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
        timestep = torch.tensor(500)
        profiles = {
            "ours": profile_forward(ours, sample, timestep),
            "diffusers": profile_forward(reference, sample, timestep),
        }
        labels = [label for label, _ in OP_CLASSES] + ["other", "overhead", "wall"]
        print(f"profile, batch {batch}: ms per forward (torch.profiler self CPU time)")
        print(f"{'class':>12} {'ours':>9} {'diffusers':>10} {'ours %':>7}")
        for label in labels:
            a, b = profiles["ours"].get(label, 0.0), profiles["diffusers"].get(label, 0.0)
            share = 100 * a / profiles["ours"]["wall"]
            print(f"{label:>12} {a:>9.2f} {b:>10.2f} {share:>6.1f}%")


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'batch':>5} {'thr':>3} {'ours ms':>9} {'diffusers ms':>12} {'ratio':>6} "
        f"{'GFLOP':>6} {'mm GF/s':>8} {'floor ms':>8} {'ours/floor':>10} {'max|diff|':>9}"
    )
    print(rows[0]["benchmark"] if rows else "")
    print(header)
    for r in rows:
        print(
            f"{r['batch']:>5} {r['threads']:>3} {r['ours_ms']:>9.1f} {r['diffusers_ms']:>12.1f} "
            f"{r['ratio']:>6.3f} {r['gflop']:>6.2f} {r['matmul_gflops']:>8.1f} {r['floor_ms']:>8.1f} "
            f"{r['ours_over_floor']:>10.2f} {r['max_abs_diff']:>9.1e}"
        )
    print(f"target: ratio <= {TARGET_RATIO}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--only",
        choices=("ours", "diffusers"),
        default=None,
        help="time this model alone (no interleaving) and count its page faults",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only:
        print(f"{'model':>9} {'batch':>5} {'thr':>3} {'ms':>8} {'faults/forward':>14}")
        threads = torch.get_num_threads()
        for r in time_alone(args.only, tuple(args.batch), args.repeats):
            print(
                f"{r['model']:>9} {r['batch']:>5} {threads:>3} {r['ms']:>8.1f} {r['faults']:>14.0f}"
            )
        return
    rows = run(
        batch_sizes=tuple(args.batch), repeats=args.repeats, channels_last=args.channels_last
    )
    _print_table(rows)
    if args.profile:
        print_profiles(tuple(args.batch), args.channels_last)


if __name__ == "__main__":
    main()
