"""Negatives: the grammar never accepts them; the older public names still work."""

from __future__ import annotations

import pytest

from assistant.errors import ConfigError
from assistant.grammar import load_context, parse
from training.negatives import (
    OUT_OF_DOMAIN,
    SHORT_UTTERANCES,
    near_misses,
    non_speech,
    out_of_domain_for,
    templated_out_of_domain,
)
from training.noises import NoiseBankConfig

from .conftest import HOME


def test_out_of_domain_for_a_grammar_never_parses() -> None:
    context = load_context(HOME)
    sentences = out_of_domain_for(context, 150, seed=1)
    assert len(sentences) == 150 == len(set(sentences))
    assert all(parse(context, s) is None for s in sentences)
    assert set(OUT_OF_DOMAIN) & set(sentences) and set(SHORT_UTTERANCES) & set(sentences)
    assert out_of_domain_for(context, 150, seed=1) == sentences


def test_templated_sentences_are_distinct_and_seeded() -> None:
    a = templated_out_of_domain(60, seed=4)
    assert len(a) == len(set(a)) == 60
    assert a == templated_out_of_domain(60, seed=4) != templated_out_of_domain(60, seed=5)
    assert not any("{" in s for s in a)


def test_existing_helpers_keep_working() -> None:
    context = load_context(HOME)
    misses = near_misses(context, 10, seed=0)
    assert len(misses) == 10 and all(parse(context, s) is None for s in misses)
    assert len(non_speech(3, seed=0)) == 3


def test_the_benchmarks_held_out_noise_cannot_be_used() -> None:
    for folder in ("/usr/share/asterisk/sounds", "/usr/share/asterisk/sounds/fr_CA_f_June",
                   "/usr/share/asterisk"):
        with pytest.raises(ConfigError, match="held-out"):
            NoiseBankConfig(music_dir=folder)


DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def test_one_word_grammars_get_near_misses() -> None:
    """A grammar of one-word sentences (spoken digits) had no near misses at all: every
    edit of a one-word sentence was skipped. Now the word is swapped or gets a neighbour."""
    from assistant.grammar import context_from_yaml

    digits = context_from_yaml(
        "context:\n  expressions:\n    digit: ['$digit:digit']\n  slots:\n    digit: ["
        + ", ".join(DIGITS) + "]\n")
    misses = near_misses(digits, 40, seed=2)
    assert len(misses) == 40 == len(set(misses))
    assert all(parse(digits, s) is None for s in misses)
    alone = [s for s in misses if len(s.split()) == 1]
    beside = [s.split() for s in misses if len(s.split()) == 2]
    assert alone and beside and len(alone) + len(beside) == 40
    assert all(sum(w in DIGITS for w in pair) == 1 for pair in beside)
    assert near_misses(digits, 40, seed=2) == misses
