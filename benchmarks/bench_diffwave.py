"""Benchmark: DiffWave with the matmul upsampler (``upsample_frames``) vs PyTorch's transposed conv.

The release's DiffWave upsamples the mel in every residual layer with two single-channel
``ConvTranspose2d`` (stride 16, kernel 32), which PyTorch runs slowly on CPU; the plugin computes
the same numbers with two matmuls and an overlap-add (``diffusers_hub_bddm.diffwave.
upsample_frames``). This measures both on the same weights in the same run, interleaved, median of
the repetitions: one forward on 1 s of 22,050 Hz audio (the work of one sampling step), for the
release's configuration (30 layers of 128 channels) and the demo's (10 of 16); and one training
step (forward and backward, batch 4 x 1,024 samples) of the demo configuration. The "module" side
is the same model with ``upsample_frames`` replaced by a call of the layer itself, so the two
sides differ in the upsampler only; their outputs are compared.

Usage: python benchmarks/bench_diffwave.py [--repeats N] [--threads T]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from diffusers_hub_bddm import diffwave
from diffusers_hub_bddm.diffwave import DiffWave
from diffusers_hub_bddm.hooks import DEMO_FOLDER

DEMO = DEMO_FOLDER / "diffwave"  # the shipped demo's configuration (its weights are not used)


@contextlib.contextmanager
def module_upsampler() -> Iterator[None]:
    """Run DiffWave's upsamplers as the ``ConvTranspose2d`` modules themselves."""
    fast = diffwave.upsample_frames
    diffwave.upsample_frames = lambda cond, layer: layer(cond)
    try:
        yield
    finally:
        diffwave.upsample_frames = fast


def _model(config: dict[str, int] | Path, train: bool) -> DiffWave:
    """Random weights, the zero-initialised output head included (else the output is 0)."""
    torch.manual_seed(0)
    model = DiffWave.from_config(config).train(train)
    with torch.no_grad():
        torch.nn.init.normal_(model.out_conv.weight, std=0.3)
    return model


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _compare(name: str, fn: Callable[[], torch.Tensor], repeats: int) -> dict[str, float | str]:
    ours_out = fn()
    with module_upsampler():
        module_out = fn()
    diff = float((ours_out - module_out).abs().max())
    ours, module = [], []
    for _ in range(repeats):
        ours.append(_timed(fn))
        with module_upsampler():
            module.append(_timed(fn))
    ours_s, module_s = statistics.median(ours), statistics.median(module)
    return {
        "case": name,
        "ours_s": ours_s,
        "module_s": module_s,
        "ratio": ours_s / module_s,
        "max_abs_diff": diff,
    }


def run(repeats: int = 5) -> list[dict[str, float | str]]:
    rows = []
    torch.manual_seed(1)
    frames = 86  # 1 s of 22,050 Hz audio at hop 256
    for label, config in (("release 30x128", {}), ("demo 10x16", DEMO)):
        model = _model(config, train=False)
        mel = torch.randn(1, 80, frames)
        x = torch.randn(1, 1, frames * 256)
        t = torch.tensor([100.0])

        def forward(model: DiffWave = model, x=x, t=t, mel=mel) -> torch.Tensor:
            with torch.inference_mode():
                return model(x, t, mel).sample

        rows.append(_compare(f"forward 1 s, {label}", forward, repeats))

    model = _model(DEMO, train=True)
    mel, x = torch.randn(4, 80, 4), torch.randn(4, 1, 1024)
    t = torch.randint(0, 200, (4,)).float()

    def train_step() -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        loss = model(x, t, mel).sample.square().mean()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    rows.append(_compare("train step 4 x 1024, demo 10x16", train_step, repeats))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"{'case':36} {'ours':>9} {'module':>9} {'ratio':>7} {'max|diff|':>10}")
    for row in run(args.repeats):
        print(
            f"{row['case']:36} {row['ours_s'] * 1e3:7.1f}ms {row['module_s'] * 1e3:7.1f}ms "
            f"{row['ratio']:6.2f}x {row['max_abs_diff']:10.1e}"
        )


if __name__ == "__main__":
    main()
