"""The plugin's example processor, a working starting point that you replace with your own.

An image processor: turns PIL images or arrays into the (B, C, H, W) tensors that image models
take (resized, channels first, scaled to [-1, 1]) and back (``postprocess``). Its options live in a
validated config saved as ``preprocessor_config.json``, so that it loads and saves with a
pipeline folder like every other component.

Processors are the components that are not neural networks: tokenizers, feature extractors,
image processors. The Processor protocol asks for ``__call__``, ``from_pretrained`` and
``save_pretrained`` (see ``diffusers_hub.protocols.Processor``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import PIL.Image
import torch
from diffusers_hub.config import ComponentConfig, ConfigMixin, PretrainedMixin
from pydantic import Field

__all__ = ["{{ class_name }}", "{{ class_name }}Config"]

ImageInput = PIL.Image.Image | np.ndarray | Sequence[PIL.Image.Image | np.ndarray]

_RESAMPLE = {
    "nearest": PIL.Image.Resampling.NEAREST,
    "bilinear": PIL.Image.Resampling.BILINEAR,
    "bicubic": PIL.Image.Resampling.BICUBIC,
    "lanczos": PIL.Image.Resampling.LANCZOS,
}


class {{ class_name }}Config(ComponentConfig):
    """The processor's config (``preprocessor_config.json``).

    Attributes:
        size: output height and width in pixels.
        resample: the resampling filter used to resize.
        mode: ``"RGB"`` (3 channels) or ``"L"`` (grayscale, 1 channel).
        do_normalize: map [0, 1] to [-1, 1] (the range diffusion models work in).
    """

    size: int = Field(default=32, ge=1)
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bicubic"
    mode: Literal["RGB", "L"] = "RGB"
    do_normalize: bool = True


class {{ class_name }}(ConfigMixin, PretrainedMixin):
    """Images to model tensors and back; ``from_pretrained`` (from :class:`PretrainedMixin`) reads
    ``preprocessor_config.json`` from a folder, a pipeline folder or a Hub repo id.

    Example:
        >>> import PIL.Image
        >>> processor = {{ class_name }}(size=16)
        >>> processor(PIL.Image.new("RGB", (40, 30))).shape
        torch.Size([1, 3, 16, 16])
    """

    config_class = {{ class_name }}Config
    config: {{ class_name }}Config
    config_name: ClassVar[str] = "preprocessor_config.json"
    default_subfolder: ClassVar[str | None] = "feature_extractor"

    def save_pretrained(self, directory: str | os.PathLike[str], **options: Any) -> None:
        """Write ``preprocessor_config.json`` into ``directory``."""
        self.save_config(directory)

    def __call__(self, images: ImageInput) -> torch.Tensor:
        """Images to a model input.

        Args:
            images: a PIL image, an (H, W) / (H, W, C) uint8 or [0, 1] float array, or a list
                of them.

        Returns:
            (B, C, size, size) float32 tensor in [-1, 1] (in [0, 1] without ``do_normalize``).
        """
        c = self.config
        items = [images] if isinstance(images, PIL.Image.Image | np.ndarray) else list(images)
        if not items:
            raise ValueError("no images given")
        arrays = []
        for item in items:
            image = item if isinstance(item, PIL.Image.Image) else _array_to_pil(item)
            image = image.convert(c.mode).resize((c.size, c.size), _RESAMPLE[c.resample])
            array = np.asarray(image, dtype=np.float32) / 255.0
            arrays.append(array[..., None] if array.ndim == 2 else array)
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        return batch * 2.0 - 1.0 if c.do_normalize else batch

    def postprocess(self, tensor: torch.Tensor) -> list[PIL.Image.Image]:
        """A (B, C, H, W) model output (in the range ``__call__`` produces) to PIL images."""
        x = tensor.detach().float().cpu()
        x = (x + 1.0) / 2.0 if self.config.do_normalize else x
        array = (x.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        if array.shape[-1] == 1:
            return [PIL.Image.fromarray(a[..., 0]) for a in array]
        return [PIL.Image.fromarray(a) for a in array]


def _array_to_pil(array: np.ndarray) -> PIL.Image.Image:
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return PIL.Image.fromarray(array)
