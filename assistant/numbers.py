"""English number words: integers and ordinals to words and back.

One canonical spelling is generated, the way people say numbers in commands::

    int_to_words(25)       -> "twenty five"
    int_to_words(105)      -> "one hundred five"
    int_to_words(1200)     -> "one thousand two hundred"
    ordinal_to_words(21)   -> "twenty first"

Reading is lenient: ``words_to_int`` also takes hyphens ("twenty-five"), a British "and"
("one hundred and five") and "a" for one before a scale ("a hundred"), and
``canonicalize_numbers`` rewrites such spellings in a word list to the canonical one.

Numbers from 0 to 999,999,999,999 are supported; there are no negative numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_NUMBER = 999_999_999_999

_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = (
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((1_000_000_000, "billion"), (1_000_000, "million"), (1_000, "thousand"))

_UNIT_VALUE = {word: value for value, word in enumerate(_UNITS) if value > 0}
_TEEN_VALUE = {word: 10 + value for value, word in enumerate(_TEENS)}
_TENS_VALUE = {word: 10 * value for value, word in enumerate(_TENS) if word}
_SCALE_VALUE = {word: value for value, word in _SCALES}

# Ordinal forms of the words that can end a number; all others take "th".
_ORDINAL_OF = {
    "zero": "zeroth",
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}

_CARDINAL_WORDS = frozenset([*_UNITS, *_TEENS, *_TENS_VALUE, "hundred", *_SCALE_VALUE])


def _ordinal_of_word(word: str) -> str:
    if word in _ORDINAL_OF:
        return _ORDINAL_OF[word]
    if word.endswith("y"):  # twenty -> twentieth
        return word[:-1] + "ieth"
    return word + "th"


_CARDINAL_OF = {_ordinal_of_word(word): word for word in _CARDINAL_WORDS}
_ORDINAL_WORDS = frozenset(_CARDINAL_OF)

#: Every word that can appear in a number, cardinal or ordinal (not "and" or "a").
NUMBER_WORDS = _CARDINAL_WORDS | _ORDINAL_WORDS


def _check_range(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"expected an int, got {type(n).__name__} {n!r}")
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"{n} is outside the spoken number range 0..{MAX_NUMBER}")


def _below_thousand_words(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_UNITS[hundreds], "hundred"]
    if rest >= 20:
        tens, unit = divmod(rest, 10)
        words.append(_TENS[tens])
        if unit:
            words.append(_UNITS[unit])
    elif rest >= 10:
        words.append(_TEENS[rest - 10])
    elif rest:
        words.append(_UNITS[rest])
    return words


def int_to_words(n: int) -> str:
    """The canonical spelling of ``n``: ``105 -> "one hundred five"``, ``0 -> "zero"``."""
    _check_range(n)
    if n == 0:
        return "zero"
    words: list[str] = []
    for scale, name in _SCALES:
        group, n = divmod(n, scale)
        if group:
            words += [*_below_thousand_words(group), name]
    words += _below_thousand_words(n)
    return " ".join(words)


def ordinal_to_words(n: int) -> str:
    """The canonical ordinal spelling of ``n``: ``1 -> "first"``, ``42 -> "forty second"``."""
    words = int_to_words(n).split()
    words[-1] = _ordinal_of_word(words[-1])
    return " ".join(words)


def _tokens(words: str | Sequence[str]) -> list[str]:
    text = words if isinstance(words, str) else " ".join(words)
    return text.lower().replace("-", " ").split()


def _parse_tens(tokens: list[str], i: int) -> tuple[int, int] | None:
    """A number 1..99 at ``tokens[i]``: (value, next index), or None."""
    if i >= len(tokens):
        return None
    word = tokens[i]
    if word in _TEEN_VALUE:
        return _TEEN_VALUE[word], i + 1
    if word in _TENS_VALUE:
        value = _TENS_VALUE[word]
        if i + 1 < len(tokens) and tokens[i + 1] in _UNIT_VALUE:
            return value + _UNIT_VALUE[tokens[i + 1]], i + 2
        return value, i + 1
    if word in _UNIT_VALUE:
        return _UNIT_VALUE[word], i + 1
    return None


def _parse_group(tokens: list[str], i: int, first: bool) -> tuple[int, int] | None:
    """A number 1..999 at ``tokens[i]``; "a" stands for one before "hundred" or a scale
    word when it opens the number."""
    if i >= len(tokens):
        return None
    word = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if word == "a" and first and (nxt == "hundred" or nxt in _SCALE_VALUE):
        if nxt != "hundred":
            return 1, i + 1
        hundreds, i = 1, i + 2
    elif word in _UNIT_VALUE and nxt == "hundred":
        hundreds, i = _UNIT_VALUE[word], i + 2
    else:
        return _parse_tens(tokens, i)
    value = 100 * hundreds
    if i < len(tokens) and tokens[i] == "and":
        rest = _parse_tens(tokens, i + 1)
        if rest is None:
            return None
        return value + rest[0], rest[1]
    rest = _parse_tens(tokens, i)
    if rest is not None:
        return value + rest[0], rest[1]
    return value, i


def _parse_cardinal(tokens: list[str]) -> int | None:
    if not tokens:
        return None
    if tokens == ["zero"]:
        return 0
    total, i, last_scale = 0, 0, MAX_NUMBER + 1
    while i < len(tokens):
        group = _parse_group(tokens, i, first=i == 0)
        if group is None:
            return None
        value, i = group
        if i < len(tokens) and tokens[i] in _SCALE_VALUE:
            scale = _SCALE_VALUE[tokens[i]]
            if scale >= last_scale:
                return None
            total, last_scale, i = total + value * scale, scale, i + 1
            if i < len(tokens) and tokens[i] == "and":
                rest = _parse_tens(tokens, i + 1)
                if rest is None or rest[1] != len(tokens):
                    return None
                return total + rest[0]
            continue
        if i != len(tokens):
            return None
        return total + value
    return total


def words_to_int(words: str | Sequence[str]) -> int | None:
    """The integer spelled by ``words`` ("twenty five", "twenty-five", "one hundred and five",
    "a hundred"), or None when the words are not exactly one cardinal number."""
    return _parse_cardinal(_tokens(words))


def words_to_ordinal(words: str | Sequence[str]) -> int | None:
    """The integer of an ordinal ("first" -> 1, "twenty-second" -> 22, "one hundredth" ->
    100), or None when the words are not exactly one ordinal."""
    tokens = _tokens(words)
    if not tokens or tokens[-1] not in _ORDINAL_WORDS:
        return None
    tokens[-1] = _CARDINAL_OF[tokens[-1]]
    if tokens[-1] in ("hundred", *_SCALE_VALUE) and len(tokens) == 1:
        tokens.insert(0, "one")  # "hundredth" -> one hundredth
    return _parse_cardinal(tokens)


def digits_to_words(digits: str) -> str:
    """Read a string of ASCII digits the way people say it: ``"25" -> "twenty five"``.

    Leading zeros of a longer string are read "oh" (``"05" -> "oh five"``, as in "seven oh
    five" for 7:05; ``"007" -> "oh oh seven"``); all-zero strings are read digit by digit
    ("zero zero"), and so are strings too long for a number.
    """
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"expected a string of digits 0-9, got {digits!r}")
    stripped = digits.lstrip("0")
    if not stripped:
        return " ".join(["zero"] * len(digits))
    if len(stripped) > len(str(MAX_NUMBER)):
        return " ".join(_UNITS[int(d)] for d in digits)
    leading = ["oh"] * (len(digits) - len(stripped))
    return " ".join([*leading, int_to_words(int(stripped))])


_NUMBER_START = NUMBER_WORDS | {"a"}
_LONGEST_NUMBER = 24  # words in the longest spelling, e.g. 777,777,777,777 with "and"s


def canonicalize_numbers(words: Sequence[str]) -> list[str]:
    """Rewrite lenient number spellings in ``words`` to the canonical one.

    Scans left to right and takes the longest run of words that spells one number
    (cardinal or ordinal); a run spelled differently from ``int_to_words`` /
    ``ordinal_to_words`` is replaced: ``"one hundred and five" -> "one hundred five"``,
    ``"a hundred" -> "one hundred"``. Other words are left alone.
    """
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] not in _NUMBER_START:
            out.append(words[i])
            i += 1
            continue
        for j in range(min(len(words), i + _LONGEST_NUMBER), i, -1):
            run = words[i:j]
            value = _parse_cardinal(list(run))
            if value is not None:
                out += int_to_words(value).split()
                break
            value = words_to_ordinal(run)
            if value is not None:
                out += ordinal_to_words(value).split()
                break
        else:
            out.append(words[i])
            j = i + 1
        i = j
    return out
