"""Measure the quality of the embedded DDPM demo (or any digits-trained DDPM pipeline folder).

A classifier (scikit-learn MLP, 128 hidden units) is trained on the same data the demo was trained
on (the builtin digits, resized exactly as ``train ddpm --data digits`` does). Then the pipeline
generates samples with a fixed seed, and we report:

- recognized: the fraction of samples the classifier assigns to one class with probability >= 0.9;
- coverage: how many of the 10 digits appear among the recognized samples;
- the same "recognized" fraction on real held-out digits, for reference.

The demo's bar: recognized >= 0.8 of 64 samples and coverage >= 8.

Usage:
    python plugins/ddpm/scripts/evaluate_demo.py [--model FOLDER] [--num-samples 64]
        [--steps 1000] [--seed 0] [--grid grid.png]

Needs scikit-learn (a dev dependency), not needed by the library.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

CONFIDENCE = 0.9
RECOGNIZED_BAR = 0.8
COVERAGE_BAR = 8
#: DDPM steps the demo is evaluated (and meant to be sampled) with.
DEMO_STEPS = 1000


@dataclass
class DemoScores:
    """What ``evaluate`` measured."""

    recognized: float
    coverage: int
    class_counts: dict[int, int] = field(default_factory=dict)
    mean_confidence: float = 0.0
    real_recognized: float = 0.0
    seconds: float = 0.0

    @property
    def passes(self) -> bool:
        """Whether the demo bar holds."""
        return self.recognized >= RECOGNIZED_BAR and self.coverage >= COVERAGE_BAR


def train_classifier(resolution: int, seed: int = 0) -> tuple[Any, float]:
    """An MLP digit classifier on the training data at ``resolution``.

    Returns:
        ``(classifier, real_recognized)``: the classifier fitted on all digits, and the fraction of
        held-out real digits recognized with confidence >= 0.9 by a classifier fitted on 70%.
    """
    from diffusers_hub_ddpm.train import digits_tensors
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    images, labels = digits_tensors(resolution)
    x = images.reshape(len(images), -1).numpy()
    y = labels.numpy()

    def make() -> Any:
        return MLPClassifier(hidden_layer_sizes=(128,), max_iter=1000, random_state=seed)

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=seed)
    held_out = make().fit(x_tr, y_tr).predict_proba(x_te)
    real = float(((held_out.max(1) >= CONFIDENCE) & (held_out.argmax(1) == y_te)).mean())
    return make().fit(x, y), real


def score_samples(classifier: Any, samples: np.ndarray) -> tuple[float, int, dict[int, int], float]:
    """Score (N, H, W) or (N, H, W, 1) samples in [-1, 1]."""
    probs = classifier.predict_proba(samples.reshape(len(samples), -1))
    confident = probs.max(1) >= CONFIDENCE
    classes = probs.argmax(1)[confident]
    counts = dict(sorted(Counter(int(c) for c in classes).items()))
    return float(confident.mean()), len(counts), counts, float(probs.max(1).mean())


def generate(
    model: str | Path,
    num_samples: int,
    steps: int,
    seed: int,
    pipeline: str = "ddpm",
    **call: Any,
) -> tuple[np.ndarray, Any]:
    """Samples (N, H, W, C) in [0, 1] from the pipeline folder, and the pipeline.

    ``pipeline`` is a registry name (``ddpm``, ``ddim``, ...); ``call`` adds arguments such as
    ``eta`` for DDIM.
    """
    from diffusers_hub import registry

    pipe = registry.pipeline(pipeline).from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(seed)
    out = pipe(
        batch_size=num_samples,
        generator=generator,
        num_inference_steps=steps,
        output_type="np",
        **call,
    )
    return np.asarray(out.images), pipe


def evaluate(
    model: str | Path,
    *,
    num_samples: int = 64,
    steps: int = DEMO_STEPS,
    seed: int = 0,
    pipeline: str = "ddpm",
    **call: Any,
) -> tuple[DemoScores, np.ndarray]:
    """Generate ``num_samples`` digits and score them; returns the scores and the samples."""
    start = time.perf_counter()
    images, _ = generate(model, num_samples, steps, seed, pipeline, **call)
    seconds = time.perf_counter() - start
    resolution = images.shape[1]
    classifier, real = train_classifier(resolution)
    recognized, coverage, counts, mean_conf = score_samples(classifier, images * 2.0 - 1.0)
    scores = DemoScores(recognized, coverage, counts, mean_conf, real, seconds)
    return scores, images


def save_grid(images: np.ndarray, path: str | Path, scale: int = 4) -> None:
    """Write (N, H, W, C) images in [0, 1] as a square grid PNG."""
    from PIL import Image

    n, h, w = images.shape[:3]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * (h + 1) + 1, cols * (w + 1) + 1), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = images[
            i, :, :, 0
        ]
    img = Image.fromarray((grid * 255).round().astype(np.uint8))
    img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST).save(path)


def main(argv: list[str] | None = None) -> int:
    """Print the demo's scores; exit code 1 when the bar is missed."""
    from diffusers_hub_ddpm.hooks import DEMO_FOLDER

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(DEMO_FOLDER), help="pipeline folder (default: the demo)")
    p.add_argument("--num-samples", type=int, default=64)
    p.add_argument("--steps", type=int, default=DEMO_STEPS, help="sampling steps")
    p.add_argument("--pipeline", default="ddpm", help="registry name of the sampler: ddpm, ddim")
    p.add_argument("--eta", type=float, default=None, help="DDIM eta (ddim pipeline only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--grid", default=None, help="also write the samples as a grid PNG")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    call = {} if args.eta is None else {"eta": args.eta}
    scores, images = evaluate(
        args.model,
        num_samples=args.num_samples,
        steps=args.steps,
        seed=args.seed,
        pipeline=args.pipeline,
        **call,
    )
    print(f"model: {args.model}")
    print(f"samples: {args.num_samples}, {args.pipeline} steps: {args.steps}, seed: {args.seed}")
    print(f"sampling time: {scores.seconds:.1f} s ({torch.get_num_threads()} threads)")
    print(f"recognized (p >= {CONFIDENCE}): {scores.recognized:.3f} (bar {RECOGNIZED_BAR})")
    print(
        f"classes covered: {scores.coverage}/10 (bar {COVERAGE_BAR}); counts {scores.class_counts}"
    )
    print(f"mean max-probability: {scores.mean_confidence:.3f}")
    print(f"reference, real held-out digits recognized: {scores.real_recognized:.3f}")
    print("PASS" if scores.passes else "FAIL")
    if args.grid:
        save_grid(images, args.grid)
        print(f"wrote {args.grid}")
    return 0 if scores.passes else 1


if __name__ == "__main__":
    raise SystemExit(main())
