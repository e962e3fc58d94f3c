"""Every answer as one JSON object a line, appended to a file: a results log.

Each line holds where the answer came from (model, stream, utterance id, how the utterance
ended, the gate that dropped it), the latency, and the whole
:meth:`~assistant.recognizer.Result.to_dict` (intent, slots, confidence, transcripts, reason,
audio level, confidence features, timings): what an offline monitor or an evaluation reads.
It holds what people said (transcripts), so it is only written where it was configured.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from assistant.errors import ConfigError
from assistant.utterance import Completed


def completed_row(completed: Completed) -> dict[str, Any]:
    """A :class:`~assistant.utterance.Completed` as one plain JSON-able row."""
    utterance = completed.utterance
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": completed.model,
        "stream": completed.stream_id,
        "utterance_id": utterance.utterance_id,
        "partial": utterance.partial,
        "ended": None if utterance.ended is None else str(utterance.ended),
        "start_ms": round(utterance.start_ms, 1),
        "end_ms": round(utterance.end_ms, 1),
        "latency_ms": None if completed.latency_ms is None else round(completed.latency_ms, 2),
        "gate": completed.gate,
        **completed.result.to_dict(),
    }


@dataclass
class JsonLinesSink:
    name: ClassVar[str] = "jsonl"
    path: str = ""  # the file to append to (created if missing)
    partials: bool = False  # also log partial results
    _file: IO[str] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("the jsonl sink needs a file: --sink jsonl,path=results.jsonl")
        try:
            self._file = Path(self.path).expanduser().open("a", encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"jsonl sink: cannot open {self.path!r}: {e}") from e

    def on_result(self, completed: Completed) -> None:
        if completed.utterance.partial and not self.partials:
            return
        line = json.dumps(completed_row(completed), ensure_ascii=False) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
