"""Checks across a context's parts: references resolve, macros do not recurse, no slot is
filled twice on one path, and no expression can be said with zero words."""

from __future__ import annotations

from collections.abc import Mapping

from assistant.errors import GrammarError
from assistant.grammar.context import Expression, Intent, Macro
from assistant.grammar.expression import Choice, MacroRef, Node, Sequence, SlotRef, Word
from assistant.grammar.slots import BUILTIN_SLOT_TYPES, SlotType


class _Checker:
    def __init__(self, slot_types: tuple[SlotType, ...], macros: tuple[Macro, ...]):
        self.slot_types = {t.name: t for t in slot_types} | dict(BUILTIN_SLOT_TYPES)
        self.user_types = tuple(t.name for t in slot_types)
        self.macros = {m.name: m for m in macros}
        self.macro_slots: dict[str, frozenset[str]] = {}
        self.macro_nullable: dict[str, bool] = {}
        self.visiting: list[str] = []

    def references(self, node: Node, line: int | None, owner: str) -> None:
        """Every slot type and macro named below ``node`` exists."""
        if isinstance(node, SlotRef) and node.slot_type not in self.slot_types:
            defined = ", ".join(self.user_types) or "none"
            raise GrammarError(
                f"{owner}: undefined slot type '{node.slot_type}' in "
                f"'${node.slot_type}:{node.name}' at column {node.column} "
                f"(defined slot types: {defined})",
                line=line,
            )
        if isinstance(node, MacroRef) and node.name not in self.macros:
            defined = ", ".join(self.macros) or "none"
            raise GrammarError(
                f"{owner}: undefined macro '@{node.name}' at column {node.column} "
                f"(defined macros: {defined})",
                line=line,
            )
        if isinstance(node, Sequence):
            for item in node.items:
                self.references(item, line, owner)
        elif isinstance(node, Choice):
            for alternative in node.alternatives:
                self.references(alternative, line, owner)

    def slots(self, node: Node, line: int | None, owner: str) -> frozenset[str]:
        """Slot names some path through ``node`` may fill; an error if one path fills a
        name twice."""
        if isinstance(node, SlotRef):
            return frozenset([node.name])
        if isinstance(node, MacroRef):
            return self.macro(node.name)[0]
        if isinstance(node, Choice):
            out: frozenset[str] = frozenset()
            for alternative in node.alternatives:
                out |= self.slots(alternative, line, owner)
            return out
        if isinstance(node, Sequence):
            seen: frozenset[str] = frozenset()
            for item in node.items:
                names = self.slots(item, line, owner)
                twice = sorted(seen & names)
                if twice:
                    raise GrammarError(
                        f"{owner}: slot name '{twice[0]}' is filled twice in one expression",
                        line=line,
                    )
                seen |= names
            return seen
        return frozenset()

    def nullable(self, node: Node) -> bool:
        """Whether some path through ``node`` says no word."""
        if isinstance(node, Word | SlotRef):
            return False
        if isinstance(node, MacroRef):
            return self.macro(node.name)[1]
        if isinstance(node, Choice):
            return node.optional or any(self.nullable(a) for a in node.alternatives)
        return all(self.nullable(item) for item in node.items)

    def macro(self, name: str) -> tuple[frozenset[str], bool]:
        if name in self.macro_slots:
            return self.macro_slots[name], self.macro_nullable[name]
        macro = self.macros[name]
        if name in self.visiting:
            cycle = " -> ".join(f"@{n}" for n in self.visiting[self.visiting.index(name) :])
            raise GrammarError(f"macro cycle: {cycle} -> @{name}", line=macro.line)
        self.visiting.append(name)
        names: frozenset[str] = frozenset()
        nullable = False
        for phrase in macro.phrases:
            owner = f"macro '{name}'"
            self.references(phrase.tree, phrase.line, owner)
            names |= self.slots(phrase.tree, phrase.line, owner)
            nullable = nullable or self.nullable(phrase.tree)
        self.visiting.pop()
        self.macro_slots[name], self.macro_nullable[name] = names, nullable
        return names, nullable

    def expression(self, expression: Expression, owner: str) -> None:
        self.references(expression.tree, expression.line, owner)
        self.slots(expression.tree, expression.line, owner)
        if self.nullable(expression.tree):
            raise GrammarError(
                f'{owner}: expression "{expression.source}" can be said with no words '
                "(every part of it is optional)",
                line=expression.line,
            )


def check_references(
    intents: tuple[Intent, ...], slot_types: tuple[SlotType, ...], macros: tuple[Macro, ...]
) -> Mapping[str, tuple[str, ...]]:
    """Validate the whole grammar; return each intent's slot names in first-use order.

    Raises :class:`GrammarError` with the line (no source: the loader adds it).
    """
    checker = _Checker(slot_types, macros)
    for macro in macros:
        checker.macro(macro.name)
    slot_names: dict[str, tuple[str, ...]] = {}
    for intent in intents:
        ordered: dict[str, None] = {}
        for expression in intent.expressions:
            checker.expression(expression, f"intent '{intent.name}'")
            ordered.update(dict.fromkeys(_slot_refs(expression.tree, checker)))
        slot_names[intent.name] = tuple(ordered)
    return slot_names


def _slot_refs(node: Node, checker: _Checker) -> list[str]:
    """Slot names below ``node`` in reading order, macros expanded."""
    if isinstance(node, SlotRef):
        return [node.name]
    if isinstance(node, MacroRef):
        return [n for p in checker.macros[node.name].phrases for n in _slot_refs(p.tree, checker)]
    if isinstance(node, Sequence):
        return [n for item in node.items for n in _slot_refs(item, checker)]
    if isinstance(node, Choice):
        return [n for a in node.alternatives for n in _slot_refs(a, checker)]
    return []
