"""``diffusers-hub demo``: the embedded demo weights of the first-party plugins in one picture.

Three labelled rows, sampled on the spot from the weights the plugins ship (no network):

1. DDPM: the ddpm plugin's digits UNet (16x16) with ``DDPMScheduler``, ancestral sampling;
2. DDIM: the same UNet and the same starting noise, deterministic DDIM steps (eta 0);
3. latent diffusion: the latent-diffusion plugin's text-to-image model (32x32), one prompt per
   tile, classifier-free guidance.

Tiles are scaled up with nearest-neighbour to :data:`TILE` pixels, so the pixels stay visible. A
row whose plugin is not installed is left out with a line saying how to install it. Defaults take
about 20 s of sampling on 2 CPU cores.

Example:
    >>> from diffusers_hub.demo import compose, sample_rows  # doctest: +SKIP
    >>> compose(sample_rows(samples=4)).save("demo.png")  # doctest: +SKIP

References: Ho et al. 2020 (DDPM, arXiv:2006.11239); Song et al. 2020 (DDIM, arXiv:2010.02502);
Rombach et al. 2022 (latent diffusion, arXiv:2112.10752).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from diffusers_hub import registry
from diffusers_hub.errors import DiffusersHubError, RegistryError

if TYPE_CHECKING:
    import PIL.Image
    import PIL.ImageFont

__all__ = ["PROMPTS", "TILE", "DemoRow", "compose", "sample_rows"]

#: Prompts of the latent-diffusion row, in the demo model's 19-word vocabulary.
PROMPTS = (
    "a red circle",
    "a blue square",
    "a green triangle",
    "a yellow circle",
    "a small red square",
    "a large blue circle",
    "a yellow triangle",
    "a green square",
)
#: Side of a tile in the picture, in pixels.
TILE = 96
#: Layout, in pixels: space between tiles and rows, around the picture, and the text lines.
GAP = 6
MARGIN = 16
HEADING_H = 34
LABEL_H = 22
CAPTION_H = 18
BACKGROUND = (255, 255, 255)
INK = (33, 33, 33)
MUTED = (110, 110, 110)


@dataclass(frozen=True)
class DemoRow:
    """One sampled row of the demo picture.

    Attributes:
        title: the row's label (method and settings).
        images: the samples, as the pipeline returned them.
        captions: one caption per image (the prompts), or ``None``.
        seconds: wall-clock time of the pipeline call.
    """

    title: str
    images: list[PIL.Image.Image]
    captions: list[str] | None
    seconds: float


def _load(name: str, device: str | None) -> Any:
    pipe = registry.pipeline(name).from_pretrained(registry.demo_checkpoint(name))
    if device is not None:
        pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sample_rows(
    *,
    samples: int = 8,
    ddpm_steps: int = 250,
    ddim_steps: int = 50,
    ldm_steps: int = 50,
    guidance_scale: float = 6.0,
    seed: int = 0,
    device: str | None = None,
    report: Callable[[str], None] | None = None,
) -> list[DemoRow]:
    """Sample the demo rows from the embedded demo weights.

    Args:
        samples: images per row (the prompts repeat past :data:`PROMPTS`).
        ddpm_steps: DDPM steps (the demo UNet was trained with 1000; 250 keep its quality).
        ddim_steps: DDIM steps, eta 0.
        ldm_steps: DDIM steps of the latent-diffusion row.
        guidance_scale: classifier-free guidance of the latent-diffusion row (1 = none).
        seed: seeds each row's ``torch.Generator``; DDPM and DDIM start from the same noise.
        device: a torch device for all three pipelines (default: where they load, the CPU).
        report: called with one line per row as it starts, finishes or is left out.

    Returns:
        The rows that could be sampled, in order (DDPM, DDIM, latent diffusion).

    Raises:
        DiffusersHubError: ``samples`` or a step count is below 1, or no row could be sampled
            because none of the plugins is installed.
    """
    import torch

    for flag, value in (
        ("--samples", samples),
        ("--ddpm-steps", ddpm_steps),
        ("--ddim-steps", ddim_steps),
        ("--ldm-steps", ldm_steps),
    ):
        if value < 1:
            raise DiffusersHubError(f"{flag} must be at least 1, got {value}")
    say = report or (lambda line: None)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(samples)]
    plans: list[tuple[str, str, str, dict[str, Any], list[str] | None]] = [
        (
            "ddpm",
            "diffusers-hub[ddpm]",
            f"DDPM: {ddpm_steps} ancestral steps of the digits UNet (16x16)",
            {"batch_size": samples, "num_inference_steps": ddpm_steps},
            None,
        ),
        (
            "ddim",
            "diffusers-hub[ddim]",
            f"DDIM: {ddim_steps} deterministic steps, the same UNet and starting noise",
            {"batch_size": samples, "num_inference_steps": ddim_steps, "eta": 0.0},
            None,
        ),
        (
            "latent-diffusion",
            "diffusers-hub[latent-diffusion]",
            f"Latent diffusion: text to image (32x32), {ldm_steps} DDIM steps, "
            f"guidance {guidance_scale:g}",
            {
                "prompt": prompts,
                "num_inference_steps": ldm_steps,
                "guidance_scale": guidance_scale,
                "eta": 0.0,
            },
            prompts,
        ),
    ]
    rows = []
    for name, extra, title, options, captions in plans:
        try:
            pipe = _load(name, device)
        except RegistryError as exc:
            say(f'{title.split(":")[0]}: left out ({exc}; pip install "{extra}")')
            continue
        say(f"{title} ...")
        generator = torch.Generator(device=pipe.device).manual_seed(seed)
        start = time.perf_counter()
        images = pipe(generator=generator, output_type="pil", **options).images
        seconds = time.perf_counter() - start
        say(f"  {len(images)} images in {seconds:.1f} s")
        rows.append(DemoRow(title, list(images), captions, seconds))
    if not rows:
        raise DiffusersHubError(
            'no plugin with demo weights is installed: pip install "diffusers-hub[all]"'
        )
    return rows


def _font(size: int) -> PIL.ImageFont.ImageFont | PIL.ImageFont.FreeTypeFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1, with FreeType
    except (TypeError, AttributeError, OSError):
        return ImageFont.load_default()


def _upscale(image: PIL.Image.Image, tile: int) -> PIL.Image.Image:
    """``image`` in RGB, scaled by the largest integer factor that fits a ``tile`` square."""
    import PIL.Image

    factor = max(1, tile // max(image.size))
    image = image.convert("RGB")
    return image.resize((image.width * factor, image.height * factor), PIL.Image.Resampling.NEAREST)


def _fit(text: str, font: Any, width: int) -> str:
    """``text`` cut with an ellipsis to ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def compose(
    rows: Sequence[DemoRow], *, tile: int = TILE, title: str | None = None
) -> PIL.Image.Image:
    """Lay the rows out as one RGB picture: a title, then per row a label, tiles and captions.

    Args:
        rows: the sampled rows (see :func:`sample_rows`).
        tile: the side of a tile in pixels; each image is scaled up by an integer factor,
            nearest-neighbour, and centred in its tile.
        title: the line at the top (default: what the picture shows).

    Returns:
        The picture, ``MARGIN`` pixels of white around the content.
    """
    import PIL.Image
    from PIL import ImageDraw

    heading, label, caption = _font(18), _font(14), _font(12)
    columns = max(len(row.images) for row in rows)
    width = 2 * MARGIN + columns * tile + (columns - 1) * GAP
    height = 2 * MARGIN + HEADING_H
    for row in rows:
        height += LABEL_H + tile + (CAPTION_H if row.captions else 0) + 2 * GAP
    picture = PIL.Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    text = title or "diffusers-hub demo: the plugins' embedded demo weights, sampled just now"
    draw.text((MARGIN, MARGIN), _fit(text, heading, width - 2 * MARGIN), fill=INK, font=heading)
    y = MARGIN + HEADING_H
    for row in rows:
        draw.text((MARGIN, y), _fit(row.title, label, width - 2 * MARGIN), fill=INK, font=label)
        y += LABEL_H
        for i, image in enumerate(row.images):
            x = MARGIN + i * (tile + GAP)
            big = _upscale(image, tile)
            picture.paste(big, (x + (tile - big.width) // 2, y + (tile - big.height) // 2))
            if row.captions:
                words = _fit(row.captions[i].removeprefix("a "), caption, tile)
                offset = (tile - caption.getlength(words)) / 2
                draw.text((x + offset, y + tile + 3), words, fill=MUTED, font=caption)
        y += tile + (CAPTION_H if row.captions else 0) + 2 * GAP
    return picture
