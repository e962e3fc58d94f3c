"""Result sinks: stages that see every answer (see :mod:`assistant.utterance`).

A sink is a dataclass whose fields are its options, with ``on_result(completed)`` and
optionally ``close()``. Add one as a module here plus one line in :data:`SINKS`; or name any
importable class in a spec (``--sink my_package.sinks:Capture``) without registering it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from assistant.registry import Registry, Spec, create

if TYPE_CHECKING:
    from assistant.utterance import ResultSink

logger = logging.getLogger("assistant.sinks")

SINKS: Registry[ResultSink] = Registry("sink", {
    "jsonl": "assistant.sinks.jsonl:JsonLinesSink",
})


def create_sinks(specs: Sequence[str | Spec]) -> list[ResultSink]:
    """New sink instances (one set per process or run: sinks are shared by its streams)."""
    return [create(SINKS, spec) for spec in specs]


def close_sinks(sinks: Iterable[object]) -> None:
    """Call ``close()`` on the sinks that have one; errors are logged, not raised."""
    for sink in sinks:
        close = getattr(sink, "close", None)
        if close is None:
            continue
        try:
            close()
        except Exception:
            logger.exception("closing result sink %r failed", sink)
