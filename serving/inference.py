"""Recognition off the event loop: a small pool of worker processes (or threads).

Sessions ``await pool.recognize(model, audio)`` for final results; while the pool holds
``queue_size`` utterances (waiting or running) new ones wait for room, so a flood slows the
readers (TCP backpressure) instead of growing memory. Partial results are best effort:
:meth:`InferencePool.try_recognize` only runs one when a worker is free.

Processes by default: the grammar-constrained beam search is mostly Python, so threads share
one GIL, and they also slow the event loop. With 50 real-time clients on 2 cores, two worker
*threads* used 0.56 cores in all and reached a p95 end-of-speech-to-result of 1.3 s; worker
processes each load their own copy of the models (about 150 MB each for tiny.en int8) and
use both cores (docs/scaling.md). A reload bumps a generation number; each worker process
reloads its models before the first utterance of a newer generation.

Micro-batching several utterances into one encoder run does not pay on 2 cores: 4 utterances
of 2.6-4.3 s padded to the same length took 307 ms as one batch and 290 ms one after another
(tiny.en int8, one intra-op thread), and the beam search runs per utterance anyway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from assistant.errors import ConfigError
from assistant.recognizer import RecognizerConfig, Result

from .config import ModelSource

logger = logging.getLogger("assistant.serving.inference")

# -- in each worker process ------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _worker_init(sources: Sequence[ModelSource], config: RecognizerConfig,
                 warm_up: bool) -> None:
    from .models import ModelRegistry

    registry = ModelRegistry(sources, config, warm_up=warm_up)
    registry.load()
    _worker.update(registry=registry, generation=0)


def _worker_recognize(model: str, generation: int, audio: np.ndarray) -> Result:
    registry = _worker["registry"]
    if generation > _worker["generation"]:
        registry.reload(None)
        _worker["generation"] = generation
    result: Result = registry.get(model).recognizer.recognize(audio)
    return result


def _worker_ping(delay_s: float) -> int:
    import os
    import time

    time.sleep(delay_s)
    return os.getpid()


class InferencePool:
    """``workers`` processes (or threads); at most ``queue_size`` utterances admitted at once.

    ``lookup(name)`` gives a loaded model of the server's own registry (thread workers use it;
    process workers load the same ``sources`` themselves).
    """

    def __init__(self, workers: int, queue_size: int, kind: str,
                 sources: Sequence[ModelSource], config: RecognizerConfig, warm_up: bool,
                 lookup: Callable[[str | None], Any]):
        if workers < 1 or queue_size < workers:
            raise ConfigError(f"need workers >= 1 and queue_size >= workers, got {workers} "
                              f"and {queue_size}")
        if kind not in ("process", "thread"):
            raise ConfigError(f"worker_kind must be 'process' or 'thread', got {kind!r}")
        self.workers = workers
        self.queue_size = queue_size
        self.kind = kind
        self.lookup = lookup
        self.generation = 0
        self._executor: concurrent.futures.Executor
        if kind == "process":
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init, initargs=(tuple(sources), config, warm_up))
        else:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="assistant-infer")
        self._slots: asyncio.Semaphore | None = None
        self._in_flight = 0
        self._closed = False

    def start(self, timeout_s: float = 300.0) -> None:
        """Start every worker process and load its models (blocking; no-op for threads)."""
        if self.kind != "process":
            return
        pings = [self._executor.submit(_worker_ping, 0.2) for _ in range(2 * self.workers)]
        pids = {f.result(timeout=timeout_s) for f in pings}
        logger.info("%d worker processes ready (%s)", len(pids), sorted(pids))

    def reloaded(self) -> None:
        """The models changed on disk and in the server: workers reload before next use."""
        self.generation += 1

    @property
    def depth(self) -> int:
        """Utterances admitted and not finished (waiting or running)."""
        return self._in_flight

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:  # created on first use, inside the running loop
            self._slots = asyncio.Semaphore(self.queue_size)
        return self._slots

    async def recognize(self, model: str, audio: np.ndarray) -> Result:
        """Recognize ``audio`` with the named model; waits for room when the queue is full."""
        async with self._semaphore():
            return await self._run(model, audio)

    async def try_recognize(self, model: str, audio: np.ndarray) -> Result | None:
        """Recognize only if a worker is idle now (partials); None when busy."""
        if self._in_flight >= self.workers or self._semaphore().locked():
            return None
        async with self._semaphore():
            return await self._run(model, audio)

    async def _run(self, model: str, audio: np.ndarray) -> Result:
        if self._closed:
            raise RuntimeError("the inference pool is shut down")
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            if self.kind == "process":
                return await loop.run_in_executor(self._executor, _worker_recognize, model,
                                                  self.generation, audio)
            recognizer = self.lookup(model).recognizer
            result: Result = await loop.run_in_executor(self._executor, recognizer.recognize,
                                                        audio)
            return result
        finally:
            self._in_flight -= 1

    def shutdown(self) -> None:
        """Stop the workers after the work already started (waits for it)."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def thread_count() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("assistant-infer"))
