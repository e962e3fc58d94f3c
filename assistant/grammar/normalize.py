"""Text normalization shared by grammars, parsing and the speech decoder.

``normalize_text`` turns free text into the word sequence a grammar is written in::

    "Can I get a large, 12-ounce latte?"
    -> ["can", "i", "get", "a", "large", "twelve", "ounce", "latte"]

Rules, in order:

1. Unicode NFKC; curly apostrophes (’ ‘ ʼ) become ``'``; lowercase.
2. "a.m." / "p.m." become "am" / "pm".
3. Digits become number words: thousands separators are dropped ("1,000"), decimals are
   read "two point five", ordinals "21st" -> "twenty first", "%" -> "percent", and every
   other digit string goes through :func:`assistant.numbers.digits_to_words` ("25" ->
   "twenty five", "05" -> "oh five").
4. "&" becomes "and".
5. Words are runs of letters joined by inner apostrophes ("i'd", "o'clock"); everything
   else (punctuation, hyphens, quotes, apostrophes at a word's edge) separates words.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.numbers import MAX_NUMBER, digits_to_words, ordinal_to_words

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})
_MERIDIEM = re.compile(r"\b([ap])\.m\.(?!\w)")
_THOUSANDS = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")
_DECIMAL = re.compile(r"([0-9]+)\.([0-9]+)")
_ORDINAL = re.compile(r"([0-9]+)(?:st|nd|rd|th)\b")
_DIGITS = re.compile(r"[0-9]+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def _decimal(match: re.Match[str]) -> str:
    fraction = " ".join(digits_to_words(d) for d in match.group(2))
    return f" {digits_to_words(match.group(1))} point {fraction} "


def _ordinal(match: re.Match[str]) -> str:
    value = int(match.group(1))
    if value > MAX_NUMBER:
        return f" {digits_to_words(match.group(1))} "
    return f" {ordinal_to_words(value)} "


def normalize_text(text: str) -> list[str]:
    """The lowercase words of ``text``, numbers spelled out, punctuation removed."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    text = _MERIDIEM.sub(r"\1m", text)
    text = _THOUSANDS.sub("", text)
    text = _DECIMAL.sub(_decimal, text)
    text = _ORDINAL.sub(_ordinal, text)
    text = text.replace("%", " percent ").replace("&", " and ")
    text = _DIGITS.sub(lambda m: f" {digits_to_words(m.group(0))} ", text)
    return _WORD.findall(text)
