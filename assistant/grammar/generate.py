"""Sentences of a context: count them, list them, sample them for training data."""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import islice

from assistant.grammar.annotation import Annotation
from assistant.grammar.context import Context
from assistant.grammar.expression import Choice, MacroRef, Node, Sequence, SlotRef, Word
from assistant.grammar.parser import annotate, parse_words
from assistant.grammar.slots import SlotValueT
from assistant.grammar.wordgraph import WordGraph


def compile_word_graph(context: Context) -> WordGraph:
    """The minimal deterministic word graph of all sentences of all intents (cached)."""
    return context.automaton.word_graph


def count_sentences(context: Context) -> int:
    """The exact number of distinct sentences (word sequences), counted on the word graph."""
    return compile_word_graph(context).count_paths()


def enumerate_sentences(context: Context, limit: int | None = None) -> Iterator[Annotation]:
    """Every distinct sentence once, with the annotation :func:`parse` gives it.

    Order: the grammar's priority order (intents and expressions in file order, then left
    to right alternatives in written order, optional parts left out before put in; see
    :mod:`assistant.grammar.automaton`). A sentence that several readings produce is listed
    once, at its first reading. Lazy: take what you need of the barista grammar's hundred
    million sentences with ``limit``.
    """
    automaton = context.automaton
    parser = automaton.parser
    distinct = (
        annotate(automaton, path)
        for path in automaton.paths()
        if parser.best_path([automaton.arc_word[arc] for arc in path]) == path
    )
    return islice(distinct, limit)


class _Sampler:
    """Walks expression trees; every choice (expression of an intent, alternative, optional
    part, macro phrase, slot value, spoken form of a value) deals its options like a
    shuffled deck: each option once, in random order, before any option comes again."""

    def __init__(self, context: Context, rng: random.Random):
        self.context = context
        self.rng = rng
        self.decks: dict[tuple[object, ...], list[int]] = {}

    def pick(self, key: tuple[object, ...], options: int) -> int:
        deck = self.decks.get(key)
        if not deck:
            deck = list(range(options))
            self.rng.shuffle(deck)
            self.decks[key] = deck
        return deck.pop()

    def walk(self, node: Node, words: list[str], slots: dict[str, SlotValueT]) -> None:
        if isinstance(node, Word):
            words.append(node.text)
        elif isinstance(node, Sequence):
            for item in node.items:
                self.walk(item, words, slots)
        elif isinstance(node, Choice):
            options: list[Node | None] = [None] if node.optional else []
            options += node.alternatives
            chosen = options[self.pick(("choice", id(node)), len(options))]
            if chosen is not None:
                self.walk(chosen, words, slots)
        elif isinstance(node, MacroRef):
            phrases = self.context.macro(node.name).phrases
            self.walk(phrases[self.pick(("macro", node.name), len(phrases))].tree, words, slots)
        elif isinstance(node, SlotRef):
            slot_type = self.context.slot_type(node.slot_type)
            value, forms = slot_type.entry(
                self.pick(("slot", slot_type.name), slot_type.num_values)
            )
            words.extend(forms[self.pick(("spoken", slot_type.name, value), len(forms))])
            slots[node.name] = value

    def sample(self, intent: str) -> Annotation:
        """One derivation of ``intent``, annotated as the path that was walked."""
        words: list[str] = []
        slots: dict[str, SlotValueT] = {}
        expressions = self.context.intent(intent).expressions
        expression = expressions[self.pick(("expression", intent), len(expressions))]
        self.walk(expression.tree, words, slots)
        return Annotation(" ".join(words), intent, slots)


def sample_derivations(context: Context, n: int, seed: int) -> list[Annotation]:
    """Like :func:`sample_sentences`, but each annotation is that of the derivation that
    produced the sentence, even where the grammar is ambiguous and :func:`parse` reads the
    sentence another way. Grammar checks compare the two."""
    if n < 0:
        raise ValueError(f"cannot sample {n} sentences")
    sampler = _Sampler(context, random.Random(seed))
    intents = context.intent_names
    return [sampler.sample(intents[i % len(intents)]) for i in range(n)]


def sample_sentences(context: Context, n: int, seed: int) -> list[Annotation]:
    """``n`` sentences spread evenly over the grammar, reproducible by ``seed``.

    Intents take turns (round robin in file order). Within an intent the expressions, and
    inside them every choice (alternative, optional part, macro phrase, slot value, spoken
    form of a value), are dealt like shuffled decks: each option once, in random order,
    before any option comes again. So every slot value appears about equally often (counts
    of one slot type's values differ by at most one), however many sentences an expression
    has. Sentences may repeat. Each annotation is the one :func:`parse` gives, so labels
    agree with the parser even in an ambiguous grammar.
    """
    out = []
    for derivation in sample_derivations(context, n, seed):
        words = derivation.text.split()
        parsed = parse_words(context, words)
        if parsed is None:  # a derivation is always in the grammar
            raise AssertionError(f"sampled sentence '{derivation.text}' does not parse")
        out.append(parsed)
    return out
