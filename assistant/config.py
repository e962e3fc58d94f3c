"""Command-line flags and ``ASSISTANT_*`` environment variables onto frozen config dataclasses.

One place does the mapping for every config class: a field ``beam_size`` of a dataclass is
set by ``--beam-size`` when given, else by ``ASSISTANT_BEAM_SIZE`` when set, else keeps its
default. Values are converted by the field's type and the dataclass validates them.

A ``tuple[str, ...]`` field is a repeatable flag (``--gate A --gate B``; the flag is named by
the field's ``metadata["flag"]``, else after the field) and a ``;``-separated variable
(``ASSISTANT_GATES="A;B"``).

:func:`given` returns only what was set: a model directory's stored settings are overridden by
those fields and by nothing else (:func:`assistant.recognizer.resolve_config`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")
ENV_PREFIX = "ASSISTANT_"
LIST_SEPARATOR = ";"  # between the items of a tuple[str, ...] setting in a variable


def scalar_type(annotation: Any) -> type | None:
    """``int`` for ``int``, ``int | None`` and ``Optional[int]``; None for other types."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 and args[0] in (int, float, str, bool) else None
    return annotation if annotation in (int, float, str, bool) else None


def _convert(name: str, raw: str, kind: type) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


def scalar_fields(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        kind = scalar_type(hints[f.name])
        if kind is not None:
            out[f.name] = kind
    return out


def list_fields(cls: type) -> dict[str, str]:
    """The ``tuple[str, ...]`` fields of ``cls`` and their flags."""
    hints = typing.get_type_hints(cls)
    return {f.name: f.metadata.get("flag", "--" + f.name.replace("_", "-"))
            for f in dataclasses.fields(cls) if hints[f.name] == tuple[str, ...]}


def convert(name: str, raw: Any, kind: type) -> Any:
    """``raw`` (text from a flag, variable or file, or already a value) as a ``kind``."""
    if isinstance(raw, str) and kind is not str:
        return _convert(name, raw, kind)
    if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}")
    return raw


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add ``--field-name`` options for the scalar and list fields of dataclass ``cls``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, kind in scalar_fields(cls).items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        env = ENV_PREFIX + name.upper()
        doc = fields[name].metadata.get("help", "")
        help_text = f"{doc} (default {fields[name].default!r}; env {env})".strip()
        if kind is bool:
            parser.add_argument(flag, dest=name, default=None,
                                action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=name, type=str, default=None, help=help_text)
    for name, flag in list_fields(cls).items():
        if name in skip:
            continue
        doc = fields[name].metadata.get("help", "")
        parser.add_argument(flag, dest=name, action="append", default=None, metavar="SPEC",
                            help=f"{doc} (repeatable; env {ENV_PREFIX + name.upper()}, "
                                 f"'{LIST_SEPARATOR}'-separated)".strip())


def given(cls: type, flags: Mapping[str, Any] | argparse.Namespace | None = None,
          env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The fields of ``cls`` set by flags (highest) or the environment, converted."""
    env = os.environ if env is None else env
    flag_values = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags or {})
    values: dict[str, Any] = {}
    for name, kind in scalar_fields(cls).items():
        raw = flag_values.get(name)
        source = "--" + name.replace("_", "-")
        if raw is None:
            raw = env.get(ENV_PREFIX + name.upper())
            # A value layered in from a config file is named as the file has it.
            source = getattr(env, "origins", {}).get(ENV_PREFIX + name.upper(),
                                                     ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = convert(source, raw, kind)
    for name in list_fields(cls):
        items = flag_values.get(name)
        if items is None and ENV_PREFIX + name.upper() in env:
            items = env[ENV_PREFIX + name.upper()].split(LIST_SEPARATOR)
        if items is not None:
            values[name] = tuple(str(i).strip() for i in items if str(i).strip())
    return values


def build(cls: type[T], flags: Mapping[str, Any] | argparse.Namespace | None = None,
          env: Mapping[str, str] | None = None, **fixed: Any) -> T:
    """An instance of ``cls`` from flags (highest), then environment, then defaults."""
    return cls(**{**given(cls, flags, env), **fixed})
