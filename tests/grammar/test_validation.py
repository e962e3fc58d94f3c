"""Every invalid context is rejected with the file, the 1-based line and what is wrong."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from assistant.errors import GrammarError
from assistant.grammar import context_from_yaml, load_context

# Each case: YAML text, expected line, fragments of the message.
CASES = {
    "undefined slot type": (
        """
        context:
          expressions:
            order:
              - "a $size:size coffee"
              - "a $colour:colour coffee"
          slots:
            size: [small, large]
        """,
        5,
        [
            "undefined slot type 'colour'",
            "'$colour:colour' at column 3",
            "defined slot types: size",
        ],
    ),
    "undefined macro": (
        """
        context:
          expressions:
            order:
              - "(@polite) coffee"
        """,
        4,
        ["undefined macro '@polite' at column 2"],
    ),
    "unclosed bracket": (
        """
        context:
          expressions:
            order:
              - "coffee"
              - "[a, an coffee"
        """,
        5,
        ["unbalanced '[' at column 1", "no closing ']'", '"[a, an coffee"'],
    ),
    "stray closing parenthesis": (
        """
        context:
          expressions:
            order:
              - "a coffee) please"
        """,
        4,
        ["unbalanced ')' at column 9", "nothing to close"],
    ),
    "mismatched brackets": (
        """
        context:
          expressions:
            order:
              - "(a, an] coffee"
        """,
        4,
        ["unbalanced '(' at column 1", "closed by ']' at column 7"],
    ),
    "empty alternative": (
        """
        context:
          expressions:
            order:
              - "[a, , an] coffee"
        """,
        4,
        ["empty alternative 2 in the choice '[' at column 1"],
    ),
    "empty optional": (
        """
        context:
          expressions:
            order:
              - "coffee ()"
        """,
        4,
        ["empty optional '()' at column 8"],
    ),
    "trailing comma": (
        """
        context:
          expressions:
            order:
              - "coffee (please, )"
        """,
        4,
        ["empty alternative 2 in the optional '(' at column 8"],
    ),
    "empty expression": (
        """
        context:
          expressions:
            order:
              - "coffee"
              - "  "
        """,
        5,
        ["intent 'order'", "is empty"],
    ),
    "null expression": (
        """
        context:
          expressions:
            order:
              - coffee
              -
        """,
        5,
        ["is empty"],
    ),
    "expression with only optional parts": (
        """
        context:
          expressions:
            order:
              - "(please) (now)"
        """,
        4,
        ["can be said with no words"],
    ),
    "intent with no expressions": (
        """
        context:
          expressions:
            order: []
        """,
        3,
        ["intent 'order' has no expressions"],
    ),
    "intent with null expressions": (
        """
        context:
          expressions:
            order:
            cancel: [stop]
        """,
        3,
        ["intent 'order' has no expressions"],
    ),
    "no intents": (
        """
        context:
          expressions: {}
        """,
        2,
        ["'expressions' has no intents"],
    ),
    "slot type with no values": (
        """
        context:
          expressions:
            order: ["$size:size"]
          slots:
            size: []
        """,
        5,
        ["slot type 'size' has no values"],
    ),
    "slot type with null values": (
        """
        context:
          expressions:
            order: ["$size:size"]
          slots:
            size:
        """,
        5,
        ["slot type 'size' has no values"],
    ),
    "slot reference without name": (
        """
        context:
          expressions:
            order:
              - "a $size coffee"
          slots:
            size: [small]
        """,
        4,
        ["slot reference '$size' at column 3 has no slot name", "write '$size:name'"],
    ),
    "slot reference without type": (
        """
        context:
          expressions:
            order:
              - "a $:size coffee"
        """,
        4,
        ["slot reference '$:size' at column 3 has no slot type"],
    ),
    "bad slot name": (
        """
        context:
          expressions:
            order:
              - "a $size:9lives coffee"
          slots:
            size: [small]
        """,
        4,
        ["'9lives' is not a slot name"],
    ),
    "duplicate slot name": (
        """
        context:
          expressions:
            order:
              - "$size:size $size:size coffee"
          slots:
            size: [small, large]
        """,
        4,
        ["slot name 'size' is filled twice in one expression"],
    ),
    "duplicate slot name through a macro": (
        """
        context:
          macros:
            sized: ["$size:size"]
          expressions:
            order:
              - "$size:size @sized coffee"
          slots:
            size: [small, large]
        """,
        6,
        ["slot name 'size' is filled twice"],
    ),
    "unknown top-level key": (
        """
        context:
          expressions:
            order: [coffee]
        version: 2
        """,
        4,
        ["unknown key 'version' in the top level", "expected 'context'"],
    ),
    "unknown context key with a suggestion": (
        """
        context:
          expressions:
            order: [coffee]
          slot:
            size: [small]
        """,
        4,
        ["unknown key 'slot' in 'context'", "did you mean 'slots'?"],
    ),
    "missing context": (
        """
        expressions:
          order: [coffee]
        """,
        1,
        ["unknown key 'expressions' in the top level"],
    ),
    "missing expressions": (
        """
        context:
          slots:
            size: [small]
        """,
        2,
        ["'context' has no 'expressions' section"],
    ),
    "empty document": ("", 1, ["empty context"]),
    "expression is a list": (
        """
        context:
          expressions:
            order:
              - coffee
              - [a, an] coffee
        """,
        5,
        ["invalid YAML"],
    ),
    "expression is a flow list": (
        """
        context:
          expressions:
            order:
              - coffee
              - [a, an]
        """,
        5,
        ["must be a string, got a list", "quote the whole string"],
    ),
    "expression is a mapping": (
        """
        context:
          expressions:
            order:
              - coffee
              - {a: b}
        """,
        5,
        ["expression must be a string, got a mapping"],
    ),
    "expressions not a list": (
        """
        context:
          expressions:
            order: coffee
        """,
        3,
        ["intent 'order' must be a list of expressions, got a scalar"],
    ),
    "slot value is a list": (
        """
        context:
          expressions:
            order: ["$size:size"]
          slots:
            size:
              - small
              - [big, large]
        """,
        7,
        ["slot type 'size': a value must be a string or a mapping", "got a list"],
    ),
    "synonyms not strings": (
        """
        context:
          expressions:
            order: ["$size:size"]
          slots:
            size:
              - value: large
                synonyms:
                  - big
                  - {huge: 1}
        """,
        9,
        ["must be a string, got a mapping"],
    ),
    "unknown key in a value": (
        """
        context:
          expressions:
            order: ["$size:size"]
          slots:
            size:
              - {value: large, synonym: [big]}
        """,
        6,
        ["unknown key 'synonym'", "did you mean 'synonyms'?"],
    ),
    "value mapping without value": (
        """
        context:
          expressions:
            order: ["$size:size"]
          slots:
            size:
              - {synonyms: [big]}
        """,
        6,
        ["a value mapping needs 'value'"],
    ),
    "synonyms and spoken together": (
        """
        context:
          expressions:
            order: ["$size:size"]
          slots:
            size:
              - {value: large, synonyms: [big], spoken: [huge]}
        """,
        6,
        ["has both 'synonyms' and 'spoken'"],
    ),
    "same phrase for two values": (
        """
        context:
          expressions:
            order: ["$room:room"]
          slots:
            room:
              - {value: living room, synonyms: [lounge]}
              - kitchen
              - lounge
        """,
        8,
        ["'lounge' is spoken for both 'living room' (line 6) and 'lounge'"],
    ),
    "duplicate value": (
        """
        context:
          expressions:
            order: ["$size:size"]
          slots:
            size: [small, large, small]
        """,
        5,
        ["value 'small' is listed twice"],
    ),
    "integer range min above max": (
        """
        context:
          expressions:
            heat: ["$temperature:t degrees"]
          slots:
            temperature:
              type: integer
              min: 90
              max: 50
        """,
        7,
        ["slot type 'temperature': min 90 is greater than max 50"],
    ),
    "integer range missing max": (
        """
        context:
          expressions:
            heat: ["$temperature:t degrees"]
          slots:
            temperature: {type: integer, min: 50}
        """,
        5,
        ["integer range needs max"],
    ),
    "integer range not a number": (
        """
        context:
          expressions:
            heat: ["$temperature:t degrees"]
          slots:
            temperature: {type: integer, min: fifty, max: 90}
        """,
        5,
        ["'min' must be a decimal integer, got 'fifty'"],
    ),
    "integer range in octal": (
        """
        context:
          expressions:
            heat: ["$temperature:t degrees"]
          slots:
            temperature: {type: integer, min: 010, max: 90}
        """,
        5,
        ["'min' must be a decimal integer, got '010'"],
    ),
    "integer range negative": (
        """
        context:
          expressions:
            heat: ["$temperature:t degrees"]
          slots:
            temperature: {type: integer, min: -5, max: 90}
        """,
        5,
        ["needs 0 <= min <= max"],
    ),
    "integer range too large": (
        """
        context:
          expressions:
            heat: ["$temperature:t degrees"]
          slots:
            temperature: {type: integer, min: 0, max: 1000000}
        """,
        5,
        ["has 1000001 values", "at most 10000"],
    ),
    "unknown range type": (
        """
        context:
          expressions:
            heat: ["$temperature:t degrees"]
          slots:
            temperature: {type: float, min: 0, max: 10}
        """,
        5,
        ["unknown type 'float'"],
    ),
    "reserved slot type name": (
        """
        context:
          expressions:
            heat: ["$pv.Percent:t"]
          slots:
            pv.Percent: [lots]
        """,
        5,
        ["slot type name 'pv.Percent' is reserved"],
    ),
    "unsupported builtin": (
        """
        context:
          expressions:
            spell: ["$pv.Alphabetic:letter"]
        """,
        3,
        ["undefined slot type 'pv.Alphabetic'"],
    ),
    "duplicate intent": (
        """
        context:
          expressions:
            order: [coffee]
            stop: [stop]
            order: [tea]
        """,
        5,
        ["'order' is defined twice (lines 3 and 5)"],
    ),
    "macro cycle": (
        """
        context:
          macros:
            a: ["x @b"]
            b: ["y @a"]
          expressions:
            order: ["@a"]
        """,
        3,
        ["macro cycle: @a -> @b -> @a"],
    ),
    "punctuation is not a word": (
        """
        context:
          expressions:
            order:
              - "coffee ?"
        """,
        4,
        ["'?' at column 8 is not a word"],
    ),
    "comma outside brackets": (
        """
        context:
          expressions:
            order:
              - "coffee, please"
        """,
        4,
        ["',' at column 7 outside"],
    ),
    "yaml syntax error": (
        """
        context:
          expressions:
            order:
              - "coffee
            stop: [stop]
        """,
        6,
        ["invalid YAML"],
    ),
    "yaml bad indentation": (
        """
        context:
          expressions:
            order: [coffee]
           slots: {}
        """,
        4,
        ["invalid YAML"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_invalid_context(name: str) -> None:
    text, line, fragments = CASES[name]
    with pytest.raises(GrammarError) as info:
        context_from_yaml(dedent(text).lstrip("\n"), source="bad.yaml")
    error = info.value
    message = str(error)
    assert error.source == "bad.yaml"
    assert error.line == line, message
    assert message.startswith(f"bad.yaml:{line}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("context:\n  expressions:\n    order:\n      - '[a, b'\n")
    with pytest.raises(GrammarError, match=r"broken\.yaml:4: intent 'order': unbalanced '\['"):
        load_context(path)
