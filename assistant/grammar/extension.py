"""Whether a sentence can go on to mean something else, and whether words stop before a
sentence ends (grammar-aware endpointing).

"what time is it" is a sentence of the home grammar, and so are "what time is it please" and
"what time is it thank you": longer, but with the same intent and slots, so an answer given
after "what time is it" is the answer the longer sentence would get. "turn on the lights"
can go on as "turn on the lights in the kitchen", which means something else (another slot):
an endpointer that answered early would answer the wrong command. "set it to eighty" can go
on as "set it to eighty seven": the slot's value itself may not be finished. Only the second
and third kinds are reasons to wait, the third the longest (:mod:`assistant.endpointing`).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from enum import StrEnum

from assistant.grammar.context import Context
from assistant.grammar.parser import parse_words
from assistant.grammar.wordgraph import WordGraph

# Longer sentences looked at before giving up and saying "it may go on" (shortest first, so
# courtesy tails such as "please" and "thank you" are seen long before this).
MAX_SENTENCES = 64
MAX_NODES = 512


def unfinished(graph: WordGraph, words: Sequence[str]) -> bool:
    """Whether ``words`` begin a sentence of the grammar without being one ("set a timer
    for"): a speaker who stops there is likely to go on."""
    node = graph.walk(words)
    return bool(words) and node is not None and node not in graph.finals


class Extension(StrEnum):
    """What the longer sentences of the grammar that begin with a sentence do to it."""

    NONE = "none"  # none means anything else ("what time is it" ... "please")
    ADDS = "adds"  # some add or change something else ("turn on the lights" ... "in the kitchen")
    CONTINUES_VALUE = "continues_value"  # some give one of its slots another value: the value
    # may not be finished ("set it to eighty" ... "seven"; "the living" ... "room")


def extension_of(context: Context, graph: WordGraph, words: Sequence[str]) -> Extension:
    """How the grammar's longer sentences that begin with ``words`` differ from it (see
    :class:`Extension`). Looks at the :data:`MAX_SENTENCES` shortest ones; ADDS when there
    are more than that and none of those differed. ``words`` that are no sentence (or begin
    none) give ADDS (or NONE)."""
    node = graph.walk(words)
    if node is None:
        return Extension.NONE
    base = parse_words(context, words)
    if base is None:
        return Extension.ADDS if graph.arcs[node] else Extension.NONE
    slots = dict(base.slots)
    found = Extension.NONE
    queue: collections.deque[tuple[int, tuple[str, ...]]] = collections.deque([(node, ())])
    sentences = nodes = 0
    while queue and sentences < MAX_SENTENCES and nodes < MAX_NODES:
        current, tail = queue.popleft()
        nodes += 1
        for word, target in graph.arcs[current]:
            longer = (*tail, word)
            if target in graph.finals:
                sentences += 1
                other = parse_words(context, [*words, *longer])
                if other is None or other.intent != base.intent:
                    found = Extension.ADDS
                elif any(other.slots.get(name, value) != value for name, value in slots.items()):
                    return Extension.CONTINUES_VALUE
                elif dict(other.slots) != slots:
                    found = Extension.ADDS
            if graph.arcs[target]:
                queue.append((target, longer))
    if queue and found is Extension.NONE:
        return Extension.ADDS  # too many to look at: it may go on
    return found
