"""The grammar sentence nearest to free text: word edit distance against the word graph.

Text-matching pipelines (speech-to-text, then match the transcript to the commands) forgive
small transcription slips by matching fuzzily. Enumerating the sentences is out of the
question (the barista grammar has 120 million), so the distance is computed on the word
graph itself: a Levenshtein dynamic program over (graph node, words read), in topological
order, which costs nodes x words x arcs, a few thousand steps for a command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assistant.grammar import WordGraph

# Back-pointer kinds.
_MATCH, _DELETE, _INSERT = 0, 1, 2  # grammar word read (with or without a substitution),
# grammar word not said, said word not in the grammar


@dataclass(frozen=True)
class Nearest:
    words: tuple[str, ...]  # the nearest sentence of the grammar
    distance: int  # word insertions + deletions + substitutions to turn the text into it


def _topological(graph: WordGraph) -> list[int]:
    order: list[int] = []
    seen = {graph.start}
    stack = [(graph.start, iter(graph.arcs[graph.start]))]
    while stack:
        node, arcs = stack[-1]
        for _, target in arcs:
            if target not in seen:
                seen.add(target)
                stack.append((target, iter(graph.arcs[target])))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def nearest_sentence(graph: WordGraph, words: Sequence[str]) -> Nearest | None:
    """The grammar sentence with the fewest word edits from ``words``, or None."""
    n = len(words)
    inf = 1 << 30
    cost: dict[int, list[int]] = {}
    back: dict[int, list[tuple[int, int, str] | None]] = {}  # (kind, previous node, word)
    for node in _topological(graph):
        row = cost.setdefault(node, [inf] * (n + 1))
        pointers = back.setdefault(node, [None] * (n + 1))
        if node == graph.start:
            row[0] = 0
        for i in range(1, n + 1):  # a said word the grammar lacks
            if row[i - 1] + 1 < row[i]:
                row[i] = row[i - 1] + 1
                pointers[i] = (_INSERT, node, "")
        for word, target in graph.arcs[node]:
            target_row = cost.setdefault(target, [inf] * (n + 1))
            target_back = back.setdefault(target, [None] * (n + 1))
            for i in range(n + 1):
                if row[i] >= inf:
                    continue
                if row[i] + 1 < target_row[i]:  # the grammar word was not said
                    target_row[i] = row[i] + 1
                    target_back[i] = (_DELETE, node, word)
                if i < n:
                    step = row[i] + (word != words[i])
                    if step < target_row[i + 1]:
                        target_row[i + 1] = step
                        target_back[i + 1] = (_MATCH, node, word)
    finals = [f for f in graph.finals if cost.get(f, [inf])[n] < inf]
    if not finals:
        return None
    best = min(finals, key=lambda f: cost[f][n])
    sentence: list[str] = []
    node, i = best, n
    while (node, i) != (graph.start, 0):
        pointer = back[node][i]
        assert pointer is not None
        kind, previous, word = pointer
        if kind == _INSERT:
            i -= 1
        else:
            sentence.append(word)
            i -= kind == _MATCH
        node = previous
    sentence.reverse()
    return Nearest(tuple(sentence), cost[best][n])
