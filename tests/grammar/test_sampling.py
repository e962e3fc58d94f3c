from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.grammar import Context, context_from_yaml, parse, sample_sentences
from assistant.grammar.generate import sample_derivations


def test_reproducible_by_seed(home: Context) -> None:
    assert sample_sentences(home, 50, seed=7) == sample_sentences(home, 50, seed=7)
    assert sample_sentences(home, 50, seed=7) != sample_sentences(home, 50, seed=8)


def test_sizes() -> None:
    context = context_from_yaml("context:\n  expressions:\n    hi: [hello]\n")
    assert sample_sentences(context, 0, seed=0) == []
    assert [a.text for a in sample_sentences(context, 3, seed=0)] == ["hello"] * 3
    with pytest.raises(ValueError, match="cannot sample -1"):
        sample_sentences(context, -1, seed=0)


def test_intents_take_turns(home: Context) -> None:
    samples = sample_sentences(home, 10 * len(home.intents) + 3, seed=0)
    counts = Counter(a.intent for a in samples)
    assert set(counts) == set(home.intent_names)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert [a.intent for a in samples[: len(home.intents)]] == list(home.intent_names)


def test_barista_slot_values_are_even(barista: Context) -> None:
    samples = sample_sentences(barista, 1000, seed=0)
    for slot_type in barista.slot_types:
        counts = Counter(a.slots[slot_type.name] for a in samples if slot_type.name in a.slots)
        assert set(counts) == set(slot_type.canonical_values), slot_type.name
        assert max(counts.values()) - min(counts.values()) <= 1, (slot_type.name, counts)
    # Expressions are dealt evenly, not by how many sentences they have: the 12 of 80
    # expressions with all six slots hold 73% of the sentences, and get 15% of the samples.
    all_six = sum(len(a.slots) == 6 for a in samples) / len(samples)
    assert abs(all_six - 12 / 80) < 0.02


def test_home_slot_values_are_even(home: Context) -> None:
    samples = sample_sentences(home, 2000, seed=0)
    for name in ("room", "brightness", "temperature", "meridiem", "day", "target", "level"):
        values = Counter(a.slots[name] for a in samples if name in a.slots)
        slot_type = {"brightness": "pv.Percent", "target": "cancelTarget", "level": "volumeLevel"}
        expected = home.slot_type(slot_type.get(name, name)).canonical_values
        assert set(values) <= set(expected)
        if len(expected) <= 20:
            assert set(values) == set(expected), name
        assert max(values.values()) - min(values.values()) <= 1, (name, values)


def test_spoken_forms_are_even() -> None:
    context = context_from_yaml(
        """
context:
  expressions:
    go: ["go to the $room:room"]
    big: ["[a, b, c, d, e, f, g, h] [a, b, c, d, e, f, g, h] [a, b, c, d, e, f, g, h] x"]
  slots:
    room:
      - kitchen
      - {value: living room, synonyms: [lounge, family room]}
"""
    )
    samples = sample_sentences(context, 120, seed=0)
    texts = Counter(a.text for a in samples if a.intent == "go")
    assert texts["go to the kitchen"] == 30
    assert texts["go to the living room"] == texts["go to the lounge"] == 10
    assert texts["go to the family room"] == 10
    assert Counter(a.intent for a in samples) == {"go": 60, "big": 60}


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_samples_parse_back(barista: Context, home: Context, seed: int) -> None:
    for context in (barista, home):
        for annotation in sample_sentences(context, 30, seed=seed):
            assert parse(context, annotation.text) == annotation


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_home_derivations_mean_what_they_say(home: Context, seed: int) -> None:
    # No sentence of the home grammar is read differently from how it was generated.
    for derivation in sample_derivations(home, 50, seed=seed):
        assert parse(home, derivation.text) == derivation
