"""Compile a context into one word automaton with meaning tags, in priority order.

The grammar becomes an acyclic, epsilon-free NFA: every arc reads one word and carries the
tags (intent chosen, slot value chosen) met on the way to it. A state's arcs are in
priority order, so the lexicographically first path is the grammar's first reading:

* intents in file order, then expressions in file order;
* left to right, alternatives of ``[...]`` in written order; ``(...)`` first without its
  content, then its alternatives in order;
* slot values in list order (number slots in increasing order), a value's canonical
  phrase before its synonyms; macro phrases in order.

Parsing (:mod:`assistant.grammar.parser`) and enumeration pick that first path, and the
word graph (:mod:`assistant.grammar.wordgraph`) forgets the tags.

Construction: a Thompson-style NFA with epsilon arcs is built from the syntax trees, then
each state's epsilon closure is walked depth first in arc order (visiting each state once,
so a state reached again by a later, lower-priority route is skipped).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.grammar.expression import Choice, MacroRef, Node, Sequence, Word
from assistant.grammar.slots import SlotValueT

if TYPE_CHECKING:
    from assistant.grammar.context import Context
    from assistant.grammar.parser import LazyParser
    from assistant.grammar.wordgraph import WordGraph


@dataclass(frozen=True)
class IntentTag:
    """The path chose intent ``name``."""

    name: str


@dataclass(frozen=True)
class SlotTag:
    """The path fills slot ``name`` with canonical ``value``."""

    name: str
    value: SlotValueT


Tag = IntentTag | SlotTag


class Automaton:
    """The epsilon-free priority NFA of a context.

    States are ints, ``start`` the initial one. A sentence may end in state ``s`` when
    ``end_rank[s] >= 0``; the rank places that ending among the state's arcs in priority
    order (``0``: before all of them), ``-1`` means it may not end there; ``final[s]`` is
    ``end_rank[s] >= 0``. Arc ``a`` reads ``arc_word[a]``, goes to ``arc_target[a]`` and
    carries ``arc_tags[a]``. ``arcs[s]`` lists a state's arcs in priority order and
    ``arcs_by_word[s][word]`` the same arcs grouped by word.
    """

    def __init__(
        self,
        start: int,
        end_rank: tuple[int, ...],
        arc_word: tuple[str, ...],
        arc_target: tuple[int, ...],
        arc_tags: tuple[tuple[Tag, ...], ...],
        arcs: tuple[tuple[int, ...], ...],
    ):
        self.start = start
        self.end_rank = end_rank
        self.final = tuple(rank >= 0 for rank in end_rank)
        self.arc_word = arc_word
        self.arc_target = arc_target
        self.arc_tags = arc_tags
        self.arcs = arcs
        by_word: list[dict[str, tuple[int, ...]]] = []
        for state_arcs in arcs:
            grouped: dict[str, list[int]] = {}
            for arc in state_arcs:
                grouped.setdefault(arc_word[arc], []).append(arc)
            by_word.append({word: tuple(ids) for word, ids in grouped.items()})
        self.arcs_by_word = tuple(by_word)
        self.vocabulary = frozenset(arc_word)

    @property
    def num_states(self) -> int:
        return len(self.arcs)

    @functools.cached_property
    def word_graph(self) -> WordGraph:
        from assistant.grammar.wordgraph import determinize

        return determinize(self)

    @functools.cached_property
    def parser(self) -> LazyParser:
        from assistant.grammar.parser import LazyParser

        return LazyParser(self)

    def paths(self) -> Iterator[tuple[int, ...]]:
        """Every path from ``start`` to an end, as arc ids, in priority order."""

        def moves(state: int) -> Iterator[int | None]:
            """The state's arcs in priority order, None where a sentence may end."""
            arcs = list[int | None](self.arcs[state])
            if self.end_rank[state] >= 0:
                arcs.insert(self.end_rank[state], None)
            return iter(arcs)

        path: list[int] = []
        stack = [moves(self.start)]
        while stack:
            move = next(stack[-1], -1)
            if move == -1:
                stack.pop()
                if path:
                    path.pop()
            elif move is None:
                yield tuple(path)
            else:
                path.append(move)
                stack.append(moves(self.arc_target[move]))


class _EpsilonNfa:
    """States with ordered arcs ``(word or None, target, tag or None)``."""

    def __init__(self, context: Context):
        self.context = context
        self.arcs: list[list[tuple[str | None, int, Tag | None]]] = []
        self.final = self.new()
        self.start = self.new()
        for intent in context.intents:
            intent_start = self.new()
            self.add(self.start, None, intent_start, IntentTag(intent.name))
            for expression in intent.expressions:
                begin = self.new()
                self.add(intent_start, None, begin)
                self.add(self.build(expression.tree, begin), None, self.final)

    def new(self) -> int:
        self.arcs.append([])
        return len(self.arcs) - 1

    def add(self, source: int, word: str | None, target: int, tag: Tag | None = None) -> None:
        self.arcs[source].append((word, target, tag))

    def alternatives(self, source: int, alternatives: tuple[Node, ...], optional: bool) -> int:
        end = self.new()
        if optional:
            self.add(source, None, end)
        for alternative in alternatives:
            begin = self.new()
            self.add(source, None, begin)
            self.add(self.build(alternative, begin), None, end)
        return end

    def build(self, node: Node, source: int) -> int:
        """Add the arcs of ``node`` from ``source``; return its end state."""
        if isinstance(node, Word):
            end = self.new()
            self.add(source, node.text, end)
            return end
        if isinstance(node, Sequence):
            for item in node.items:
                source = self.build(item, source)
            return source
        if isinstance(node, Choice):
            return self.alternatives(source, node.alternatives, node.optional)
        if isinstance(node, MacroRef):
            phrases = self.context.macro(node.name).phrases
            return self.alternatives(source, tuple(p.tree for p in phrases), optional=False)
        end = self.new()
        for value, words in self.context.slot_type(node.slot_type).spoken_forms():
            state = self.new()
            self.add(source, None, state, SlotTag(node.name, value))
            for word in words:
                state, previous = self.new(), state
                self.add(previous, word, state)
            self.add(state, None, end)
        return end

    def closure(self, state: int) -> tuple[list[tuple[str, int, tuple[Tag, ...]]], int]:
        """Word arcs reachable through epsilon arcs from ``state``, in priority order, each
        with the tags met on the way; and the end rank (how many of those arcs come before
        the final state is reached, -1 when it is not)."""
        out: list[tuple[str, int, tuple[Tag, ...]]] = []
        end_rank = -1
        visited: set[int] = set()
        # (target, tags, word): visit ``target`` when ``word`` is None, else emit the arc.
        stack: list[tuple[int, tuple[Tag, ...], str | None]] = [(state, (), None)]
        while stack:
            current, tags, word = stack.pop()
            if word is not None:
                out.append((word, current, tags))
                continue
            if current in visited:
                continue
            visited.add(current)
            if current == self.final:
                end_rank = len(out)
            stack.extend(
                (target, (*tags, tag) if tag is not None else tags, arc_word)
                for arc_word, target, tag in reversed(self.arcs[current])
            )
        return out, end_rank


def build_automaton(context: Context) -> Automaton:
    """The epsilon-free priority NFA of ``context`` (see the module docstring)."""
    nfa = _EpsilonNfa(context)
    number: dict[int, int] = {nfa.start: 0}
    order = [nfa.start]
    end_rank: list[int] = []
    arcs: list[tuple[int, ...]] = []
    arc_word: list[str] = []
    arc_target: list[int] = []
    arc_tags: list[tuple[Tag, ...]] = []
    for state in order:  # grows while iterating: breadth first over reachable states
        word_arcs, rank = nfa.closure(state)
        ids = []
        for word, target, tags in word_arcs:
            if target not in number:
                number[target] = len(order)
                order.append(target)
            ids.append(len(arc_word))
            arc_word.append(word)
            arc_target.append(number[target])
            arc_tags.append(tags)
        arcs.append(tuple(ids))
        end_rank.append(rank)
    return Automaton(
        0, tuple(end_rank), tuple(arc_word), tuple(arc_target), tuple(arc_tags), tuple(arcs)
    )
