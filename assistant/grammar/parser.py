"""Parse a sentence into intent and slots.

The rule for a sentence the grammar can read in several ways: the first reading in the
grammar's priority order wins (earlier intent, then earlier expression, then, left to
right, earlier alternatives, optional parts left out before put in, earlier slot values;
see :mod:`assistant.grammar.automaton`).

That is a Pike-VM run over the priority NFA: a list of live states in priority order,
where a state reached twice keeps its first (higher priority) arrival. The list after each
word depends only on the list before and the word, so steps are memoized: the parser
becomes a DFA built lazily, one ``(state list, word)`` step at a time, whose steps carry
back-pointers to rebuild the winning path. After warm-up a parse is one dict lookup per
word plus a walk back; words outside the grammar's vocabulary are rejected without touching
the cache, so the cache is bounded by the grammar, not by the input.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from assistant.grammar.annotation import Annotation
from assistant.grammar.automaton import Automaton, IntentTag, SlotTag
from assistant.grammar.context import Context
from assistant.grammar.normalize import normalize_text
from assistant.grammar.slots import SlotValueT
from assistant.numbers import canonicalize_numbers

# A step: (next DFA state, back-pointers) where back-pointers[k] = (position in the
# previous state list, arc id) for the k-th NFA state of the next list.
_Step = tuple[int, tuple[tuple[int, int], ...]]
_UNSEEN = (-1, ())


class LazyParser:
    """Finds the priority-first accepting path of an :class:`Automaton` (thread-safe)."""

    def __init__(self, automaton: Automaton):
        self._automaton = automaton
        start = (automaton.start,)
        self._lists: list[tuple[int, ...]] = [start]
        self._ids: dict[tuple[int, ...], int] = {start: 0}
        self._steps: list[dict[str, _Step | None]] = [{}]
        self._accepting: list[int] = [self._first_final(start)]
        self._lock = threading.Lock()

    def _first_final(self, states: tuple[int, ...]) -> int:
        final = self._automaton.final
        return next((k for k, state in enumerate(states) if final[state]), -1)

    def _step(self, current: int, word: str) -> _Step | None:
        automaton = self._automaton
        following: list[int] = []
        back: list[tuple[int, int]] = []
        seen: set[int] = set()
        for position, state in enumerate(self._lists[current]):
            for arc in automaton.arcs_by_word[state].get(word, ()):
                target = automaton.arc_target[arc]
                if target not in seen:
                    seen.add(target)
                    following.append(target)
                    back.append((position, arc))
        step: _Step | None = None
        if following:
            key = tuple(following)
            with self._lock:
                state_id = self._ids.get(key)
                if state_id is None:
                    state_id = len(self._lists)
                    self._lists.append(key)
                    self._steps.append({})
                    self._accepting.append(self._first_final(key))
                    self._ids[key] = state_id
            step = (state_id, tuple(back))
        self._steps[current][word] = step
        return step

    def best_path(self, words: Sequence[str]) -> tuple[int, ...] | None:
        """Arc ids of the priority-first path reading ``words``, or None."""
        vocabulary = self._automaton.vocabulary
        if not words or any(word not in vocabulary for word in words):
            return None
        current = 0
        trail = []
        for word in words:
            step = self._steps[current].get(word, _UNSEEN)
            if step is _UNSEEN:
                step = self._step(current, word)
            if step is None:
                return None
            current, back = step
            trail.append(back)
        position = self._accepting[current]
        if position < 0:
            return None
        path = []
        for back in reversed(trail):
            position, arc = back[position]
            path.append(arc)
        path.reverse()
        return tuple(path)


def annotate(automaton: Automaton, path: Sequence[int]) -> Annotation:
    """The annotation a path of ``automaton`` stands for."""
    intent = ""
    slots: dict[str, SlotValueT] = {}
    for arc in path:
        for tag in automaton.arc_tags[arc]:
            if isinstance(tag, IntentTag):
                intent = tag.name
            elif isinstance(tag, SlotTag):
                slots[tag.name] = tag.value
    text = " ".join(automaton.arc_word[arc] for arc in path)
    return Annotation(text=text, intent=intent, slots=slots)


def parse_words(context: Context, words: Sequence[str]) -> Annotation | None:
    """Parse normalized words (as :func:`normalize_text` gives them).

    When the words as given do not parse, number spellings are made canonical ("one hundred
    and five" -> "one hundred five", "a hundred" -> "one hundred") and tried once more; the
    annotation's text is then the canonical spelling.
    """
    automaton = context.automaton
    words = list(words)
    path = automaton.parser.best_path(words)
    if path is None:
        canonical = canonicalize_numbers(words)
        if canonical == words:
            return None
        path = automaton.parser.best_path(canonical)
        if path is None:
            return None
    return annotate(automaton, path)


def parse(context: Context, text: str) -> Annotation | None:
    """The intent and slots of ``text``, or None when the grammar does not cover it.

    The text is normalized with :func:`normalize_text` first, so "Can I get a large,
    12-ounce latte?" reads as "can i get a large twelve ounce latte".
    """
    return parse_words(context, normalize_text(text))
