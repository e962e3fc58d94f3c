"""Scoring recognized commands against labels, as the Picovoice speech-to-intent benchmark does.

*Command acceptance*: the share of utterances whose intent and every labelled slot value are
exactly right. Extra predicted slots are not penalized; no result (not understood) counts as
an error. *Rejection*: the share of out-of-grammar utterances that come back not understood.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Label:
    audio: Path
    intent: str | None  # None: out of grammar, must be rejected
    slots: dict[str, Any]


def read_labels(path: str | Path) -> list[Label]:
    """Read a ``labels.jsonl`` (``{"audio", "intent", "slots"}`` per line, audio relative)."""
    path = Path(path)
    labels = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read labels {path}: {e.strerror}") from e
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            labels.append(Label(path.parent / row["audio"], row.get("intent"),
                                dict(row.get("slots") or {})))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}:{number}: not a label line ({e})") from e
    return labels


def slots_match(expected: Mapping[str, Any], predicted: Mapping[str, Any]) -> bool:
    """Every labelled slot has exactly its value (numbers may be labelled as text)."""
    for name, value in expected.items():
        got = predicted.get(name)
        if got != value and str(got) != str(value):
            return False
    return True


def command_accepted(label: Label, understood: bool, intent: str | None,
                     slots: Mapping[str, Any]) -> bool:
    if label.intent is None:
        return not understood
    return understood and intent == label.intent and slots_match(label.slots, slots)
