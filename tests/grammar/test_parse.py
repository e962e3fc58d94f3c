from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.grammar import (
    Annotation,
    Context,
    context_from_yaml,
    enumerate_sentences,
    load_context,
    parse,
    parse_words,
    sample_sentences,
)
from assistant.grammar.parser import annotate

from .conftest import BARISTA


def test_parse_barista(barista: Context) -> None:
    result = parse(barista, "Can I have a LARGE, double-shot latte with some soy milk?")
    assert result == Annotation(
        "can i have a large double shot latte with some soy milk",
        "orderDrink",
        {
            "size": "large",
            "numberOfShots": "double shot",
            "coffeeDrink": "latte",
            "milkAmount": "some soy milk",
        },
    )
    assert parse(barista, "I'd like a 12-ounce iced coffee") == Annotation(
        "i'd like a twelve ounce iced coffee",
        "orderDrink",
        {"size": "twelve ounce", "coffeeDrink": "iced coffee"},
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "latte",  # no opening phrase
        "can i get a latte please",  # a word too many
        "can i get a",  # cut short
        "can i get a large small latte",  # one slot twice
        "can i get a frappuccino",  # not a value
        "can i get a large, 12-ounce latte?",  # two sizes
    ],
)
def test_parse_rejects(barista: Context, text: str) -> None:
    assert parse(barista, text) is None


@pytest.mark.parametrize(
    ("text", "intent", "slots"),
    [
        ("Turn on the kitchen lights, please", "lightsOn", {"room": "kitchen"}),
        ("could you switch the lounge light off", "lightsOff", {"room": "living room"}),
        ("dim the lights in the study to 30%", "dimLights", {"room": "office", "brightness": 30}),
        ("set the thermostat to 72 degrees", "setThermostat", {"temperature": 72}),
        (
            "make it 21 degrees celsius",
            "setThermostat",
            {"temperature": 21, "unit": "celsius"},
        ),
        ("set a timer for 10 minutes", "setTimer", {"duration": 10, "unit": "minutes"}),
        ("set a timer for one hour", "setTimer", {"duration": 1, "unit": "hours"}),
        ("start a five-minute timer", "setTimer", {"duration": 5, "unit": "minutes"}),
        (
            "set an alarm for 7:30 a.m.",
            "setAlarm",
            {"hour": 7, "minute": 30, "meridiem": "am"},
        ),
        (
            "wake me up at 6:05 in the morning",
            "setAlarm",
            {"hour": 6, "minute": 5, "meridiem": "am"},
        ),
        ("wake me at seven o'clock", "setAlarm", {"hour": 7}),
        ("play the music", "mediaPlay", {}),
        ("pause", "mediaPause", {}),
        ("skip this song", "mediaNext", {}),
        ("previous track", "mediaPrevious", {}),
        ("turn it up", "volumeUp", {}),
        ("make it quieter please", "volumeDown", {}),
        ("set the volume to 40 percent", "setVolume", {"level": 40}),
        ("What's the weather like tomorrow?", "getWeather", {"day": "tomorrow"}),
        ("how's the weather", "getWeather", {}),
        ("what time is it", "getTime", {}),
        ("cancel the timer", "cancel", {"target": "timer"}),
        ("stop", "cancel", {}),
        ("never mind", "cancel", {}),
    ],
)
def test_parse_home(home: Context, text: str, intent: str, slots: dict[str, object]) -> None:
    result = parse(home, text)
    assert result is not None, text
    assert (result.intent, dict(result.slots)) == (intent, slots)


def test_number_spellings_fall_back_to_canonical(home: Context) -> None:
    result = parse(home, "set a timer for one hundred and five minutes")
    assert result == Annotation(
        "set a timer for one hundred five minutes",
        "setTimer",
        {"duration": 105, "unit": "minutes"},
    )
    assert parse(home, "set the volume to a hundred") == Annotation(
        "set the volume to one hundred", "setVolume", {"level": 100}
    )
    assert parse(home, "set a timer for one hundred and five") is None


PRIORITY = context_from_yaml(
    """
context:
  expressions:
    first:
      - "turn on (the) $thing:thing"
      - "turn on the lights"
    second:
      - "turn on the $thing:thing (please)"
      - "pick $word:w (b)"
      - "pick $word:w b"
      - "$pv.TwoDigitInteger:n $pv.SingleDigitInteger:m"
  slots:
    thing: [lights, {value: tv, synonyms: [television]}]
    word: [a, a b]
"""
)


@pytest.mark.parametrize(
    ("text", "intent", "slots"),
    [
        # An earlier intent wins over a later one, an earlier expression over a later one.
        ("turn on the lights", "first", {"thing": "lights"}),
        ("turn on the television", "first", {"thing": "tv"}),
        # Only the later intent has "please".
        ("turn on the television please", "second", {"thing": "tv"}),
        # An optional part left out wins over put in, an earlier value over a later one.
        ("pick a b", "second", {"w": "a"}),
        # Numbers: "twenty five" could be 25 or 20 then 5; 20 comes first (values in order).
        ("twenty five", "second", {"n": 20, "m": 5}),
    ],
)
def test_ambiguity_rule(text: str, intent: str, slots: dict[str, object]) -> None:
    result = parse(PRIORITY, text)
    assert result is not None
    assert (result.intent, dict(result.slots)) == (intent, slots)


def test_parse_words_takes_normalized_words(home: Context) -> None:
    assert parse_words(home, ["what", "time", "is", "it"]) == parse(home, "What time is it?")
    assert parse_words(home, ["What", "time", "is", "it"]) is None  # not normalized
    assert parse_words(home, []) is None


def test_cached_parses_agree_with_first_parses(barista_path: Path) -> None:
    # How fast parsing is lives in the component benchmark ("parse"), not in a timed test.
    context = load_context(BARISTA)  # a fresh context: nothing cached yet
    sentences = [a.text for a in sample_sentences(load_context(BARISTA), 300, seed=3)]
    assert context.automaton.num_states > 0  # the one-time compile
    cold = [parse(context, text) for text in sentences]  # first parses fill the cache
    warm = [parse(context, text) for text in sentences]
    assert None not in cold and cold == warm


def test_parse_from_threads_agrees(barista: Context) -> None:
    sentences = [a.text for a in sample_sentences(barista, 400, seed=11)]
    fresh = load_context(BARISTA)
    results: dict[int, list[Annotation | None]] = {}

    def work(k: int) -> None:
        results[k] = [parse(fresh, text) for text in sentences[k::4] + sentences]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [parse(barista, text) for text in sentences]
    for k in range(4):
        assert results[k][-len(sentences) :] == expected


def test_enumerated_sentences_parse_back(barista: Context, home: Context) -> None:
    for context in (barista, home):
        for annotation in enumerate_sentences(context, limit=1000):
            assert parse(context, annotation.text) == annotation


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_paths_parse_back(barista: Context, home: Context, data: st.DataObject) -> None:
    # A random walk through the compiled grammar; neither grammar reads any sentence two
    # ways, so the walk's own meaning is what parse must find.
    for context in (barista, home):
        automaton = context.automaton
        state, path = automaton.start, []
        while True:
            ending = [None] if automaton.final[state] else []
            arc = data.draw(st.sampled_from([*automaton.arcs[state], *ending]))
            if arc is None:
                break
            path.append(arc)
            state = automaton.arc_target[arc]
        expected = annotate(automaton, path)
        assert parse(context, expected.text) == expected
