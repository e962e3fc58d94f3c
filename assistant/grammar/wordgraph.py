"""The word graph: the smallest deterministic automaton of a context's sentences.

A speech decoder walks it word by word: from ``start``, ``arcs[node]`` lists the words that
may come next (sorted) with the node each leads to; a sentence may end in a node of
``finals``. It is acyclic (sentences are finite), has no epsilon arcs, and is minimal: no
two nodes have the same set of continuations.

Built from the priority NFA of :mod:`assistant.grammar.automaton` with its tags dropped:
states with the same outgoing arcs are merged first (cheap, and it shrinks the
repeated tails of similar expressions), then the subset construction makes it
deterministic, and acyclic minimization merges nodes with equal right languages
(Revuz's algorithm: compare each node's signature, finality and arcs to already merged
successors, in reverse topological order).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.grammar.automaton import Automaton

Arcs = tuple[tuple[tuple[str, int], ...], ...]


@dataclass(frozen=True)
class WordGraph:
    """``arcs[node]`` is the sorted tuple of ``(word, next_node)``; nodes are numbered
    breadth first from ``start`` (which is 0)."""

    start: int
    finals: frozenset[int]
    arcs: Arcs

    @property
    def num_nodes(self) -> int:
        return len(self.arcs)

    @property
    def num_arcs(self) -> int:
        return sum(len(node_arcs) for node_arcs in self.arcs)

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """Every word on some arc, sorted."""
        return tuple(sorted({word for node_arcs in self.arcs for word, _ in node_arcs}))

    def next_node(self, node: int, word: str) -> int | None:
        """Where ``word`` leads from ``node``, or None."""
        arcs = self.arcs[node]
        i = bisect.bisect_left(arcs, (word,))
        return arcs[i][1] if i < len(arcs) and arcs[i][0] == word else None

    def walk(self, words: Sequence[str]) -> int | None:
        """The node ``words`` lead to from ``start``, or None when they begin no sentence."""
        node = self.start
        for word in words:
            following = self.next_node(node, word)
            if following is None:
                return None
            node = following
        return node

    def accepts(self, words: Sequence[str]) -> bool:
        """Whether ``words`` is a whole sentence of the grammar."""
        return self.walk(words) in self.finals

    def post_order(self) -> list[int]:
        """The nodes reachable from ``start``, each after every node it leads to."""
        return _post_order(self.start, lambda n: (t for _, t in self.arcs[n]))

    def count_paths(self) -> int:
        """Number of sentences (paths from ``start`` to a final node)."""
        counts: dict[int, int] = {}
        for node in self.post_order():
            counts[node] = (node in self.finals) + sum(counts[t] for _, t in self.arcs[node])
        return counts[self.start]

    def sentences(self) -> Iterator[tuple[str, ...]]:
        """Every sentence, in lexicographic word order (small graphs only)."""
        stack: list[tuple[int, tuple[str, ...]]] = [(self.start, ())]
        while stack:
            node, words = stack.pop()
            if node in self.finals:
                yield words
            stack.extend((t, (*words, w)) for w, t in reversed(self.arcs[node]))

    @classmethod
    def of_sentences(cls, sentences: Sequence[Sequence[str]]) -> WordGraph:
        """The trie of a few sentences (deterministic, not minimized): a graph for
        constraining a decoder to exactly these word sequences."""
        children: list[dict[str, int]] = [{}]
        finals: set[int] = set()
        for sentence in sentences:
            node = 0
            for word in sentence:
                following = children[node].get(word)
                if following is None:
                    following = children[node][word] = len(children)
                    children.append({})
                node = following
            finals.add(node)
        return cls(0, frozenset(finals), tuple(tuple(sorted(c.items())) for c in children))

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "finals": sorted(self.finals),
            "arcs": [[[word, target] for word, target in node] for node in self.arcs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WordGraph:
        arcs = tuple(tuple((str(w), int(t)) for w, t in node) for node in data["arcs"])
        return cls(int(data["start"]), frozenset(int(n) for n in data["finals"]), arcs)


def _post_order(start: int, successors: Any) -> list[int]:
    """Nodes reachable from ``start``, each after all its successors (acyclic graph)."""
    order: list[int] = []
    done: set[int] = {start}
    stack: list[tuple[int, Iterator[int]]] = [(start, iter(successors(start)))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if child not in done:
                done.add(child)
                stack.append((child, iter(successors(child))))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def _merge_equal_states(automaton: Automaton) -> tuple[int, list[bool], list[dict[str, set[int]]]]:
    """The NFA without tags, states with equal finality and arcs merged bottom up."""
    target, word = automaton.arc_target, automaton.arc_word
    order = _post_order(automaton.start, lambda s: (target[a] for a in automaton.arcs[s]))
    merged: dict[int, int] = {}
    signatures: dict[tuple[bool, frozenset[tuple[str, int]]], int] = {}
    final: list[bool] = []
    arcs: list[dict[str, set[int]]] = []
    for state in order:
        state_arcs = frozenset((word[a], merged[target[a]]) for a in automaton.arcs[state])
        signature = (automaton.final[state], state_arcs)
        if signature not in signatures:
            signatures[signature] = len(arcs)
            final.append(automaton.final[state])
            by_word: dict[str, set[int]] = {}
            for arc_word, arc_target in state_arcs:
                by_word.setdefault(arc_word, set()).add(arc_target)
            arcs.append(by_word)
        merged[state] = signatures[signature]
    return merged[automaton.start], final, arcs


def determinize(automaton: Automaton) -> WordGraph:
    """The minimal deterministic word graph accepting the automaton's word sequences."""
    nfa_start, nfa_final, nfa_arcs = _merge_equal_states(automaton)

    # Subset construction.
    start_set = frozenset([nfa_start])
    subset_ids: dict[frozenset[int], int] = {start_set: 0}
    subsets = [start_set]
    dfa_arcs: list[dict[str, int]] = []
    for subset in subsets:  # grows while iterating
        moves: dict[str, set[int]] = {}
        for state in subset:
            for arc_word, targets in nfa_arcs[state].items():
                moves.setdefault(arc_word, set()).update(targets)
        node_arcs: dict[str, int] = {}
        for arc_word, targets in moves.items():
            key = frozenset(targets)
            if key not in subset_ids:
                subset_ids[key] = len(subsets)
                subsets.append(key)
            node_arcs[arc_word] = subset_ids[key]
        dfa_arcs.append(node_arcs)
    dfa_final = [any(nfa_final[s] for s in subset) for subset in subsets]

    # Acyclic minimization: equal signatures over already-merged successors.
    order = _post_order(0, lambda n: dfa_arcs[n].values())
    classes: dict[int, int] = {}
    signatures: dict[tuple[bool, tuple[tuple[str, int], ...]], int] = {}
    for node in order:
        signature = (
            dfa_final[node],
            tuple(sorted((w, classes[t]) for w, t in dfa_arcs[node].items())),
        )
        classes[node] = signatures.setdefault(signature, len(signatures))
    class_arcs: dict[int, tuple[tuple[str, int], ...]] = {}
    class_final: dict[int, bool] = {}
    for (is_final, arcs), class_id in signatures.items():
        class_arcs[class_id] = arcs
        class_final[class_id] = is_final

    # Number nodes breadth first from the start, following sorted arcs.
    number = {classes[0]: 0}
    queue = [classes[0]]
    for class_id in queue:
        for _, t in class_arcs[class_id]:
            if t not in number:
                number[t] = len(queue)
                queue.append(t)
    arcs_out = tuple(tuple((w, number[t]) for w, t in class_arcs[class_id]) for class_id in queue)
    finals = frozenset(number[c] for c in queue if class_final[c])
    return WordGraph(start=0, finals=finals, arcs=arcs_out)
