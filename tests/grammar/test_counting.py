"""Counting and enumeration against the brute-force oracle, on small grammars."""

from __future__ import annotations

import pytest

from assistant.grammar import (
    Annotation,
    Context,
    context_from_yaml,
    count_sentences,
    enumerate_sentences,
)

from .oracle import count_derivations, derivations, first_readings
from .small_grammars import SMALL


@pytest.fixture(params=list(SMALL))
def small(request: pytest.FixtureRequest) -> Context:
    return context_from_yaml(SMALL[request.param])


def test_count_matches_brute_force(small: Context) -> None:
    readings = first_readings(small)
    assert count_sentences(small) == len(readings)


def test_enumeration_matches_brute_force(small: Context) -> None:
    readings = first_readings(small)
    listed = list(enumerate_sentences(small))
    assert [a.text for a in listed] == list(readings)  # distinct, in first-derivation order
    assert listed == list(readings.values())  # and annotated with the first derivation


def test_small_grammars_are_really_ambiguous(small: Context) -> None:
    # Otherwise the tests above would not exercise the tie-breaking rule.
    assert len(list(derivations(small))) > count_sentences(small)


def test_enumeration_limit(small: Context) -> None:
    everything = list(enumerate_sentences(small))
    assert list(enumerate_sentences(small, limit=3)) == everything[:3]
    assert list(enumerate_sentences(small, limit=0)) == []


def test_enumeration_order_example() -> None:
    context = context_from_yaml(SMALL["optional stop inside a choice"])
    assert [a.text for a in enumerate_sentences(context)] == [
        "a b",
        "a",
        "a c",
        "a d",
        "a c d",
        "a b d",
    ]


def test_barista_count_is_exact(barista: Context) -> None:
    derivation_count = sum(
        count_derivations(barista, expression.tree)
        for expression in barista.intent("orderDrink").expressions
    )
    assert count_sentences(barista) == derivation_count == 120_130_920  # no sentence two ways
    first = next(iter(enumerate_sentences(barista)))
    assert first == Annotation(
        "brew a small light roast single shot americano with milk and sugar",
        "orderDrink",
        {
            "size": "small",
            "roast": "light roast",
            "numberOfShots": "single shot",
            "coffeeDrink": "americano",
            "milkAmount": "milk",
            "sugarAmount": "sugar",
        },
    )


def test_barista_enumeration_is_lazy_and_distinct(barista: Context) -> None:
    texts = [a.text for a in enumerate_sentences(barista, limit=5000)]
    assert len(texts) == 5000
    assert len(set(texts)) == 5000


def test_home_has_no_sentence_two_ways(home: Context) -> None:
    derivation_count = sum(
        count_derivations(home, expression.tree)
        for intent in home.intents
        for expression in intent.expressions
    )
    assert count_sentences(home) == derivation_count
