from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.numbers import (
    MAX_NUMBER,
    canonicalize_numbers,
    digits_to_words,
    int_to_words,
    ordinal_to_words,
    words_to_int,
    words_to_ordinal,
)


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (12, "twelve"),
        (20, "twenty"),
        (25, "twenty five"),
        (99, "ninety nine"),
        (100, "one hundred"),
        (105, "one hundred five"),
        (110, "one hundred ten"),
        (1000, "one thousand"),
        (1001, "one thousand one"),
        (2024, "two thousand twenty four"),
        (1_000_000, "one million"),
        (3_000_042, "three million forty two"),
    ],
)
def test_int_to_words(n: int, words: str) -> None:
    assert int_to_words(n) == words
    assert words_to_int(words) == n


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zeroth"),
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (5, "fifth"),
        (8, "eighth"),
        (9, "ninth"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty first"),
        (42, "forty second"),
        (99, "ninety ninth"),
        (100, "one hundredth"),
        (101, "one hundred first"),
        (1000, "one thousandth"),
    ],
)
def test_ordinals(n: int, words: str) -> None:
    assert ordinal_to_words(n) == words
    assert words_to_ordinal(words) == n


def test_round_trip_0_to_1000() -> None:
    for n in range(1001):
        assert words_to_int(int_to_words(n)) == n
        assert words_to_ordinal(ordinal_to_words(n)) == n
    assert len({int_to_words(n) for n in range(1001)}) == 1001


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=MAX_NUMBER))
def test_round_trip_large(n: int) -> None:
    assert words_to_int(int_to_words(n)) == n
    assert words_to_ordinal(ordinal_to_words(n)) == n


@pytest.mark.parametrize(
    ("words", "n"),
    [
        ("twenty-five", 25),
        ("Twenty Five", 25),
        ("one hundred and five", 105),
        ("a hundred", 100),
        ("a thousand", 1000),
        ("one thousand and five", 1005),
        ("one hundred and five thousand", 105_000),
        (["twenty", "five"], 25),
    ],
)
def test_lenient_spellings(words: str | list[str], n: int) -> None:
    assert words_to_int(words) == n


@pytest.mark.parametrize(
    "words",
    [
        "",
        "hundred",
        "five five",
        "twenty twenty",
        "twenty hundred",
        "zero zero",
        "one and",
        "a",
        "a five",
        "one thousand thousand",
        "one million two billion",
        "five a hundred",
        "latte",
        "first",
    ],
)
def test_not_a_cardinal(words: str) -> None:
    assert words_to_int(words) is None


def test_not_an_ordinal() -> None:
    assert words_to_ordinal("twenty") is None
    assert words_to_ordinal("first second") is None
    assert words_to_ordinal("") is None


@pytest.mark.parametrize(
    ("digits", "words"),
    [
        ("0", "zero"),
        ("7", "seven"),
        ("12", "twelve"),
        ("25", "twenty five"),
        ("100", "one hundred"),
        ("05", "oh five"),
        ("007", "oh oh seven"),
        ("00", "zero zero"),
        ("1234567890123", "one two three four five six seven eight nine zero one two three"),
    ],
)
def test_digits_to_words(digits: str, words: str) -> None:
    assert digits_to_words(digits) == words


@pytest.mark.parametrize("bad", ["", "12a", "-3", "1.5", "٣"])
def test_digits_to_words_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        digits_to_words(bad)


def test_int_to_words_range() -> None:
    with pytest.raises(ValueError, match="-1 is outside"):
        int_to_words(-1)
    with pytest.raises(ValueError, match="outside"):
        int_to_words(MAX_NUMBER + 1)
    with pytest.raises(TypeError, match="expected an int"):
        int_to_words(True)


@pytest.mark.parametrize(
    ("words", "canonical"),
    [
        ("set it to one hundred and five percent", "set it to one hundred five percent"),
        ("a hundred degrees", "one hundred degrees"),
        ("seven thirty am", "seven thirty am"),
        ("twenty five", "twenty five"),
        ("a bit of milk", "a bit of milk"),
        ("the one hundred and first time", "the one hundred first time"),
        ("milk and sugar", "milk and sugar"),
    ],
)
def test_canonicalize_numbers(words: str, canonical: str) -> None:
    assert canonicalize_numbers(words.split()) == canonical.split()
