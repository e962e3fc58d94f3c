"""Change a grammar's slot values at run time: the user's own device names, areas, items.

    text = with_slot_values(text, {"device": ["hall lamp", {"value": "tv",
                                                              "synonyms": ["television"]}]})

The context YAML is edited as a YAML node graph, not loaded into Python values and dumped
again, so every other entry keeps the exact text it was written with (``on``, ``yes`` and
``42`` stay words). Each value is a string or a mapping with ``value`` and ``synonyms`` or
``spoken`` (docs/grammar.md). The result is checked by loading it: a value list the grammar
cannot take (a duplicate, a phrase of two values, a slot type the grammar does not have)
raises :class:`~assistant.errors.GrammarError` naming the problem, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from assistant.errors import GrammarError

from .context import Context
from .loader import context_from_yaml
from .normalize import normalize_text
from .slots import ListSlotType

STR = "tag:yaml.org,2002:str"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"
MAX_VALUES = 10_000  # per slot type


def _scalar(text: str) -> yaml.ScalarNode:
    return yaml.ScalarNode(STR, text, style='"')


def _entry(value: Any, where: str) -> yaml.Node:
    if isinstance(value, str):
        if not value.strip():
            raise GrammarError(f"{where}: an empty value")
        return _scalar(value.strip())
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"value", "synonyms", "spoken"})
        if unknown or not isinstance(value.get("value"), str):
            raise GrammarError(f"{where}: a value is a string or a mapping with 'value' and "
                               f"'synonyms' or 'spoken' (got keys {sorted(value)})")
        pairs: list[tuple[yaml.Node, yaml.Node]] = [(_scalar("value"), _scalar(value["value"]))]
        for key in ("synonyms", "spoken"):
            if key in value:
                phrases = value[key]
                if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
                    raise GrammarError(f"{where}: {key!r} of {value['value']!r} must be a list "
                                       f"of strings")
                pairs.append((_scalar(key), yaml.SequenceNode(SEQ, [_scalar(p) for p in phrases],
                                                              flow_style=True)))
        return yaml.MappingNode(MAP, pairs, flow_style=True)
    raise GrammarError(f"{where}: a value is a string or a mapping, got {type(value).__name__}")


def _mapping_value(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def with_slot_values(text: str, values: Mapping[str, Sequence[Any]], source: str = "<string>"
                     ) -> str:
    """``text`` (a context's YAML) with the listed slot types' values replaced."""
    root = yaml.compose(text)
    context = _mapping_value(root, "context") if root is not None else None
    slots = _mapping_value(context, "slots") if context is not None else None
    if not isinstance(slots, yaml.MappingNode):
        raise GrammarError("the grammar has no 'slots' section to change", source=source)
    known = [k.value for k, _ in slots.value]
    for slot_type, entries in values.items():
        where = f"slot type {slot_type!r}"
        if slot_type not in known:
            raise GrammarError(f"the grammar has no {where} (it has {known})", source=source)
        if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
            raise GrammarError(f"{where}: give a non-empty list of values", source=source)
        if len(entries) > MAX_VALUES:
            raise GrammarError(f"{where}: {len(entries)} values, more than {MAX_VALUES}",
                               source=source)
        node = yaml.SequenceNode(SEQ, [_entry(v, where) for v in entries])
        slots.value = [(k, node if k.value == slot_type else v) for k, v in slots.value]
    return str(yaml.serialize(root, allow_unicode=True, width=100))


def slot_values(context: Context) -> dict[str, list[Any]]:
    """The list slot types of a grammar and their values, as :func:`with_slot_values` takes
    them (integer ranges are left out: they are not names)."""
    out: dict[str, list[Any]] = {}
    for slot_type in context.slot_types:
        if isinstance(slot_type, ListSlotType):
            out[slot_type.name] = [
                v.value if v.phrases == (" ".join(normalize_text(v.value)),)
                else {"value": v.value, "spoken": list(v.phrases)} for v in slot_type.values]
    return out


def edit_context(text: str, values: Mapping[str, Sequence[Any]], source: str = "<string>",
                 origin: str | None = None) -> tuple[str, Context]:
    """:func:`with_slot_values`, checked by loading the result (see module docs).

    ``origin`` names where the values came from (a slots file, a request): an error in them
    then names it instead of the grammar file, whose edited text's lines mean nothing to the
    person who wrote the values."""
    try:
        edited = with_slot_values(text, values, source)
        return edited, context_from_yaml(edited, source=source)
    except GrammarError as e:
        if origin is None:
            raise
        raise GrammarError(f"{e.detail} (values for {source})", source=origin) from e
