"""The files samples are written to and read from: PNG images, contact sheets and WAV audio.

``diffusers-hub generate`` and ``diffusers-hub sample`` both write through these functions, and
every write is atomic (:func:`atomic_path`): a killed run leaves either the old file or the new
one, never a truncated one. ``diffusers_hub.cli.image_grid`` and ``diffusers_hub.cli.read_wav``
are the public names of :func:`image_grid` and :func:`read_wav`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffusers_hub.errors import DiffusersHubError

if TYPE_CHECKING:  # numpy, PIL and scipy load on first use: the CLI starts without them
    import numpy as np
    import PIL.Image

__all__ = [
    "atomic_path",
    "image_grid",
    "read_png",
    "read_wav",
    "to_uint8_images",
    "write_image",
    "write_wav",
]


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block succeeds, else removed."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def to_uint8_images(images: Any) -> np.ndarray:
    """(B, H, W, C) uint8 of a pipeline's images: floats in [0, 1] (NHWC arrays, NCHW or NHWC
    tensors, one image without the batch axis) rounded as ``numpy_to_pil`` does, or PIL images.

    Raises:
        DiffusersHubError: the images are not 3-d or 4-d.
    """
    import numpy as np
    import PIL.Image

    if isinstance(images, list) and all(isinstance(i, PIL.Image.Image) for i in images):
        return np.stack(
            [np.asarray(i)[..., None] if i.mode == "L" else np.asarray(i) for i in images]
        )
    tensor = hasattr(images, "detach")
    array: np.ndarray = (
        images.detach().cpu().float().numpy() if tensor else np.asarray(images, np.float32)
    )
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise DiffusersHubError(f"cannot save images of shape {array.shape}")
    if array.shape[1] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
    out: np.ndarray = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return out


def _pil(image: np.ndarray) -> PIL.Image.Image:
    import PIL.Image

    return PIL.Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def image_grid(images: Sequence[PIL.Image.Image], gap: int = 1) -> PIL.Image.Image:
    """Paste images into a near-square grid (row-major), all cells the size of the first image.

    Cells are separated by ``gap`` pixels of grey when there is more than one image.
    """
    import PIL.Image

    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    gap = gap if len(images) > 1 else 0
    width, height = images[0].size
    mode = images[0].mode
    fill = 128 if mode == "L" else (128,) * len(mode)
    grid = PIL.Image.new(mode, (cols * (width + gap) - gap, rows * (height + gap) - gap), fill)
    for i, image in enumerate(images):
        x, y = (i % cols) * (width + gap), (i // cols) * (height + gap)
        grid.paste(image.convert(mode), (x, y))
    return grid


def write_image(path: Path, images: np.ndarray) -> None:
    """Write (H, W, C) uint8 (one channel: grayscale), or (B, H, W, C) as their grid, in the
    format of ``path``'s suffix (``.png``, ``.jpg``, ...)."""
    picture = image_grid([_pil(i) for i in images]) if images.ndim == 4 else _pil(images)
    with atomic_path(path) as tmp:
        picture.save(tmp)


def read_png(path: Path, mode: str | None = None) -> np.ndarray:
    """A PNG as a uint8 array ((H, W) grayscale, (H, W, C) colour, or converted to ``mode``)."""
    import numpy as np
    import PIL.Image

    with PIL.Image.open(path) as image:
        return np.asarray(image.convert(mode) if mode else image)


def write_wav(path: Path, audio: Any, rate: int) -> None:
    """Write a (channels, samples) or (samples,) waveform in [-1, 1] as a float32 WAV."""
    import numpy as np
    from scipy.io import wavfile

    tensor = hasattr(audio, "detach")
    data = audio.detach().cpu().float().numpy() if tensor else np.asarray(audio, np.float32)
    if data.ndim == 2:  # (channels, samples) -> (samples, channels)
        data = data[0] if data.shape[0] == 1 else data.T
    with atomic_path(path) as tmp:
        wavfile.write(tmp, rate, np.clip(data, -1.0, 1.0))


def read_wav(path: str | Path) -> tuple[int, np.ndarray]:
    """(sampling rate, (L,) float32 mono samples in [-1, 1]) of a WAV file (``scipy.io.wavfile``).

    Integer PCM is scaled by its full range; several channels are averaged.

    Raises:
        DiffusersHubError: the file is missing or not a readable WAV file.
    """
    import numpy as np
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except (OSError, ValueError) as exc:
        raise DiffusersHubError(f"{path}: cannot be read as a WAV file ({exc})") from None
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float64) - (info.max + info.min + 1) / 2) / (
            (info.max + 1 - info.min) / 2
        )
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return int(rate), data
