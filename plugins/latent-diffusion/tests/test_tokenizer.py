"""BertTokenizer: ids equal transformers' BertTokenizer on the same vocabulary; folder round trips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers_hub_latent_diffusion.tokenizer import BertTokenizer, read_vocab

from diffusers_hub.errors import ConfigError

CORPUS = [
    "a painting of a squirrel eating a burger",
    "a red circle on the left, a blue square at the top!",
    "the café serves crème brûlée and jalapeño piñatas; naïve façade",
    "Ünïcödé ÀÉÎÕÜ accents stripped: résumé, coöperate, Ångström",
    "一只猫坐在桌子上 中文字符 汉字 日本語のテキスト 한국어",
    "punctuation!? (brackets) [square] {curly} <angle> \"quotes\" 'single' - dash — em",
    "numbers 123 4,567 8.9 10% $11 #12 @13 ^14 &15 *16",
    "an astronaut riding a horse in photorealistic style, 4k, trending on artstation",
    "green triangle, yellow star, purple hexagon, orange pentagon, cyan ellipse",
    "high-resolution digital art of a castle above the clouds at sunset",
]


def _vocab_file(tmp_path: Path) -> Path:
    from tokenizers import BertWordPieceTokenizer

    trainer_tok = BertWordPieceTokenizer(lowercase=True, strip_accents=None)
    trainer_tok.train_from_iterator(CORPUS * 5, vocab_size=400, min_frequency=1)
    folder = tmp_path / "vocab"
    folder.mkdir()
    trainer_tok.save_model(str(folder))
    return folder / "vocab.txt"


def _strings(seed: int = 0, count: int = 300) -> list[str]:
    rng = random.Random(seed)
    words = [
        *" ".join(CORPUS).split(),
        "unseenword",
        "xylophone",
        "[MASK]",
        "[CLS]",
        "🙂",
        "\t",
        "\u200b",
        "ＦＵＬＬＷＩＤＴＨ",
        "ß",
        "İstanbul",
        "ﬁ",
        "a" * 120,
        "Zürich",
        "",
    ]
    out = ["", " ", "A", "[PAD] [SEP]", "x" * 101, " ".join(words)]  # very long prompt
    while len(out) < count:
        n = rng.randint(1, 40)
        pieces = [rng.choice(words) for _ in range(n)]
        if rng.random() < 0.3:
            pieces = [p.upper() if rng.random() < 0.5 else p.title() for p in pieces]
        sep = rng.choice([" ", "  ", ",", "\n", " - "])
        out.append(sep.join(pieces))
    return out


@pytest.fixture(scope="module")
def vocab_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _vocab_file(tmp_path_factory.mktemp("tok"))


def test_ids_equal_transformers(vocab_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertTokenizer(str(vocab_path))
    ours = BertTokenizer(read_vocab(vocab_path))
    texts = _strings()
    expected = ref(texts, padding="max_length", max_length=77, truncation=True)["input_ids"]
    got = ours(texts, padding="max_length", max_length=77, truncation=True, return_tensors=None)
    mismatches = [t for t, e, g in zip(texts, expected, got.input_ids) if e != g]
    assert not mismatches, mismatches[:3]
    # Without padding or truncation as well (lengths and long prompts).
    for text in texts[:50]:
        assert (
            ours(text, padding="do_not_pad", truncation=False, return_tensors=None).input_ids
            == (ref(text)["input_ids"])
        )
    assert ours.decode(got.input_ids[1]) == ref.decode(expected[1], skip_special_tokens=True)


def test_layout_and_tensor_types(vocab_path: Path) -> None:
    tok = BertTokenizer(read_vocab(vocab_path))
    vocab = read_vocab(vocab_path)
    enc = tok(["a red circle", "x " * 200], return_tensors="pt")
    assert enc.input_ids.shape == (2, 77) and enc.input_ids.dtype == torch.long
    assert enc["attention_mask"].shape == (2, 77)
    row = enc.input_ids[0].tolist()
    assert row[0] == vocab["[CLS]"] and row[4] == vocab["[SEP]"]
    assert row[1:4] == [vocab["a"], vocab["red"], vocab["circle"]]
    assert set(row[5:]) == {vocab["[PAD]"]}
    assert enc.attention_mask[0].sum() == 5
    long_row = enc.input_ids[1].tolist()
    assert long_row[-1] == vocab["[SEP]"] and int(enc.attention_mask[1].sum()) == 77
    arr = tok("a red circle", return_tensors="np").input_ids
    assert isinstance(arr, np.ndarray) and arr.shape == (1, 77) and arr.dtype == np.int64
    longest = tok(["a", "a red circle"], padding="longest", return_tensors="np").input_ids
    assert longest.shape == (2, 5)
    with pytest.raises(ValueError):
        tok(["a", "a red circle"], padding="do_not_pad", return_tensors="pt")
    assert tok.vocab_size == len(vocab)
    assert tok.decode(tok("A RED Circle", return_tensors=None).input_ids) == "a red circle"


def test_save_and_load_round_trip(vocab_path: Path, tmp_path: Path) -> None:
    tok = BertTokenizer(read_vocab(vocab_path), model_max_length=77)
    pipe_folder = tmp_path / "pipe"
    tok.save_pretrained(pipe_folder / "tokenizer")
    assert (pipe_folder / "tokenizer" / "vocab.txt").is_file()
    for loaded in (
        BertTokenizer.from_pretrained(pipe_folder / "tokenizer"),
        BertTokenizer.from_pretrained(pipe_folder, subfolder="tokenizer"),
        BertTokenizer.from_pretrained(pipe_folder),
    ):
        assert loaded.get_vocab() == tok.get_vocab()
        texts = _strings(seed=1, count=30)
        assert torch.equal(loaded(texts).input_ids, tok(texts).input_ids)


def test_reads_transformers_folders(vocab_path: Path, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertTokenizer(str(vocab_path))
    ref.save_pretrained(str(tmp_path / "saved"))  # tokenizer.json + tokenizer_config.json
    ours = BertTokenizer.from_pretrained(tmp_path / "saved")
    texts = _strings(seed=2, count=60)
    expected = ref(texts, padding="max_length", max_length=77, truncation=True)["input_ids"]
    assert ours(texts, return_tensors=None).input_ids == expected
    # Our folder (vocab.txt) loads in transformers with the same ids.
    ours.save_pretrained(tmp_path / "ours")
    back = transformers.BertTokenizer.from_pretrained(str(tmp_path / "ours"))
    assert (
        back(texts, padding="max_length", max_length=77, truncation=True)["input_ids"] == expected
    )


def test_options_and_errors(tmp_path: Path) -> None:
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "Café": 4, "cafe": 5}
    cased = BertTokenizer(vocab, do_lower_case=False)
    assert cased("Café", return_tensors=None).input_ids[:3] == [2, 4, 3]
    assert BertTokenizer(vocab)("Café", return_tensors=None).input_ids[:3] == [2, 5, 3]
    with pytest.raises(ConfigError):
        BertTokenizer({"[PAD]": 0, "[UNK]": 1, "a": 2})
    with pytest.raises(FileNotFoundError):
        BertTokenizer.from_pretrained(tmp_path)
