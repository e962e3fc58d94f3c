"""Models loaded once, before the worker processes are forked, so that they share them.

Each recognition worker would otherwise load its own copy of every model: about 160 MB of
onnxruntime sessions, packed weights, grammar automata and warm-up caches per worker for
tiny.en int8. Instead the process pool forks its workers from multiprocessing's *forkserver*,
a clean single-threaded process that imports this module first: when the environment names
a file of catalogue entries (``PRELOAD_ENV``, written by :mod:`serving.inference` just
before the forkserver starts), the entries are loaded (and warmed up) here, and every worker
forked afterwards finds them in :data:`registry` and shares their memory copy-on-write.

A worker uses them only if its entries are exactly these (a reload, or another server in
the same process, brings others: the worker then loads its own, as before). Anything that
goes wrong here is logged and left to the workers, which report it properly.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
from collections.abc import Sequence

from .catalog import ModelEntry
from .models import ModelRegistry

PRELOAD_ENV = "ASSISTANT_PRELOAD_ENTRIES"

logger = logging.getLogger("assistant.serving.preload")

registry: ModelRegistry | None = None
entries: tuple[ModelEntry, ...] = ()


def shared_registry(wanted: Sequence[ModelEntry]) -> ModelRegistry | None:
    """The preloaded registry if it holds exactly ``wanted``, else None."""
    return registry if registry is not None and entries == tuple(wanted) else None


def _preload(path: str) -> None:
    global registry, entries
    try:
        with open(path, "rb") as f:
            wanted, warm_up = pickle.load(f)
        loaded = ModelRegistry(warm_up=warm_up)
        loaded.load(wanted)
    except Exception:  # the workers load their own and report what is wrong
        logger.exception("could not preload models from %s", path)
        return
    registry, entries = loaded, tuple(wanted)
    # Keep the collector's hands off them: its passes write to every object they visit,
    # which would copy those pages into each worker (copy-on-write) for nothing.
    gc.collect()
    gc.freeze()


if os.environ.get(PRELOAD_ENV):
    _preload(os.environ[PRELOAD_ENV])
