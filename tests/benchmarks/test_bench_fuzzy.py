"""Nearest grammar sentence by word edits on the word graph, checked against brute force."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.grammar import compile_word_graph, context_from_yaml
from benchmarks.fuzzy_match import nearest_sentence

GRAMMAR = context_from_yaml("""
context:
  expressions:
    order:
      - "[can i get, i want] (a) $size:size $drink:drink (please)"
  slots:
    size: [small, large, twelve ounce]
    drink: [latte, iced mocha, coffee]
""")
GRAPH = compile_word_graph(GRAMMAR)
SENTENCES = list(GRAPH.sentences())
WORDS = sorted({w for s in SENTENCES for w in s} | {"oat", "milk", "the"})


def _edits(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def test_a_sentence_of_the_grammar_is_its_own_nearest() -> None:
    for sentence in SENTENCES[:20]:
        nearest = nearest_sentence(GRAPH, sentence)
        assert nearest is not None and nearest.distance == 0 and nearest.words == sentence


def test_slips_are_repaired() -> None:
    said = ["can", "i", "get", "a", "large", "latte", "with", "oat", "milk"]
    nearest = nearest_sentence(GRAPH, said)
    assert nearest is not None
    assert nearest.words == ("can", "i", "get", "a", "large", "latte")
    assert nearest.distance == 3
    assert nearest_sentence(GRAPH, []) is not None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=0, max_size=9))
def test_distance_equals_brute_force(words: list[str]) -> None:
    nearest = nearest_sentence(GRAPH, words)
    assert nearest is not None
    best = min(_edits(tuple(words), s) for s in SENTENCES)
    assert nearest.distance == best
    assert GRAPH.accepts(nearest.words)
    assert _edits(tuple(words), nearest.words) == best
