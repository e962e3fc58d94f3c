"""A gate and a result sink written the way a contributor would add one: one module, no
change to the assistant. The tests name them by import string (``--gate
tests.stages:DropShort,min_ms=900``) or register them with one line
(``GATES.register("drop_short", DropShort)``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from assistant.utterance import Completed, Utterance


@dataclass
class DropShort:
    """Drop utterances shorter than ``min_ms``; counts what it saw (per stream)."""

    name: ClassVar[str] = "drop_short"
    min_ms: float = 500.0
    seen: int = field(default=0, init=False)

    def admit(self, utterance: Utterance) -> Utterance | None:
        self.seen += 1
        return utterance if utterance.duration_ms >= self.min_ms else None


@dataclass
class Record:
    """Records every answer: in memory, and as JSON lines in ``path`` when given."""

    name: ClassVar[str] = "record"
    path: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list, init=False)

    def on_result(self, completed: Completed) -> None:
        result = completed.result
        row = {"stream": completed.stream_id, "model": completed.model,
               "utterance_id": completed.utterance.utterance_id,
               "partial": completed.utterance.partial, "gate": completed.gate,
               "understood": result.understood, "intent": result.intent,
               "slots": result.slots, "reason": None if result.reason is None
               else str(result.reason), "has_features": result.features is not None,
               "audio_dbfs": result.audio_dbfs, "latency_ms": completed.latency_ms,
               "timing": sorted(result.timing_ms)}
        self.rows.append(row)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


@dataclass
class SlowFirst:
    """Holds up the first utterance of a stream for ``delay_ms`` (a slow stage), and records
    which thread each utterance was gated in."""

    name: ClassVar[str] = "slow_first"
    made: ClassVar[list[SlowFirst]] = []  # every instance, for tests to look at
    delay_ms: float = 1000.0
    threads: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        SlowFirst.made.append(self)

    def admit(self, utterance: Utterance) -> Utterance | None:
        import threading
        import time

        self.threads.append(threading.current_thread().name)
        if len(self.threads) == 1:
            time.sleep(self.delay_ms / 1000)
        return utterance
