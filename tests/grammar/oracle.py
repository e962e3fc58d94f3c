"""A brute-force reference for small grammars: every derivation, in priority order.

Written straight from the documented rules (intents, expressions, alternatives, optional
parts left out first, slot values and their spoken forms in order), independent of the
automaton, so tests can check the compiled grammar against it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from assistant.grammar import Annotation, Context, SlotValueT
from assistant.grammar.expression import Choice, MacroRef, Node, Sequence, SlotRef, Word

Derivation = tuple[tuple[str, ...], tuple[tuple[str, SlotValueT], ...]]


def expand(context: Context, node: Node) -> Iterator[Derivation]:
    if isinstance(node, Word):
        yield (node.text,), ()
    elif isinstance(node, Sequence):
        parts = [list(expand(context, item)) for item in node.items]
        for combination in itertools.product(*parts):
            words = tuple(w for part_words, _ in combination for w in part_words)
            slots = tuple(s for _, part_slots in combination for s in part_slots)
            yield words, slots
    elif isinstance(node, Choice):
        if node.optional:
            yield (), ()
        for alternative in node.alternatives:
            yield from expand(context, alternative)
    elif isinstance(node, MacroRef):
        for phrase in context.macro(node.name).phrases:
            yield from expand(context, phrase.tree)
    else:
        assert isinstance(node, SlotRef)
        for value, words in context.slot_type(node.slot_type).spoken_forms():
            yield words, ((node.name, value),)


def derivations(context: Context) -> Iterator[Annotation]:
    """Every derivation (duplicates included) in priority order."""
    for intent in context.intents:
        for expression in intent.expressions:
            for words, slots in expand(context, expression.tree):
                yield Annotation(" ".join(words), intent.name, dict(slots))


def first_readings(context: Context) -> dict[str, Annotation]:
    """Each distinct sentence with its first derivation, in order of first appearance."""
    out: dict[str, Annotation] = {}
    for derivation in derivations(context):
        out.setdefault(derivation.text, derivation)
    return out


def count_derivations(context: Context, node: Node) -> int:
    """How many derivations ``node`` has (duplicates included), without listing them."""
    if isinstance(node, Word):
        return 1
    if isinstance(node, Sequence):
        product = 1
        for item in node.items:
            product *= count_derivations(context, item)
        return product
    if isinstance(node, Choice):
        return node.optional + sum(count_derivations(context, a) for a in node.alternatives)
    if isinstance(node, MacroRef):
        return sum(count_derivations(context, p.tree) for p in context.macro(node.name).phrases)
    assert isinstance(node, SlotRef)
    return sum(1 for _ in context.slot_type(node.slot_type).spoken_forms())
