"""The calibration grammars of ``training/grammars/`` and their near-domain sentences.

Every calibration grammar loads; the grammars added for size and style variety have the sizes
they are meant to have (from a couple of dozen to over a million sentences); and every
near-domain list (``training/grammars/near/<stem>.txt``) belongs to a calibration grammar,
stays outside it, and shares no sentence with the evaluation's near-domain lists
(``benchmarks/grammars/near_*.txt``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from assistant.grammar import Context, count_sentences, load_context, parse
from tests.conftest import HOME_CONTEXT, REPO

GRAMMARS = REPO / "training" / "grammars"
NEAR = GRAMMARS / "near"
BENCHMARK_GRAMMARS = REPO / "benchmarks" / "grammars"

GRAMMAR_FILES = sorted(GRAMMARS.glob("*.yaml"))
NEAR_FILES = sorted(NEAR.glob("*.txt"))

# The grammars added for variety and the sentence counts they must stay within (inclusive).
SIZES: dict[str, tuple[int, int]] = {
    "car": (1_000, 20_000),
    "tv": (100, 2_000),
    "banking": (200_000, 2_000_000),
    "restaurant": (20_000, 300_000),
    "tiny_quiz": (10, 30),
}
MIN_NEAR_LINES = 25


@functools.cache
def context(path: Path) -> Context:
    return load_context(path)


def grammar_for(near_file: Path) -> Path:
    """The grammar a near-domain list belongs to: ``home`` is the shipped home context."""
    if near_file.stem == "home":
        return HOME_CONTEXT
    return GRAMMARS / f"{near_file.stem}.yaml"


def normalized(line: str) -> str:
    """Lowercase, punctuation removed, spaces collapsed."""
    return " ".join(re.sub(r"[^\w\s]|_", "", line.lower()).split())


def lines_of(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@functools.cache
def benchmark_near_lines() -> frozenset[str]:
    files = sorted(BENCHMARK_GRAMMARS.glob("near_*.txt"))
    assert files, f"no near-domain lists in {BENCHMARK_GRAMMARS}"
    return frozenset(normalized(line) for f in files for line in lines_of(f))


def test_there_are_grammars_and_near_lists() -> None:
    assert GRAMMAR_FILES
    assert NEAR_FILES


@pytest.mark.parametrize("path", GRAMMAR_FILES, ids=lambda p: p.stem)
def test_grammar_loads(path: Path) -> None:
    loaded = context(path)
    assert loaded.intents
    assert count_sentences(loaded) > 0


@pytest.mark.parametrize(("stem", "bounds"), sorted(SIZES.items()))
def test_grammar_size(stem: str, bounds: tuple[int, int]) -> None:
    path = GRAMMARS / f"{stem}.yaml"
    assert path.is_file(), f"{path} is missing"
    low, high = bounds
    assert low <= count_sentences(context(path)) <= high


@pytest.mark.parametrize("near_file", NEAR_FILES, ids=lambda p: p.stem)
def test_near_list_has_enough_unique_lines(near_file: Path) -> None:
    assert len(set(lines_of(near_file))) >= MIN_NEAR_LINES


@pytest.mark.parametrize("near_file", NEAR_FILES, ids=lambda p: p.stem)
def test_near_list_belongs_to_a_grammar(near_file: Path) -> None:
    assert grammar_for(near_file).is_file(), f"{near_file.name} has no grammar"


@pytest.mark.parametrize("near_file", NEAR_FILES, ids=lambda p: p.stem)
def test_near_lines_are_outside_their_grammar(near_file: Path) -> None:
    grammar = context(grammar_for(near_file))
    parsed = {line: annotation.intent for line in lines_of(near_file)
              if (annotation := parse(grammar, line)) is not None}
    assert parsed == {}


@pytest.mark.parametrize("near_file", NEAR_FILES, ids=lambda p: p.stem)
def test_near_lines_are_not_evaluation_lines(near_file: Path) -> None:
    shared = [line for line in lines_of(near_file) if normalized(line) in benchmark_near_lines()]
    assert shared == []
