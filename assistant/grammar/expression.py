"""The expression language of a context (Picovoice Rhino's syntax) and its syntax tree.

::

    [a, b c]          one of the alternatives (each may be several words, brackets, slots)
    (a, b)            optional: nothing or one of the alternatives
    $type:name        a slot named ``name`` filled with a value of slot type ``type``
    @macro            one of the phrases of a macro

Words are normalized with :func:`~assistant.grammar.normalize.normalize_text`, so
"I'd" reads as "i'd" and "12-ounce" as "twelve ounce".

``parse_expression`` reports syntax errors as :class:`ExpressionSyntaxError` with the
1-based column in the expression; the loader turns them into ``GrammarError`` with the
file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.grammar.normalize import normalize_text

#: Intent, slot and macro names.
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Slot type names (dots allowed, as in Rhino's ``pv.TwoDigitInteger``).
SLOT_TYPE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_TOKEN_END = re.compile(r"[\s\[\](),$@]|$")


@dataclass(frozen=True)
class Word:
    """One normalized word."""

    text: str


@dataclass(frozen=True)
class SlotRef:
    """``$slot_type:name`` at 1-based ``column`` of the expression."""

    slot_type: str
    name: str
    column: int


@dataclass(frozen=True)
class MacroRef:
    """``@name`` at 1-based ``column`` of the expression."""

    name: str
    column: int


@dataclass(frozen=True)
class Sequence:
    """The items one after the other."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Choice:
    """One of ``alternatives``; with ``optional``, also nothing (written ``( )``)."""

    alternatives: tuple[Node, ...]
    optional: bool


Node = Word | SlotRef | MacroRef | Sequence | Choice


class ExpressionSyntaxError(ValueError):
    """A syntax error at 1-based ``column`` of an expression."""

    def __init__(self, message: str, column: int):
        self.column = column
        super().__init__(message)


_CLOSER = {"[": "]", "(": ")"}


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, message: str, pos: int | None = None) -> ExpressionSyntaxError:
        column = (self.pos if pos is None else pos) + 1
        return ExpressionSyntaxError(message, column)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def sequence(self, nested: bool) -> Sequence:
        """Items up to ',' or a closer (not consumed) or the end."""
        items: list[Node] = []
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                return Sequence(tuple(items))
            char = self.text[self.pos]
            if char in ",])":
                if char == "," and not nested:
                    raise self.error(f"',' at column {self.pos + 1} outside '[...]' or '(...)'")
                if char in "])" and not nested:
                    raise self.error(
                        f"unbalanced '{char}' at column {self.pos + 1}: nothing to close"
                    )
                return Sequence(tuple(items))
            if char in "[(":
                items.append(self.group(char))
            elif char == "$":
                items.append(self.slot())
            elif char == "@":
                items.append(self.macro())
            else:
                items.extend(self.words())

    def group(self, opener: str) -> Choice:
        start = self.pos
        closer = _CLOSER[opener]
        kind = "optional" if opener == "(" else "choice"
        self.pos += 1
        alternatives: list[Node] = []
        while True:
            alt_start = self.pos
            alternative = self.sequence(nested=True)
            if self.pos >= len(self.text):
                raise self.error(
                    f"unbalanced '{opener}' at column {start + 1}: no closing '{closer}' "
                    "before the end",
                    start,
                )
            char = self.text[self.pos]
            if not alternative.items:
                if char == closer and not alternatives:
                    raise self.error(
                        f"empty {kind} '{opener}{closer}' at column {start + 1}", start
                    )
                raise self.error(
                    f"empty alternative {len(alternatives) + 1} in the {kind} '{opener}' at "
                    f"column {start + 1}",
                    alt_start,
                )
            alternatives.append(_simplify(alternative))
            self.pos += 1
            if char == ",":
                continue
            if char != closer:
                raise self.error(
                    f"unbalanced '{opener}' at column {start + 1}: closed by '{char}' at "
                    f"column {self.pos}",
                    self.pos - 1,
                )
            return Choice(tuple(alternatives), optional=opener == "(")

    def slot(self) -> SlotRef:
        start = self.pos
        end = _TOKEN_END.search(self.text, start + 1)
        assert end is not None
        token = self.text[start : end.start()]
        self.pos = end.start()
        slot_type, colon, name = token[1:].partition(":")
        if not colon:
            shown = slot_type or "type"
            raise self.error(
                f"slot reference '{token}' at column {start + 1} has no slot name: "
                f"write '${shown}:name'",
                start,
            )
        if not slot_type:
            raise self.error(
                f"slot reference '{token}' at column {start + 1} has no slot type: "
                f"write '$type:{name or 'name'}'",
                start,
            )
        if not SLOT_TYPE_RE.fullmatch(slot_type):
            raise self.error(
                f"slot reference '{token}' at column {start + 1}: '{slot_type}' is not a "
                f"slot type name (letters, digits, '_' and '.')",
                start,
            )
        if not NAME_RE.fullmatch(name):
            raise self.error(
                f"slot reference '{token}' at column {start + 1}: '{name}' is not a slot "
                f"name (letters, digits and '_', not starting with a digit)",
                start,
            )
        return SlotRef(slot_type, name, start + 1)

    def macro(self) -> MacroRef:
        start = self.pos
        end = _TOKEN_END.search(self.text, start + 1)
        assert end is not None
        token = self.text[start : end.start()]
        self.pos = end.start()
        if not NAME_RE.fullmatch(token[1:]):
            raise self.error(
                f"macro reference '{token}' at column {start + 1}: '{token[1:]}' is not a "
                "macro name",
                start,
            )
        return MacroRef(token[1:], start + 1)

    def words(self) -> list[Node]:
        start = self.pos
        end = _TOKEN_END.search(self.text, start)
        assert end is not None
        token = self.text[start : end.start()]
        self.pos = end.start()
        words = normalize_text(token)
        if not words:
            raise self.error(f"'{token}' at column {start + 1} is not a word", start)
        return [Word(word) for word in words]


def _simplify(sequence: Sequence) -> Node:
    return sequence.items[0] if len(sequence.items) == 1 else sequence


def parse_expression(text: str) -> Node:
    """The syntax tree of one expression; raises :class:`ExpressionSyntaxError`."""
    parser = _Parser(text)
    tree = parser.sequence(nested=False)
    if not tree.items:
        raise ExpressionSyntaxError("empty expression", 1)
    return _simplify(tree)
