from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import GrammarError
from assistant.grammar import (
    BUILTIN_SLOT_TYPES,
    Context,
    IntegerSlotType,
    ListSlotType,
    SlotValueT,
    context_from_yaml,
    load_context,
)

BARISTA_SLOTS = {
    "size": 7,
    "roast": 3,
    "numberOfShots": 3,
    "coffeeDrink": 10,
    "milkAmount": 36,
    "sugarAmount": 18,
}


def test_barista_loads_unchanged(barista: Context, barista_path: Path) -> None:
    assert barista.intent_names == ("orderDrink",)
    intent = barista.intent("orderDrink")
    assert len(intent.expressions) == 80
    assert set(intent.slot_names) == set(BARISTA_SLOTS)
    assert {t.name: len(t.canonical_values) for t in barista.slot_types} == BARISTA_SLOTS
    size = barista.slot_type("size")
    assert isinstance(size, ListSlotType)
    assert size.canonical_values[3] == "eight ounce"
    assert size.values[3].line is not None
    first = intent.expressions[0]
    assert first.source.startswith("[brew, can I get,")
    assert first.line == 4
    assert barista.source == str(barista_path)


def test_barista_labels_use_the_canonical_values(barista: Context, barista_path: Path) -> None:
    import json

    labels = barista_path.parent / "labels.jsonl"
    if not labels.is_file():
        pytest.skip("barista labels not present")
    for line in labels.read_text().splitlines():
        label = json.loads(line)
        assert label["intent"] in barista.intent_names
        for slot, value in label["slots"].items():
            assert value in barista.slot_type(slot).canonical_values


def test_home_context_loads(home: Context) -> None:
    assert "lightsOn" in home.intent_names
    assert len(home.intent_names) >= 10
    room = home.slot_type("room")
    assert isinstance(room, ListSlotType)
    living = next(v for v in room.values if v.value == "living room")
    assert living.phrases == ("living room", "lounge", "family room")
    temperature = home.slot_type("temperature")
    assert isinstance(temperature, IntegerSlotType)


def test_load_from_string_path_and_pathlike(tmp_path: Path) -> None:
    text = "context:\n  expressions:\n    hello:\n      - hello there\n"
    path = tmp_path / "hello.yaml"
    path.write_text(text)
    from_text = load_context(text)
    from_str_path = load_context(str(path))
    from_path = load_context(path)
    assert from_text == from_str_path == from_path
    assert from_text.source == "<string>"
    assert from_path.source == str(path)
    assert context_from_yaml(text, source="mine").source == "mine"


def test_missing_file_is_a_grammar_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(GrammarError, match="context file not found") as info:
        load_context(missing)
    assert info.value.source == str(missing)


def test_sha256_ignores_formatting_but_not_content() -> None:
    a = context_from_yaml(
        'context:\n  expressions:\n    order:\n      - "[a, an] $drink:drink"\n'
        "  slots:\n    drink: [latte, mocha]\n"
    )
    b = context_from_yaml(
        "# a comment\ncontext:\n  slots:\n    drink:\n      - latte\n      - mocha\n"
        "  expressions:\n    order: ['[a,   an]   $drink:drink']\n"
    )
    c = context_from_yaml(
        'context:\n  expressions:\n    order:\n      - "[a, an] $drink:drink"\n'
        "  slots:\n    drink: [latte, mocha, tea]\n"
    )
    assert len(a.sha256) == 64
    assert a.sha256 == b.sha256
    assert a.sha256 != c.sha256


def test_sha256_is_stable(barista: Context) -> None:
    # Model directories record this; it must not change between releases by accident.
    assert barista.sha256 == "a767ebbf6efec330703c8ab90bb749132bb87594ab3901acd6727c59538a0123"


def test_yaml_booleans_and_numbers_are_words() -> None:
    context = context_from_yaml(
        "context:\n  expressions:\n    answer:\n      - $answer:answer\n"
        "  slots:\n    answer: [yes, no, on, off, 42]\n"
    )
    assert context.slot_type("answer").canonical_values == ("yes", "no", "on", "off", "42")
    slot_type = context.slot_type("answer")
    assert isinstance(slot_type, ListSlotType)
    assert slot_type.values[4].phrases == ("forty two",)


def test_synonyms_and_spoken() -> None:
    context = context_from_yaml(
        """
context:
  expressions:
    order: ["$drink:drink"]
  slots:
    drink:
      - mocha
      - {value: latte, synonyms: [caffe latte, cafe latte]}
      - {value: light.kitchen, spoken: [kitchen light]}
"""
    )
    drink = context.slot_type("drink")
    assert isinstance(drink, ListSlotType)
    assert [(v.value, v.phrases) for v in drink.values] == [
        ("mocha", ("mocha",)),
        ("latte", ("latte", "caffe latte", "cafe latte")),
        ("light.kitchen", ("kitchen light",)),
    ]


def test_integer_types_and_builtins() -> None:
    context = context_from_yaml(
        """
context:
  expressions:
    heat: ["set it to $temperature:degrees", "the $floor:floor floor", "$pv.Percent:level"]
  slots:
    temperature: {type: integer, min: 50, max: 90}
    floor: {type: ordinal, min: 1, max: 3}
"""
    )
    temperature = context.slot_type("temperature")
    assert temperature == IntegerSlotType("temperature", 50, 90)
    assert temperature.canonical_values[0] == 50
    floor = context.slot_type("floor")
    assert isinstance(floor, IntegerSlotType)
    assert list(floor.spoken_forms()) == [(1, ("first",)), (2, ("second",)), (3, ("third",))]
    assert context.slot_type("pv.Percent") is BUILTIN_SLOT_TYPES["pv.Percent"]
    assert context.intent("heat").slot_names == ("degrees", "floor", "level")


def test_builtin_slot_types() -> None:
    def forms(name: str) -> dict[SlotValueT, tuple[str, ...]]:
        return dict(BUILTIN_SLOT_TYPES[name].spoken_forms())

    assert forms("pv.SingleDigitInteger") == {
        n: (w,)
        for n, w in enumerate(
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        )
    }
    assert forms("pv.TwoDigitInteger")[99] == ("ninety", "nine")
    assert len(forms("pv.TwoDigitInteger")) == 100
    assert forms("pv.Percent")[100] == ("one", "hundred", "percent")
    assert forms("pv.Percent")[0] == ("zero", "percent")
    assert forms("pv.SingleDigitOrdinal") == {
        1: ("first",),
        2: ("second",),
        3: ("third",),
        4: ("fourth",),
        5: ("fifth",),
        6: ("sixth",),
        7: ("seventh",),
        8: ("eighth",),
        9: ("ninth",),
    }
    assert forms("pv.TwoDigitOrdinal")[99] == ("ninety", "ninth")
    assert next(iter(forms("pv.TwoDigitOrdinal"))) == 1


def test_macros_with_slots() -> None:
    context = context_from_yaml(
        """
context:
  macros:
    polite: ["please", "could you"]
    time: ["$pv.SingleDigitInteger:hour o'clock"]
  expressions:
    alarm: ["(@polite) wake me at @time"]
"""
    )
    assert [m.name for m in context.macros] == ["polite", "time"]
    assert context.intent("alarm").slot_names == ("hour",)


def test_pickle_drops_compiled_caches(home: Context) -> None:
    import pickle

    from assistant.grammar import parse

    assert parse(home, "what time is it") is not None  # compiles and fills the caches
    copy = pickle.loads(pickle.dumps(home))
    assert copy == home
    assert "automaton" not in copy.__dict__
    assert parse(copy, "what time is it") == parse(home, "what time is it")
