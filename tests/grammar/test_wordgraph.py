from __future__ import annotations

import json

import pytest

from assistant.grammar import (
    Context,
    WordGraph,
    compile_word_graph,
    context_from_yaml,
    count_sentences,
    sample_sentences,
)

from .oracle import first_readings
from .small_grammars import SMALL


def right_languages(graph: WordGraph) -> list[frozenset[tuple[str, ...]]]:
    languages: dict[int, frozenset[tuple[str, ...]]] = {}

    def language(node: int) -> frozenset[tuple[str, ...]]:
        if node not in languages:
            words: set[tuple[str, ...]] = {()} if node in graph.finals else set()
            for word, target in graph.arcs[node]:
                words |= {(word, *rest) for rest in language(target)}
            languages[node] = frozenset(words)
        return languages[node]

    return [language(node) for node in range(graph.num_nodes)]


def check_structure(graph: WordGraph) -> None:
    assert graph.start == 0
    for node_arcs in graph.arcs:
        words = [word for word, _ in node_arcs]
        assert words == sorted(words)
        assert len(set(words)) == len(words)  # deterministic
        for word, target in node_arcs:
            assert 0 <= target < graph.num_nodes
            assert word and word == word.lower() and " " not in word
    # Breadth-first numbering: every node but the start is first reached from a lower one.
    first_seen = {graph.start: -1}
    for node in range(graph.num_nodes):
        for _, target in graph.arcs[node]:
            first_seen.setdefault(target, node)
            assert target != node
    assert sorted(first_seen) == list(range(graph.num_nodes))
    assert all(first_seen[n] < n for n in range(1, graph.num_nodes))


@pytest.fixture(params=list(SMALL))
def small(request: pytest.FixtureRequest) -> Context:
    return context_from_yaml(SMALL[request.param])


def test_accepts_exactly_the_sentences(small: Context) -> None:
    graph = compile_word_graph(small)
    check_structure(graph)
    expected = {tuple(text.split()) for text in first_readings(small)}
    assert set(graph.sentences()) == expected
    assert graph.count_paths() == len(expected) == count_sentences(small)
    vocabulary = graph.vocabulary
    for sentence in expected:
        assert graph.accepts(sentence)
        near_misses = [sentence[:i] + sentence[i + 1 :] for i in range(len(sentence))]
        near_misses += [
            (*sentence[:i], word, *sentence[i:])
            for i in range(len(sentence) + 1)
            for word in vocabulary
        ]
        near_misses += [
            (*sentence[:i], word, *sentence[i + 1 :])
            for i in range(len(sentence))
            for word in (*vocabulary, "zzz")
        ]
        for miss in near_misses:
            assert graph.accepts(miss) == (miss in expected), miss


def test_is_minimal(small: Context) -> None:
    graph = compile_word_graph(small)
    languages = right_languages(graph)
    assert len(set(languages)) == len(languages)  # no two nodes could merge
    assert all(languages)  # every node leads to an end


def test_barista_word_graph(barista: Context) -> None:
    graph = compile_word_graph(barista)
    check_structure(graph)
    # The minimal DFA of a language is unique: these sizes change only with the grammar.
    assert (graph.num_nodes, graph.num_arcs) == (56, 251)
    assert graph.count_paths() == 120_130_920
    for annotation in sample_sentences(barista, 200, seed=1):
        words = annotation.text.split()
        assert graph.accepts(words)
        assert not graph.accepts(words[:-1])
        assert not graph.accepts([*words, "please"])
    assert compile_word_graph(barista) is graph  # cached


def test_home_word_graph(home: Context) -> None:
    graph = compile_word_graph(home)
    check_structure(graph)
    for annotation in sample_sentences(home, 300, seed=2):
        assert graph.accepts(annotation.text.split())
    assert graph.accepts(["set", "the", "volume", "to", "fifty", "percent"])
    assert not graph.accepts(["set", "the", "volume", "to"])


def test_json_round_trip(home: Context) -> None:
    graph = compile_word_graph(home)
    data = json.loads(json.dumps(graph.to_json()))
    assert WordGraph.from_json(data) == graph
