"""BERT WordPiece tokenizer processor (the tokenizer of LDM's text encoder), built on ``tokenizers``.

It reads the ``tokenizer/`` folder of a Hub checkpoint as written by transformers: either a
``tokenizer.json`` (used as is) or a ``vocab.txt`` with an optional ``tokenizer_config.json``
(``do_lower_case``, ``strip_accents``, ``tokenize_chinese_chars``, ``model_max_length`` and the
special tokens). Encoding is BERT's: clean and lower-case the text, strip accents, split CJK
characters, split on whitespace and punctuation, WordPiece with ``##`` continuations, then
``[CLS] ... [SEP]`` and ``[PAD]`` up to ``max_length``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from diffusers_hub.config import ComponentFiles, PretrainedMixin, read_json, write_json_atomic
from diffusers_hub.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["BertEncoding", "BertTokenizer"]

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"

#: tokenizer_config.json keys that name special tokens, in transformers' order of registration.
_SPECIAL_KEYS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_DEFAULT_SPECIALS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}


@dataclass
class BertEncoding:
    """The result of :meth:`BertTokenizer.__call__`.

    Attributes:
        input_ids: (B, L) token ids (a tensor, an array, or lists; a single string gives one list).
        attention_mask: (B, L) 1 for real tokens, 0 for padding, same container type.
    """

    input_ids: Any
    attention_mask: Any = None
    _keys: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask")

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        return self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)


def _special_token(value: Any, default: str) -> str:
    # transformers may save special tokens as {"content": "[CLS]", ...} (AddedToken).
    if isinstance(value, dict):
        return str(value.get("content", default))
    return default if value is None else str(value)


def read_vocab(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read a BERT ``vocab.txt``: one token per line, the line number is the id.

    A token that appears twice keeps its last line's id, as transformers does.
    """
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            vocab[line.rstrip("\n")] = index
    if not vocab:
        raise ConfigError(f"{path}: empty vocabulary; expected one WordPiece token per line")
    return vocab


@dataclass
class _Settings:
    do_lower_case: bool = True
    strip_accents: bool | None = None
    tokenize_chinese_chars: bool = True
    model_max_length: int = 77
    specials: dict[str, str] = field(default_factory=lambda: dict(_DEFAULT_SPECIALS))


class BertTokenizer(PretrainedMixin):
    """BERT WordPiece tokenizer with the call signature that LDM's pipeline uses.

    Args:
        vocab: token -> id (e.g. from :func:`read_vocab`).
        do_lower_case: lower-case the text (and strip accents unless ``strip_accents`` is False).
        strip_accents: None follows ``do_lower_case``.
        tokenize_chinese_chars: put spaces around CJK characters so each is its own word.
        model_max_length: recorded in ``tokenizer_config.json``.
        unk_token, sep_token, pad_token, cls_token, mask_token: special token strings.

    Example:
        >>> tok = BertTokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "red": 4})
        >>> tok("Red", max_length=5, return_tensors=None).input_ids
        [2, 4, 3, 0, 0]
    """

    #: The library named for this class in model_index.json (the checkpoint's spelling).
    hub_library: ClassVar[str] = "transformers"
    default_subfolder: ClassVar[str | None] = "tokenizer"

    def __init__(
        self,
        vocab: dict[str, int] | None = None,
        *,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        model_max_length: int = 77,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        backend: Tokenizer | None = None,
    ) -> None:
        self.settings = _Settings(
            do_lower_case=do_lower_case,
            strip_accents=strip_accents,
            tokenize_chinese_chars=tokenize_chinese_chars,
            model_max_length=model_max_length,
            specials={
                "unk_token": unk_token,
                "sep_token": sep_token,
                "pad_token": pad_token,
                "cls_token": cls_token,
                "mask_token": mask_token,
            },
        )
        if backend is None:
            if vocab is None:
                raise ValueError("BertTokenizer needs a vocabulary (token -> id) or a backend")
            backend = self._build_backend(vocab)
        self._tokenizer = backend
        for role in ("cls_token", "sep_token", "pad_token"):
            token = self.settings.specials[role]
            if backend.token_to_id(token) is None:
                raise ConfigError(f"BertTokenizer: the vocabulary has no {role} {token!r}")

    def _build_backend(self, vocab: dict[str, int]) -> Tokenizer:
        s = self.settings
        unk = s.specials["unk_token"]
        if unk not in vocab:
            raise ConfigError(f"BertTokenizer: the vocabulary has no unk_token {unk!r}")
        tok = Tokenizer(
            models.WordPiece(
                vocab, unk_token=unk, continuing_subword_prefix="##", max_input_chars_per_word=100
            )
        )
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=s.tokenize_chinese_chars,
            strip_accents=s.strip_accents,
            lowercase=s.do_lower_case,
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        cls, sep = s.specials["cls_token"], s.specials["sep_token"]
        for role, token in ((r, s.specials[r]) for r in ("cls_token", "sep_token")):
            if token not in vocab:
                raise ConfigError(f"BertTokenizer: the vocabulary has no {role} {token!r}")
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
        )
        tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
        # Special tokens written in the text are matched whole, before normalisation.
        specials = [s.specials[k] for k in _SPECIAL_KEYS if s.specials[k] in vocab]
        tok.add_special_tokens(specials)
        return tok

    # -- loading and saving -------------------------------------------------------------------------

    @classmethod
    def from_files(cls, files: ComponentFiles, **overrides: Any) -> BertTokenizer:
        """Read a tokenizer folder (``from_pretrained`` calls it).

        ``tokenizer.json`` is preferred when present; otherwise ``vocab.txt`` is read, with the
        options of ``tokenizer_config.json`` if that file exists; ``overrides`` (constructor
        options such as ``model_max_length``) replace those.

        Raises:
            HubError: neither file is found.
            ConfigError: a file is malformed.
        """
        from diffusers_hub.hub import HubError

        config_path = files.find(CONFIG_FILE)
        options = _read_tokenizer_config(config_path) if config_path is not None else {}
        options.update(overrides)
        tokenizer_json = files.find(TOKENIZER_FILE)
        if tokenizer_json is not None and (
            config_path is None or tokenizer_json.parent == config_path.parent
        ):
            try:
                backend = Tokenizer.from_file(str(tokenizer_json))
            except Exception as exc:
                raise ConfigError(
                    f"{tokenizer_json}: not a readable tokenizer.json ({exc})"
                ) from exc
            # padding and truncation are per call, never baked into the backend.
            backend.no_padding()
            backend.no_truncation()
            return cls(None, backend=backend, **options)
        vocab_path = files.find(VOCAB_FILE)
        if vocab_path is None:
            raise HubError(
                f"{files.path_or_repo}: no {TOKENIZER_FILE} or {VOCAB_FILE} found"
                + (
                    f" in subfolder {files.subfolder!r}"
                    if files.subfolder
                    else " (root or tokenizer/)"
                )
            )
        return cls(read_vocab(vocab_path), **options)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write ``vocab.txt`` and ``tokenizer_config.json`` (readable by transformers too)."""
        directory = Path(directory)
        if directory.is_file():
            raise ConfigError(f"{directory}: is a file; save_pretrained needs a folder path")
        directory.mkdir(parents=True, exist_ok=True)
        vocab = self.get_vocab()
        ordered = sorted(vocab.items(), key=lambda item: item[1])
        lines: list[str] = []
        for token, index in ordered:
            while len(lines) < index:  # keep ids stable if the vocabulary has holes
                lines.append(f"[unused_hole_{len(lines)}]")
            lines.append(token)
        tmp = directory / f".{VOCAB_FILE}.tmp-{os.getpid()}"
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, directory / VOCAB_FILE)
        s = self.settings
        write_json_atomic(
            directory / CONFIG_FILE,
            {
                "tokenizer_class": "BertTokenizer",
                "do_lower_case": s.do_lower_case,
                "strip_accents": s.strip_accents,
                "tokenize_chinese_chars": s.tokenize_chinese_chars,
                "model_max_length": s.model_max_length,
                **s.specials,
            },
        )
        stale = directory / TOKENIZER_FILE
        if stale.exists():  # it would take precedence over the vocab.txt just written
            stale.unlink()

    # -- encoding ---------------------------------------------------------------------------------

    def __call__(
        self,
        text: str | Sequence[str],
        *,
        padding: bool | Literal["max_length", "longest", "do_not_pad"] = "max_length",
        max_length: int | None = 77,
        truncation: bool = True,
        return_tensors: Literal["pt", "np"] | None = "pt",
    ) -> BertEncoding:
        """Tokenise one string or a batch into ``[CLS] tokens [SEP] [PAD]...``.

        Args:
            text: a prompt or a list of prompts.
            padding: ``"max_length"`` pads to ``max_length``; ``"longest"`` (or True) to the
                longest in the batch; ``"do_not_pad"`` (or False) leaves lengths as they are.
            max_length: length to pad and truncate to (``model_max_length`` when None).
            truncation: cut sequences longer than ``max_length`` (``[SEP]`` is kept).
            return_tensors: ``"pt"`` (torch.long), ``"np"`` (int64) or None (lists).

        Returns:
            :class:`BertEncoding` with ``input_ids`` and ``attention_mask`` of shape (B, L)
            (for ``return_tensors=None`` and a single string: flat lists).
        """
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("BertTokenizer: text must be a string or a list of strings")
        length = self.settings.model_max_length if max_length is None else int(max_length)
        if padding is True:
            padding = "longest"
        elif padding is False:
            padding = "do_not_pad"
        if padding not in ("max_length", "longest", "do_not_pad"):
            raise ValueError(f"padding={padding!r}; use 'max_length', 'longest' or 'do_not_pad'")
        encodings = self._tokenizer.encode_batch(texts)
        pad_id = self.pad_token_id
        ids: list[list[int]] = []
        masks: list[list[int]] = []
        for enc in encodings:
            seq = list(enc.ids)
            if truncation and len(seq) > length:
                # Only [SEP] comes after the text tokens: keep it as the last token.
                seq = [*seq[: length - 1], seq[-1]] if length > 1 else seq[:length]
            ids.append(seq)
            masks.append([1] * len(seq))
        target = None
        if padding == "max_length":
            target = length
        elif padding == "longest":
            target = max(len(seq) for seq in ids)
        if target is not None:
            for seq, mask in zip(ids, masks):
                extra = max(0, target - len(seq))
                seq.extend([pad_id] * extra)
                mask.extend([0] * extra)
        if return_tensors is None:
            if single:
                return BertEncoding(input_ids=ids[0], attention_mask=masks[0])
            return BertEncoding(input_ids=ids, attention_mask=masks)
        if len({len(seq) for seq in ids}) > 1:
            raise ValueError(
                "BertTokenizer: sequences of different lengths cannot form a tensor; "
                "use padding='max_length' or 'longest'"
            )
        array_ids = np.asarray(ids, dtype=np.int64).reshape(len(ids), -1)
        array_mask = np.asarray(masks, dtype=np.int64).reshape(len(ids), -1)
        if return_tensors == "np":
            return BertEncoding(input_ids=array_ids, attention_mask=array_mask)
        if return_tensors == "pt":
            import torch

            return BertEncoding(
                input_ids=torch.from_numpy(array_ids), attention_mask=torch.from_numpy(array_mask)
            )
        raise ValueError(f"return_tensors={return_tensors!r}; use 'pt', 'np' or None")

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece tokens of ``text``, without special tokens."""
        return list(self._tokenizer.encode(text, add_special_tokens=False).tokens)

    def decode(
        self,
        ids: Sequence[int] | np.ndarray | torch.Tensor,
        *,
        skip_special_tokens: bool = True,
    ) -> str:
        """Turn ids back into text (``##`` pieces joined, special tokens dropped by default)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return str(
            self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
        )

    def batch_decode(
        self,
        ids: Sequence[Sequence[int]] | np.ndarray | torch.Tensor,
        *,
        skip_special_tokens: bool = True,
    ) -> list[str]:
        """:meth:`decode` for each row of ``ids``."""
        return [self.decode(row, skip_special_tokens=skip_special_tokens) for row in ids]

    # -- vocabulary -------------------------------------------------------------------------------

    def get_vocab(self) -> dict[str, int]:
        """Token -> id, special tokens included."""
        return dict(self._tokenizer.get_vocab(with_added_tokens=True))

    @property
    def vocab_size(self) -> int:
        """Number of entries in the vocabulary."""
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    def __len__(self) -> int:
        return self.vocab_size

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Id of a token (the unknown token's id when absent), or a list of ids."""
        unk = self._tokenizer.token_to_id(self.settings.specials["unk_token"])
        if isinstance(tokens, str):
            found = self._tokenizer.token_to_id(tokens)
            if found is None:
                if unk is None:
                    raise KeyError(f"{tokens!r} is not in the vocabulary and there is no unk_token")
                return int(unk)
            return int(found)
        return [int(self.convert_tokens_to_ids(t)) for t in tokens]  # type: ignore[arg-type]

    def _special_id(self, role: str) -> int:
        found = self._tokenizer.token_to_id(self.settings.specials[role])
        if found is None:
            raise ConfigError(f"BertTokenizer: no {role} {self.settings.specials[role]!r}")
        return int(found)

    @property
    def pad_token_id(self) -> int:
        return self._special_id("pad_token")

    @property
    def cls_token_id(self) -> int:
        return self._special_id("cls_token")

    @property
    def sep_token_id(self) -> int:
        return self._special_id("sep_token")

    @property
    def model_max_length(self) -> int:
        return self.settings.model_max_length

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"BertTokenizer(vocab_size={self.vocab_size}, do_lower_case={s.do_lower_case}, "
            f"model_max_length={s.model_max_length})"
        )


def _read_tokenizer_config(path: Path) -> dict[str, Any]:
    data = read_json(path)
    options: dict[str, Any] = {}
    if "do_lower_case" in data:
        options["do_lower_case"] = bool(data["do_lower_case"])
    if data.get("strip_accents") is not None:
        options["strip_accents"] = bool(data["strip_accents"])
    if "tokenize_chinese_chars" in data:
        options["tokenize_chinese_chars"] = bool(data["tokenize_chinese_chars"])
    max_len = data.get("model_max_length")
    # transformers writes a huge sentinel when no limit is known: keep LDM's 77 then.
    if isinstance(max_len, int) and 0 < max_len < 10**6:
        options["model_max_length"] = max_len
    for key in _SPECIAL_KEYS:
        if key in data:
            options[key] = _special_token(data[key], _DEFAULT_SPECIALS[key])
    return options
