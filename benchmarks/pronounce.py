"""Pronunciations for a grammar's words: the recognizer's dictionary, else espeak-ng's g2p.

PocketSphinx needs every grammar word in its pronunciation dictionary (CMUdict, ARPAbet
phones). A word it lacks ("frappuccino", a product name) gets a pronunciation from
espeak-ng's letter-to-sound rules (``espeak-ng -v en-us --ipa``), mapped from IPA to the
39 ARPAbet phones; a word neither gives is reported, and the caller leaves it out.
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Longest symbols first; stress, length and syllable marks are dropped before matching.
_IPA_TO_ARPABET: tuple[tuple[str, str], ...] = tuple(sorted({
    "aɪ": "AY", "aʊ": "AW", "eɪ": "EY", "oʊ": "OW", "əʊ": "OW", "ɔɪ": "OY", "tʃ": "CH",
    "dʒ": "JH", "ɪə": "IH R", "eə": "EH R", "ʊə": "UH R", "ɑ": "AA", "ɒ": "AA", "æ": "AE",
    "a": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɚ": "ER", "ɝ": "ER", "ɜ": "ER", "ɛ": "EH",
    "e": "EH", "ɪ": "IH", "ᵻ": "IH", "i": "IY", "ɔ": "AO", "o": "OW", "ʊ": "UH", "u": "UW",
    "b": "B", "d": "D", "f": "F", "ɡ": "G", "g": "G", "h": "HH", "j": "Y", "k": "K", "l": "L",
    "m": "M", "n": "N", "ŋ": "NG", "p": "P", "ɹ": "R", "r": "R", "s": "S", "ʃ": "SH", "t": "T",
    "θ": "TH", "ð": "DH", "v": "V", "w": "W", "z": "Z", "ʒ": "ZH", "ɾ": "D", "ʔ": "T",
    "x": "K", "ç": "HH", "ɬ": "L",
}.items(), key=lambda item: -len(item[0])))
_DROPPED = set("ˈˌːˑ.‿-_ ") | {"\u0329", "\u032f", "\u0361"}  # stress, length, ties, syllabic


@dataclass(frozen=True)
class Pronunciations:
    """Phones for each word that has them, and the words that have none."""

    phones: dict[str, str]  # word -> "AH M EH R ..." (dictionary or g2p)
    from_g2p: tuple[str, ...]  # words whose phones came from espeak-ng, not the dictionary
    missing: tuple[str, ...]  # words with no pronunciation at all


def ipa_to_arpabet(ipa: str) -> str | None:
    """ARPAbet phones for an IPA string, or None when a symbol has no equivalent."""
    text = "".join(c for c in unicodedata.normalize("NFD", ipa) if c not in _DROPPED)
    phones: list[str] = []
    i = 0
    while i < len(text):
        for symbol, arpabet in _IPA_TO_ARPABET:
            if text.startswith(symbol, i):
                phones.append(arpabet)
                i += len(symbol)
                break
        else:
            return None
    return " ".join(phones) if phones else None


def espeak_ipa(word: str, voice: str = "en-us") -> str | None:
    """espeak-ng's IPA for ``word``, or None when espeak-ng is not installed."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        return None
    done = subprocess.run([binary, "-q", "-v", voice, "--ipa", word], capture_output=True,
                          text=True, timeout=30, check=False)
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def pronounce(words: Iterable[str], lookup: Callable[[str], str | None],
              g2p: Callable[[str], str | None] = espeak_ipa) -> Pronunciations:
    """Phones for ``words``: ``lookup`` (the dictionary) first, then ``g2p`` (IPA)."""
    phones: dict[str, str] = {}
    from_g2p: list[str] = []
    missing: list[str] = []
    for word in words:
        known = lookup(word)
        if known:
            phones[word] = known
            continue
        ipa = g2p(word)
        guessed = ipa_to_arpabet(ipa) if ipa else None
        if guessed:
            phones[word] = guessed
            from_g2p.append(word)
        else:
            missing.append(word)
    return Pronunciations(phones, tuple(from_g2p), tuple(missing))
