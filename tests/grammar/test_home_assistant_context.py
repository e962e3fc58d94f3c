"""The shipped Home Assistant context: HA's intent and slot names, size, one reading per
sentence, and typed sentences parsed to what Home Assistant expects."""

from __future__ import annotations

import pytest

from assistant.grammar import (
    Context,
    SlotValueT,
    count_sentences,
    load_context,
    parse,
    sample_sentences,
)
from assistant.grammar.generate import sample_derivations

from .conftest import REPO
from .oracle import count_derivations

HOME_ASSISTANT = REPO / "assistant" / "contexts" / "home_assistant.yaml"

# Intent -> the slot names it can fill: Home Assistant's names, plus `half` (documented in
# the file's header) for "and a half" durations.
TIMER_TARGET = {"name", "start_hours", "start_minutes", "start_seconds"}
DURATION = {"hours", "minutes", "seconds", "half"}
INTENT_SLOTS: dict[str, set[str]] = {
    "HassTurnOn": {"name", "area", "domain"},
    "HassTurnOff": {"name", "area", "domain"},
    "HassToggle": {"name", "area", "domain"},
    "HassLightSet": {"name", "area", "brightness", "color"},
    "HassFanSetSpeed": {"name", "area", "percentage"},
    "HassSetPosition": {"name", "position"},
    "HassClimateSetTemperature": {"name", "area", "temperature"},
    "HassGetState": {"name", "area", "domain", "state"},
    "HassClimateGetTemperature": {"area"},
    "HassMediaPause": {"name", "area"},
    "HassMediaUnpause": {"name", "area"},
    "HassMediaNext": set(),
    "HassMediaPrevious": set(),
    "HassSetVolume": {"name", "area", "volume_level"},
    "HassSetVolumeRelative": {"name", "volume_step"},
    "HassMediaPlayerMute": {"name"},
    "HassMediaPlayerUnmute": {"name"},
    "HassStartTimer": DURATION | {"name"},
    "HassTimerStatus": TIMER_TARGET,
    "HassCancelTimer": TIMER_TARGET,
    "HassCancelAllTimers": set(),
    "HassIncreaseTimer": DURATION | {"name"},
    "HassDecreaseTimer": DURATION | {"name"},
    "HassPauseTimer": TIMER_TARGET,
    "HassUnpauseTimer": TIMER_TARGET,
    "HassVacuumStart": {"name"},
    "HassVacuumReturnToBase": {"name"},
    "HassShoppingListAddItem": {"item"},
    "HassShoppingListCompleteItem": {"item"},
    "HassGetWeather": set(),
    "HassGetCurrentTime": set(),
    "HassGetCurrentDate": set(),
    "HassNevermind": set(),
}


@pytest.fixture(scope="module")
def context() -> Context:
    return load_context(HOME_ASSISTANT)


def test_intents_and_slot_names(context: Context) -> None:
    assert set(context.intent_names) == set(INTENT_SLOTS)
    assert {i.name: set(i.slot_names) for i in context.intents} == INTENT_SLOTS


def test_size(context: Context) -> None:
    assert count_sentences(context) >= 20_000


def test_every_sentence_has_one_reading(context: Context) -> None:
    derivations = sum(
        count_derivations(context, e.tree) for intent in context.intents for e in intent.expressions
    )
    assert derivations == count_sentences(context)


CASES: list[tuple[str, str, dict[str, SlotValueT]]] = [
    # On / off: a device, a device in an area, the lights of an area, a whole area.
    ("Turn on the kitchen lights", "HassTurnOn", {"area": "kitchen", "domain": "light"}),
    ("turn off the living room", "HassTurnOff", {"area": "living room"}),
    (
        "Could you switch on the ceiling fan in the bedroom?",
        "HassTurnOn",
        {"name": "ceiling fan", "area": "bedroom"},
    ),
    (
        "switch the lounge lights off, please",
        "HassTurnOff",
        {"area": "living room", "domain": "light"},
    ),
    ("turn on the television", "HassTurnOn", {"name": "tv"}),
    ("toggle the desk lamp", "HassToggle", {"name": "desk lamp"}),
    # Covers and locks go through HassTurnOn / HassTurnOff, as in Home Assistant.
    ("open the garage door", "HassTurnOn", {"name": "garage door"}),
    ("close the blinds in the office", "HassTurnOff", {"name": "blinds", "area": "office"}),
    ("lock the front door", "HassTurnOn", {"name": "front door"}),
    ("please unlock the back door", "HassTurnOff", {"name": "back door"}),
    # Lights, fans, covers, thermostats.
    ("set the bedroom lights to 50%", "HassLightSet", {"area": "bedroom", "brightness": 50}),
    ("dim the desk lamp to 20 percent", "HassLightSet", {"name": "desk lamp", "brightness": 20}),
    ("turn the kitchen lights red", "HassLightSet", {"area": "kitchen", "color": "red"}),
    (
        "can you set the floor lamp to lavender",
        "HassLightSet",
        {"name": "floor lamp", "color": "lavender"},
    ),
    ("set the ceiling fan to 75%", "HassFanSetSpeed", {"name": "ceiling fan", "percentage": 75}),
    ("open the blinds to 40 percent", "HassSetPosition", {"name": "blinds", "position": 40}),
    (
        "set the temperature in the bedroom to 21 degrees",
        "HassClimateSetTemperature",
        {"area": "bedroom", "temperature": 21},
    ),
    # Questions.
    ("Is the front door locked?", "HassGetState", {"name": "front door", "state": "locked"}),
    (
        "are the blinds open in the office",
        "HassGetState",
        {"name": "blinds", "state": "open", "area": "office"},
    ),
    ("is the garage door closed", "HassGetState", {"name": "garage door", "state": "closed"}),
    (
        "are the lights on in the kitchen",
        "HassGetState",
        {"domain": "light", "state": "on", "area": "kitchen"},
    ),
    (
        "what is the humidity in the bathroom",
        "HassGetState",
        {"name": "humidity", "area": "bathroom"},
    ),
    ("how humid is it in the study", "HassGetState", {"name": "humidity", "area": "office"}),
    (
        "what is the temperature in the living room",
        "HassClimateGetTemperature",
        {"area": "living room"},
    ),
    # Media.
    ("pause the music", "HassMediaPause", {}),
    ("resume", "HassMediaUnpause", {}),
    ("continue the music", "HassMediaUnpause", {}),
    ("next track", "HassMediaNext", {}),
    ("skip this song", "HassMediaNext", {}),
    ("go back a song", "HassMediaPrevious", {}),
    ("set the volume to fifty percent", "HassSetVolume", {"volume_level": 50}),
    ("turn the volume up", "HassSetVolumeRelative", {"volume_step": "up"}),
    ("quieter please", "HassSetVolumeRelative", {"volume_step": "down"}),
    ("mute the TV", "HassMediaPlayerMute", {"name": "tv"}),
    ("unmute", "HassMediaPlayerUnmute", {}),
    # Timers.
    ("set a timer for five minutes", "HassStartTimer", {"minutes": 5}),
    ("a two and a half minute timer", "HassStartTimer", {"minutes": 2, "half": "half"}),
    ("set a timer for one and a half hours", "HassStartTimer", {"hours": 1, "half": "half"}),
    (
        "set a timer for 1 hour and 30 minutes",
        "HassStartTimer",
        {"hours": 1, "minutes": 30},
    ),
    ("ten second timer", "HassStartTimer", {"seconds": 10}),
    ("set a pizza timer for 12 minutes", "HassStartTimer", {"name": "pizza", "minutes": 12}),
    ("how much time is left on my timer", "HassTimerStatus", {}),
    ("timer status", "HassTimerStatus", {}),
    ("cancel my timer", "HassCancelTimer", {}),
    ("cancel the pizza timer", "HassCancelTimer", {"name": "pizza"}),
    ("cancel the five minute timer", "HassCancelTimer", {"start_minutes": 5}),
    ("cancel all timers", "HassCancelAllTimers", {}),
    ("add 5 minutes to the timer", "HassIncreaseTimer", {"minutes": 5}),
    ("take one minute off the egg timer", "HassDecreaseTimer", {"minutes": 1, "name": "egg"}),
    ("pause the timer", "HassPauseTimer", {}),
    ("resume the pasta timer", "HassUnpauseTimer", {"name": "pasta"}),
    # Vacuum, shopping list, weather, time, date, never mind.
    ("start the vacuum", "HassVacuumStart", {"name": "vacuum"}),
    ("send the robot vacuum home", "HassVacuumReturnToBase", {"name": "vacuum"}),
    ("Add milk to my shopping list", "HassShoppingListAddItem", {"item": "milk"}),
    ("we're out of eggs", "HassShoppingListAddItem", {"item": "eggs"}),
    ("check off milk from my shopping list", "HassShoppingListCompleteItem", {"item": "milk"}),
    ("what's the weather", "HassGetWeather", {}),
    ("what is the weather like", "HassGetWeather", {}),
    ("what time is it", "HassGetCurrentTime", {}),
    ("what's the date today", "HassGetCurrentDate", {}),
    ("what day is it", "HassGetCurrentDate", {}),
    ("never mind", "HassNevermind", {}),
    ("nevermind", "HassNevermind", {}),
    ("forget it", "HassNevermind", {}),
    ("cancel that", "HassNevermind", {}),
]


@pytest.mark.parametrize(("text", "intent", "slots"), CASES)
def test_parse(context: Context, text: str, intent: str, slots: dict[str, SlotValueT]) -> None:
    result = parse(context, text)
    assert result is not None, text
    assert (result.intent, result.slots) == (intent, slots)


def test_cases_cover_every_intent() -> None:
    assert {intent for _, intent, _ in CASES} == set(INTENT_SLOTS)


@pytest.mark.parametrize(
    "text",
    [
        "lock the ceiling fan",  # only locks are locked
        "set the desk lamp to fifty",  # brightness is said in percent
        "set a timer for zero minutes",
        "set the blinds to red",
    ],
)
def test_rejects(context: Context, text: str) -> None:
    assert parse(context, text) is None


def test_samples_parse_back(context: Context) -> None:
    samples = sample_sentences(context, 300, seed=0)
    assert {a.intent for a in samples} == set(INTENT_SLOTS)
    for annotation in samples:
        assert parse(context, annotation.text) == annotation


def test_derivations_mean_what_they_say(context: Context) -> None:
    # Each sampled derivation is read back the way it was generated.
    for derivation in sample_derivations(context, 300, seed=1):
        assert parse(context, derivation.text) == derivation
