"""Measure the prompt following of the latent-diffusion demo (or any shapes-trained pipeline).

The pipeline generates one image for each of the 50 held-out prompts of the shapes data set
(``shapes.held_out_prompts()``: captions never used in training), with a fixed seed, at guidance
6 and without guidance (scale 1). The pixel-statistics checker (``shapes.check_image``) reads the
colour, shape, position and size back from each image, and we report how often they agree with the
prompt: colour, shape, both (the demo's bar: >= 80% of the prompts at guidance 6), and position /
size over the prompts that name one. For reference, the checker's agreement on real data-set
images is printed too.

Usage:
    python plugins/latent-diffusion/scripts/evaluate_demo.py [--model FOLDER] [--steps 50]
        [--seed 0] [--guidance 6 1] [--grid grid.png]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: The demo's bar: colour and shape both right for this fraction of the prompts at guidance 6.
BOTH_BAR = 0.8
DEMO_GUIDANCE = 6.0


@dataclass
class PromptScores:
    """Agreement of generated images with their prompts at one guidance scale."""

    guidance_scale: float
    colour: float
    shape: float
    both: float
    position: float
    size: float
    seconds: float

    def line(self) -> str:
        """One printable line."""
        return (
            f"guidance {self.guidance_scale:g}: colour {self.colour:.0%}  shape {self.shape:.0%}  "
            f"both {self.both:.0%}  position {self.position:.0%}  size {self.size:.0%}  "
            f"({self.seconds:.1f} s)"
        )


def score(prompts: list[str], images: np.ndarray) -> dict[str, float]:
    """Agreement rates of ``images`` ((N, H, W, 3) in [0, 1]) with ``prompts``."""
    from diffusers_hub_latent_diffusion.shapes import check_image, parse_prompt

    hits: dict[str, list[bool]] = {
        "colour": [],
        "shape": [],
        "both": [],
        "position": [],
        "size": [],
    }
    for prompt, image in zip(prompts, images, strict=True):
        wanted = parse_prompt(prompt)
        verdict = check_image(image)
        colour = verdict.colour == wanted["colour"]
        shape = verdict.shape == wanted["shape"]
        hits["colour"].append(colour)
        hits["shape"].append(shape)
        hits["both"].append(colour and shape)
        for key in ("position", "size"):
            if wanted[key] is not None:
                hits[key].append(getattr(verdict, key) == wanted[key])
    return {k: float(np.mean(v)) if v else float("nan") for k, v in hits.items()}


def generate(
    pipe: object, prompts: list[str], guidance_scale: float, steps: int, seed: int
) -> np.ndarray:
    """(N, H, W, 3) images in [0, 1], one per prompt, from one seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    out = pipe(  # type: ignore[operator]
        prompts,
        guidance_scale=guidance_scale,
        num_inference_steps=steps,
        generator=generator,
        output_type="np",
    )
    return np.asarray(out.images)


def evaluate(
    model: str | Path,
    *,
    steps: int = 50,
    seed: int = 0,
    guidance_scales: tuple[float, ...] = (DEMO_GUIDANCE, 1.0),
) -> tuple[list[PromptScores], dict[float, np.ndarray]]:
    """Generate for the held-out prompts at each guidance scale and score the images.

    Returns:
        The scores per guidance scale and the images ((50, H, W, 3) in [0, 1]) per scale.
    """
    from diffusers_hub_latent_diffusion.shapes import held_out_prompts

    from diffusers_hub import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(model))
    pipe.set_progress_bar_config(disable=True)
    prompts = list(held_out_prompts())
    results, images = [], {}
    for scale in guidance_scales:
        start = time.perf_counter()
        generated = generate(pipe, prompts, scale, steps, seed)
        seconds = time.perf_counter() - start
        rates = score(prompts, generated)
        results.append(PromptScores(scale, seconds=seconds, **rates))
        images[scale] = generated
    return results, images


def checker_on_real_data(num: int = 1000, seed: int = 99) -> float:
    """Fraction of real data-set images whose colour and shape the checker gets right."""
    from diffusers_hub_latent_diffusion.shapes import check_image, make_dataset

    images, _, specs = make_dataset(num, seed)
    right = [
        (v.colour, v.shape) == (s.colour, s.shape)
        for v, s in zip((check_image(x) for x in images), specs, strict=True)
    ]
    return float(np.mean(right))


def save_grid(images: np.ndarray, path: Path, columns: int = 10) -> None:
    """Save (N, H, W, 3) images in [0, 1] as one PNG grid."""
    from PIL import Image

    n, h, w, _ = images.shape
    rows = -(-n // columns)
    grid = np.ones((rows * h, columns * w, 3), dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = image
    Image.fromarray((grid * 255).round().astype(np.uint8)).save(path)


def main() -> None:
    from diffusers_hub_latent_diffusion.hooks import DEMO_FOLDER

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEMO_FOLDER), help="pipeline folder (the demo)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--guidance", type=float, nargs="+", default=[DEMO_GUIDANCE, 1.0])
    parser.add_argument("--grid", type=Path, default=None, help="save a grid per guidance scale")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"checker on real images: {checker_on_real_data():.1%} colour+shape right")
    results, images = evaluate(
        args.model, steps=args.steps, seed=args.seed, guidance_scales=tuple(args.guidance)
    )
    for result in results:
        print(result.line())
        if args.grid is not None:
            path = args.grid.with_name(f"{args.grid.stem}-g{result.guidance_scale:g}.png")
            save_grid(images[result.guidance_scale], path)
            print(f"  wrote {path}")
    bar = next((r for r in results if r.guidance_scale == DEMO_GUIDANCE), None)
    if bar is not None:
        verdict = "passes" if bar.both >= BOTH_BAR else "misses"
        print(f"bar (both >= {BOTH_BAR:.0%} at guidance {DEMO_GUIDANCE:g}): {verdict}")


if __name__ == "__main__":
    main()
