"""A number heard outside the grammar is not answered as another number."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.grammar import Context, load_context, parse
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
    # A repetition loop is cut to its first round, which is still compared.
    ("Set the temperature to 85 degrees.", "Set the temperature to 95 degrees. " * 8,
     "ninety five"),
])
def test_a_heard_number_the_grammar_does_not_take_is_found(
        home_assistant: Context, transcript: str, heard: str, number: str) -> None:
    assert number_not_in_grammar(home_assistant, transcript, heard) == number


@pytest.mark.parametrize(("transcript", "heard"), [
    # Another number the grammar takes: the constrained search preferred the sentence's.
    ("Set the temperature to 25 degrees.", "Set the temperature to 35 degrees."),
    # The same number, however written.
    ("Set the temperature to 25 degrees.", "set the temperature to twenty-five degrees"),
    # The same digits: an ordinal for a cardinal.
    ("Set the temperature to 25 degrees.", "Set the temperature to 25th degrees."),
    # "-teen" heard as "-ty" (or back): a confusion, the grammar's choice is the guess.
    ("Start an 18 hour egg timer.", "Start in 80 hour egg timer."),
    # "4" heard for "for" stands for no number of the sentence.
    ("Set the temperature to 25 degrees.", "Set the temperature 2 25 degrees."),
    # Nothing heard, a free decode too long to compare, a sentence without numbers.
    ("Set the temperature to 25 degrees.", ""),
    ("Set the temperature to 25 degrees.",
     " ".join(f"word{i}" for i in range(30)) + " set the temperature to 95 degrees"),
    ("Pause the radio.", "Pause 99 radios."),
])
def test_other_differences_are_left_alone(home_assistant: Context, transcript: str,
                                          heard: str) -> None:
    assert number_not_in_grammar(home_assistant, transcript, heard) is None


def test_clock_times_are_compared_in_the_grammars_words() -> None:
    """The decoder writes the alarm "six oh two" as "6.02", which reads back as "six point
    zero two"; the recognizer passes the sentence in the grammar's words, so the free
    decode's "602" (and "150" for "one fifty") is the same time, not another number."""
    timers = load_context(Path(__file__).parents[1] / "benchmarks" / "grammars" / "timers.yaml")
    assert number_not_in_grammar(timers, "set an alarm for thursday at six oh two",
                                 "Set an alarm for Thursday at 602.") is None
    assert number_not_in_grammar(timers, "set an alarm for one fifty",
                                 "Set it along for 150.") is None
    assert number_not_in_grammar(timers, "set an alarm for tuesday at twelve oh four",
                                 "Send in the long for Tuesday at 1204") is None
    assert number_not_in_grammar(timers, "please wake me up at ten forty three",
                                 "Please wake me up at 1043 Please") is None
    # Numbers line up with numbers, not with the words a garbled free decode put first.
    home = load_context(CONTEXTS / "home.yaml")
    assert parse(home, "create an alarm for twelve oh eight please") is not None
    assert number_not_in_grammar(home, "create an alarm for twelve oh eight please",
                                 "Create the Lab in 1208 Please") is None
    assert number_not_in_grammar(timers, "set a timer for ten minutes",
                                 "Set a timer for 100 minutes.") == "one hundred"
    # The whole free decode is another sentence of the grammar: the model's call.
    assert number_not_in_grammar(timers, "set a timer for one hour and thirty minutes",
                                 "Set a timer for 90 minutes.") is None
    # "second" is the unit here, not a number word; a loop is no number heard.
    assert number_not_in_grammar(timers, "start a forty two second countdown",
                                 "Start a 40-2 seconds") is None
    assert number_not_in_grammar(timers, "please set my alarm for seven thirty",
                                 "Please, 7, 7, 7,") is None


@pytest.mark.parametrize(("sentence", "heard"), [
    # "7:00" for "seven (o'clock)": the hour, not seven hundred.
    ("set an alarm for seven", "Set an alarm for 7:00."),
    ("set an alarm for seven o'clock", "Set an alarm for 7:00 a.m."),
    # The heard number with its own noun parses ("two minutes", not "two minute").
    ("set a timer for one minute", "Set a timer for 2 minutes."),
    # Stutters and numbers a comma keeps apart.
    ("set the thermostat to seventy two degrees", "Set the thermostat to 72 72 72 72 degrees"),
    ("set the thermostat to seventy two degrees", "Set the thermostat to 20, 72 degrees"),
    ("set a timer for two minutes", "Set a timer for two, two minutes."),
    # Clock times as Whisper writes them: "1.15", "7:00pm".
    ("set an alarm for one fifteen", "Set an alarm for 1.15."),
    ("set an alarm for seven pm", "Set an alarm for 7:00pm."),
])
def test_what_the_review_found_is_left_alone(sentence: str, heard: str) -> None:
    home = load_context(CONTEXTS / "home.yaml")
    assert parse(home, sentence) is not None
    assert number_not_in_grammar(home, sentence, heard) is None


@pytest.mark.parametrize(("sentence", "heard", "number"), [
    ("set the temperature to sixty degrees", "Set the temperature to one hundred and sixty "
     "degrees.", "one hundred sixty"),
    ("set the temperature to sixty degrees", "Set the temperature to 90,000 degrees.",
     "ninety thousand"),
])
def test_numbers_written_out_or_with_separators_are_read_whole(sentence: str, heard: str,
                                                               number: str) -> None:
    home = load_context(CONTEXTS / "home.yaml")
    assert parse(home, sentence) is not None
    assert number_not_in_grammar(home, sentence, heard) == number


def test_a_fraction_sign_is_read_as_words(home_assistant: Context) -> None:
    sentence = "set a timer for two and a half minutes"
    assert parse(home_assistant, sentence) is not None
    assert number_not_in_grammar(home_assistant, sentence, "Set a timer for 2½ minutes.") \
        is None
