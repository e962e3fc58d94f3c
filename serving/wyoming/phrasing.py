"""A recognized command in the words Home Assistant's own sentence matching understands.

Home Assistant sends a Wyoming speech-to-text service's transcript to its conversation agent,
which matches it against its built-in sentence templates (the ``home-assistant-intents``
data, matched by ``hassil``). The user's own words, even when our grammar understood them,
are often not among those templates ("skip the track please", "what day is it today",
"please delete all of my timers"). So for an understood command of one of Home Assistant's
built-in intents the transcript is :func:`home_assistant_sentence`: the intent and slots
written the way those templates say them ("next track", "what is the date", "cancel all
timers"), so that Home Assistant fires the intent we understood with the slots we heard.
Values go as they are (our slot values are Home Assistant's names and areas); numbers as
digits; "and a half" (a slot Home Assistant lacks) as the half unit spelled out ("2 and a half
minutes" -> "2 minutes and 30 seconds"); covers open and close, locks lock and unlock.

Measured by ``tests/serving/test_wyoming_phrasing.py`` (hassil 3.13.1, Home Assistant's
English sentences 2026.12.1, the shipped context's devices exposed in their domains, a
satellite in an area), on 400 sentences sampled from the shipped Home Assistant context: the
transcript as written fires the same intent with the same slots for 196, this phrasing for
346. The rest: 23 have no Home Assistant sentence (HassToggle; turning on a whole area
without naming a kind of device; starting a vacuum not named: None here, the transcript stays
as the model wrote it) and 31 are known gaps on Home Assistant's side (devices named like a
kind of cover, "blinds", read as that kind; timers named by seconds; a named timer changed by
two units; colours it does not name; the on/off state of a thermostat).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from assistant.grammar import Context, ListSlotType, SlotValueT

Slots = Mapping[str, SlotValueT]

PLURAL = {"light": "lights", "fan": "fans"}
KIND_VERBS = {"cover": ("open", "close"), "lock": ("lock", "unlock")}  # (on, off)
UNITS = (("hours", "hour"), ("minutes", "minute"), ("seconds", "second"))
HALF_OF = {"hours": ("minutes", 30), "minutes": ("seconds", 30)}


def home_assistant_sentence(intent: str, slots: Slots,
                            kinds: Mapping[str, str] | None = None) -> str | None:
    """Home Assistant's wording of ``intent`` with ``slots`` (see module docs), or None.

    ``kinds`` maps device names to the grammar's slot type they came from
    (:func:`device_kinds`): Home Assistant opens covers and locks doors with the same intents
    that turn lights on ("open the garage door", "lock the back door")."""
    if intent in ("HassTurnOn", "HassTurnOff") and "name" in slots and kinds:
        verbs = KIND_VERBS.get(kinds.get(str(slots["name"]), ""))
        if verbs is not None:
            where = f" in the {slots['area']}" if "area" in slots else ""
            return f"{verbs[intent == 'HassTurnOff']} the {slots['name']}{where}"
    phrase = PHRASES.get(intent)
    return phrase(slots) if phrase is not None else None


def device_kinds(context: Context) -> dict[str, str]:
    """Device name -> its slot type, for the slot types whose devices have verbs of their own
    (``cover``, ``lock``) in ``context``."""
    kinds: dict[str, str] = {}
    for slot in context.slot_types:
        if slot.name in KIND_VERBS and isinstance(slot, ListSlotType):
            kinds.update((str(value.value), slot.name) for value in slot.values)
    return kinds


def _the(slots: Slots, key: str) -> str:
    return f"the {slots[key]}"


def _switch(verb: str) -> Callable[[Slots], str | None]:
    def phrase(s: Slots) -> str | None:
        if "name" in s:
            return f"{verb} {_the(s, 'name')}" + (f" in {_the(s, 'area')}" if "area" in s else "")
        if "domain" in s:
            kind = PLURAL.get(str(s["domain"]), str(s["domain"]))
            return f"{verb} the {kind}" + (f" in {_the(s, 'area')}" if "area" in s else "")
        return None  # a whole area: Home Assistant needs a device or a kind of device

    return phrase


def _duration(s: Slots) -> str | None:
    """ "2 hours and 30 minutes", with a half turned into the next unit."""
    amounts = {unit: int(s[unit]) for unit, _ in UNITS if unit in s}
    if "half" in s:
        halved = [unit for unit in amounts if unit in HALF_OF]
        if len(halved) != 1:
            return None
        smaller, amount = HALF_OF[halved[0]]
        amounts[smaller] = amounts.get(smaller, 0) + amount
    parts = [f"{amounts[unit]} {unit if amounts[unit] != 1 else one}"
             for unit, one in UNITS if unit in amounts]
    return " and ".join(parts) if parts else None


def _timer(s: Slots) -> str:
    """Which timer: "the pizza timer", "the 5 minute timer" or "my timer"."""
    if "name" in s:
        return f"the {s['name']} timer"
    for unit, one in UNITS:
        if f"start_{unit}" in s:
            return f"the {int(s[f'start_{unit}'])} {one} timer"
    return "my timer"


def _start_timer(s: Slots) -> str | None:
    duration = _duration(s)
    if duration is None:
        return None
    return f"set a timer for {duration}" + (f" named {s['name']}" if "name" in s else "")


def _change_timer(verb: str, preposition: str) -> Callable[[Slots], str | None]:
    def phrase(s: Slots) -> str | None:
        duration = _duration(s)
        return None if duration is None else f"{verb} {duration} {preposition} {_timer(s)}"

    return phrase


def _media(verb: str, music: bool) -> Callable[[Slots], str]:
    def phrase(s: Slots) -> str:
        if "name" in s:
            return f"{verb} {_the(s, 'name')}"
        if "area" in s and music:
            return f"{verb} the music in {_the(s, 'area')}"
        return verb

    return phrase


def _setting(slot: str, named: str, in_area: str, here: str,
             unit: str = "") -> Callable[[Slots], str]:
    """A number set on a named device, on an area, or where the satellite is: each template
    with ``{name}``, ``{area}`` and ``{value}`` (the slot's number and ``unit``)."""
    def phrase(s: Slots) -> str:
        template = named if "name" in s else in_area if "area" in s else here
        return template.format(name=s.get("name"), area=s.get("area"),
                               value=f"{int(s[slot])}{unit}")

    return phrase


_brightness = _setting("brightness", "set the {name} brightness to {value}",
                       "set the brightness of the {area} to {value}",
                       "set the brightness to {value}", "%")


def _light_set(s: Slots) -> str | None:
    if "brightness" in s:
        return _brightness(s)
    if "color" in s:
        target = (_the(s, "name") if "name" in s
                  else _the(s, "area") if "area" in s else "the lights")
        return f"set {target} to {s['color']}"
    return None


def _get_state(s: Slots) -> str | None:
    if "name" in s:  # a device's name says which one: its area adds nothing
        if "state" in s:
            return f"is {_the(s, 'name')} {s['state']}"
        return f"what is {_the(s, 'name')}"
    if "domain" in s and "state" in s:
        kind = PLURAL.get(str(s["domain"]), str(s["domain"]))
        return f"are any {kind} {s['state']}" + (f" in {_the(s, 'area')}" if "area" in s else "")
    return None


def _volume_step(s: Slots) -> str:
    return f"turn {s['volume_step']} the " + (f"{s['name']} volume" if "name" in s else "volume")


PHRASES: dict[str, Callable[[Slots], str | None]] = {
    "HassTurnOn": _switch("turn on"),
    "HassTurnOff": _switch("turn off"),
    "HassLightSet": _light_set,
    "HassFanSetSpeed": _setting("percentage", "set the {name} to {value}",
                                "set the {area} fans to {value}", "set fan speed to {value}",
                                "%"),
    "HassSetPosition": lambda s: f"open {_the(s, 'name')} to {int(s['position'])}%",
    "HassClimateSetTemperature": _setting("temperature", "set the {name} to {value} degrees",
                                          "set the {area} temperature to {value}",
                                          "set the temperature to {value}"),
    "HassClimateGetTemperature": lambda s: "what is the temperature" + (
        f" in {_the(s, 'area')}" if "area" in s else ""),
    "HassGetState": _get_state,
    "HassMediaPause": _media("pause", music=True),
    "HassMediaUnpause": _media("resume", music=True),
    "HassMediaNext": lambda s: "next track",
    "HassMediaPrevious": lambda s: "previous track",
    "HassMediaPlayerMute": _media("mute", music=False),
    "HassMediaPlayerUnmute": _media("unmute", music=False),
    "HassSetVolume": _setting("volume_level", "set the {name} volume to {value}",
                              "set the {area} volume to {value}", "set the volume to {value}",
                              "%"),
    "HassSetVolumeRelative": _volume_step,
    "HassStartTimer": _start_timer,
    "HassCancelTimer": lambda s: f"cancel {_timer(s)}",
    "HassCancelAllTimers": lambda s: "cancel all timers",
    "HassPauseTimer": lambda s: f"pause {_timer(s)}",
    "HassUnpauseTimer": lambda s: f"resume {_timer(s)}",
    "HassTimerStatus": lambda s: f"how much time is left on {_timer(s)}",
    "HassIncreaseTimer": _change_timer("add", "to"),
    "HassDecreaseTimer": _change_timer("remove", "from"),
    "HassVacuumStart": lambda s: f"start {_the(s, 'name')}" if "name" in s else None,
    "HassVacuumReturnToBase": lambda s: f"return {_the(s, 'name')} to base",
    "HassShoppingListAddItem": lambda s: f"add {s['item']} to my shopping list",
    "HassShoppingListCompleteItem": lambda s: f"check {s['item']} off my shopping list",
    "HassGetWeather": lambda s: "what's the weather",
    "HassGetCurrentTime": lambda s: "what time is it",
    "HassGetCurrentDate": lambda s: "what is the date",
    "HassNevermind": lambda s: "never mind",
}
