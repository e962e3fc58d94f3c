"""Numbers the model heard that the grammar cannot take.

The constrained decoder can only write what the grammar allows, so a number said outside a
slot's range ("set the temperature to ninety five degrees" against 10..90, "one hundred
fifty percent") comes back as an allowed number the model can spell from nearly the same
tokens ("85", "15%"), often with a high confidence: every other token fits. The free decode
(``heard``) writes what was said. When the two differ in a number, and the grammar would
not take the heard number in the sentence's place, answering would act on a number nobody
said: the answer is "not understood" instead (:class:`assistant.recognizer.Reason`
``number_not_in_grammar``).

Both texts are compared as words (digits read as number words, as the grammar reads them:
"150%" is "one hundred fifty percent"). The sentence's number is compared with the heard
words aligned to it plus the heard number words inserted next to them ("one hundred" against
"one hundred ten"); a heard number word that stands for a sentence word that is no number
("4" for "for") is not part of it, and the same digits written otherwise ("24th" for "24",
"1043" for the clock time "10 43") are the same number. A heard number that the grammar
*would* take in the sentence's place is left alone: the constrained search weighed it and
preferred the other, so that is the model's call (and its confidence's), not a number outside
the grammar.
"""

from __future__ import annotations

from collections.abc import Sequence

from .grammar import Context, normalize_text, parse
from .numbers import NUMBER_WORDS, words_to_int, words_to_ordinal

MAX_WORDS = 40  # longer free decodes are repetition loops: not compared


def _alignment(a: Sequence[str], b: Sequence[str]) -> list[tuple[int | None, int | None]]:
    """One least-cost word alignment of ``a`` with ``b`` (Levenshtein, unit costs) as
    (i, j) pairs: both for a match or substitution, None on the side that has no word."""
    n, m = len(a), len(b)
    cost = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
                             cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def _runs(words: Sequence[str]) -> list[tuple[int, int]]:
    """The [start, end) spans of consecutive number words."""
    spans, start = [], None
    for i, word in enumerate([*words, ""]):
        if word in NUMBER_WORDS and start is None:
            start = i
        elif word not in NUMBER_WORDS and start is not None:
            spans.append((start, i))
            start = None
    return spans


def _heard_for(pairs: list[tuple[int | None, int | None]], start: int, end: int,
               heard: Sequence[str]) -> list[str]:
    """The heard words that stand for sentence words [start, end): those aligned to them,
    and heard number words that are aligned to nothing right before, between or after."""
    inside = [k for k, (i, _) in enumerate(pairs) if i is not None and start <= i < end]
    if not inside:
        return []

    def inserted_number(k: int) -> bool:
        i, j = pairs[k] if 0 <= k < len(pairs) else (0, None)
        return i is None and j is not None and heard[j] in NUMBER_WORDS

    first, last = inside[0], inside[-1]
    while inserted_number(first - 1):
        first -= 1
    while inserted_number(last + 1):
        last += 1
    return [heard[j] for _, j in pairs[first : last + 1] if j is not None]


def _digits(words: Sequence[str]) -> str | None:
    """Number words as the digits they write, read greedily as consecutive numbers
    ("ten forty three" -> "1043", "twenty fourth" -> "24"); None if some word is not one."""
    out, i = [], 0
    while i < len(words):
        for k in range(len(words), i, -1):
            value = words_to_int(words[i:k])
            if value is None:
                value = words_to_ordinal(words[i:k])
            if value is not None:
                out.append(str(value))
                i = k
                break
        else:
            return None
    return "".join(out)


def number_not_in_grammar(context: Context, transcript: str, heard: str) -> str | None:
    """The heard number (as words) that stands where ``transcript``, a sentence of
    ``context``, has another number, and that the grammar does not take in its place; None
    when there is none (see the module docs)."""
    written = normalize_text(transcript)
    said = normalize_text(heard)
    if not written or not said or len(said) > MAX_WORDS:
        return None
    pairs = _alignment(written, said)
    for start, end in _runs(written):
        instead = _heard_for(pairs, start, end, said)
        if not instead or not all(w in NUMBER_WORDS for w in instead):
            continue  # the model heard no number there (or more than a number)
        if instead == written[start:end] or _digits(instead) == _digits(written[start:end]):
            continue  # the same number, written otherwise ("24th", "1043" for "10 43")
        if parse(context, " ".join([*written[:start], *instead, *written[end:]])) is None:
            return " ".join(instead)
    return None
