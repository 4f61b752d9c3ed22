"""GLIDETokenizer: the release's ids, padding with a mask, folders in both file layouts."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch
from diffusers_hub_glide.tokenizer import RELEASE_VOCAB, GLIDETokenizer

from diffusers_hub.errors import ConfigError
from diffusers_hub.hub import HubError


@pytest.fixture(scope="module")
def release() -> GLIDETokenizer:
    return GLIDETokenizer.from_release()


def test_reference_ids(release: GLIDETokenizer) -> None:
    assert release.encode("an oil painting of a corgi") == [272, 3056, 12036, 286, 257, 1162, 12397]
    assert release.encode("An Oil Painting of a Corgi") == release.encode(
        "an oil painting of a corgi"
    )
    assert release.vocab_size == 50257 and release.pad_token_id == 50256
    assert release.decode(release.encode("a corgi, 3 dogs!")) == "a corgi, 3 dogs!"


def test_padding_and_mask(release: GLIDETokenizer) -> None:
    enc = release(["a corgi", ""])
    assert enc.input_ids.shape == (2, 128) and enc.attention_mask.dtype == torch.bool
    assert enc.input_ids[0, :3].tolist() == [64, 1162, 12397]
    assert enc.attention_mask[0].sum() == 3 and not enc.attention_mask[1].any()
    assert (enc.input_ids[1] == 50256).all()
    long = release("word " * 300, max_length=16, return_tensors=None)
    assert len(long.input_ids[0]) == 16 and all(long.attention_mask[0])
    assert release.padded_tokens_and_mask([5, 6], 4) == (
        [5, 6, 50256, 50256],
        [True, True, False, False],
    )


def test_round_trip_and_release_layout(release: GLIDETokenizer, tmp_path: Path) -> None:
    release.save_pretrained(tmp_path / "saved")
    assert {p.name for p in (tmp_path / "saved").iterdir()} == {
        "vocab.json",
        "merges.txt",
        "tokenizer_config.json",
    }
    again = GLIDETokenizer.from_pretrained(tmp_path / "saved")
    text = "a painting of a fox in the snow"
    assert again.encode(text) == release.encode(text)
    # a pipeline folder with the release's gzipped file names in tokenizer/
    (tmp_path / "pipe" / "tokenizer").mkdir(parents=True)
    for name in ("encoder.json.gz", "vocab.bpe.gz"):
        shutil.copy(RELEASE_VOCAB / name, tmp_path / "pipe" / "tokenizer" / name)
    assert GLIDETokenizer.from_pretrained(tmp_path / "pipe").encode(text) == release.encode(text)


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(HubError, match="no GLIDE tokenizer files"):
        GLIDETokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text("[1, 2]")
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    with pytest.raises(ConfigError, match=r"vocab\.json.*JSON object"):
        GLIDETokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0, "b": 1, "ab": 2}')
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(ConfigError, match=r"merges\.txt, line 2"):
        GLIDETokenizer.from_pretrained(tmp_path)
    (tmp_path / "merges.txt").unlink()
    (tmp_path / "vocab.bpe.gz").write_bytes(gzip.compress(b"#version: 0.2\na b\n")[:10])
    with pytest.raises(ConfigError, match="gzip"):
        GLIDETokenizer.from_pretrained(tmp_path)
