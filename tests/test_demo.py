"""``diffusers-hub demo`` (``make demo``): the picture it writes, at toy settings.

The tiles must be exactly the pipelines' outputs for the seed, scaled up nearest-neighbour and
placed where the layout says; the command prints the path and the timing once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from diffusers_hub import demo, registry
from diffusers_hub.cli import main
from diffusers_hub.errors import RegistryError

TOY = ["--samples", "2", "--ddpm-steps", "3", "--ddim-steps", "2", "--ldm-steps", "2"]


def tile_at(picture: np.ndarray, row_top: int, column: int) -> np.ndarray:
    x = demo.MARGIN + column * (demo.TILE + demo.GAP)
    y = row_top + demo.LABEL_H
    return picture[y : y + demo.TILE, x : x + demo.TILE]


def upscaled(image: PIL.Image.Image) -> np.ndarray:
    factor = demo.TILE // max(image.size)
    big = image.convert("RGB").resize(
        (image.width * factor, image.height * factor), PIL.Image.Resampling.NEAREST
    )
    return np.asarray(big)


def expected(name: str, **options: object) -> list[PIL.Image.Image]:
    pipe = registry.pipeline(name).from_pretrained(registry.demo_checkpoint(name))
    pipe.set_progress_bar_config(disable=True)
    return pipe(generator=torch.Generator().manual_seed(0), output_type="pil", **options).images


@pytest.fixture
def torch_threads() -> Iterator[int]:
    """The demo command sets torch's thread count for the process: restore it afterwards."""
    threads = torch.get_num_threads()
    yield threads
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.usefixtures("torch_threads")
def test_demo_writes_the_three_rows_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pictures" / "demo.png"
    assert main(["demo", *TOY, "--out", str(out)]) == 0
    assert torch.get_num_threads() == 1  # the default --threads
    printed = capsys.readouterr().out
    assert printed.count(str(out)) == 1, printed
    assert re.search(
        r"wrote .*demo\.png \(\d+x\d+ px\): [\d.]+ s of sampling, [\d.]+ s in all", printed
    )
    assert len(re.findall(r"2 images in [\d.]+ s", printed)) == 3, printed

    with PIL.Image.open(out) as image:
        assert image.mode == "RGB"
        picture = np.asarray(image)
    # Two columns of tiles; rows: DDPM, DDIM (no captions), latent diffusion (captions).
    width = 2 * demo.MARGIN + 2 * demo.TILE + demo.GAP
    rows = 3 * (demo.LABEL_H + demo.TILE + 2 * demo.GAP) + demo.CAPTION_H
    assert picture.shape == (2 * demo.MARGIN + demo.HEADING_H + rows, width, 3)

    wanted = {
        "ddpm": expected("ddpm", batch_size=2, num_inference_steps=3),
        "ddim": expected("ddim", batch_size=2, num_inference_steps=2, eta=0.0),
        "latent-diffusion": expected(
            "latent-diffusion",
            prompt=list(demo.PROMPTS[:2]),
            num_inference_steps=2,
            guidance_scale=6.0,
            eta=0.0,
        ),
    }
    top = demo.MARGIN + demo.HEADING_H
    for name, images in wanted.items():
        for column, image in enumerate(images):
            np.testing.assert_array_equal(tile_at(picture, top, column), upscaled(image), name)
        assert np.unique(tile_at(picture, top, 0)).size > 4, f"{name}: a flat tile"
        top += demo.LABEL_H + demo.TILE + 2 * demo.GAP
    # The captions under the latent-diffusion tiles are drawn (dark pixels on white).
    captions = picture[top - 2 * demo.GAP : top - 2 * demo.GAP + demo.CAPTION_H]
    assert (captions < 200).any()


def test_demo_leaves_out_a_missing_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    real = demo._load

    def load(name: str, device: str | None) -> object:
        if name != "ddpm":
            raise RegistryError(f"no pipeline named {name!r} is installed")
        return real(name, device)

    monkeypatch.setattr(demo, "_load", load)
    lines: list[str] = []
    rows = demo.sample_rows(samples=1, ddpm_steps=1, report=lines.append)
    assert [row.title.split(":")[0] for row in rows] == ["DDPM"]
    assert any("left out" in line and 'pip install "diffusers-hub[ddim]"' in line for line in lines)
    assert demo.compose(rows).size == (
        2 * demo.MARGIN + demo.TILE,
        2 * demo.MARGIN + demo.HEADING_H + demo.LABEL_H + demo.TILE + 2 * demo.GAP,
    )


@pytest.mark.usefixtures("torch_threads")
def test_demo_rejects_bad_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "d.png")]
    assert main(["demo", "--samples", "0", *out]) == 1
    assert "--samples must be at least 1, got 0" in capsys.readouterr().err
    assert main(["demo", "--threads", "-1", *out]) == 1
    assert "--threads must be 0 (torch's default) or more, got -1" in capsys.readouterr().err
    assert not (tmp_path / "d.png").exists()
