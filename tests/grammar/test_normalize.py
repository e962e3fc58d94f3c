from __future__ import annotations

import pytest

from assistant.grammar import normalize_text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "Can I get a large, 12-ounce latte?",
            ["can", "i", "get", "a", "large", "twelve", "ounce", "latte"],
        ),
        ("I'd like an espresso!", ["i'd", "like", "an", "espresso"]),
        ("I’d like it", ["i'd", "like", "it"]),
        ("set it to 25", ["set", "it", "to", "twenty", "five"]),
        ("twenty-five", ["twenty", "five"]),
        ('He said "stop"; then: go.', ["he", "said", "stop", "then", "go"]),
        ("wake me at 7:30 a.m.", ["wake", "me", "at", "seven", "thirty", "am"]),
        ("7:05 P.M.", ["seven", "oh", "five", "pm"]),
        ("dim to 50%", ["dim", "to", "fifty", "percent"]),
        ("1,000 people", ["one", "thousand", "people"]),
        ("2.5 hours", ["two", "point", "five", "hours"]),
        ("the 21st floor", ["the", "twenty", "first", "floor"]),
        ("3rd", ["third"]),
        ("rock & roll", ["rock", "and", "roll"]),
        ("seven o'clock", ["seven", "o'clock"]),
        ("the kids' room", ["the", "kids", "room"]),
        ("'quoted'", ["quoted"]),
        ("  MIXED   case\tand\nspace ", ["mixed", "case", "and", "space"]),
        ("ＦＵＬＬ１２", ["full", "twelve"]),
        ("café", ["café"]),
        ("snake_case", ["snake", "case"]),
        ("", []),
        ("?!...", []),
    ],
)
def test_normalize_text(text: str, words: list[str]) -> None:
    assert normalize_text(text) == words


def test_normalize_is_idempotent() -> None:
    text = "Can I get a large, 12-ounce latte? I'd like it at 7:05 a.m., 50% hot."
    once = normalize_text(text)
    assert normalize_text(" ".join(once)) == once
