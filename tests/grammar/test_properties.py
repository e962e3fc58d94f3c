"""Property tests on random small grammars, checked against the brute-force oracle.

The grammars are built from a tiny vocabulary on purpose, so that one sentence often has
several derivations (shared words, slot phrases that are prefixes of each other, number
slots next to number words) and the tie-breaking rule is exercised.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from assistant.grammar import (
    Context,
    compile_word_graph,
    context_from_yaml,
    count_sentences,
    enumerate_sentences,
    parse,
    sample_sentences,
)

from .oracle import count_derivations, first_readings
from .test_wordgraph import check_structure, right_languages

HEADER = """
context:
  macros:
    m: ["c", "(a) b"]
  slots:
    s: [a, a b, {value: bee, synonyms: [b]}]
    n: {type: integer, min: 1, max: 3}
  expressions:
"""

leaves = st.one_of(
    st.sampled_from(["a", "b", "c", "one", "two"]).map(lambda w: ("word", w)),
    st.sampled_from(["s", "n"]).map(lambda t: ("slot", t)),
    st.just(("macro", "m")),
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda xs: ("seq", xs)),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: ("choice", xs)),
        st.lists(children, min_size=1, max_size=2).map(lambda xs: ("optional", xs)),
    ),
    max_leaves=5,
)


def render(tree: Any, names: itertools.count[int]) -> str:
    kind, value = tree
    if kind == "word":
        return str(value)
    if kind == "slot":
        return f"${value}:x{next(names)}"
    if kind == "macro":
        return f"@{value}"
    parts = [render(child, names) for child in value]
    if kind == "seq":
        return " ".join(parts)
    opener, closer = ("[", "]") if kind == "choice" else ("(", ")")
    return opener + ", ".join(parts) + closer


# An expression is a random tree with one word, slot or macro before or after it, so it
# cannot be said with no words.
expressions = st.tuples(leaves, trees, st.booleans()).map(
    lambda parts: ("seq", [parts[0], parts[1]] if parts[2] else [parts[1], parts[0]])
)
grammars = st.lists(st.lists(expressions, min_size=1, max_size=3), min_size=1, max_size=3).map(
    lambda intents: (
        HEADER
        + "".join(
            f"    intent{i}:\n"
            + "".join(f'      - "{render(tree, itertools.count())}"\n' for tree in expressions)
            for i, expressions in enumerate(intents)
        )
    )
)


def load(text: str) -> Context:
    context = context_from_yaml(text)
    total = sum(
        count_derivations(context, e.tree) for intent in context.intents for e in intent.expressions
    )
    assume(total <= 2000)
    return context


@settings(max_examples=60, deadline=None)
@given(grammars)
def test_random_grammar_matches_oracle(text: str) -> None:
    context = load(text)
    readings = first_readings(context)
    assert count_sentences(context) == len(readings)
    assert list(enumerate_sentences(context)) == list(readings.values())
    for sentence, reading in readings.items():
        assert parse(context, sentence) == reading
    graph = compile_word_graph(context)
    check_structure(graph)
    assert set(graph.sentences()) == {tuple(s.split()) for s in readings}
    languages = right_languages(graph)
    assert len(set(languages)) == len(languages)


@settings(max_examples=30, deadline=None)
@given(grammars, st.integers(0, 1000))
def test_random_grammar_samples_parse_back(text: str, seed: int) -> None:
    context = load(text)
    readings = first_readings(context)
    for annotation in sample_sentences(context, 20, seed=seed):
        assert readings[annotation.text] == annotation
        assert parse(context, annotation.text) == annotation
