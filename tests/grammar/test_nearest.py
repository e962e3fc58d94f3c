"""Nearest grammar sentences to a heard word sequence (assistant.grammar.nearest).

The graph search is checked against a plain per-sentence dynamic programme over the same
heard lattice, on every sentence of small grammars."""

from __future__ import annotations

import math

import pytest
from rapidfuzz.distance import Levenshtein

from assistant.grammar import WordGraph, compile_word_graph, context_from_yaml
from assistant.grammar.nearest import (
    DELETE_COST,
    INSERT_COST,
    HeardLattice,
    NearestSentences,
    without_loops,
)

from .small_grammars import SMALL

HOME = """
context:
  expressions:
    volume:
      - "(please) [mute, unmute] the [volume, sound, radio]"
      - "turn the volume [up, down]"
    lights:
      - "(please) turn [on, off] the $room:room [light, lights]"
    door:
      - "[shut, open, lock, unlock] (the) $door:door door (please)"
    pause:
      - "pause"
      - "resume"
  slots:
    room: [kitchen, hall, dining room, garage]
    door: [garage, back, front]
"""


def reference_cost(sentence: tuple[str, ...], heard: list[str]) -> float:
    """The edit cost of one sentence against the heard lattice, by a plain DP over
    (sentence words used, lattice place)."""
    lattice = HeardLattice(heard)
    n = lattice.n
    cost = [[math.inf] * lattice.places for _ in range(len(sentence) + 1)]
    cost[0][0] = 0.0
    for j in range(len(sentence) + 1):
        for place in range(n + 1):  # skip heard words at boundaries
            if place:
                cost[j][place] = min(cost[j][place], cost[j][place - 1] + INSERT_COST)
        if j == len(sentence):
            break
        word = sentence[j]
        for place in range(lattice.places):
            here = cost[j][place]
            if math.isinf(here):
                continue
            if place <= n:
                cost[j + 1][place] = min(cost[j + 1][place], here + DELETE_COST)
            for piece in lattice.pieces:
                if piece.source == place:
                    step = piece.weight * Levenshtein.normalized_distance(word, piece.text)
                    cost[j + 1][piece.target] = min(cost[j + 1][piece.target], here + step)
    return cost[len(sentence)][n]


def graph_of(yaml: str) -> WordGraph:
    return compile_word_graph(context_from_yaml(yaml))


@pytest.mark.parametrize("heard", [
    "pern on the kitchen lights", "and use the volume", "check rashdoor please", "pause",
    "", "please please turn the volume up up", "lock the front dore", "the garagedoor",
])
def test_every_sentence_comes_at_its_reference_cost_in_order(heard: str) -> None:
    graph = graph_of(HOME)
    words = heard.split()
    everything = list(graph.sentences())
    found = NearestSentences(graph).nearest(words, len(everything))
    assert sorted(n.words for n in found) == sorted(everything)  # each sentence, once
    costs = [n.cost for n in found]
    assert costs == sorted(costs)
    for near in found:
        assert near.cost == pytest.approx(reference_cost(near.words, words), abs=1e-3)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_grammars_agree_with_the_reference(name: str) -> None:
    graph = graph_of(SMALL[name])
    everything = list(graph.sentences())
    heard = [*everything[len(everything) // 2], "extra"]
    found = NearestSentences(graph).nearest(heard, 5)
    expected = sorted(reference_cost(s, heard) for s in everything)[:5]
    assert [n.cost for n in found] == pytest.approx(expected, abs=1e-3)


def test_a_misheard_first_word_costs_its_character_distance() -> None:
    found = NearestSentences(graph_of(HOME)).nearest(["pern", "on", "the", "kitchen",
                                                        "lights"], 3)
    assert found[0].words == ("turn", "on", "the", "kitchen", "lights")
    assert found[0].cost == pytest.approx(0.5)  # "pern" -> "turn": 2 of 4 letters


def test_two_heard_words_may_stand_for_one_grammar_word() -> None:
    found = NearestSentences(graph_of(HOME)).nearest(["and", "use", "the", "volume"], 1)
    assert found[0].words == ("unmute", "the", "volume")
    assert found[0].cost == pytest.approx(2 * 0.5)  # "anduse" -> "unmute", counted twice


def test_one_heard_word_may_stand_for_two_grammar_words() -> None:
    found = NearestSentences(graph_of(HOME)).nearest(["shut", "garagedoor", "please"], 1)
    assert found[0].words == ("shut", "garage", "door", "please")
    assert found[0].cost == pytest.approx(0.0)


def test_the_exact_sentence_comes_first_at_no_cost() -> None:
    found = NearestSentences(graph_of(HOME)).nearest(["please", "unmute", "the", "radio"], 2)
    assert found[0].words == ("please", "unmute", "the", "radio")
    assert found[0].cost == 0.0
    assert found[1].cost > 0.0


def test_a_repetition_loop_of_the_free_decode_counts_once() -> None:
    looped = ["and", "use", "the", "volume", "and", "use", "the", "volume", "and", "use", "the"]
    plain = NearestSentences(graph_of(HOME)).nearest(looped, 1)
    assert plain[0].words == ("unmute", "the", "volume")
    assert plain[0].cost == pytest.approx(1.0)


@pytest.mark.parametrize(("words", "kept"), [
    ("a b c a b c a b", "a b c"),
    ("pause pause pause", "pause"),
    ("turn on the the light", "turn on the the light"),  # a stutter is not a loop
    ("very very good", "very very good"),
    ("", ""),
])
def test_without_loops(words: str, kept: str) -> None:
    assert without_loops(words.split()) == kept.split()


def test_nothing_asked_nothing_found() -> None:
    search = NearestSentences(graph_of(HOME))
    assert search.nearest(["pause"], 0) == []
    # Nothing heard: the shortest sentences, each word at the cost of one not heard.
    found = search.nearest([], 2)
    assert {n.words for n in found} == {("pause",), ("resume",)}
    assert all(n.cost == DELETE_COST for n in found)


def test_the_trie_of_a_few_sentences_accepts_exactly_them() -> None:
    sentences = [("turn", "on"), ("turn", "on", "the", "light"), ("pause",)]
    graph = WordGraph.of_sentences(sentences)
    assert sorted(graph.sentences()) == sorted(sentences)
    assert not graph.accepts(("turn",))
    assert graph.accepts(("turn", "on"))
