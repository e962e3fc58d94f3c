"""Logging for the server: per-connection context and an optional JSON-lines format.

Library code only calls ``logging.getLogger("assistant.serving.<module>")`` and wraps it in a
:class:`ConnectionLogger`; :func:`configure` (handlers and format) is called by the entry point.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from assistant.utterance import Completed

CONTEXT_FIELDS = ("session_id", "peer", "key_id", "model")


class ConnectionLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the connection's context (``session_id``, ``peer``, ...) to every record."""

    def __init__(self, logger: logging.Logger, context: Mapping[str, Any]):
        super().__init__(logger, dict(context))

    def bind(self, **context: Any) -> None:
        assert isinstance(self.extra, dict)
        self.extra.update(context)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[
            str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the connection context."""

    def format(self, record: logging.LogRecord) -> str:
        row: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*CONTEXT_FIELDS, "event", "code", "latency_ms"):
            value = getattr(record, name, None)
            if value is not None:
                row[name] = value
        if record.exc_info:
            row["exception"] = self.formatException(record.exc_info)
        return json.dumps(row, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The usual text line, with the connection context appended in brackets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [f"{n}={getattr(record, n)}" for n in CONTEXT_FIELDS
                   if getattr(record, n, None) is not None]
        return f"{line} [{' '.join(context)}]" if context else line


def configure(json_lines: bool, level: str = "INFO") -> None:
    """Send the ``assistant`` loggers to stderr (entry points only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("assistant").setLevel(level.upper())
    logging.getLogger("websockets").setLevel(logging.WARNING)


class ResultLog:
    """A result sink that logs each final answer on its connection's logger."""

    name = "result_log"

    def __init__(self, log: ConnectionLogger):
        self.log = log

    def on_result(self, completed: Completed) -> None:
        result = completed.result
        if not completed.final:
            return
        latency = completed.latency_ms
        self.log.info("result %d: %s %s (%.2f) in %.0f ms", completed.utterance.utterance_id,
                      result.intent if result.understood else f"not understood ({result.reason})",
                      result.slots if result.understood else "", result.confidence,
                      latency or 0.0, extra={"event": "result", "latency_ms": None if latency
                                             is None else round(latency, 1)})
