"""Load and validate a context file (YAML) into a :class:`Context`.

Errors are :class:`~assistant.errors.GrammarError` with the file and the 1-based line of
the offending entry (taken from the YAML node marks) and what is wrong with it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from assistant.errors import GrammarError
from assistant.grammar.context import Context, Expression, Intent, Macro
from assistant.grammar.expression import (
    NAME_RE,
    SLOT_TYPE_RE,
    ExpressionSyntaxError,
    parse_expression,
)
from assistant.grammar.normalize import normalize_text
from assistant.grammar.slots import (
    BUILTIN_SLOT_TYPES,
    IntegerSlotType,
    ListSlotType,
    SlotType,
    SlotValue,
)
from assistant.grammar.validate import check_references

SHIPPED_CONTEXTS = Path(__file__).resolve().parent.parent / "contexts"  # package data
# The grammar `assistant serve` and `assistant recognize` use when given none.
DEFAULT_CONTEXT = SHIPPED_CONTEXTS / "home.yaml"

_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
_NULL_TAG = "tag:yaml.org,2002:null"
_CONTEXT_KEYS = ("expressions", "slots", "macros")
_VALUE_KEYS = ("value", "synonyms", "spoken")
_RANGE_KEYS = ("type", "min", "max")
_RANGE_KINDS = ("integer", "ordinal")


def load_context(source: str | os.PathLike[str]) -> Context:
    """Load a context from a file path, or from YAML text.

    A ``pathlib.Path`` (any ``os.PathLike``) is always a file; a ``str`` containing a
    newline is YAML text, any other ``str`` a file path. :func:`context_from_yaml` takes
    text explicitly.
    """
    if isinstance(source, str) and "\n" in source:
        return context_from_yaml(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise GrammarError("context file not found", source=path) from e
    except (OSError, UnicodeDecodeError) as e:
        raise GrammarError(f"cannot read context file: {e}", source=path) from e
    return context_from_yaml(text, source=str(path))


def context_from_yaml(text: str, source: str = "<string>") -> Context:
    """Load a context from YAML ``text``; ``source`` names it in error messages."""
    return _Loader(source).load(text)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a scalar"


class _Loader:
    def __init__(self, source: str):
        self.source = source

    def error(self, message: str, node: yaml.Node | int | None = None) -> GrammarError:
        line = _line(node) if isinstance(node, yaml.Node) else node
        return GrammarError(message, source=self.source, line=line)

    # -- YAML shapes ------------------------------------------------------------------

    def mapping(
        self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None = None
    ) -> Iterator[tuple[str, yaml.ScalarNode, yaml.Node]]:
        """(key, key node, value node) of a mapping, checking keys are unique strings."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(f"{what} must be a mapping, got {_kind(node)}", node)
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or not key_node.value:
                raise self.error(f"{what}: keys must be names, got {_kind(key_node)}", key_node)
            key = str(key_node.value)
            if key in seen:
                raise self.error(
                    f"{what}: '{key}' is defined twice (lines {seen[key]} and {_line(key_node)})",
                    key_node,
                )
            seen[key] = _line(key_node)
            if allowed is not None and key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                expected = ", ".join(f"'{k}'" for k in allowed)
                raise self.error(
                    f"unknown key '{key}' in {what} (expected {expected}){suggestion}", key_node
                )
            yield key, key_node, value_node

    def string(self, node: yaml.Node, what: str) -> str:
        """A scalar's source text (so `yes`, `on`, `42` read as words), stripped."""
        if not isinstance(node, yaml.ScalarNode):
            hint = ""
            if isinstance(node, yaml.SequenceNode) and node.flow_style:
                hint = " (YAML reads an unquoted '[...]' as a list: quote the whole string)"
            raise self.error(f"{what} must be a string, got {_kind(node)}{hint}", node)
        text = str(node.value).strip()
        if not text:
            raise self.error(f"{what} is empty", node)
        return text

    def sequence(self, node: yaml.Node, what: str, items: str = "entries") -> list[yaml.Node]:
        """The items of a non-empty list; ``items`` names them in the error."""
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            raise self.error(f"{what} has no {items}", node)
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(f"{what} must be a list of {items}, got {_kind(node)}", node)
        if not node.value:
            raise self.error(f"{what} has no {items}", node)
        return list(node.value)

    def strings(self, node: yaml.Node, what: str, items: str) -> list[tuple[str, int]]:
        """The strings of a non-empty list, each with its line."""
        return [
            (self.string(item, f"{what}: {items[:-1]}"), _line(item))
            for item in self.sequence(node, what, items)
        ]

    # -- sections ---------------------------------------------------------------------

    def load(self, text: str) -> Context:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            line = int(mark.line) + 1 if mark is not None else None
            problem = getattr(e, "problem", None) or str(e)
            raise self.error(f"invalid YAML: {problem}", line) from e
        if root is None:
            raise self.error("empty context: expected a top-level 'context:' mapping", 1)
        top = {key: value for key, _, value in self.mapping(root, "the top level", ("context",))}
        if "context" not in top:
            raise self.error("the top level has no 'context' key", root)
        sections = {
            key: value for key, _, value in self.mapping(top["context"], "'context'", _CONTEXT_KEYS)
        }
        if "expressions" not in sections:
            raise self.error("'context' has no 'expressions' section", top["context"])

        slot_types = self.slot_types(sections["slots"]) if "slots" in sections else ()
        macros = self.macros(sections["macros"]) if "macros" in sections else ()
        intents = self.intents(sections["expressions"])
        try:
            slot_names = check_references(intents, slot_types, macros)
        except GrammarError as e:
            raise self.error(e.detail, e.line) from None
        intents = tuple(Intent(i.name, i.expressions, slot_names[i.name], i.line) for i in intents)
        return Context(intents, slot_types, macros, source=self.source)

    def expression(self, text: str, line: int, owner: str) -> Expression:
        try:
            tree = parse_expression(text)
        except ExpressionSyntaxError as e:
            raise self.error(f'{owner}: {e} in expression "{text}"', line) from None
        return Expression(text, tree, line)

    def intents(self, node: yaml.Node) -> tuple[Intent, ...]:
        intents = []
        for name, key_node, value in self.mapping(node, "'expressions'"):
            if not NAME_RE.fullmatch(name):
                raise self.error(f"'{name}' is not an intent name", key_node)
            entries = self.strings(value, f"intent '{name}'", "expressions")
            expressions = tuple(
                self.expression(text, line, f"intent '{name}'") for text, line in entries
            )
            intents.append(Intent(name, expressions, (), _line(key_node)))
        if not intents:
            raise self.error("'expressions' has no intents", node)
        return tuple(intents)

    def macros(self, node: yaml.Node) -> tuple[Macro, ...]:
        macros = []
        for name, key_node, value in self.mapping(node, "'macros'"):
            if not NAME_RE.fullmatch(name):
                raise self.error(f"'{name}' is not a macro name", key_node)
            entries = self.strings(value, f"macro '{name}'", "phrases")
            phrases = tuple(
                self.expression(text, line, f"macro '{name}'") for text, line in entries
            )
            macros.append(Macro(name, phrases, _line(key_node)))
        return tuple(macros)

    def slot_types(self, node: yaml.Node) -> tuple[SlotType, ...]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            return ()
        slot_types: list[SlotType] = []
        for name, key_node, value in self.mapping(node, "'slots'"):
            if name in BUILTIN_SLOT_TYPES or name.startswith("pv."):
                raise self.error(f"slot type name '{name}' is reserved for built-ins", key_node)
            if not SLOT_TYPE_RE.fullmatch(name):
                raise self.error(f"'{name}' is not a slot type name", key_node)
            if isinstance(value, yaml.MappingNode):
                slot_types.append(self.integer_type(name, value))
            else:
                slot_types.append(self.list_type(name, value))
        return tuple(slot_types)

    def integer_type(self, name: str, node: yaml.MappingNode) -> IntegerSlotType:
        what = f"slot type '{name}'"
        fields = {key: value for key, _, value in self.mapping(node, what, _RANGE_KEYS)}
        missing = [key for key in _RANGE_KEYS if key not in fields]
        if missing:
            raise self.error(f"{what}: integer range needs {', '.join(missing)}", node)
        kind = self.string(fields["type"], f"{what}: 'type'")
        if kind not in _RANGE_KINDS:
            raise self.error(
                f"{what}: unknown type '{kind}' (expected 'integer' or 'ordinal')", fields["type"]
            )
        bounds = []
        for key in ("min", "max"):
            bound = fields[key]
            shown = bound.value if isinstance(bound, yaml.ScalarNode) else _kind(bound)
            if not isinstance(bound, yaml.ScalarNode) or not _DECIMAL.fullmatch(bound.value):
                raise self.error(f"{what}: '{key}' must be a decimal integer, got '{shown}'", bound)
            bounds.append(int(bound.value))
        minimum, maximum = bounds
        if minimum > maximum:
            raise self.error(f"{what}: min {minimum} is greater than max {maximum}", fields["min"])
        try:
            return IntegerSlotType(name, minimum, maximum, ordinal=kind == "ordinal")
        except ValueError as e:
            raise self.error(str(e), node) from None

    def list_type(self, name: str, node: yaml.Node) -> ListSlotType:
        what = f"slot type '{name}'"
        if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
            raise self.error(
                f"{what} must be a list of values or an integer range "
                f"{{type: integer, min: ..., max: ...}}, got a scalar",
                node,
            )
        values: list[SlotValue] = []
        spoken_by: dict[str, tuple[str, int]] = {}
        for item in self.sequence(node, what, "values"):
            value = self.slot_value(what, item)
            if any(v.value == value.value for v in values):
                raise self.error(f"{what}: value '{value.value}' is listed twice", item)
            for phrase in value.phrases:
                if phrase in spoken_by:
                    other, other_line = spoken_by[phrase]
                    raise self.error(
                        f"{what}: '{phrase}' is spoken for both '{other}' (line {other_line}) "
                        f"and '{value.value}'",
                        item,
                    )
                spoken_by[phrase] = (value.value, _line(item))
            values.append(value)
        return ListSlotType(name, tuple(values))

    def phrase(self, what: str, node: yaml.Node) -> str:
        text = self.string(node, what)
        words = normalize_text(text)
        if not words:
            raise self.error(f"{what} '{text}' has no words", node)
        return " ".join(words)

    def slot_value(self, what: str, node: yaml.Node) -> SlotValue:
        if isinstance(node, yaml.ScalarNode):
            text = self.string(node, f"{what}: value")
            return SlotValue(text, (self.phrase(f"{what}: value", node),), _line(node))
        if not isinstance(node, yaml.MappingNode):
            raise self.error(
                f"{what}: a value must be a string or a mapping {{value: ..., synonyms: [...]}}, "
                f"got {_kind(node)}",
                node,
            )
        fields = {key: value for key, _, value in self.mapping(node, f"{what}: value", _VALUE_KEYS)}
        if "value" not in fields:
            raise self.error(f"{what}: a value mapping needs 'value'", node)
        value = self.string(fields["value"], f"{what}: 'value'")
        if "synonyms" in fields and "spoken" in fields:
            raise self.error(
                f"{what}: value '{value}' has both 'synonyms' and 'spoken' (use one)", node
            )
        key = "spoken" if "spoken" in fields else "synonyms" if "synonyms" in fields else None
        phrases = [] if key == "spoken" else [self.phrase(f"{what}: value", fields["value"])]
        if key is not None:
            for item in self.sequence(fields[key], f"{what}: '{key}' of '{value}'", "phrases"):
                phrase = self.phrase(f"{what}: spoken form of '{value}'", item)
                if phrase in phrases:
                    raise self.error(f"{what}: '{phrase}' is listed twice for '{value}'", item)
                phrases.append(phrase)
        return SlotValue(value, tuple(phrases), _line(node))
