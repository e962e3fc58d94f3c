"""A sentence with its meaning: the text, the intent and the slot values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from assistant.grammar.slots import SlotValueT


@dataclass(frozen=True)
class Annotation:
    """``text`` is the sentence as normalized words joined by single spaces; ``slots`` maps
    slot names to canonical values (ints for number slots), in the order they are spoken.

    Equality ignores slot order. ``to_json`` / ``from_json`` give the JSONL manifest form
    ``{"text": ..., "intent": ..., "slots": {...}}``.
    """

    text: str
    intent: str
    slots: Mapping[str, SlotValueT]

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", MappingProxyType(dict(self.slots)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Annotation):
            return NotImplemented
        return (self.text, self.intent, dict(self.slots)) == (
            other.text,
            other.intent,
            dict(other.slots),
        )

    def __hash__(self) -> int:
        return hash((self.text, self.intent, frozenset(self.slots.items())))

    def __repr__(self) -> str:
        return f"Annotation(text={self.text!r}, intent={self.intent!r}, slots={dict(self.slots)!r})"

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "intent": self.intent, "slots": dict(self.slots)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Annotation:
        slots = data.get("slots", {})
        if not isinstance(slots, Mapping):
            raise TypeError(f"annotation 'slots' must be a mapping, got {type(slots).__name__}")
        for name, value in slots.items():
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise TypeError(f"slot '{name}' has value {value!r}: expected a string or int")
        return cls(text=str(data["text"]), intent=str(data["intent"]), slots=dict(slots))
