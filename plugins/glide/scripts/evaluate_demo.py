"""Measure the GLIDE demo (or any shapes-trained GLIDE pipeline): prompt following and upsampling.

Prompt following: the base model generates one image per held-out prompt of the shapes data set
(``shapes.held_out_prompts()``: 50 captions never used in training) with a fixed seed, with
guidance (default 3) and without (scale 1); the project's pixel-statistics checker
(``shapes.check_image``) reads colour and shape back and we report how often they agree.

Upsampling: for the same 50 prompts a ground-truth image is drawn at the upsampler's resolution
(64 px), box-downsampled to the base resolution (32 px) and upsampled by the pipeline's upsampler
(``GLIDEPipeline.upsample_images``: DDIM, ``fast27``, noise scaled by 0.997, from pure noise or,
with ``--upsample-strength`` s < 1, from the bilinear resize noised to s * T) and by bilinear
interpolation; we report the PSNR of both against the drawn image.

Usage:
    python plugins/glide/scripts/evaluate_demo.py [--model FOLDER] [--steps 100]
        [--guidance 3 1] [--seed 0] [--grid grid.png] [--upsample-strength 1 0.5] [--by-timestep]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def agreement(prompts: list[str], images: np.ndarray) -> dict[str, float]:
    """Colour, shape and both agreement of (N, H, W, 3) images in [0, 1] with their prompts."""
    from diffusers_hub_latent_diffusion.shapes import check_image, parse_prompt

    colour = shape = both = 0
    for prompt, image in zip(prompts, images, strict=True):
        want = parse_prompt(prompt)
        got = check_image(image)
        c, s = got.colour == want["colour"], got.shape == want["shape"]
        colour, shape, both = colour + c, shape + s, both + (c and s)
    n = len(prompts)
    return {"colour": colour / n, "shape": shape / n, "both": both / n}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over the batch of the PSNR (dB) between images in [0, 1]."""
    mse = ((a - b) ** 2).flatten(1).mean(dim=1).clamp(min=1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


def upsampler_truth(pipe: object, prompts: list[str], seed: int) -> tuple[Tensor, Tensor]:
    """Drawn images of ``prompts`` at the upsampler's size in [-1, 1] and their 8-bit
    box-downsampled versions (the low-resolution input the upsampler sees)."""
    from diffusers_hub_glide.pipeline import quantize
    from diffusers_hub_latent_diffusion.shapes import ShapeSpec, parse_prompt, render

    size = pipe.upsample_unet.config.sample_size  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    truth = []
    for prompt in prompts:
        want = parse_prompt(prompt)
        spec = ShapeSpec(
            str(want["colour"]),
            str(want["shape"]),
            str(want["position"] or "center"),
            str(want["size"] or "large"),
        )
        truth.append(render(spec, rng, size))
    high = torch.from_numpy(np.stack(truth)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return high, quantize(F.avg_pool2d(high, 2))


def upsampler_psnr(
    pipe: object, prompts: list[str], seed: int, strength: float = 1.0
) -> tuple[float, float]:
    """(upsampler PSNR, bilinear PSNR) against drawn high-resolution images of ``prompts``: the
    pipeline's own upsampling (``upsample_images``, ``fast27``, temp 0.997) at ``strength``."""
    up = pipe.upsample_unet  # type: ignore[attr-defined]
    size = up.config.sample_size
    high, low = upsampler_truth(pipe, prompts, seed)
    x = pipe.upsample_images(  # type: ignore[attr-defined]
        low, prompts, strength=strength, generator=torch.Generator().manual_seed(seed)
    )
    bilinear = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    unit = (high + 1) / 2
    return psnr(((x + 1) / 2).clamp(0, 1), unit), psnr(((bilinear + 1) / 2).clamp(0, 1), unit)


def upsampler_by_timestep(pipe: object, prompts: list[str], seed: int) -> list[str]:
    """One denoising step of the upsampler at several t, from the drawn images noised to t:
    the PSNR of the implied image and the RMS error of its mean colour (per image and channel,
    in [-1, 1]), which show where the upsampler stops using its low-resolution input."""
    up = pipe.upsample_unet  # type: ignore[attr-defined]
    abar = pipe.upsample_scheduler.alphas_cumprod  # type: ignore[attr-defined]
    high, low = upsampler_truth(pipe, prompts, seed)
    text = pipe.encode_prompts(up, prompts)  # type: ignore[attr-defined]
    lines = []
    for t in (999, 900, 800, 700, 600, 500, 300):
        a = abar[t]
        noise = torch.randn(high.shape, generator=torch.Generator().manual_seed(seed + t))
        x_t = a.sqrt() * high + (1 - a).sqrt() * noise
        with torch.no_grad():
            eps = up(x_t, torch.tensor(t), text=text, low_res=low).sample[:, :3]
        x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        colour = float((x0.mean((2, 3)) - high.mean((2, 3))).pow(2).mean().sqrt())
        image = psnr(((x0.clamp(-1, 1) + 1) / 2), (high + 1) / 2)
        lines.append(f"t = {t}: image {image:.1f} dB, mean colour error {colour:.3f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="pipeline folder (default: the demo)")
    parser.add_argument("--steps", default="100", help="base respacing ('100', 'ddim50', ...)")
    parser.add_argument("--guidance", type=float, nargs="*", default=[3.0, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path, default=None, help="write a grid of the images")
    parser.add_argument(
        "--upsample-strength",
        type=float,
        nargs="+",
        default=[1.0],
        help="upsampler start strengths to measure (1: from noise, the release's sampler)",
    )
    parser.add_argument(
        "--by-timestep", action="store_true", help="also the upsampler's one-step error by t"
    )
    args = parser.parse_args()

    from diffusers_hub_glide.hooks import DEMO_FOLDER
    from diffusers_hub_latent_diffusion.shapes import held_out_prompts

    from diffusers_hub import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(args.model or DEMO_FOLDER)
    pipe.set_progress_bar_config(disable=True)
    prompts = list(held_out_prompts())
    steps = int(args.steps) if args.steps.isdigit() else args.steps
    rows = []
    for scale in args.guidance:
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(args.seed)
        images = pipe(  # type: ignore[operator]
            prompts,
            num_inference_steps=steps,
            guidance_scale=scale,
            upsample=False,
            generator=gen,
            output_type="np",
        ).images
        scores = agreement(prompts, images)
        seconds = time.perf_counter() - start
        print(
            f"guidance {scale:g}: colour {scores['colour']:.0%}  shape {scores['shape']:.0%}  "
            f"both {scores['both']:.0%}  ({seconds:.0f} s, {len(prompts)} prompts)"
        )
        rows.append(images)
    if getattr(pipe, "upsample_unet", None) is not None:
        for strength in args.upsample_strength:
            ours, bilinear = upsampler_psnr(pipe, prompts, args.seed, strength)
            print(
                f"upsampler (strength {strength:g}) PSNR {ours:.2f} dB vs bilinear "
                f"{bilinear:.2f} dB"
            )
        if args.by_timestep:
            print("\n".join(upsampler_by_timestep(pipe, prompts, args.seed)))
    if args.grid is not None and rows:
        from PIL import Image

        grid = np.concatenate([np.concatenate(list(r[:10]), axis=1) for r in rows], axis=0)
        Image.fromarray((grid * 255).round().astype(np.uint8)).save(args.grid)


if __name__ == "__main__":
    main()
