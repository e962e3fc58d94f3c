"""The Wyoming transcript of a recognized command fires the same intent in Home Assistant:
checked with Home Assistant's own sentence matcher (``benchmarks/home_assistant_matcher.py``:
hassil with its English sentences, as its conversation agent reads our transcript)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from assistant.grammar import load_context, sample_sentences
from benchmarks.home_assistant_matcher import HomeAssistantMatcher
from serving.wyoming.phrasing import device_kinds, home_assistant_sentence

HA = Path(__file__).resolve().parents[2] / "assistant" / "contexts" / "home_assistant.yaml"

# Commands Home Assistant has no sentence for: the transcript stays as the model wrote it.
NO_SENTENCE = {"HassToggle": None, "HassTurnOn": ("area",), "HassTurnOff": ("area",),
               "HassVacuumStart": ()}


@pytest.fixture(scope="module")
def context() -> Any:
    return load_context(HA)


@pytest.fixture(scope="module")
def matcher(context: Any) -> HomeAssistantMatcher:
    return HomeAssistantMatcher(context)


def test_transcripts_fire_the_intents_we_understood(context: Any,
                                                    matcher: HomeAssistantMatcher) -> None:
    kinds = device_kinds(context)
    fired = as_written = 0
    gaps: collections.Counter[str] = collections.Counter()
    unexplained = []
    sample = sample_sentences(context, 400, seed=5)
    for annotation in sample:
        as_written += matcher.agrees(annotation, annotation.text)
        text = home_assistant_sentence(annotation.intent, annotation.slots, kinds)
        if text is None:
            keys = NO_SENTENCE[annotation.intent]
            assert keys is None or tuple(sorted(annotation.slots)) == keys, annotation
            gaps["no sentence"] += 1
        elif matcher.agrees(annotation, text):
            fired += 1
        elif (why := matcher.known_gap(annotation, text)) is not None:
            gaps[why] += 1
        else:
            unexplained.append((annotation, text, matcher.fires(text)))
    assert unexplained == []
    print(f"fired {fired} of {len(sample)} (as written: {as_written}); gaps {dict(gaps)}")
    assert fired > as_written


def test_every_intent_of_the_context_has_a_sentence_or_a_reason(
        context: Any, matcher: HomeAssistantMatcher) -> None:
    for name in context.intent_names:
        assert name in matcher.intents.intents or name in NO_SENTENCE, name


def test_half_units_and_kinds() -> None:
    assert home_assistant_sentence("HassStartTimer", {"minutes": 2, "half": "half"}) == \
        "set a timer for 2 minutes and 30 seconds"
    assert home_assistant_sentence("HassStartTimer", {"hours": 1, "half": "half",
                                                      "name": "pizza"}) == \
        "set a timer for 1 hour and 30 minutes named pizza"
    assert home_assistant_sentence("HassTurnOff", {"name": "back door"},
                                   {"back door": "lock"}) == "unlock the back door"
    assert home_assistant_sentence("HassTurnOn", {"area": "kitchen"}) is None
    assert home_assistant_sentence("lightsOn", {"room": "kitchen"}) is None  # not HA's
