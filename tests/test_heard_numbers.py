"""A number heard outside the grammar is not answered as another number."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.grammar import Context, load_context
from assistant.heard_numbers import number_not_in_grammar

CONTEXTS = Path(__file__).parents[1] / "assistant" / "contexts"


@pytest.fixture(scope="module")
def home_assistant() -> Context:
    return load_context(CONTEXTS / "home_assistant.yaml")  # temperature 10..90, percent 0..100


@pytest.mark.parametrize(("transcript", "heard", "number"), [
    ("Set the temperature to 85 degrees.", "Set the temperature to 95 degrees.", "ninety five"),
    # The heard sentence differs elsewhere too; "150%" is read as the grammar reads it.
    ("Set the bedroom lights to 15%", "Set the memory lights to 150%.", "one hundred fifty"),
    # Written in words by the decoder, in digits by the free decode; a number word inserted.
    ("Set the fan speed to one hundred percent.", "Set the fan speed to 110%.",
     "one hundred ten"),
])
def test_a_heard_number_the_grammar_does_not_take_is_found(
        home_assistant: Context, transcript: str, heard: str, number: str) -> None:
    assert number_not_in_grammar(home_assistant, transcript, heard) == number


@pytest.mark.parametrize(("transcript", "heard"), [
    # Another number the grammar takes: the constrained search preferred the sentence's.
    ("Set the temperature to 25 degrees.", "Set the temperature to 35 degrees."),
    # The same number, however written.
    ("Set the temperature to 25 degrees.", "set the temperature to twenty-five degrees"),
    # The same digits: an ordinal for a cardinal, a clock time's two numbers run together.
    ("Set the temperature to 25 degrees.", "Set the temperature to 25th degrees."),
    ("Set a timer for 10 minutes and 43 seconds.", "Set a timer for 1043 minutes and seconds."),
    # "4" heard for "for" stands for no number of the sentence.
    ("Set the temperature to 25 degrees.", "Set the temperature 2 25 degrees."),
    # Nothing heard, a repetition loop, a sentence without numbers.
    ("Set the temperature to 25 degrees.", ""),
    ("Set the temperature to 25 degrees.", "Set the temperature to 95 degrees. " * 8),
    ("Pause the radio.", "Pause 99 radios."),
])
def test_other_differences_are_left_alone(home_assistant: Context, transcript: str,
                                          heard: str) -> None:
    assert number_not_in_grammar(home_assistant, transcript, heard) is None
