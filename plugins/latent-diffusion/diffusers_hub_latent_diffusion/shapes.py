"""A procedurally drawn, captioned shapes data set and a pixel-statistics checker for it.

Every image shows one shape (circle, square or upward triangle) of one colour (red, green, blue,
yellow) and one size (small, large) at one of five positions (left, right, top, bottom, center)
on a plain light-grey background. Captions name the colour and the shape, and optionally the size
and the position: ``"a red circle"``, ``"a small blue square on the left"``,
``"a green triangle at the top"``. Everything is deterministic given a seed; images are drawn with
PIL at 4x resolution and box-filtered down (anti-aliased edges).

The checker, :func:`check_image`, reads colour, shape, position and size back from the pixels:
the shape is the largest connected region of saturated pixels (saturation = max - min over RGB,
above half its typical value inside the shape); its colour is the hue of the mean of those pixels;
its shape follows the occupancy of its bounding box's corners, with partial credit for
anti-aliased or blurred pixels (a square fills all four, a circle few, an upward triangle only the
bottom two); its position is the anchor nearest to the centre of its bounding box and its size
follows that box's extent. It is the yardstick of the latent-diffusion demo's prompt following.
The thresholds sit between the values of crisp renders and of renders passed through the demo's
autoencoder (whose decoder rounds the corners of small squares).

Example:
    >>> images, captions, specs = make_dataset(4, seed=0)
    >>> images.shape, images.dtype
    ((4, 32, 32, 3), dtype('uint8'))
    >>> verdict = check_image(images[0])
    >>> (verdict.colour, verdict.shape) == (specs[0].colour, specs[0].shape)
    True
"""

from __future__ import annotations

import colorsys
import re
from collections import deque
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "COLOURS",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "ShapeSpec",
    "Verdict",
    "caption",
    "check_image",
    "held_out_prompts",
    "make_dataset",
    "parse_prompt",
    "random_spec",
    "render",
    "vocabulary",
]

#: Colour name -> nominal RGB (each image jitters it a little).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 165, 55),
    "blue": (40, 75, 220),
    "yellow": (230, 195, 25),
}
#: Hue (degrees) of each colour, used by the checker.
_HUES = {
    name: colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))[0] * 360.0 for name, rgb in COLOURS.items()
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")

#: Position name -> (x, y) centre as a fraction of the image side, and its caption phrase.
POSITIONS: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "left": (0.28, 0.5),
    "right": (0.72, 0.5),
    "top": (0.5, 0.28),
    "bottom": (0.5, 0.72),
}
_POSITION_PHRASES = {
    "center": "in the center",
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
}

#: Size name -> half-extent of the shape as a fraction of the image side (before jitter).
SIZES: dict[str, float] = {"small": 0.16, "large": 0.24}

_SUPERSAMPLE = 4
_BACKGROUND = (175, 235)  # grey level range of the plain background
_COLOUR_JITTER = 14
_POSITION_JITTER = 0.03  # fraction of the side
_SIZE_JITTER = 0.015


@dataclass(frozen=True)
class ShapeSpec:
    """What one image shows.

    Attributes:
        colour: a key of :data:`COLOURS`.
        shape: one of :data:`SHAPES`.
        position: a key of :data:`POSITIONS`.
        size: a key of :data:`SIZES`.
    """

    colour: str
    shape: str
    position: str
    size: str


@dataclass(frozen=True)
class Verdict:
    """What :func:`check_image` reads from an image (None: no shape found).

    Attributes:
        colour, shape, position, size: the estimated attributes, or None.
        fill: area of the shape over the area of its bounding box.
        top_corners, bottom_corners: mean occupancy of the bounding box's top / bottom corners.
    """

    colour: str | None
    shape: str | None
    position: str | None
    size: str | None
    fill: float = 0.0
    top_corners: float = 0.0
    bottom_corners: float = 0.0


# -- captions ---------------------------------------------------------------------------------------


def caption(spec: ShapeSpec, *, with_size: bool = False, with_position: bool = False) -> str:
    """The caption of ``spec``: ``"a [size] colour shape [position phrase]"``."""
    words = ["a"]
    if with_size:
        words.append(spec.size)
    words += [spec.colour, spec.shape]
    if with_position:
        words.append(_POSITION_PHRASES[spec.position])
    return " ".join(words)


_PROMPT_RE = re.compile(
    r"^a (?:(?P<size>small|large) )?(?P<colour>\w+) (?P<shape>\w+)(?: (?P<phrase>.+))?$"
)


def parse_prompt(prompt: str) -> dict[str, str | None]:
    """The attributes a caption asks for: ``colour``, ``shape``, ``position``, ``size`` (or None).

    Raises:
        ValueError: the prompt is not a caption of this data set.
    """
    match = _PROMPT_RE.match(prompt.strip().lower())
    phrases = {v: k for k, v in _POSITION_PHRASES.items()}
    if (
        match is None
        or match["colour"] not in COLOURS
        or match["shape"] not in SHAPES
        or (match["phrase"] is not None and match["phrase"] not in phrases)
    ):
        raise ValueError(f"{prompt!r} is not a caption of the shapes data set")
    return {
        "colour": match["colour"],
        "shape": match["shape"],
        "position": phrases[match["phrase"]] if match["phrase"] else None,
        "size": match["size"],
    }


def vocabulary() -> list[str]:
    """Every word of every caption, sorted (for a tokenizer's ``vocab.txt``)."""
    words = {"a", *SIZES, *COLOURS, *SHAPES}
    for phrase in _POSITION_PHRASES.values():
        words.update(phrase.split())
    return sorted(words)


def _all_full_captions() -> list[str]:
    """Captions naming a size and/or a position (the ones that can be held out), sorted."""
    out = []
    for colour in COLOURS:
        for shape in SHAPES:
            for size in (None, *SIZES):
                for position in (None, *POSITIONS):
                    if size is None and position is None:
                        continue
                    spec = ShapeSpec(colour, shape, position or "center", size or "small")
                    out.append(
                        caption(
                            spec, with_size=size is not None, with_position=position is not None
                        )
                    )
    return sorted(out)


@cache
def held_out_prompts(count: int = 50, seed: int = 1234) -> tuple[str, ...]:
    """Captions never used in training (the demo's evaluation prompts).

    Drawn from the captions that name a size and/or a position, balanced over the 12
    colour-shape pairs (``count // 12`` each, the rest spread by the seed). Training captions that
    would equal one of them drop their size, then their position, words instead.

    Args:
        count: how many prompts.
        seed: the draw's seed.

    Returns:
        The prompts, in a deterministic order.
    """
    rng = np.random.default_rng(seed)
    by_pair: dict[tuple[str, str], list[str]] = {}
    for text in _all_full_captions():
        attrs = parse_prompt(text)
        by_pair.setdefault((str(attrs["colour"]), str(attrs["shape"])), []).append(text)
    pairs = sorted(by_pair)
    per_pair = [count // len(pairs)] * len(pairs)
    for i in rng.permutation(len(pairs))[: count % len(pairs)]:
        per_pair[int(i)] += 1
    chosen: list[str] = []
    for pair, n in zip(pairs, per_pair, strict=True):
        options = by_pair[pair]
        chosen += [options[int(i)] for i in sorted(rng.choice(len(options), n, replace=False))]
    return tuple(chosen)


# -- drawing ------------------------------------------------------------------------------------------


def random_spec(rng: np.random.Generator) -> ShapeSpec:
    """A uniformly drawn colour, shape, position and size."""
    return ShapeSpec(
        colour=list(COLOURS)[int(rng.integers(len(COLOURS)))],
        shape=SHAPES[int(rng.integers(len(SHAPES)))],
        position=list(POSITIONS)[int(rng.integers(len(POSITIONS)))],
        size=list(SIZES)[int(rng.integers(len(SIZES)))],
    )


def render(spec: ShapeSpec, rng: np.random.Generator, resolution: int = 32) -> np.ndarray:
    """Draw ``spec`` with small random jitter of colour, position, size and background.

    Args:
        spec: what to draw.
        rng: the source of the jitter.
        resolution: image height and width in pixels.

    Returns:
        (resolution, resolution, 3) uint8 RGB image.
    """
    big = resolution * _SUPERSAMPLE
    grey = int(rng.integers(_BACKGROUND[0], _BACKGROUND[1] + 1))
    image = Image.new("RGB", (big, big), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    base = np.array(COLOURS[spec.colour])
    fill = tuple(
        int(v) for v in np.clip(base + rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, 3), 0, 255)
    )
    fx, fy = POSITIONS[spec.position]
    fx += rng.uniform(-_POSITION_JITTER, _POSITION_JITTER)
    fy += rng.uniform(-_POSITION_JITTER, _POSITION_JITTER)
    half = (SIZES[spec.size] + rng.uniform(-_SIZE_JITTER, _SIZE_JITTER)) * big
    cx, cy = fx * big, fy * big
    box = (cx - half, cy - half, cx + half, cy + half)
    if spec.shape == "circle":
        draw.ellipse(box, fill=fill)
    elif spec.shape == "square":
        half_square = half * 0.9  # same visual weight as a circle of radius `half`
        draw.rectangle(
            (cx - half_square, cy - half_square, cx + half_square, cy + half_square), fill=fill
        )
    elif spec.shape == "triangle":
        draw.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=fill)
    else:
        raise ValueError(f"unknown shape {spec.shape!r}; expected one of {SHAPES}")
    small = image.resize((resolution, resolution), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8).copy()


def make_dataset(
    num: int,
    seed: int = 0,
    resolution: int = 32,
    *,
    size_probability: float = 0.5,
    position_probability: float = 0.7,
    exclude: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, list[str], list[ShapeSpec]]:
    """Draw ``num`` captioned images.

    Args:
        num: number of images.
        seed: seed of everything drawn.
        resolution: image side in pixels.
        size_probability: chance that a caption names the size.
        position_probability: chance that a caption names the position.
        exclude: captions never to use (default :func:`held_out_prompts`); a caption that equals
            one drops its size words, then its position words.

    Returns:
        ``(images, captions, specs)``: (num, R, R, 3) uint8 images, their captions and specs.
    """
    held = set(held_out_prompts() if exclude is None else exclude)
    rng = np.random.default_rng(seed)
    images = np.empty((num, resolution, resolution, 3), dtype=np.uint8)
    captions: list[str] = []
    specs: list[ShapeSpec] = []
    for i in range(num):
        spec = random_spec(rng)
        with_size = bool(rng.random() < size_probability)
        with_position = bool(rng.random() < position_probability)
        text = caption(spec, with_size=with_size, with_position=with_position)
        if text in held:
            with_size = False
            text = caption(spec, with_size=False, with_position=with_position)
        if text in held:
            text = caption(spec)
        images[i] = render(spec, rng, resolution)
        captions.append(text)
        specs.append(spec)
    return images, captions, specs


# -- the checker --------------------------------------------------------------------------------------

_MIN_SATURATION = 40.0  # max - min over RGB (0..255); the grey background has ~0
_CORNER = 0.25  # corner squares are this fraction of the bounding box's sides
_TRIANGLE_ASYMMETRY = 0.35  # bottom minus top corner occupancy above which it is a triangle
_SQUARE_CORNERS = 0.5  # mean corner occupancy above which it is a square


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a boolean (H, W) mask."""
    height, width = mask.shape
    labels = np.zeros(mask.shape, dtype=np.int32)
    best, best_size, current = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if labels[y0, x0]:
            continue
        current += 1
        labels[y0, x0] = current
        queue = deque([(int(y0), int(x0))])
        size = 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    queue.append((ny, nx))
        if size > best_size:
            best, best_size = current, size
    return labels == best if best else np.zeros_like(mask)


def _hue_name(rgb: np.ndarray) -> str:
    hue = colorsys.rgb_to_hsv(*(float(v) / 255.0 for v in rgb))[0] * 360.0

    def distance(name: str) -> float:
        d = abs(hue - _HUES[name]) % 360.0
        return min(d, 360.0 - d)

    return min(COLOURS, key=distance)


def _shape_features(
    region: np.ndarray, soft: np.ndarray
) -> tuple[float, float, float, tuple[int, int, int, int]]:
    """(fill ratio, top-corner occupancy, bottom-corner occupancy, bbox) of a shape.

    Args:
        region: (H, W) boolean mask of the shape (its bounding box is the box used).
        soft: (H, W) occupancy in [0, 1] (saturation over the shape's typical saturation), so
            anti-aliased or slightly blurred corners count partly.
    """
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    box = soft[y0:y1, x0:x1]
    h, w = box.shape
    fill = float(box.mean())
    ch, cw = max(1, round(h * _CORNER)), max(1, round(w * _CORNER))
    top = (box[:ch, :cw].mean() + box[:ch, -cw:].mean()) / 2.0
    bottom = (box[-ch:, :cw].mean() + box[-ch:, -cw:].mean()) / 2.0
    return fill, float(top), float(bottom), (y0, y1, x0, x1)


def _shape_name(top: float, bottom: float) -> str:
    """Shape from corner occupancy of the bounding box.

    An upward triangle fills its bottom corners only (about 0.75 vs 0); a square fills all four
    (about 0.95; 0.6 when a decoder rounds its corners); a circle few (about 0.25; 0.4 blurred).
    """
    if bottom - top > _TRIANGLE_ASYMMETRY:
        return "triangle"
    return "square" if (top + bottom) / 2.0 > _SQUARE_CORNERS else "circle"


def _occupancy(image: np.ndarray) -> np.ndarray | None:
    """(H, W) saturation over the shape's typical saturation, clipped to [0, 1] (None: no shape)."""
    rgb = image.astype(np.float64)
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    strong = saturation[saturation > _MIN_SATURATION]
    if strong.size < 4:
        return None
    return np.clip(saturation / float(np.percentile(strong, 90)), 0.0, 1.0)  # type: ignore[no-any-return]


def check_image(image: np.ndarray) -> Verdict:
    """Estimate colour, shape, position and size of the shape in an image from its pixels.

    Args:
        image: (H, W, 3) RGB, uint8 in [0, 255] or float in [0, 1].

    Returns:
        The :class:`Verdict` (all None when no saturated region is found).
    """
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(np.asarray(array, dtype=np.float64) * 255.0, 0, 255)
    soft = _occupancy(array)
    if soft is None:
        return Verdict(None, None, None, None)
    # Half the typical saturation: the edge of the anti-aliased border.
    region = _largest_component(soft > 0.5)
    colour = _hue_name(array[region].astype(np.float64).mean(axis=0))
    fill, top, bottom, (y0, y1, x0, x1) = _shape_features(region, soft)
    shape = _shape_name(top, bottom)
    height, width = soft.shape
    # The centre of the bounding box (a triangle's centroid sits low; its box does not).
    cx, cy = (x0 + x1) / (2.0 * width), (y0 + y1) / (2.0 * height)
    position = min(
        POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2
    )
    extent = max(y1 - y0, x1 - x0) / (2.0 * max(height, width))
    threshold = (SIZES["small"] + SIZES["large"]) / 2.0 * (0.95 if shape == "square" else 1.0)
    size = "small" if extent < threshold else "large"
    return Verdict(colour, shape, position, size, fill, top, bottom)
