"""Which tokens may come next so that the text still spells a sentence of the grammar.

The grammar is compiled to a word automaton (:func:`assistant.grammar.compile_word_graph`).
This module lifts it to the token sequences the speech model writes:

* each word may be written lower-case or Capitalized ("latte", "Latte"), with ``'`` or ``’``
  in contractions;
* a run of number words may be written in digits ("twelve ounce" -> "12 ounce",
  "twenty five" -> "25", "seven thirty" -> "7:30"), and some words have common written forms
  (:data:`SURFACE_FORMS`: "ounce" -> "oz", "percent" -> "%");
* between words the model may write punctuation (``,`` ``.`` ``?`` ...) or a hyphen
  ("large, 12-ounce latte"); after the last word,
  punctuation and then end-of-text, which is allowed exactly where a sentence is complete.

Tokens follow the tokenizer's own segmentation: a GPT-2 style BPE splits text into
*pre-tokens* (a word with its leading space, a run of digits, a run of punctuation) and
encodes each alone, so every written word has one canonical token sequence. Only canonical
sequences are allowed. The model writes them almost exclusively, and forbidding the others
keeps the beam from filling up with odd spellings of one word ("S"+"et" for "Set").

A *state* is a frozenset of positions; :meth:`TokenConstraint.allowed` returns, for a state,
the allowed token ids and the state after each, cached per state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .tokenizer import Tokenizer

# Punctuation pre-tokens the model writes between or after words.
PUNCTUATION = (",", ".", "?", "!", ";", ":", "...", "?!", "!?", "..", "…", ")", ".)", "?)",
               "!)", "\"", ".\"", "?\"", "!\"", ",\"")
OPENINGS: tuple[str, ...] = ()  # "(" and quotes open Whisper's non-speech notes: not commands
HYPHEN = "-"

# Written forms the model uses for a spoken word (besides the word itself).
SURFACE_FORMS: dict[str, tuple[str, ...]] = {
    "ounce": ("oz",),
    "ounces": ("oz",),
    "percent": ("%", "per cent"),
    "degrees": ("°",),
    "am": ("a.m.", "a.m", "AM"),
    "pm": ("p.m.", "p.m", "PM"),
    "okay": ("ok",),
    "mister": ("mr.", "mr"),
    "doctor": ("dr.", "dr"),
}
# Written forms that may follow digits with no space: "7pm", "50%", "72°", "12oz".
ATTACHED_UNITS = frozenset({"am", "pm", "a.m.", "p.m.", "a.m", "p.m", "%", "°", "oz"})

# Positions. At a word boundary: (BOUNDARY, node, phase, 0). Inside a token sequence:
# (IN_SEQUENCE, sequence id, tokens written, node) where node is the arc's target for a word
# and the current node for punctuation.
BOUNDARY, IN_SEQUENCE = 0, 1
AFTER_WORD, AFTER_DIGITS, PUNCTUATED, SENTENCE_START, OPENED, HYPHENATED = range(6)
Position = tuple[int, int, int, int]
State = frozenset[Position]


class WordGraphLike(Protocol):
    """What this module needs of a word automaton (see ``assistant.grammar.WordGraph``)."""

    @property
    def start(self) -> int: ...

    @property
    def finals(self) -> frozenset[int]: ...

    @property
    def arcs(self) -> Sequence[Sequence[tuple[str, int]]]: ...


@dataclass(frozen=True)
class _Arc:
    source: int
    surface: str  # lower-case written form
    target: int
    words: tuple[str, ...]  # the grammar words it writes


@dataclass(frozen=True)
class _Sequence:
    """The canonical tokens of one written form: a word variant or a punctuation mark."""

    tokens: tuple[int, ...]
    arc: int | None  # the word arc, None for punctuation
    then: int  # boundary phase once written


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
        self.tokenizer = tokenizer
        self._numbers = (words_to_int, int_to_words)
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
        self.sequences: list[_Sequence] = []
        self._encoded: dict[str, tuple[int, ...]] = {}
        # Per node: sequences of its words written after a space, and without one.
        self._spaced: list[list[int]] = [[] for _ in graph.arcs]
        self._unspaced: list[list[int]] = [[] for _ in graph.arcs]
        self._attached: list[list[int]] = [[] for _ in graph.arcs]
        for i, arc in enumerate(arcs):
            phase = AFTER_DIGITS if arc.surface[-1].isdigit() else AFTER_WORD
            for form in _case_forms(arc.surface):
                spaced = self._add(" " + form, i, phase)
                unspaced = self._add(form, i, phase)
                self._spaced[arc.source].append(spaced)
                self._unspaced[arc.source].append(unspaced)
                if arc.surface in ATTACHED_UNITS:
                    self._attached[arc.source].append(unspaced)
        self._punctuation = [self._add(p, None, PUNCTUATED) for p in PUNCTUATION]
        self._openings = [self._add(p, None, OPENED) for p in OPENINGS]
        self._hyphen = [self._add(HYPHEN, None, HYPHENATED)]
        self.start: State = frozenset({(BOUNDARY, graph.start, SENTENCE_START, 0)})
        self._cache: dict[State, tuple[np.ndarray, list[State]]] = {}
        self._boundary_cache: dict[tuple[int, int], dict[int, set[Position]]] = {}

    def restricted(self, graph: WordGraphLike) -> TokenConstraint:
        """The same writing rules (cases, digits, punctuation) over another word graph, e.g.
        a few sentences of this one (``WordGraph.of_sentences``)."""
        return TokenConstraint(graph, self.tokenizer, self.eot, *self._numbers)

    def _add(self, text: str, arc: int | None, then: int) -> int:
        tokens = self._encoded.get(text)
        if tokens is None:
            tokens = tuple(self.tokenizer.encode(text))
            self._encoded[text] = tokens
        self.sequences.append(_Sequence(tokens, arc, then))
        return len(self.sequences) - 1

    # -- positions -------------------------------------------------------------------------
    def _after(self, sequence: int, written: int, node: int) -> Position:
        """The position after ``written`` tokens of ``sequence`` (entered at/for ``node``)."""
        seq = self.sequences[sequence]
        if written < len(seq.tokens):
            return (IN_SEQUENCE, sequence, written, node)
        return (BOUNDARY, node, seq.then, 0)

    def _entries(self, node: int, phase: int) -> list[tuple[int, int]]:
        """(sequence, node once written) that may start at a boundary."""
        def words(ids: list[int]) -> list[tuple[int, int]]:
            return [(s, self.arcs[self.sequences[s].arc].target) for s in ids]  # type: ignore[index]

        def marks(ids: list[int]) -> list[tuple[int, int]]:
            return [(s, node) for s in ids]

        if phase == SENTENCE_START:
            return words(self._spaced[node]) + words(self._unspaced[node]) + marks(
                self._openings)
        if phase in (OPENED, HYPHENATED):
            return words(self._unspaced[node])
        if phase == PUNCTUATED:
            return words(self._spaced[node])
        entries = words(self._spaced[node]) + marks(self._punctuation) + marks(self._hyphen)
        if phase == AFTER_DIGITS:
            entries += words(self._attached[node])
        return entries

    def _boundary_moves(self, node: int, phase: int) -> dict[int, set[Position]]:
        key = (node, phase)
        moves = self._boundary_cache.get(key)
        if moves is None:
            moves = {}
            for sequence, target in self._entries(node, phase):
                first = self.sequences[sequence].tokens[0]
                moves.setdefault(first, set()).add(self._after(sequence, 1, target))
            self._boundary_cache[key] = moves
        return moves

    def step(self, state: State, token: int) -> State:
        """Positions reachable from ``state`` by writing ``token``."""
        out: set[Position] = set()
        for kind, where, phase, node in state:
            if kind == IN_SEQUENCE:
                seq = self.sequences[where]
                if seq.tokens[phase] == token:
                    out.add(self._after(where, phase + 1, node))
            else:
                out |= self._boundary_moves(where, phase).get(token, set())
        return frozenset(out)

    def next_state(self, state: State, token: int) -> State | None:
        """The state after writing ``token`` in ``state``, or None when it is not allowed
        there; through :meth:`allowed`, so its cache serves (and fills)."""
        ids, states = self.allowed(state)
        where = int(np.searchsorted(ids, token))
        if where >= ids.size or ids[where] != token:
            return None
        return states[where]

    def accepts_end(self, state: State) -> bool:
        return any(
            kind == BOUNDARY and phase in (AFTER_WORD, AFTER_DIGITS, PUNCTUATED)
            and node in self.finals
            for kind, node, phase, _ in state
        )

    # -- tokens ----------------------------------------------------------------------------
    def allowed(self, state: State) -> tuple[np.ndarray, list[State]]:
        """Token ids allowed in ``state`` (sorted; eot last if allowed) and the next states."""
        cached = self._cache.get(state)
        if cached is not None:
            return cached
        moves: dict[int, set[Position]] = {}
        for kind, where, phase, node in state:
            if kind == IN_SEQUENCE:
                seq = self.sequences[where]
                moves.setdefault(seq.tokens[phase], set()).add(self._after(where, phase + 1, node))
            else:
                for token, positions in self._boundary_moves(where, phase).items():
                    moves.setdefault(token, set()).update(positions)
        token_ids = sorted(moves)
        next_states = [frozenset(moves[t]) for t in token_ids]
        if self.accepts_end(state):
            token_ids.append(self.eot)
            next_states.append(frozenset())
        result = (np.array(token_ids, dtype=np.int64), next_states)
        self._cache[state] = result
        return result

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    # -- whole sentences -------------------------------------------------------------------
    def words_of_tokens(self, tokens: Sequence[int]) -> list[str] | None:
        """The grammar words a complete token sequence spells ("12-ounce" -> twelve ounce).

        Follows the same positions as :meth:`step`, remembering the words of each arc
        entered, so the recognizer parses exactly what the constraint accepted.
        """
        paths: dict[Position, tuple[str, ...]] = dict.fromkeys(self.start, ())
        for token in tokens:
            if token == self.eot:
                break
            nxt: dict[Position, tuple[str, ...]] = {}
            for pos, words in paths.items():
                entered = pos[0] == BOUNDARY
                for new in self.step(frozenset({pos}), token):
                    if new in nxt:
                        continue
                    sequence = self._entered_sequence(pos, token, new) if entered else None
                    arc = self.sequences[sequence].arc if sequence is not None else None
                    nxt[new] = (*words, *self.arcs[arc].words) if arc is not None else words
            paths = nxt
            if not paths:
                return None
        for pos, words in paths.items():
            if self.accepts_end(frozenset({pos})):
                return list(words)
        return None

    def _entered_sequence(self, pos: Position, token: int, new: Position) -> int | None:
        for sequence, target in self._entries(pos[1], pos[2]):
            seq = self.sequences[sequence]
            if seq.tokens[0] == token and self._after(sequence, 1, target) == new:
                return sequence
        return None

    def words_of(self, text: str) -> list[str] | None:
        """:meth:`words_of_tokens` for text, tokenized canonically."""
        return self.words_of_tokens(self.tokenizer.encode(text))

    def accepts_text(self, text: str) -> bool:
        """Whether ``text``, tokenized canonically, is a complete sentence (tests and tools)."""
        state = self.start
        for token in self.tokenizer.encode(text):
            state = self.step(state, token)
            if not state:
                return False
        return self.accepts_end(state)


def _case_forms(surface: str) -> list[str]:
    """lower and Capitalized forms, each also with a typographic apostrophe.

    UPPER-CASE is left out: Whisper rarely shouts, and all-caps words begin with odd pieces
    (" T" for " THE") that would take beam slots from real words.
    """
    forms = {surface, surface[:1].upper() + surface[1:]}
    if "'" in surface:
        forms |= {f.replace("'", "’") for f in forms}
    return sorted(forms)
