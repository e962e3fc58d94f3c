"""Home Assistant's own sentence matcher, set up the way its conversation agent would read
our Wyoming transcripts: ``hassil`` with Home Assistant's English sentences
(``home-assistant-intents``), the shipped context's devices exposed under their domains, its
areas as areas, and a satellite in the living room (Home Assistant fills "the area I am in"
from it). Used by ``tests/serving/test_wyoming_phrasing.py`` and
``benchmarks/home_assistant.py``.
"""

from __future__ import annotations

from typing import Any

from assistant.grammar import Annotation, Context, ListSlotType
from serving.wyoming.phrasing import HALF_OF

DOMAINS = {"light": "light", "fan": "fan", "device": "switch", "climate": "climate",
           "media": "media_player", "cover": "cover", "lock": "lock", "vacuum": "vacuum",
           "sensor": "sensor"}
SATELLITE_AREA = "living room"


class HomeAssistantMatcher:
    """``fires(text)``: the intent and entities Home Assistant's matcher gives a sentence."""

    def __init__(self, context: Context):
        import home_assistant_intents
        from hassil import Intents
        from hassil.expression import TextChunk
        from hassil.intents import SlotList, TextSlotList, TextSlotValue

        names, areas = [], []
        self.kind_of: dict[str, str] = {}
        for slot in context.slot_types:
            if not isinstance(slot, ListSlotType):
                continue
            for value in slot.values:
                for phrase in value.phrases:
                    if slot.name in DOMAINS:
                        names.append(TextSlotValue(TextChunk(phrase), value.value,
                                                   context={"domain": DOMAINS[slot.name]}))
                        self.kind_of[str(value.value)] = slot.name
                    elif slot.name == "area":
                        areas.append(TextSlotValue(TextChunk(phrase), value.value))
        self.lists: dict[str, SlotList] = {"name": TextSlotList(name="name", values=names),
                      "area": TextSlotList(name="area", values=areas),
                      "floor": TextSlotList.from_strings(["upstairs"])}
        sentences = home_assistant_intents.get_intents("en")
        if sentences is None:
            raise RuntimeError("home-assistant-intents has no English sentences")
        self.intents = Intents.from_dict(sentences)
        color_list = self.intents.slot_lists["color"]
        self.colors = {str(v.value_out) for v in getattr(color_list, "values", ())}

    def fires(self, text: str) -> tuple[str | None, dict[str, Any]]:
        from hassil import recognize

        result = recognize(text, self.intents, slot_lists=self.lists,
                           intent_context={"area": SATELLITE_AREA})
        if result is None:
            return None, {}
        return result.intent.name, {k: v.value for k, v in result.entities.items()}

    def agrees(self, annotation: Annotation, text: str) -> bool:
        """Whether ``text`` fires ``annotation``'s intent with its slots."""
        intent, got = self.fires(text)
        return intent == annotation.intent and same(got, expected(annotation))

    def known_gap(self, annotation: Annotation, text: str) -> str | None:
        """Why Home Assistant's sentences cannot say ``annotation`` as we understood it, or
        None."""
        slots = expected(annotation)
        _, got = self.fires(text)
        if "name" in slots and "device_class" in got:
            return "a device named like a kind of cover (blinds, shades, gate): read as the kind"
        if "start_seconds" in slots:
            return "a timer named by seconds: read as a timer's name"
        if annotation.intent in ("HassIncreaseTimer", "HassDecreaseTimer") and "name" in slots \
                and sum(unit in slots for unit in ("hours", "minutes", "seconds")) > 1:
            return "a named timer changed by two units"
        if annotation.intent == "HassLightSet" and "color" in slots \
                and slots["color"] not in self.colors:
            return "a colour Home Assistant does not name"
        if annotation.intent == "HassGetState" and \
                self.kind_of.get(str(slots.get("name"))) == "climate":
            return "the on/off state of a climate device"
        return None


def expected(annotation: Annotation) -> dict[str, Any]:
    """Our slots as Home Assistant names them ("and a half" spelled out as the next unit; a
    named device's area dropped where the phrasing drops it)."""
    slots = dict(annotation.slots)
    if slots.pop("half", None) is not None:
        for unit, (smaller, amount) in HALF_OF.items():
            if unit in annotation.slots:
                slots[smaller] = int(slots.get(smaller, 0)) + amount
    if annotation.intent in ("HassGetState", "HassMediaPause", "HassMediaUnpause") \
            and "name" in slots:
        slots.pop("area", None)
    return slots


def same(got: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(k in got and (float(got[k]) == float(v) if isinstance(v, int) else got[k] == v)
               for k, v in want.items())
