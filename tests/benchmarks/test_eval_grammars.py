"""The evaluation grammars and near-domain sentence lists of ``benchmarks/grammars/``: each
grammar loads and says what it should, and every near-domain line is outside its grammar."""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path

import pytest

from assistant.grammar import (
    Annotation,
    Context,
    count_sentences,
    load_context,
    normalize_text,
    parse,
)
from tests.conftest import HOME_CONTEXT, REPO, shared_data

GRAMMARS = REPO / "benchmarks" / "grammars"
KEYWORDS = {
    "alexa": "alexa",
    "computer": "computer",
    "jarvis": "jarvis",
    "smartMirror": "smart mirror",
    "snowboy": "snowboy",
    "viewGlass": "view glass",
}
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Each near-domain list and the grammar it must stay outside of (None: the shared barista data).
NEAR: dict[str, Path | None] = {
    "near_barista.txt": None,
    "near_home.txt": HOME_CONTEXT,
    "near_timers.txt": GRAMMARS / "timers.yaml",
    "near_keywords.txt": GRAMMARS / "keywords.yaml",
    "near_digits.txt": GRAMMARS / "digits.yaml",
}


@functools.cache
def context(path: Path) -> Context:
    return load_context(path)


def grammar_for(near_file: str) -> Path:
    grammar = NEAR[near_file]
    if grammar is None:
        return shared_data("barista-dev", "coffee_maker.yaml")
    return grammar


def near_lines(near_file: str) -> list[str]:
    return (GRAMMARS / near_file).read_text(encoding="utf-8").splitlines()


def test_every_near_file_is_listed() -> None:
    assert sorted(p.name for p in GRAMMARS.glob("near_*.txt")) == sorted(NEAR)


@pytest.mark.parametrize("name", ["keywords.yaml", "digits.yaml", "timers.yaml"])
def test_grammar_loads(name: str) -> None:
    loaded = context(GRAMMARS / name)
    assert loaded.intents
    assert count_sentences(loaded) > 0


def test_keywords_has_the_six_intents() -> None:
    keywords = context(GRAMMARS / "keywords.yaml")
    assert [intent.name for intent in keywords.intents] == list(KEYWORDS)
    assert count_sentences(keywords) == len(KEYWORDS)


@pytest.mark.parametrize(("intent", "phrase"), sorted(KEYWORDS.items()))
def test_keyword_phrase_parses_to_its_intent(intent: str, phrase: str) -> None:
    annotation = parse(context(GRAMMARS / "keywords.yaml"), phrase)
    assert annotation is not None
    assert annotation.intent == intent
    assert annotation.slots == {}


def test_digits_parses_seven() -> None:
    annotation = parse(context(GRAMMARS / "digits.yaml"), "seven")
    assert annotation is not None
    assert annotation.intent == "digit"
    assert annotation.slots == {"digit": "seven"}


def test_digits_has_the_ten_words() -> None:
    digits = context(GRAMMARS / "digits.yaml")
    assert count_sentences(digits) == len(DIGITS)
    for word in DIGITS:
        annotation = parse(digits, word)
        assert annotation is not None and annotation.slots == {"digit": word}


def test_timers_size() -> None:
    timers = context(GRAMMARS / "timers.yaml")
    assert 5_000 <= count_sentences(timers) <= 200_000
    assert {intent.name for intent in timers.intents} >= {
        "setTimer",
        "setAlarm",
        "cancelTimer",
        "cancelAlarm",
        "timeLeft",
        "snooze",
    }


@pytest.mark.parametrize(
    ("text", "intent", "slots"),
    [
        ("set a timer for an hour and a half", "setTimer", {"duration": "PT1H30M"}),
        ("set a timer for 10 minutes", "setTimer", {"minutes": 10}),
        (
            "set an alarm for seven thirty am",
            "setAlarm",
            {"hour": 7, "minute": 30, "meridiem": "am"},
        ),
        ("set an alarm for six o'clock", "setAlarm", {"hour": 6}),
        ("snooze for five minutes", "snooze", {"minutes": 5}),
    ],
)
def test_timers_examples(text: str, intent: str, slots: dict[str, str | int]) -> None:
    annotation = parse(context(GRAMMARS / "timers.yaml"), text)
    assert annotation is not None
    assert (annotation.intent, annotation.slots) == (intent, slots)


@pytest.mark.parametrize("near_file", sorted(NEAR))
def test_near_lines_are_nonempty_and_unique(near_file: str) -> None:
    lines = near_lines(near_file)
    assert lines
    assert all(line.strip() for line in lines)
    normalized = [" ".join(normalize_text(line)) for line in lines]
    duplicates = sorted({text for text in normalized if normalized.count(text) > 1})
    assert not duplicates


@pytest.mark.parametrize("near_file", sorted(NEAR))
def test_near_lines_are_outside_their_grammar(near_file: str) -> None:
    grammar = context(grammar_for(near_file))
    parsed: dict[str, Annotation] = {}
    for line in near_lines(near_file):
        annotation = parse(grammar, line)
        if annotation is not None:
            parsed[line] = annotation
    assert not parsed


def test_near_lines_are_not_training_negatives() -> None:
    negatives = pytest.importorskip("training.negatives")
    used = set(negatives.OUT_OF_DOMAIN) | set(negatives.SHORT_UTTERANCES)
    for template in negatives.TEMPLATES:
        keys = re.findall(r"\{(\w+)\}", template)
        for fillers in itertools.product(*(negatives.FILLERS[key] for key in keys)):
            used.add(template.format(**dict(zip(keys, fillers, strict=True))))
    used_normalized = {" ".join(normalize_text(text)) for text in used}
    shared = [
        (near_file, line)
        for near_file in sorted(NEAR)
        for line in near_lines(near_file)
        if " ".join(normalize_text(line)) in used_normalized
    ]
    assert not shared
