"""A loaded context: intents with their expressions, slot types and macros."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.grammar.expression import Node
from assistant.grammar.slots import BUILTIN_SLOT_TYPES, IntegerSlotType, ListSlotType, SlotType

if TYPE_CHECKING:
    from assistant.grammar.automaton import Automaton


@dataclass(frozen=True)
class Expression:
    """One expression: its ``source`` text, syntax tree and 1-based ``line`` in the file."""

    source: str
    tree: Node
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Intent:
    """An intent, its expressions in file order and the slot names they can fill."""

    name: str
    expressions: tuple[Expression, ...]
    slot_names: tuple[str, ...]
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Macro:
    """``@name``: one of ``phrases``, each an expression."""

    name: str
    phrases: tuple[Expression, ...]
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Context:
    """A validated command grammar. Build it with :func:`assistant.grammar.load_context`.

    Intents keep file order: it is the priority order of ambiguous parses and the order of
    enumeration. ``slot_types`` are the user-defined ones; :meth:`slot_type` also resolves
    Rhino's built-ins (``pv.TwoDigitInteger``, ...). ``sha256`` identifies the content
    (intents, expressions, slot types, macros; not comments or formatting).
    """

    intents: tuple[Intent, ...]
    slot_types: tuple[SlotType, ...]
    macros: tuple[Macro, ...] = ()
    source: str = field(default="<string>", compare=False)

    @property
    def intent_names(self) -> tuple[str, ...]:
        return tuple(intent.name for intent in self.intents)

    def intent(self, name: str) -> Intent:
        for intent in self.intents:
            if intent.name == name:
                return intent
        raise KeyError(f"no intent '{name}' in context {self.source} (has {self.intent_names})")

    def slot_type(self, name: str) -> SlotType:
        for slot_type in self.slot_types:
            if slot_type.name == name:
                return slot_type
        if name in BUILTIN_SLOT_TYPES:
            return BUILTIN_SLOT_TYPES[name]
        raise KeyError(f"no slot type '{name}' in context {self.source}")

    def macro(self, name: str) -> Macro:
        for macro in self.macros:
            if macro.name == name:
                return macro
        raise KeyError(f"no macro '{name}' in context {self.source}")

    def __getstate__(self) -> dict[str, object]:
        # Pickle the grammar, not the compiled caches (rebuilt on first use).
        return {k: v for k, v in self.__dict__.items() if k not in ("automaton", "sha256")}

    @functools.cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the canonical JSON form of the grammar's content."""
        data = json.dumps(_canonical(self), ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(data.encode("utf-8")).hexdigest()

    @functools.cached_property
    def automaton(self) -> Automaton:
        """The compiled automaton, built on first use and kept (safe to share)."""
        from assistant.grammar.automaton import build_automaton

        return build_automaton(self)


def _canonical(context: Context) -> dict[str, object]:
    def slot_type(value: SlotType) -> object:
        if isinstance(value, IntegerSlotType):
            return {
                "type": "ordinal" if value.ordinal else "integer",
                "min": value.minimum,
                "max": value.maximum,
            }
        assert isinstance(value, ListSlotType)
        return [[v.value, list(v.phrases)] for v in value.values]

    return {
        "intents": [
            [i.name, [" ".join(e.source.split()) for e in i.expressions]] for i in context.intents
        ],
        "slots": [[t.name, slot_type(t)] for t in context.slot_types],
        "macros": [
            [m.name, [" ".join(e.source.split()) for e in m.phrases]] for m in context.macros
        ],
    }
