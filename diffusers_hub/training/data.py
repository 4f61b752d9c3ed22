"""Training data: image datasets in [-1, 1] and a sampler whose order a checkpoint can resume.

A training dataset yields either an image tensor ``(C, H, W)`` in [-1, 1] or a pair
``(image, label)`` with an integer class label (for class-conditional models).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolderDataset",
    "ResumableDistributedSampler",
    "TensorImageDataset",
    "batches_per_epoch",
    "images_to_unit_range",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def images_to_unit_range(images: torch.Tensor, max_value: float = 255.0) -> torch.Tensor:
    """Map pixel values in [0, max_value] to [-1, 1] (float32).

    Args:
        images: (..., H, W) integer or float pixels.
        max_value: the value that maps to 1.

    Returns:
        Tensor of the same shape, ``2 * x / max_value - 1``.
    """
    return images.to(torch.float32) * (2.0 / max_value) - 1.0


class TensorImageDataset(Dataset[torch.Tensor | tuple[torch.Tensor, int]]):
    """A dataset over an in-memory image tensor, optionally with integer labels.

    Args:
        images: (N, C, H, W) float tensor in [-1, 1].
        labels: (N,) integer tensor, or None for unconditional data.
        random_flip: flip each image left-right with probability 1/2 (global torch RNG).

    Example:
        >>> ds = TensorImageDataset(torch.zeros(4, 1, 8, 8), torch.arange(4))
        >>> image, label = ds[1]
        >>> tuple(image.shape), label
        ((1, 8, 8), 1)
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        random_flip: bool = False,
    ) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if labels is not None and labels.shape != (images.shape[0],):
            raise ValueError(
                f"labels must be ({images.shape[0]},) to match the images, got {tuple(labels.shape)}"
            )
        self.images = images
        self.labels = labels
        self.random_flip = random_flip

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.random_flip and bool(torch.rand(()) < 0.5):
            image = image.flip(-1)
        if self.labels is None:
            return image
        return image, int(self.labels[index])


class ImageFolderDataset(Dataset[torch.Tensor]):
    """The images found (recursively) under a folder, center-cropped, resized, in [-1, 1].

    Args:
        folder: a folder of image files (``IMAGE_EXTENSIONS``).
        resolution: output height and width.
        channels: 3 (RGB) or 1 (grayscale).
        random_flip: flip each image left-right with probability 1/2 (global torch RNG).
        interpolation: the resize filter.
    """

    def __init__(
        self,
        folder: str | Path,
        resolution: int,
        *,
        channels: Literal[1, 3] = 3,
        random_flip: bool = False,
        interpolation: Literal["bilinear", "bicubic", "nearest", "lanczos"] = "bicubic",
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such folder of training images")
        self.files: Sequence[Path] = sorted(
            p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not self.files:
            raise FileNotFoundError(
                f"{self.folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found"
            )
        if resolution <= 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        self.resolution = resolution
        self.channels = channels
        self.random_flip = random_flip
        self.interpolation = interpolation

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        filters = {
            "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC,
            "nearest": Image.Resampling.NEAREST,
            "lanczos": Image.Resampling.LANCZOS,
        }
        with Image.open(self.files[index]) as opened:
            img = opened.convert("L" if self.channels == 1 else "RGB")
        w, h = img.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
        img = img.resize((self.resolution, self.resolution), filters[self.interpolation])
        array = np.asarray(img, dtype=np.uint8)
        if array.ndim == 2:
            array = array[:, :, None]
        image = images_to_unit_range(torch.from_numpy(array.copy()).permute(2, 0, 1))
        if self.random_flip and bool(torch.rand(()) < 0.5):
            image = image.flip(-1)
        return image


class ResumableDistributedSampler(DistributedSampler[int]):
    """A ``DistributedSampler`` that can start an epoch part-way, for exact resume.

    The order of an epoch depends only on ``seed`` and the epoch number (as in
    ``DistributedSampler``); ``set_epoch(epoch, start=k)`` skips the first ``k`` indices of this
    rank's share, so a run resumed after ``k / batch_size`` batches sees the same batches as an
    uninterrupted one. Works without an initialised process group when ``num_replicas`` and
    ``rank`` are given (one process: 1 and 0).

    Args:
        dataset: the dataset to sample from.
        num_replicas: number of processes.
        rank: this process's rank.
        shuffle: shuffle each epoch.
        seed: the shuffle seed (identical on every rank).
        drop_last: drop the tail that does not divide among the ranks.
    """

    def __init__(
        self,
        dataset: Dataset[object],
        *,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
    ) -> None:
        super().__init__(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's order and skip its first ``start`` indices on this rank."""
        super().set_epoch(epoch)
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start must lie in [0, {self.num_samples}], got {start}")
        self.start = start

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


def batches_per_epoch(num_samples_per_rank: int, batch_size: int) -> int:
    """Full batches one rank draws per epoch (the incomplete last batch is dropped)."""
    return math.floor(num_samples_per_rank / batch_size)
