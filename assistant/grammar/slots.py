"""Slot types: lists of values with spoken forms, and spoken integer ranges.

A slot type lists, in order, ``(value, words)`` pairs through :meth:`spoken_forms`: the
canonical value a parse reports and one way to say it. The order is the grammar's
priority order (earlier values win ambiguous parses) and the enumeration order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from assistant.numbers import int_to_words, ordinal_to_words

SlotValueT = str | int
"""A slot value in a parse result: a string for list slots, an int for number slots."""

MAX_INTEGER_VALUES = 10_000
"""The most values one integer slot type may have (each value is a path in the grammar)."""


@dataclass(frozen=True)
class SlotValue:
    """One value of a list slot type.

    ``phrases`` are its spoken forms as normalized words joined by single spaces, the
    preferred one first. ``line`` is where it is defined (1-based), when known.
    """

    value: str
    phrases: tuple[str, ...]
    line: int | None = field(default=None, compare=False)


class _SlotTypeBase:
    """What every slot type offers, built on ``num_values`` and ``entry``."""

    @property
    def num_values(self) -> int:
        raise NotImplementedError

    def entry(self, index: int) -> tuple[SlotValueT, tuple[tuple[str, ...], ...]]:
        """The ``index``-th value (in priority order) and its spoken forms, as words."""
        raise NotImplementedError

    def spoken_forms(self) -> Iterator[tuple[SlotValueT, tuple[str, ...]]]:
        """Every ``(value, words)`` pair in priority order."""
        for index in range(self.num_values):
            value, forms = self.entry(index)
            for words in forms:
                yield value, words

    @property
    def canonical_values(self) -> tuple[SlotValueT, ...]:
        return tuple(self.entry(index)[0] for index in range(self.num_values))


@dataclass(frozen=True)
class ListSlotType(_SlotTypeBase):
    """A slot type whose values are listed (Rhino's only kind of user slot type)."""

    name: str
    values: tuple[SlotValue, ...]

    @property
    def num_values(self) -> int:
        return len(self.values)

    def entry(self, index: int) -> tuple[SlotValueT, tuple[tuple[str, ...], ...]]:
        value = self.values[index]
        return value.value, tuple(tuple(phrase.split()) for phrase in value.phrases)


@dataclass(frozen=True)
class IntegerSlotType(_SlotTypeBase):
    """Integers ``minimum..maximum`` (inclusive) said as words: "twenty five" -> 25.

    With ``ordinal`` they are said as ordinals ("twenty fifth"); ``suffix`` words follow
    every number (Rhino's ``pv.Percent`` is 0..100 followed by "percent").
    """

    name: str
    minimum: int
    maximum: int
    ordinal: bool = False
    suffix: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.minimum <= self.maximum:
            raise ValueError(
                f"integer slot type '{self.name}' needs 0 <= min <= max, got "
                f"min {self.minimum}, max {self.maximum}"
            )
        count = self.maximum - self.minimum + 1
        if count > MAX_INTEGER_VALUES:
            raise ValueError(
                f"integer slot type '{self.name}' has {count} values "
                f"({self.minimum}..{self.maximum}); at most {MAX_INTEGER_VALUES} are supported"
            )

    def words(self, value: int) -> tuple[str, ...]:
        """The canonical spoken form of ``value``."""
        spelled = ordinal_to_words(value) if self.ordinal else int_to_words(value)
        return (*spelled.split(), *self.suffix)

    @property
    def num_values(self) -> int:
        return self.maximum - self.minimum + 1

    def entry(self, index: int) -> tuple[SlotValueT, tuple[tuple[str, ...], ...]]:
        if not 0 <= index < self.num_values:
            raise IndexError(f"value index {index} outside 0..{self.num_values - 1}")
        value = self.minimum + index
        return value, (self.words(value),)


SlotType = ListSlotType | IntegerSlotType

BUILTIN_SLOT_TYPES: dict[str, SlotType] = {
    slot_type.name: slot_type
    for slot_type in (
        IntegerSlotType("pv.SingleDigitInteger", 0, 9),
        IntegerSlotType("pv.TwoDigitInteger", 0, 99),
        IntegerSlotType("pv.Percent", 0, 100, suffix=("percent",)),
        IntegerSlotType("pv.SingleDigitOrdinal", 1, 9, ordinal=True),
        IntegerSlotType("pv.TwoDigitOrdinal", 1, 99, ordinal=True),
    )
}
"""Rhino's built-in number slot types, usable as ``$pv.TwoDigitInteger:count``."""
