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
"150%" is "one hundred fifty percent"), the sentence in the grammar's own words, numbers
aligned with numbers. Its number is compared with the heard words aligned to it plus the
heard number words inserted next to them ("one hundred" against "one hundred ten"); a heard
number word that stands for a sentence word that is no number ("4" for "for") is not part of
it. The same digits written otherwise ("24th" for "24", "1208" for the clock time "twelve oh
eight", "7272" for a stutter) are the same number; "second" after a number is the unit; a
repetition loop of the free decode is cut before it is compared; and the free decode must
have heard the sentence's word right before or right after the number as it is (else the
number sits in a stretch it garbled). Nor is "eighteen" heard as "eighty" (or any "-teen" as
its "-ty") a number outside the grammar: speech models confuse the two, and the grammar's
choice is the better guess. A heard number that the grammar takes in the sentence's place
(with the heard word after it, "two minutes" for "one minute"), or a free decode that is a
sentence of the grammar itself, is left alone: the constrained search weighed it and
preferred its own, so that is the model's call (and its confidence's).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .grammar import Context, normalize_text, parse
from .grammar.nearest import without_loops
from .numbers import NUMBER_WORDS, canonicalize_numbers, words_to_int, words_to_ordinal

MAX_WORDS = 40  # longer free decodes are repetition loops: not compared
# Words of a number here: not "second", which is far more often the unit than the ordinal
# ("a thirty five second timer" holds the number thirty five).
_NUMBER = NUMBER_WORDS - {"second"}
_ZERO = "oh"  # between number words, a clock time's zero ("twelve oh eight")
_APART = "|"  # between heard numbers a comma or semicolon kept apart
_WHOLE_HOUR = re.compile(r"\b(\d{1,2}):00(?!\d)")  # "7:00", "7:00pm" for "seven (o'clock)"
_DOTTED_TIME = re.compile(r"\b(1[0-2]|0?[1-9])\.(\d\d)(?!\d)")  # "1.15": a clock time
_FRACTIONS = {"½": " and a half", "¼": " and a quarter", "¾": " and three quarters"}
# "eighteen" and "eighty" sound alike and speech models mix them up; where the grammar takes
# only one of the two, its choice is the better guess, not a number outside it.
_TEEN_TY = frozenset(frozenset((teen, ty)) for teen, ty in (
    ("thirteen", "thirty"), ("fourteen", "forty"), ("fifteen", "fifty"), ("sixteen", "sixty"),
    ("seventeen", "seventy"), ("eighteen", "eighty"), ("nineteen", "ninety")))


def _number_word(word: str) -> bool:
    """A word that may be part of a number ("oh" too: in context, see :func:`_is_number`)."""
    return word in _NUMBER or word == _ZERO


def _change(x: str, y: str) -> int:
    """What writing ``y`` for ``x`` costs: nothing for the same word, 1 for another word of
    the same kind (a number word for a number word), 2 (a deletion and an insertion) for a
    number word against another word, so numbers line up with numbers."""
    if x == y:
        return 0
    return 1 if _number_word(x) == _number_word(y) else 2


def _alignment(a: Sequence[str], b: Sequence[str]) -> list[tuple[int | None, int | None]]:
    """One least-cost word alignment of ``a`` with ``b`` (edit distance, :func:`_change`) as
    (i, j) pairs: both for a match or substitution, None on the side that has no word."""
    n, m = len(a), len(b)
    cost = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + _change(a[i - 1], b[j - 1]),
                             cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + _change(a[i - 1], b[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def _is_number(words: Sequence[str], i: int) -> bool:
    """Whether ``words[i]`` is a word of a number ("oh" only between two such words)."""
    if words[i] == _ZERO:
        return 0 < i < len(words) - 1 and words[i - 1] in _NUMBER and words[i + 1] in _NUMBER
    return words[i] in _NUMBER


def _runs(words: Sequence[str]) -> list[tuple[int, int]]:
    """The [start, end) spans of consecutive number words."""
    spans, start = [], None
    for i in range(len(words) + 1):
        number = i < len(words) and _is_number(words, i)
        if number and start is None:
            start = i
        elif not number and start is not None:
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
        return i is None and j is not None and _is_number(heard, j)

    first, last = inside[0], inside[-1]
    while inserted_number(first - 1):
        first -= 1
    while inserted_number(last + 1):
        last += 1
    return [heard[j] for _, j in pairs[first : last + 1] if j is not None]


def _anchored(pairs: list[tuple[int | None, int | None]], start: int, end: int,
              written: Sequence[str], said: Sequence[str]) -> bool:
    """Whether the free decode heard the sentence's word right before or right after its
    number [start, end) as it is (a sentence's start or end counts as heard when the free
    decode starts or ends there too): only then is its number a number heard in the same
    sentence, not part of a stretch it garbled ("the 11-47 team" for "the alarm for four
    seventeen")."""
    matched = {i: j for i, j in pairs if i is not None and j is not None
               and written[i] == said[j]}
    before = start - 1 in matched if start > 0 else pairs[0][0] == 0
    after = end in matched if end < len(written) else pairs[-1][0] == len(written) - 1
    return before or after


def _sound_alike(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether two numbers differ only in one word, "-teen" for "-ty" ("one hundred fifteen",
    "one hundred fifty")."""
    if len(a) != len(b):
        return False
    differ = [frozenset((x, y)) for x, y in zip(a, b, strict=True) if x != y]
    return len(differ) == 1 and differ[0] in _TEEN_TY


def _digits(words: Sequence[str]) -> str | None:
    """Number words as the digits they write, read greedily as consecutive numbers
    ("ten forty three" -> "1043", "twenty fourth" -> "24"); None if some word is not one."""
    out, i = [], 0
    while i < len(words):
        if words[i] == _ZERO:
            out.append("0")
            i += 1
            continue
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


def _heard_words(heard: str) -> list[str]:
    """The free decode as words: "7:00" as the hour it says, "1.15" as a clock time, "2½"
    as "two and a half", "a hundred and sixty" as the grammar writes it, numbers a comma or a
    semicolon keeps apart kept apart (a separator between them: "20, 72" is not "twenty
    seventy two"; "90,000" is one number), a repetition loop cut ("7, 7, 7," is no number
    heard)."""
    text = _DOTTED_TIME.sub(r"\1:\2", _WHOLE_HOUR.sub(r"\1", heard))
    for fraction, words_of in _FRACTIONS.items():
        text = text.replace(fraction, words_of)
    words: list[str] = []
    for part in re.split(r"[,;]\s", text):  # not "90,000"
        said = canonicalize_numbers(normalize_text(part))  # "a hundred and sixty" as 160
        if said:
            words += ([_APART] if words else []) + said
    return without_loops(words)


def _repeated(a: str | None, b: str | None) -> bool:
    """Whether digits ``a`` are ``b`` said more than once ("7272" for "72": a stutter)."""
    if not a or not b or len(a) <= len(b):
        return False
    return a == b * (len(a) // len(b))


def number_not_in_grammar(context: Context, sentence: str, heard: str) -> str | None:
    """The heard number (as words) that stands where ``sentence``, a sentence of ``context``
    in the grammar's own words (its annotation's text: "six oh two", where the decoder wrote
    "6.02"), has another number, and that the grammar does not take in its place; None when
    there is none (see the module docs)."""
    written = normalize_text(sentence)
    said = _heard_words(heard)
    if not written or not said or len(said) > MAX_WORDS:
        return None
    pairs = _alignment(written, said)
    for start, end in _runs(written):
        instead = _heard_for(pairs, start, end, said)
        if not instead or not all(_number_word(w) for w in instead):
            continue  # the model heard no number there (or more than a number)
        if not _anchored(pairs, start, end, written, said):
            continue  # the words around it were not heard either: a garbled stretch
        number = written[start:end]
        heard_digits, digits = _digits(instead), _digits(number)
        if instead == number or heard_digits == digits or _repeated(heard_digits, digits):
            continue  # the same number, written otherwise ("24th", "1043" for "10 43")
        if _sound_alike(instead, number):
            continue
        # The heard number in the sentence's place, with the heard word after it too when it
        # differs ("two minutes" for "one minute"); any that parses is the grammar's.
        candidates = [[*written[:start], *instead, *written[end:]]]
        after = next((j for i, j in pairs if i == end and j is not None), None)
        if after is not None and said[after] != _APART:
            candidates.append([*written[:start], *instead, said[after], *written[end + 1:]])
        if all(parse(context, " ".join(c)) is None for c in candidates) \
                and parse(context, " ".join(w for w in said if w != _APART)) is None:
            return " ".join(instead)
    return None
