"""Command-line flags and ``ASSISTANT_*`` environment variables onto frozen config dataclasses.

One place does the mapping for every config class: a field ``beam_size`` of a dataclass is
set by ``--beam-size`` when given, else by ``ASSISTANT_BEAM_SIZE`` when set, else keeps its
default. Values are converted by the field's type and the dataclass validates them.
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


def _scalar_type(annotation: Any) -> type | None:
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
        kind = _scalar_type(hints[f.name])
        if kind is not None:
            out[f.name] = kind
    return out


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add ``--field-name`` options for the scalar fields of dataclass ``cls``."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, kind in scalar_fields(cls).items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        env = ENV_PREFIX + name.upper()
        help_text = f"(default {defaults[name]!r}; env {env})"
        if kind is bool:
            parser.add_argument(flag, dest=name, default=None,
                                action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=name, type=str, default=None, help=help_text)


def build(cls: type[T], flags: Mapping[str, Any] | argparse.Namespace | None = None,
          env: Mapping[str, str] | None = None, **fixed: Any) -> T:
    """An instance of ``cls`` from flags (highest), then environment, then defaults."""
    env = os.environ if env is None else env
    given = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags or {})
    values: dict[str, Any] = {}
    for name, kind in scalar_fields(cls).items():
        raw = given.get(name)
        source = "--" + name.replace("_", "-")
        if raw is None:
            raw = env.get(ENV_PREFIX + name.upper())
            source = ENV_PREFIX + name.upper()
        if raw is None:
            continue
        values[name] = raw if not isinstance(raw, str) or kind is str else _convert(
            source, raw, kind)
    values.update(fixed)
    return cls(**values)
