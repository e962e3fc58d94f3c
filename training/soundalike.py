"""Words that sound almost like a grammar's words, for near misses that are near in sound.

A one-word grammar (spoken digits, wake words) is mostly confused with words one sound away
from its own: "tree" or "free" for "three", "fine" for "five", "commuter" for "computer".
Swapping in random distractors (:func:`training.negatives.near_misses`) never teaches that.
Here a pronouncing dictionary gives, for a word, the dictionary words whose pronunciation is
exactly one phone away (one phone substituted, inserted or deleted, stress ignored), leaving
out homophones: a word that can be pronounced exactly like the grammar word ("for" and
"four", "won" and "one") would be a negative that sounds like a command.

The dictionary is CMUdict as Festival's lexicon ships it (Debian's ``festlex-cmu``, installed
with the ``festival`` TTS engine that the data pipeline already uses): about 105,000 words.
Without it the near misses are drawn as before and a warning says so.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rapidfuzz.distance import Levenshtein

logger = logging.getLogger("training.soundalike")

FESTIVAL_CMU = Path("/usr/share/festival/dicts/cmu/cmudict-0.4.out")
_ENTRY = re.compile(r'^\("([a-z]+)" \S+ \((.*)\)\)\s*$')
_SYLLABLE = re.compile(r"\(\(([a-z ]+)\) \d\)")

Pronunciation = tuple[str, ...]


def parse_festival_lexicon(text: str) -> dict[str, set[Pronunciation]]:
    """Word -> its pronunciations (phones without stress) from Festival's lexicon format,
    ``("three" nil (((th r iy) 1)))``; entries with other characters than a-z are skipped."""
    out: dict[str, set[Pronunciation]] = defaultdict(set)
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match is None:
            continue
        phones = tuple(p for syllable in _SYLLABLE.findall(match.group(2))
                       for p in syllable.split())
        if phones:
            out[match.group(1)].add(phones)
    return dict(out)


@dataclass(frozen=True)
class Lexicon:
    """A pronouncing dictionary indexed for one-phone neighbours."""

    pronunciations: dict[str, set[Pronunciation]]
    _index: dict[Pronunciation, set[str]]

    @classmethod
    def of(cls, pronunciations: dict[str, set[Pronunciation]]) -> Lexicon:
        # Two sequences one edit apart share a key among themselves and their one-phone
        # deletions (the symmetric-delete index): candidates come from a few lookups.
        index: dict[Pronunciation, set[str]] = defaultdict(set)
        for word, prons in pronunciations.items():
            for pron in prons:
                for key in _keys(pron):
                    index[key].add(word)
        return cls(pronunciations, dict(index))

    def sound_alikes(self, word: str) -> list[str]:
        """Dictionary words one phone away from a pronunciation of ``word`` and never
        pronounced like it, sorted; [] for a word the dictionary lacks."""
        own = self.pronunciations.get(word)
        if not own:
            return []
        candidates = {w for pron in own for key in _keys(pron) for w in self._index.get(key, ())}
        found = []
        for other in candidates - {word}:
            theirs = self.pronunciations[other]
            if theirs & own:
                continue  # a homophone: it would sound like the command
            if any(Levenshtein.distance(a, b) == 1 for a in own for b in theirs):
                found.append(other)
        return sorted(found)


def _keys(pron: Pronunciation) -> set[Pronunciation]:
    return {pron, *(pron[:i] + pron[i + 1 :] for i in range(len(pron)))}


@lru_cache(maxsize=2)
def load_lexicon(path: Path = FESTIVAL_CMU) -> Lexicon | None:
    """The pronouncing dictionary, or None (with a warning) where it is not installed."""
    if not path.is_file():
        logger.warning("no pronouncing dictionary at %s (Debian package festlex-cmu, installed "
                       "with festival): near misses will not include sound-alike words", path)
        return None
    return Lexicon.of(parse_festival_lexicon(path.read_text(encoding="latin-1")))
