"""Name maps of pluggable parts, imported on first use, and the specs that configure them.

uvicorn picks its implementations from small maps of names to import strings
(``HTTP_PROTOCOLS = {"h11": "uvicorn.protocols.http.h11_impl:H11Protocol"}``); we do the same
for pipeline gates and result sinks (:mod:`assistant.gates`, :mod:`assistant.sinks`), TTS
engines and server listeners. Adding one is one module and one line in its map.

A *spec* names a part and sets its options, the fields of its dataclass::

    "min_duration"                      # the defaults
    "min_duration,min_ms=300"           # an option (converted by the field's type)
    "my_package.gates:WakeWord,word=computer"   # any importable class, no registration

Specs come from flags (``--gate SPEC``), ``ASSISTANT_*`` variables and config files; options
are checked (names and types) when the spec is read, so a typo fails at start-up.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import config
from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to classes (or ``"module:attr"`` import strings, imported when first used)."""

    def __init__(self, kind: str, entries: Mapping[str, str | type[T]]):
        self.kind = kind
        self._entries: dict[str, str | type[T]] = dict(entries)

    def names(self) -> list[str]:
        """The registered names, in the order they were registered."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def register(self, name: str, target: str | type[T]) -> None:
        """Add (or replace) ``name``: a class or a ``"module:attr"`` string."""
        if not name or "," in name or "=" in name:
            raise ConfigError(f"{self.kind} name {name!r} must not be empty or hold ',' or '='")
        self._entries[name] = target

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> type[T]:
        """The class called ``name``, or named by an import string ``"module:attr"``."""
        target = self._entries.get(name)
        if target is None:
            if ":" not in name:
                raise ConfigError(f"unknown {self.kind} {name!r} (known: {self.names()}; or "
                                  f"give 'package.module:Class')")
            target = name
        if isinstance(target, str):
            return self._import(name, target)
        return target

    def _import(self, name: str, target: str) -> type[T]:
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ConfigError(f"{self.kind} {name!r}: cannot import {module_name}: {e}") from e
        try:
            found: type[T] = getattr(module, attr)
        except AttributeError:
            raise ConfigError(f"{self.kind} {name!r}: {module_name} has no {attr!r}") from None
        return found


@dataclass(frozen=True)
class Spec:
    """A part's name and its options as given (text); :meth:`parse` reads ``"name,k=v,..."``."""

    name: str
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Spec:
        name, *items = [part.strip() for part in text.split(",")]
        if not name:
            raise ConfigError(f"spec {text!r} names nothing (expected 'name,option=value,...')")
        options = []
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"spec {text!r}: {item!r} is not option=value")
            options.append((key.strip(), value.strip()))
        return cls(name, tuple(options))

    def __str__(self) -> str:
        return ",".join([self.name, *(f"{k}={v}" for k, v in self.options)])


def options_of(registry: Registry[T], spec: Spec) -> tuple[type[T], dict[str, Any]]:
    """The class a spec names and its options converted by the class's field types."""
    cls = registry.get(spec.name)
    if not dataclasses.is_dataclass(cls):
        raise ConfigError(f"{registry.kind} {spec.name!r} ({cls!r}) is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, raw in spec.options:
        if key not in fields:
            raise ConfigError(f"{registry.kind} {spec.name!r} has no option {key!r} "
                              f"(options: {sorted(fields)})")
        kind = config.scalar_type(hints[key])
        if kind is None:
            raise ConfigError(f"{registry.kind} {spec.name!r}: option {key!r} cannot be set "
                              f"from text")
        values[key] = config.convert(f"{spec.name}.{key}", raw, kind)
    return cls, values


def create(registry: Registry[T], spec: Spec | str) -> T:
    """A new instance of what ``spec`` names, with its options."""
    spec = Spec.parse(spec) if isinstance(spec, str) else spec
    cls, values = options_of(registry, spec)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{registry.kind} {spec}: {e}") from e
