"""Tests of the example processor (no conformance kit exists for processors: plain tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers_hub.errors import ConfigError
from diffusers_hub.protocols import missing_members

from {{ package }}.processor import (
    {{ class_name }},
)


def gradient_image(size: int = 16) -> PIL.Image.Image:
    ramp = np.linspace(0, 255, size, dtype=np.float64)
    rgb = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 255 - ramp[None, :]), -1)
    return PIL.Image.fromarray(rgb.round().astype(np.uint8))


def test_satisfies_the_processor_protocol() -> None:
    assert missing_members("processor", {{ class_name }}) == []
    assert missing_members("processor", {{ class_name }}()) == []


def test_shape_dtype_and_range() -> None:
    processor = {{ class_name }}(size=8)
    x = processor([gradient_image(), gradient_image(32)])
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert float(x.min()) < -0.9 and float(x.max()) > 0.9


def test_round_trip_without_resizing_is_exact() -> None:
    image = gradient_image(16)
    processor = {{ class_name }}(size=16)
    back = processor.postprocess(processor(image))[0]
    np.testing.assert_array_equal(np.asarray(back), np.asarray(image))


def test_arrays_and_grayscale() -> None:
    processor = {{ class_name }}(size=4, mode="L", do_normalize=False)
    x = processor(np.full((6, 6, 3), 0.5, dtype=np.float32))
    assert x.shape == (1, 1, 4, 4)
    torch.testing.assert_close(x, torch.full_like(x, 128 / 255))


def test_save_and_load(tmp_path: Path) -> None:
    processor = {{ class_name }}(size=24, resample="nearest")
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["_class_name"] == "{{ class_name }}" and saved["size"] == 24
    loaded = {{ class_name }}.from_pretrained(tmp_path)
    assert loaded.config == processor.config


def test_invalid_config_is_reported() -> None:
    with pytest.raises(ConfigError, match="resample"):
        {{ class_name }}(resample="cubic-ish")
