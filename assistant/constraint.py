"""Which tokens may come next so that the text still spells a sentence of the grammar.

The grammar is compiled to a word automaton (:func:`assistant.grammar.compile_word_graph`).
This module lifts it to the characters the speech model writes and then to its tokens:

* letters match case-insensitively ("Americano", "americano"), ``’`` matches ``'``;
* between words the model may write punctuation (``,.!?;:``) and then a space or a hyphen
  ("large, 12-ounce latte"); at the very start one space; after the last word punctuation
  and then end-of-text;
* a run of number words may be written in digits ("twelve ounce" -> "12 ounce",
  "twenty five" -> "25"), and a few words have common written forms (:data:`SURFACE_FORMS`).

A *state* is a frozenset of character positions; :meth:`TokenConstraint.allowed` returns, for
a state, the token ids that keep at least one position alive and the state after each. The
answers are cached per state, so after the first utterances a decoding step costs a dict
lookup. End-of-text is allowed exactly where a sentence is complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .tokenizer import Tokenizer

PUNCTUATION = frozenset(",.!?;:")
SEPARATORS = frozenset(" -")
APOSTROPHES = {"’": "'", "‘": "'", "`": "'"}

# Written forms the model uses for a spoken word (besides the word itself).
SURFACE_FORMS: dict[str, tuple[str, ...]] = {
    "ounce": ("oz",),
    "ounces": ("oz",),
    "percent": ("%", "per cent"),
    "degrees": ("°",),
    "am": ("a.m.", "a.m"),
    "pm": ("p.m.", "p.m"),
    "okay": ("ok",),
    "mister": ("mr.", "mr"),
    "doctor": ("dr.", "dr"),
}

# Character positions:
#   (IN_WORD, arc, pos)   pos characters of arc's surface consumed (0 < pos < len)
#   (BOUNDARY, node, 0)   a word just ended at node
#   (BOUNDARY, node, 1)   digits just ended at node: a unit may follow without a space ("7pm")
#   (BOUNDARY, node, 2)   a separator written: a word must start
#   (BOUNDARY, node, 3)   sentence start: an optional space, then a word
#   (BOUNDARY, node, 10 + k)  k punctuation marks written after the word (k <= MAX_PUNCTUATION)
IN_WORD, BOUNDARY = 0, 1
AFTER_WORD, AFTER_DIGITS, SEPARATED, SENTENCE_START, PUNCTUATED = 0, 1, 2, 3, 10
# Words that may be written straight after digits: "7pm", "50%", "72°".
ATTACHED_UNITS = frozenset({"am", "pm", "a.m.", "p.m.", "a.m", "p.m", "%", "°", "oz"})
MAX_PUNCTUATION = 3  # "?!", "...": more is a loop, not writing
Position = tuple[int, int, int]
State = frozenset[Position]


class WordGraphLike:
    """What this module needs of a word automaton (see ``assistant.grammar.WordGraph``)."""

    start: int
    finals: frozenset[int]
    arcs: Sequence[Sequence[tuple[str, int]]]


@dataclass(frozen=True)
class _Arc:
    source: int
    surface: str  # lower-case written form
    target: int
    words: tuple[str, ...]  # the grammar words it writes


def _number_shortcuts(
    graph: WordGraphLike,
    words_to_int: Callable[[Sequence[str]], int | None],
    int_to_words: Callable[[int], str],
    max_words: int = 6,
) -> list[_Arc]:
    """Arcs that write a run of number words ("twenty five") as digits ("25")."""
    number_words = {w for arcs in graph.arcs for w, _ in arcs if words_to_int([w]) is not None}
    number_words.add("oh")  # "seven oh five" = 7:05

    def canonical(words: tuple[str, ...]) -> int | None:
        value = words_to_int(words)
        return value if value is not None and int_to_words(value) == " ".join(words) else None

    def clock(words: tuple[str, ...]) -> str | None:
        """ "seven thirty" -> "7:30", "seven oh five" -> "7:05" (hours 0-23)."""
        for cut in range(1, len(words)):
            hour, rest = canonical(words[:cut]), words[cut:]
            if hour is None or hour > 23:
                continue
            if rest[0] == "oh" and len(rest) == 2:
                minute = canonical(rest[1:])
                if minute is not None and minute < 10:
                    return f"{hour}:{minute:02d}"
            minute = canonical(rest)
            if minute is not None and 10 <= minute < 60:
                return f"{hour}:{minute:02d}"
        return None

    shortcuts: set[_Arc] = set()
    for node in range(len(graph.arcs)):
        stack: list[tuple[int, tuple[str, ...]]] = [(node, ())]
        while stack:
            current, words = stack.pop()
            if words:
                value = canonical(words)
                if value is not None:
                    shortcuts.add(_Arc(node, str(value), current, words))
                time = clock(words)
                if time is not None:
                    shortcuts.add(_Arc(node, time, current, words))
                    shortcuts.add(_Arc(node, time.replace(":", "."), current, words))
            if len(words) < max_words:
                for word, target in graph.arcs[current]:
                    if word in number_words:
                        stack.append((target, (*words, word)))
    return sorted(shortcuts, key=lambda a: (a.source, a.surface, a.target))


class TokenConstraint:
    """Grammar constraint over a tokenizer's vocabulary (see module docs)."""

    def __init__(
        self,
        graph: WordGraphLike,
        tokenizer: Tokenizer,
        eot: int,
        words_to_int: Callable[[Sequence[str]], int | None] | None = None,
        int_to_words: Callable[[int], str] | None = None,
    ):
        self.eot = eot
        self.finals = graph.finals
        arcs: list[_Arc] = []
        for node, out in enumerate(graph.arcs):
            for word, target in out:
                arcs.append(_Arc(node, word.lower(), target, (word,)))
                arcs.extend(
                    _Arc(node, form, target, (word,)) for form in SURFACE_FORMS.get(word, ())
                )
        if words_to_int is not None and int_to_words is not None:
            arcs.extend(_number_shortcuts(graph, words_to_int, int_to_words))
        self.arcs = arcs
        self._arcs_from: list[list[int]] = [[] for _ in graph.arcs]
        for i, arc in enumerate(arcs):
            self._arcs_from[arc.source].append(i)
        self.start: State = frozenset({(BOUNDARY, graph.start, SENTENCE_START)})
        self._trie = _TokenTrie(tokenizer)
        self._cache: dict[State, tuple[np.ndarray, list[State]]] = {}

    # -- characters ------------------------------------------------------------------------
    def _start_word(
        self, node: int, char: str, out: set[Position], only: frozenset[str] | None = None
    ) -> None:
        for i in self._arcs_from[node]:
            surface = self.arcs[i].surface
            if surface[0] == char and (only is None or surface in only):
                if len(surface) == 1:
                    out.add((BOUNDARY, self.arcs[i].target, self._end_phase(surface)))
                else:
                    out.add((IN_WORD, i, 1))

    @staticmethod
    def _end_phase(surface: str) -> int:
        return AFTER_DIGITS if surface[-1].isdigit() else AFTER_WORD

    def step(self, state: State, char: str) -> State:
        """Positions reachable from ``state`` by writing ``char``."""
        char = APOSTROPHES.get(char, char).lower()
        out: set[Position] = set()
        for kind, where, phase in state:
            if kind == IN_WORD:
                surface = self.arcs[where].surface
                if surface[phase] == char:
                    if phase + 1 == len(surface):
                        out.add((BOUNDARY, self.arcs[where].target, self._end_phase(surface)))
                    else:
                        out.add((IN_WORD, where, phase + 1))
            elif phase <= AFTER_DIGITS or phase > PUNCTUATED:
                if phase == AFTER_DIGITS:
                    self._start_word(where, char, out, ATTACHED_UNITS)
                if char in PUNCTUATION:
                    if phase < PUNCTUATED + MAX_PUNCTUATION:
                        out.add((BOUNDARY, where, max(phase, PUNCTUATED) + 1))
                elif char in SEPARATORS:
                    out.add((BOUNDARY, where, SEPARATED))
            elif phase == SENTENCE_START and char == " ":
                out.add((BOUNDARY, where, SEPARATED))
            else:
                self._start_word(where, char, out)
        return frozenset(out)

    def accepts_end(self, state: State) -> bool:
        return any(
            k == BOUNDARY and (p <= AFTER_DIGITS or p > PUNCTUATED) and n in self.finals
            for k, n, p in state
        )

    def accepts_text(self, text: str) -> bool:
        """Whether ``text`` is a complete written form of a sentence (for tests and tools)."""
        state = self.start
        for char in text:
            state = self.step(state, char)
            if not state:
                return False
        return self.accepts_end(state)

    def words_of(self, text: str) -> list[str] | None:
        """The grammar words a complete written sentence spells ("12-ounce" -> twelve ounce).

        Follows the same positions as :meth:`step`, remembering the words of each arc, so the
        recognizer parses exactly what the constraint accepted, however it was written.
        """
        paths: dict[Position, tuple[str, ...]] = {pos: () for pos in self.start}
        for char in text:
            nxt: dict[Position, tuple[str, ...]] = {}
            for pos, words in paths.items():
                for new in self.step(frozenset({pos}), char):
                    if new in nxt:
                        continue
                    if new[0] == IN_WORD and (pos[0] != IN_WORD or pos[1] != new[1]):
                        nxt[new] = (*words, *self.arcs[new[1]].words)  # entered a new arc
                    elif new[0] == BOUNDARY and pos[0] == BOUNDARY and new[2] in (
                        AFTER_WORD, AFTER_DIGITS
                    ):
                        arc = self._one_char_arc(pos[1], char, new[1])
                        nxt[new] = (*words, *arc.words)  # a one-character word
                    else:
                        nxt[new] = words
            paths = nxt
            if not paths:
                return None
        for pos, words in paths.items():
            if self.accepts_end(frozenset({pos})):
                return list(words)
        return None

    def _one_char_arc(self, source: int, char: str, target: int) -> _Arc:
        char = APOSTROPHES.get(char, char).lower()
        for i in self._arcs_from[source]:
            arc = self.arcs[i]
            if arc.surface == char and arc.target == target:
                return arc
        raise AssertionError(f"no one-character arc {char!r} from node {source}")

    # -- tokens ----------------------------------------------------------------------------
    def allowed(self, state: State) -> tuple[np.ndarray, list[State]]:
        """Token ids allowed in ``state`` (sorted; eot last if allowed) and the next states."""
        cached = self._cache.get(state)
        if cached is not None:
            return cached
        ids: list[int] = []
        states: list[State] = []
        self._trie.walk(state, self.step, ids, states)
        order = np.argsort(np.array(ids, dtype=np.int64), kind="stable")
        token_ids = [ids[i] for i in order]
        next_states = [states[i] for i in order]
        if self.accepts_end(state):
            token_ids.append(self.eot)
            next_states.append(frozenset())
        result = (np.array(token_ids, dtype=np.int64), next_states)
        self._cache[state] = result
        return result

    @property
    def cache_size(self) -> int:
        return len(self._cache)


class _TokenTrie:
    """The vocabulary's written forms as a character trie, for walking with a state."""

    def __init__(self, tokenizer: Tokenizer):
        self.children: list[dict[str, int]] = [{}]
        self.tokens: list[list[int]] = [[]]
        for token_id in range(tokenizer.size):
            if tokenizer.is_special(token_id):
                continue
            raw = tokenizer.token_bytes(token_id)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue  # a piece of a multi-byte character: never part of our grammars
            if not text:
                continue
            node = 0
            for char in text:
                nxt = self.children[node].get(char)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][char] = nxt
                    self.children.append({})
                    self.tokens.append([])
                node = nxt
            self.tokens[node].append(token_id)

    def walk(
        self,
        state: State,
        step: Callable[[State, str], State],
        ids: list[int],
        states: list[State],
    ) -> None:
        stack: list[tuple[int, State]] = [(0, state)]
        while stack:
            node, current = stack.pop()
            for char, child in self.children[node].items():
                nxt = step(current, char)
                if not nxt:
                    continue
                for token_id in self.tokens[child]:
                    ids.append(token_id)
                    states.append(nxt)
                stack.append((child, nxt))
