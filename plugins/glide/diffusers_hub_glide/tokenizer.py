"""GLIDETokenizer: GPT-2 byte-level BPE with GLIDE's padding, built on ``tokenizers``.

GLIDE lower-cases the prompt, splits it with GPT-2's pattern, byte-level BPE-encodes it, cuts it
to ``text_ctx`` (128) tokens and pads with the end-of-text token (50256), returning a mask that
is True on real tokens (the UNet replaces padded positions by its learned padding embedding).

Files: a tokenizer folder holds ``vocab.json`` (token -> id) and ``merges.txt`` (the merge list,
``#version`` header), as transformers' GPT-2 tokenizer writes them, plus ``tokenizer_config.json``
(``model_max_length``, ``pad_token``). The release's ``encoder.json[.gz]`` / ``vocab.bpe[.gz]``
are read too; the release vocabulary ships with this plugin (:meth:`GLIDETokenizer.from_release`).

References:
    Radford et al. 2019, "Language Models are Unsupervised Multitask Learners" (GPT-2 BPE);
    Nichol et al. 2021, arXiv:2112.10741.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

from diffusers_hub.config import ComponentFiles, PretrainedMixin, read_json, write_json_atomic
from diffusers_hub.errors import ConfigError

__all__ = ["RELEASE_VOCAB", "GLIDEEncoding", "GLIDETokenizer"]

#: The release's vocabulary files, shipped with the plugin (MIT, see ``vocab/LICENSE``).
RELEASE_VOCAB = Path(__file__).resolve().parent / "vocab"

VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
CONFIG_FILE = "tokenizer_config.json"
END_OF_TEXT = "<|endoftext|>"


@dataclass
class GLIDEEncoding:
    """The result of :meth:`GLIDETokenizer.__call__`.

    Attributes:
        input_ids: (B, text_ctx) token ids, padded with the end-of-text id.
        attention_mask: (B, text_ctx) True on real tokens, False on padding.
    """

    input_ids: Any
    attention_mask: Any


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ConfigError(f"{path}: not a readable gzip file ({exc})") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc})") from exc


def read_vocab(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read ``vocab.json`` / ``encoder.json[.gz]``: a JSON object token -> id."""
    path = Path(path)
    try:
        vocab = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: malformed JSON vocabulary ({exc})") from exc
    if not isinstance(vocab, dict) or not vocab:
        raise ConfigError(f"{path}: expected a non-empty JSON object mapping tokens to ids")
    if not all(isinstance(v, int) for v in vocab.values()):
        raise ConfigError(f"{path}: every id must be an integer")
    return vocab


def read_merges(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Read ``merges.txt`` / ``vocab.bpe[.gz]``: a ``#version`` line, then one ``a b`` per line."""
    path = Path(path)
    merges: list[tuple[str, str]] = []
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ConfigError(f"{path}, line {number}: expected two symbols, got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


class GLIDETokenizer(PretrainedMixin):
    """GPT-2 byte-level BPE that pads to ``model_max_length`` with the end-of-text token.

    Args:
        vocab: token -> id.
        merges: BPE merges in rank order.
        model_max_length: text_ctx, the padded length (128).
        pad_token: the padding token (``<|endoftext|>``; the last id when absent, as in the
            release).

    Example:
        >>> tok = GLIDETokenizer.from_release()
        >>> tok.encode("an oil painting of a corgi")
        [272, 3056, 12036, 286, 257, 1162, 12397]
        >>> enc = tok(["a corgi"], return_tensors=None)
        >>> ids, mask = enc.input_ids[0], enc.attention_mask[0]
        >>> ids[:3], mask[:3]
        ([64, 1162, 12397], [True, True, True])
    """

    #: The library named for this class in model_index.json.
    hub_library: ClassVar[str] = "glide"
    default_subfolder: ClassVar[str | None] = "tokenizer"

    def __init__(
        self,
        vocab: dict[str, int],
        merges: Sequence[tuple[str, str]],
        *,
        model_max_length: int = 128,
        pad_token: str = END_OF_TEXT,
    ) -> None:
        if model_max_length < 1:
            raise ConfigError(
                f"GLIDETokenizer: model_max_length must be >= 1, got {model_max_length}"
            )
        self.model_max_length = int(model_max_length)
        self.pad_token = pad_token
        self._vocab = dict(vocab)
        self._merges = [(a, b) for a, b in merges]
        try:
            backend = Tokenizer(models.BPE(self._vocab, self._merges))
        except Exception as exc:
            raise ConfigError(
                f"GLIDETokenizer: the vocabulary and merges do not fit ({exc})"
            ) from exc
        backend.normalizer = normalizers.Lowercase()
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        backend.decoder = decoders.ByteLevel()
        self._tokenizer = backend
        found = self._vocab.get(pad_token)
        self.pad_token_id = int(found) if found is not None else max(self._vocab.values())

    # -- loading and saving -----------------------------------------------------------------------

    @classmethod
    def from_release(cls) -> GLIDETokenizer:
        """The vocabulary of the released GLIDE models (shipped with the plugin)."""
        return cls(
            read_vocab(RELEASE_VOCAB / "encoder.json.gz"),
            read_merges(RELEASE_VOCAB / "vocab.bpe.gz"),
        )

    @classmethod
    def from_files(cls, files: ComponentFiles, **overrides: Any) -> GLIDETokenizer:
        """Build from a tokenizer folder's files (``from_pretrained`` finds them: a tokenizer
        folder, a pipeline folder's ``tokenizer/``, or a Hub repo id).

        Reads ``vocab.json`` + ``merges.txt`` (or the release's ``encoder.json[.gz]`` +
        ``vocab.bpe[.gz]``) and the optional ``tokenizer_config.json``; ``overrides``
        (``model_max_length=``, ``pad_token=``) replace the saved settings.

        Raises:
            HubError: no vocabulary files are found.
            ConfigError: a file is malformed.
        """
        from diffusers_hub import hub

        def find(*names: str) -> Path | None:
            return next((p for p in map(files.find, names) if p is not None), None)

        vocab_path = find(VOCAB_FILE, "encoder.json", "encoder.json.gz")
        merges_path = find(MERGES_FILE, "vocab.bpe", "vocab.bpe.gz")
        if vocab_path is None or merges_path is None:
            raise hub.HubError(
                f"{files.path_or_repo}: no GLIDE tokenizer files found (need {VOCAB_FILE} and "
                f"{MERGES_FILE}, or encoder.json and vocab.bpe, at the root or in tokenizer/)"
            )
        options: dict[str, Any] = {}
        config_path = find(CONFIG_FILE)
        if config_path is not None:
            data = read_json(config_path)
            length = data.get("model_max_length")
            if isinstance(length, int) and 0 < length < 10**6:
                options["model_max_length"] = length
            if isinstance(data.get("pad_token"), str):
                options["pad_token"] = data["pad_token"]
        return cls(read_vocab(vocab_path), read_merges(merges_path), **{**options, **overrides})

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write ``vocab.json``, ``merges.txt`` and ``tokenizer_config.json``, each atomically."""
        directory = Path(directory)
        if directory.is_file():
            raise ConfigError(f"{directory}: is a file; save_pretrained needs a folder path")
        directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(directory / VOCAB_FILE, self._vocab)
        tmp = directory / f".{MERGES_FILE}.tmp-{os.getpid()}"
        lines = ["#version: 0.2", *(f"{a} {b}" for a, b in self._merges)]
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, directory / MERGES_FILE)
        write_json_atomic(
            directory / CONFIG_FILE,
            {
                "tokenizer_class": "GLIDETokenizer",
                "model_max_length": self.model_max_length,
                "pad_token": self.pad_token,
            },
        )

    # -- encoding ---------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """The BPE ids of ``text`` (lower-cased), without padding or truncation."""
        if not isinstance(text, str):
            raise TypeError(f"GLIDETokenizer: text must be a string, got {type(text).__name__}")
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def padded_tokens_and_mask(
        self, tokens: Sequence[int], text_ctx: int | None = None
    ) -> tuple[list[int], list[bool]]:
        """Cut ``tokens`` to ``text_ctx`` and pad with the end-of-text id; the mask marks real ones."""
        length = self.model_max_length if text_ctx is None else int(text_ctx)
        kept = list(tokens)[:length]
        padding = length - len(kept)
        return kept + [self.pad_token_id] * padding, [True] * len(kept) + [False] * padding

    def __call__(
        self,
        text: str | Sequence[str],
        *,
        max_length: int | None = None,
        return_tensors: Literal["pt"] | None = "pt",
    ) -> GLIDEEncoding:
        """Tokenise and pad one prompt or a batch (``""`` gives the unconditional all-padding row).

        Args:
            text: a prompt or a list of prompts.
            max_length: padded length (``model_max_length`` when None).
            return_tensors: ``"pt"`` (long ids, bool mask) or None (lists).

        Returns:
            :class:`GLIDEEncoding` with (B, max_length) ``input_ids`` and ``attention_mask``.
        """
        texts = [text] if isinstance(text, str) else list(text)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("GLIDETokenizer: text must be a string or a list of strings")
        rows = [self.padded_tokens_and_mask(self.encode(t) if t else [], max_length) for t in texts]
        ids = [r[0] for r in rows]
        masks = [r[1] for r in rows]
        if return_tensors is None:
            return GLIDEEncoding(ids, masks)
        if return_tensors != "pt":
            raise ValueError(f"return_tensors={return_tensors!r}; use 'pt' or None")
        import torch

        return GLIDEEncoding(
            torch.tensor(ids, dtype=torch.long).reshape(len(texts), -1),
            torch.tensor(masks, dtype=torch.bool).reshape(len(texts), -1),
        )

    def decode(self, ids: Sequence[int] | Any, *, skip_padding: bool = True) -> str:
        """Text of ``ids`` (padding ids dropped by default)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        kept = [int(i) for i in ids if not (skip_padding and int(i) == self.pad_token_id)]
        return str(self._tokenizer.decode(kept))

    @property
    def vocab_size(self) -> int:
        """Number of entries in the vocabulary (the UNet's ``vocab_size``)."""
        return len(self._vocab)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (
            f"GLIDETokenizer(vocab_size={self.vocab_size}, "
            f"model_max_length={self.model_max_length}, pad_token_id={self.pad_token_id})"
        )
