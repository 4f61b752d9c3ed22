"""Benchmark on CUDA: ours vs diffusers, fp16 and bf16, eager and ``torch.compile``.

Three cases, each with both libraries' modules holding the same random weights, measured in the
same run (the two libraries alternate every repetition; medians are reported):

- ``ldm-unet``: the CompVis/ldm-text2im-large-256 UNet (872 M parameters, ``bench_ldm``'s config),
  one guided step at 256 px: latents (2, 4, 32, 32), text features (2, 77, 1280).
- ``cifar10-unet``: the google/ddpm-cifar10-32 UNet2DModel (``bench_unet``'s config), batch 1
  and 64.
- ``ldm-generate``: a whole guided generation (one prompt, DDIM, 50 steps, eta 0, decode) by
  each library's pipeline, loaded from the same saved folder (``bench_ldm.prepare``).

For each: per-step time and peak memory (the high-water mark of allocated CUDA memory during the
call, above what was allocated before it: activations and workspace, not the resident weights),
and the largest difference between the two outputs. Targets (issue 12): ours <= 0.8x diffusers'
time at equal dtype and <= 1.0x its peak memory. Under ``compile`` both libraries' denoisers go
through ``torch.compile`` (default mode); the first call's compile time is reported apart.

Usage:
    python benchmarks/cuda_bench.py [--device cuda|cpu] [--dtypes fp16 bf16] [--modes eager compile]
        [--only ldm-unet cifar10-unet ldm-generate] [--repeats N] [--steps N] [--json FILE]

``--device cpu`` swaps in toy-size configurations (a few thousand parameters, 3 steps) so that
the script itself is exercised by the test suite without a GPU; its figures say nothing about
speed, and its memory column is the process's RSS high-water mark above the RSS before the call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ldm
import bench_unet

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TARGET_TIME = 0.8
TARGET_MEMORY = 1.0
MIB = 2**20
CASES = ("ldm-unet", "cifar10-unet", "ldm-generate")

#: Toy configurations for ``--device cpu``: the real configs' keys with tiny widths.
TOY_UNET = {
    **bench_ldm.UNET_CONFIG,
    "sample_size": 8,
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 32,
    "norm_num_groups": 8,
}
TOY_VAE = {
    **bench_ldm.VAE_CONFIG,
    "block_out_channels": [8, 8, 16, 16],  # four levels: diffusers' pipeline assumes f = 8
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 64,
}
TOY_BERT = {
    **bench_ldm.BERT_CONFIG,
    "encoder_layers": 1,
    "encoder_ffn_dim": 64,
    "encoder_attention_heads": 2,
    "head_dim": 16,
    "d_model": 32,
}
TOY_CIFAR = {
    **bench_unet.CIFAR10_CONFIG,
    "sample_size": 16,
    "block_out_channels": [32, 32],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
}


class Device:
    """Synchronised timing and peak memory on CUDA or (toy mode) the CPU."""

    def __init__(self, name: str) -> None:
        self.type = torch.device(name).type
        self.name = name

    def sync(self) -> None:
        if self.type == "cuda":
            torch.cuda.synchronize()

    def timed(self, fn: Callable[[], object]) -> float:
        self.sync()
        start = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - start

    def peak(self, fn: Callable[[], object]) -> float:
        """Bytes of memory the call needed above what was in use before it."""
        self.sync()
        if self.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fn()
            self.sync()
            return float(torch.cuda.max_memory_allocated() - base)
        base = bench_ldm.rss_bytes()
        bench_ldm.reset_peak()
        fn()
        return float(max(0, bench_ldm.peak_bytes() - base))


def _pair(ours_cls: Any, ref_cls: Any, config: dict[str, Any]) -> tuple[Any, Any]:
    """Both libraries' models of ``config`` with the same random weights (float32, CPU)."""
    torch.manual_seed(0)
    reference = ref_cls(**config).eval()
    ours = ours_cls(**config).eval()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def _compare(
    dev: Device,
    case: str,
    batch: int,
    dtype: str,
    mode: str,
    calls: tuple[Callable[[], Any], Callable[[], Any]],
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """Alternate the two calls; medians of time, the peak memory of one more call each."""
    compile_s = [dev.timed(call) for call in calls]  # first call: compiles under ``compile``
    for _ in range(warmup):
        for call in calls:
            call()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for call, bucket in zip(calls, times, strict=True):
            bucket.append(dev.timed(call))
    peaks = [dev.peak(call) for call in calls]
    outs = [call() for call in calls]
    diff = (outs[0].float() - outs[1].float()).abs().max().item()
    ours_s, ref_s = statistics.median(times[0]), statistics.median(times[1])
    return {
        "case": case,
        "batch": batch,
        "dtype": dtype,
        "mode": mode,
        "ours_ms": ours_s * 1e3,
        "diffusers_ms": ref_s * 1e3,
        "ratio": ours_s / ref_s,
        "ours_peak_mib": peaks[0] / MIB,
        "diffusers_peak_mib": peaks[1] / MIB,
        "memory_ratio": peaks[0] / peaks[1] if peaks[1] else float("nan"),  # nan: too small
        "first_call_s": compile_s,
        "max_abs_diff": diff,
        "meets_target": ours_s / ref_s <= TARGET_TIME
        and (not peaks[1] or peaks[0] <= TARGET_MEMORY * peaks[1]),
    }


def _prepared(module: Any, dev: Device, dtype: torch.dtype, mode: str) -> Any:
    module = module.to(dev.name, dtype)
    return torch.compile(module) if mode == "compile" else module


def bench_models(args: argparse.Namespace, dev: Device) -> list[dict[str, Any]]:
    """``ldm-unet`` and ``cifar10-unet``: one forward (a guided step) per repetition."""
    import diffusers
    from diffusers_hub_ddpm.unet_2d import UNet2DModel
    from diffusers_hub_latent_diffusion.unet_2d_condition import UNet2DConditionModel

    toy = dev.type == "cpu"
    rows = []
    plans = []
    if "ldm-unet" in args.only:
        config = TOY_UNET if toy else bench_ldm.UNET_CONFIG
        pair = _pair(UNet2DConditionModel, diffusers.UNet2DConditionModel, config)
        plans.append(("ldm-unet", pair, config, [2]))
    if "cifar10-unet" in args.only:
        config = TOY_CIFAR if toy else bench_unet.CIFAR10_CONFIG
        pair = _pair(UNet2DModel, diffusers.UNet2DModel, config)
        plans.append(("cifar10-unet", pair, config, [1, 4] if toy else [1, 64]))
    for case, (ours_cpu, ref_cpu), config, batches in plans:
        for dtype_name in args.dtypes:
            dtype = DTYPES[dtype_name]
            for mode in args.modes:
                ours = _prepared(ours_cpu, dev, dtype, mode)
                ref = _prepared(ref_cpu, dev, dtype, mode)
                for batch in batches:
                    gen = torch.Generator().manual_seed(batch)
                    size = config["sample_size"]
                    x = torch.randn(batch, config["in_channels"], size, size, generator=gen)
                    x = x.to(dev.name, dtype)
                    t = torch.tensor(981, device=dev.name)
                    extra: tuple[torch.Tensor, ...] = ()
                    if case == "ldm-unet":
                        ctx = torch.randn(batch, 77, config["cross_attention_dim"], generator=gen)
                        extra = (ctx.to(dev.name, dtype),)

                    def call(model: Any, x: Any = x, t: Any = t, extra: Any = extra) -> Any:
                        with torch.inference_mode():
                            return model(x, t, *extra).sample

                    calls = (lambda m=ours: call(m), lambda m=ref: call(m))
                    row = _compare(dev, case, batch, dtype_name, mode, calls, args.repeats, 2)
                    rows.append(row)
                    _print_row(row)
                del ours, ref, calls
                _free(dev)
    return rows


def bench_generate(args: argparse.Namespace, dev: Device, folder: Path) -> list[dict[str, Any]]:
    """``ldm-generate``: a whole guided generation by each library's pipeline."""
    import diffusers

    from diffusers_hub import DiffusionPipeline

    diffusers.utils.logging.set_verbosity_error()
    rows = []
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        for mode in args.modes:
            ours = DiffusionPipeline.from_pretrained(folder, torch_dtype=dtype).to(dev.name)
            ref = diffusers.LDMTextToImagePipeline.from_pretrained(folder, torch_dtype=dtype)
            ref = ref.to(dev.name)
            if mode == "compile":
                ours.compile()
                ref.unet = torch.compile(ref.unet)
            for pipe in (ours, ref):
                pipe.set_progress_bar_config(disable=True)

            def generate(pipe: Any) -> Any:
                out = pipe(
                    [bench_ldm.PROMPT],
                    num_inference_steps=args.steps,
                    guidance_scale=6.0,
                    eta=0.0,
                    generator=torch.Generator().manual_seed(0),
                    output_type="np",
                ).images
                return torch.as_tensor(out)

            calls = (lambda p=ours: generate(p), lambda p=ref: generate(p))
            row = _compare(dev, "ldm-generate", 1, dtype_name, mode, calls, args.gen_repeats, 0)
            row["steps"] = args.steps
            rows.append(row)
            _print_row(row)
            del ours, ref, calls
            _free(dev)
    return rows


def _free(dev: Device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def _print_row(r: dict[str, Any]) -> None:
    print(
        f"{r['case']:>13} b{r['batch']:<3} {r['dtype']:>4} {r['mode']:>7} | ours {r['ours_ms']:9.2f} ms"
        f" | diffusers {r['diffusers_ms']:9.2f} ms | ratio {r['ratio']:5.3f} | peak "
        f"{r['ours_peak_mib']:8.1f} / {r['diffusers_peak_mib']:8.1f} MiB = "
        f"{r['memory_ratio']:5.3f} | max|diff| {r['max_abs_diff']:.1e}"
        f"{'' if r['meets_target'] else '  (misses target)'}",
        flush=True,
    )


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse ``argv``, run the selected cases and return their rows (also printed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--dtypes", nargs="+", default=["fp16", "bf16"], choices=list(DTYPES))
    parser.add_argument("--modes", nargs="+", default=["eager", "compile"])
    parser.add_argument("--only", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--gen-repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="generation steps (50; toy: 3)")
    parser.add_argument("--folder", help="keep or reuse the saved LDM pipeline folder")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device; --device cpu runs the toy-size configurations")
    dev = Device(args.device)
    toy = dev.type == "cpu"
    args.steps = args.steps or (3 if toy else 50)
    if dev.type == "cuda":
        print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    rows = bench_models(args, dev)
    if "ldm-generate" in args.only:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(args.folder or tmp)
            if not (folder / "model_index.json").is_file():
                configs = {"unet": TOY_UNET, "vae": TOY_VAE, "bert": TOY_BERT} if toy else {}
                bench_ldm.prepare(folder, **configs)
            rows += bench_generate(args, dev, folder)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    missed = [r for r in rows if not r["meets_target"]]
    print(
        f"{len(rows) - len(missed)} of {len(rows)} rows meet <= {TARGET_TIME}x time and "
        f"<= {TARGET_MEMORY}x peak memory{' (toy sizes: not a speed figure)' if toy else ''}"
    )
    return rows


if __name__ == "__main__":
    run()
