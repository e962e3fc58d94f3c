"""The grammar sentences nearest a word sequence: approximate matching on the word graph.

The constrained beam search can commit early to a first word that sounds like the audio and
then find only far-off sentences ("shut garage door please" decoded as "check, trash, bags,
off, the list." because the model heard "Check rash door please"), while the free decode of
the same audio is close to the right sentence. The recognizer then asks this module for the
grammar sentences nearest what the model heard freely, and lets the speech model score them
(:meth:`assistant.decoding.BeamSearch.rescore`): a sentence that scores higher than the
beam's best was a search error.

Distance is a word-level edit distance: a heard word with no grammar word costs 1, a grammar
word not heard costs 1, and a grammar word in place of a heard one costs their normalized
character edit distance (0 when equal, at most 1), so "Pern" is nearer "turn" than "lights".
Whisper also splits a word it does not know ("and use" for "unmute") and runs two words
together ("Rashdoor" for "garage door"), so the heard words form a small lattice
(:class:`HeardLattice`): a grammar word may stand for two heard words written together (at
twice their distance: it consumes two words), and two grammar words for the two pieces of
one heard word. :class:`NearestSentences` computes, once per heard sequence, the exact cost
of the cheapest completion from every (node, place in the lattice) on the acyclic word graph,
level by level with numpy; best-first enumeration with that exact bound then yields the k
cheapest distinct sentences after a few hundred expansions even on graphs of millions of
sentences.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

from .wordgraph import WordGraph

INSERT_COST = 1.0  # a heard word the sentence does not have
DELETE_COST = 1.0  # a sentence word that was not heard
MIN_PIECE_CHARS = 2  # a heard word splits into two pieces of at least this many letters
MAX_SPLIT_CHARS = 24  # ... when it has at most this many (two words run together)
MAX_EXPANSIONS = 20_000  # a safety bound on the best-first enumeration
MAX_HEARD_WORDS = 40  # longer free decodes are cut (a command is shorter)


@dataclass(frozen=True)
class Near:
    """A grammar sentence (its words) and its edit cost from the heard words."""

    cost: float
    words: tuple[str, ...]


@dataclass(frozen=True)
class _Piece:
    """One grammar word may stand for ``text``, from place ``source`` to place ``target``
    of the lattice, at ``weight`` times its distance."""

    source: int
    target: int
    text: str
    weight: float


class HeardLattice:
    """Places between and inside the heard words, and the pieces a grammar word may match.

    Places ``0..n`` are the boundaries before each heard word (``n``: all heard); a place
    above ``n`` is a split point inside one heard word. Pieces: each heard word (weight 1),
    two neighbours written together (weight 2), and the two parts of a word split inside.
    Only a boundary may be skipped to the next one (a heard word the sentence lacks) or
    stay put while the sentence has a word that was not heard.
    """

    def __init__(self, heard: Sequence[str]):
        self.n = n = len(heard)
        pieces: list[_Piece] = []
        places = n + 1
        for i, word in enumerate(heard):
            pieces.append(_Piece(i, i + 1, word, 1.0))
            if i + 1 < n:
                pieces.append(_Piece(i, i + 2, word + heard[i + 1], 2.0))
            cuts = range(MIN_PIECE_CHARS, len(word) - MIN_PIECE_CHARS + 1) \
                if len(word) <= MAX_SPLIT_CHARS else range(0)
            for cut in cuts:
                pieces.append(_Piece(i, places, word[:cut], 1.0))
                pieces.append(_Piece(places, i + 1, word[cut:], 1.0))
                places += 1
        self.places = places
        self.pieces = sorted(pieces, key=lambda p: p.source)
        self.sources = np.array([p.source for p in self.pieces], dtype=np.int64)
        self.targets = np.array([p.target for p in self.pieces], dtype=np.int64)
        self.weights = np.array([p.weight for p in self.pieces], dtype=np.float32)
        # Pieces are grouped by source place: where each group starts, and its place.
        self.group_starts = np.flatnonzero(np.diff(self.sources, prepend=-1) != 0)
        self.group_places = self.sources[self.group_starts]
        self.from_place: dict[int, list[int]] = {}
        for index, piece in enumerate(self.pieces):
            self.from_place.setdefault(piece.source, []).append(index)

    def distances(self, vocabulary: Sequence[str]) -> np.ndarray:
        """``[word, piece]``: the weighted normalized character edit distances."""
        if not self.pieces:
            return np.zeros((len(vocabulary), 0), dtype=np.float32)
        texts = [p.text for p in self.pieces]
        distance = cdist(vocabulary, texts, scorer=Levenshtein.normalized_distance,
                         dtype=np.float32)
        return np.asarray(distance, dtype=np.float32) * self.weights


class NearestSentences:
    """Nearest-sentence search on one word graph (precomputes its levels and arcs)."""

    def __init__(self, graph: WordGraph):
        self.graph = graph
        self.vocabulary = graph.vocabulary
        self._index = {word: i for i, word in enumerate(self.vocabulary)}
        sources, targets, words = [], [], []
        for node, out in enumerate(graph.arcs):
            for word, target in out:
                sources.append(node)
                targets.append(target)
                words.append(self._index[word])
        self._sources = np.array(sources, dtype=np.int64)
        self._targets = np.array(targets, dtype=np.int64)
        self._words = np.array(words, dtype=np.int64)
        self._finals = np.zeros(graph.num_nodes, dtype=bool)
        self._finals[list(graph.finals)] = True
        # Height: the longest path from a node to a sink; a node's successors are all lower,
        # so nodes of one height can be solved together once every lower height is.
        height = np.zeros(graph.num_nodes, dtype=np.int64)
        for node in graph.post_order():
            for _, target in graph.arcs[node]:
                height[node] = max(height[node], height[target] + 1)
        arc_height = height[self._sources]
        top = int(height.max()) if graph.num_nodes else 0
        self._levels = [np.flatnonzero(arc_height == h) for h in range(1, top + 1)]

    def nearest(self, heard: Sequence[str], k: int) -> list[Near]:
        """The ``k`` grammar sentences nearest ``heard`` (lower-case words), cheapest first.

        A repetition loop of the free decode ("and use the volume and use the volume and
        use the") counts once (see :func:`without_loops`)."""
        if k <= 0 or not self.graph.arcs:
            return []
        lattice = HeardLattice(without_loops(heard)[:MAX_HEARD_WORDS])
        distance = lattice.distances(self.vocabulary)
        rest = self._costs_to_go(lattice, distance)
        return self._enumerate(lattice, distance, rest, k)

    def _costs_to_go(self, lattice: HeardLattice, distance: np.ndarray) -> np.ndarray:
        """``rest[node, place]``: the least cost of ending a sentence from ``node`` at that
        place of the heard lattice."""
        n = lattice.n
        rest = np.full((self.graph.num_nodes, lattice.places), np.inf, dtype=np.float32)
        rest[np.ix_(self._finals, np.arange(n + 1))] = INSERT_COST * (n - np.arange(n + 1))
        for arcs in self._levels:
            after = rest[self._targets[arcs]]  # [arcs, places]
            best = np.full_like(after, np.inf)
            best[:, : n + 1] = after[:, : n + 1] + DELETE_COST
            if lattice.pieces:
                matched = distance[self._words[arcs]] + after[:, lattice.targets]
                grouped = np.minimum.reduceat(matched, lattice.group_starts, axis=1)
                places = lattice.group_places
                best[:, places] = np.minimum(best[:, places], grouped)
            sources = self._sources[arcs]
            np.minimum.at(rest, sources, best)
            nodes = np.unique(sources)
            rest[nodes, : n + 1] = _closure(rest[nodes, : n + 1])
        return rest

    def _enumerate(self, lattice: HeardLattice, distance: np.ndarray, rest: np.ndarray,
                   k: int) -> list[Near]:
        """Best-first over (node, place, sentence so far) with the exact bound ``rest``; each
        distinct sentence once, at its cheapest alignment. Among equal bounds the furthest
        along goes first (``-cost``): the bound is exact, so it leads straight to a sentence,
        where the least along would expand every tie."""
        graph, n = self.graph, lattice.n
        start = float(rest[graph.start, 0])
        if not np.isfinite(start):
            return []
        heap: list[tuple[float, float, int, int, tuple[str, ...]]] = [
            (start, -0.0, graph.start, 0, ())]
        found: list[Near] = []
        seen: set[tuple[str, ...]] = set()
        expanded: set[tuple[int, int, tuple[str, ...]]] = set()
        while heap and len(found) < k and len(expanded) < MAX_EXPANSIONS:
            _, negative_cost, node, place, words = heapq.heappop(heap)
            cost = -negative_cost
            if node < 0:  # a finished sentence
                if words not in seen:
                    seen.add(words)
                    found.append(Near(round(cost, 4), words))
                continue
            if (node, place, words) in expanded:
                continue
            expanded.add((node, place, words))
            boundary = place <= n
            if boundary and node in graph.finals:
                done = cost + INSERT_COST * (n - place)
                heapq.heappush(heap, (done, -done, -1, n, words))
            if boundary and place < n:
                _push(heap, rest, cost + INSERT_COST, node, place + 1, words)
            pieces = lattice.from_place.get(place, ())
            for word, target in graph.arcs[node]:
                longer = (*words, word)
                if boundary:
                    _push(heap, rest, cost + DELETE_COST, target, place, longer)
                column = distance[self._index[word]]
                for p in pieces:
                    _push(heap, rest, cost + float(column[p]), target,
                          int(lattice.targets[p]), longer)
        return found


def without_loops(words: Sequence[str]) -> list[str]:
    """``words`` cut after the first block that the next words repeat: Whisper's free decode
    of a short command often loops ("and use the volume and use the volume and use the").
    A block of two or more words repeated once is a loop; a single word must come three times
    in a row ("the the" is a stutter, "pause pause pause" a loop)."""
    words = list(words)
    for end in range(1, len(words)):
        for size in range(1, end + 1):
            repeats = 2 if size == 1 else 1
            if all(words[end - size : end] == words[end + r * size : end + (r + 1) * size]
                   for r in range(repeats)):
                return words[:end]
    return words


def _closure(rest: np.ndarray) -> np.ndarray:
    """Allow skipping heard words in place: ``rest[i] = min_j>=i rest[j] + cost (j - i)``."""
    steps = INSERT_COST * np.arange(rest.shape[1], dtype=np.float32)
    shifted = rest + steps
    return np.minimum.accumulate(shifted[:, ::-1], axis=1)[:, ::-1] - steps


def _push(heap: list[tuple[float, float, int, int, tuple[str, ...]]], rest: np.ndarray,
          cost: float, node: int, place: int, words: tuple[str, ...]) -> None:
    bound = cost + float(rest[node, place])
    if np.isfinite(bound):
        heapq.heappush(heap, (bound, -cost, node, place, words))
