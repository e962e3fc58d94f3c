"""Recognition off the event loop: a small pool of worker processes (or threads).

Sessions ``await pool.recognize(entry, request)`` for final results; while the pool holds
``queue_size`` utterances (waiting or running) new ones wait for room, so a flood slows the
readers (TCP backpressure) instead of growing memory. Partial results are best effort:
:meth:`InferencePool.try_recognize` only runs one when a worker is free.

Processes by default: a worker that dies is replaced while the server goes on, and at 100
real-time clients on 2 cores they answered with a p95 about 40 ms lower than two worker
threads, which share the server's GIL (most of a recognition runs in onnxruntime, outside
it) and save about 100 MiB (docs/scaling.md, "One process"). They are forked from multiprocessing's
forkserver, which loads the catalogued models before the first fork (:mod:`serving.preload`),
so the workers share one copy of them (about 160 MB for tiny.en int8) instead of each
loading its own. Each recognition carries its model's catalogue entry
(:mod:`serving.catalog`); a worker builds the recognizer of a newer generation the first
time it sees one (:mod:`serving.models`).

A worker process that dies (killed for memory, a crash in native code) breaks the whole
process pool; the pool then starts a fresh one (:meth:`InferencePool._restart`, counted by
``on_restart``) and runs the utterances that were in flight once more on it, so one bad
moment costs latency, not answers, and never leaves the server answering nothing.

With ``batch_utterances`` above 1, utterances that wait together are recognized together:
when a worker comes free, it takes its share of the waiting utterances of one model (up to
``batch_utterances``) in one call, and
:meth:`~assistant.recognizer.Recognizer.recognize_many` runs their beam searches side by
side, each decoder step one run for all of them (:func:`assistant.decoding.run_together`).
The default is 1, one at a time: on a 2-core CPU with the INT8 model the shared runs save
only a fifth of an utterance's time, so the utterances of a batch, which all wait for its
end, got their answers later than one by one (p95 at 100 clients 231-329 ms one at a time,
278-477 ms in batches; docs/scaling.md). FP32 models save more (1.5-1.7x for 4-8 together),
and a GPU is where batching is the point. Encoders run one by one either way: padding 4
utterances of 2.6-4.3 s to one length took 307 ms as one encoder batch and 290 ms one after
another (tiny.en int8, one intra-op thread), and padding changes what Whisper's encoder
computes.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import ctypes
import dataclasses
import logging
import multiprocessing
import os
import pickle
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from assistant.errors import AssistantError, ModelError
from assistant.recognizer import Result
from assistant.utterance import RecognitionRequest

from .catalog import ModelEntry
from .config import PoolConfig
from .models import ModelRegistry

logger = logging.getLogger("assistant.serving.inference")
T = TypeVar("T")

# -- in each worker process ------------------------------------------------------------------

_worker: dict[str, Any] = {}


PARENT_CHECK_S = 1.0  # how often a worker process checks that the server is still there
RESTART_RETRY_S = 10.0  # after a failed restart, recognitions fail at once this long


def _exit_with_server(server_pid: int, every_s: float = PARENT_CHECK_S) -> None:
    """End this worker process when its server is gone (``kill -9`` leaves no one to stop it:
    the worker would sit on its memory forever, and keep the forkserver that forked it, which
    waits for every holder of the server's end of its "alive" pipe, these workers included)."""
    started = _process_start(server_pid)

    def watch() -> None:
        while _process_start(server_pid) == started:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, name="server-watch", daemon=True).start()


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from Linux's /proc), None once it
    has ended: with the start time a new process that got the same id is not taken for the
    server. Without /proc (macOS), whether a process of that id exists."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # it exists, as another user's process
        return "running"
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is another."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class _MemoryTrimmer:
    """Hands the C heap's free pages back to the system once the worker has been idle for
    ``idle_s`` after a recognition (0: right after each), from a thread of its own.

    Each recognition allocates and frees about 12 MB (onnxruntime's activations, run
    without an arena), which glibc keeps: after 64 clients' load a worker held about 95 MiB,
    65 MiB with ``malloc_trim(0)`` after every recognition; but trimming after every one
    cost 6-9 ms per recognition under that load (the next one faults the pages back in), so
    by default it waits for a pause (docs/scaling.md). Does nothing where the C library is
    not glibc."""

    def __init__(self, idle_s: float):
        self.idle_s = idle_s
        self._trim = glibc_malloc_trim()
        self._finished = threading.Event()
        self._last_s = 0.0
        self._busy = False
        self.trims = 0
        if self._trim is not None and idle_s >= 0:
            threading.Thread(target=self._run, name="memory-trim", daemon=True).start()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Around each recognition: no trim while it runs, the idle time counts from its end."""
        self._busy = True
        try:
            yield
        finally:
            self._busy = False
            self._last_s = time.monotonic()
            self._finished.set()

    def _run(self) -> None:
        assert self._trim is not None
        while True:
            self._finished.wait()
            self._finished.clear()
            while (wait_s := self._last_s + self.idle_s - time.monotonic()) > 0:
                time.sleep(wait_s)
            if not self._busy:  # else the one running asks again when it ends
                self._trim(0)
                self.trims += 1


def _worker_init(entries: Sequence[ModelEntry], warm_up: bool, server_pid: int,
                 trim_memory_s: float) -> None:
    _exit_with_server(server_pid)
    _worker["trimmer"] = _MemoryTrimmer(trim_memory_s)
    from . import preload

    registry = preload.shared_registry(entries)  # loaded before the fork: shared memory
    if registry is None:
        registry = ModelRegistry(warm_up=warm_up)
        try:
            registry.load(entries)
        except Exception as e:  # told to the pool by _worker_ping: the pool stops, says why
            _worker["init_error"] = str(e) if isinstance(e, AssistantError) else \
                f"{type(e).__name__}: {e}"
            return
    _worker["registry"] = registry


def _registry() -> ModelRegistry:
    """This worker's models (a worker that could not load them says why)."""
    if "registry" not in _worker:
        raise ModelError(_worker.get("init_error", "this worker has no models"))
    return _worker["registry"]


def _worker_partial(entry: ModelEntry, audio: np.ndarray) -> Result:
    with _worker["trimmer"].busy():
        return _registry_partial(_registry(), entry, audio)


def _worker_recognize_batch(entry: ModelEntry, audios: Sequence[np.ndarray]
                            ) -> list[Result | Exception]:
    with _worker["trimmer"].busy():
        return _registry_recognize_batch(_registry(), entry, audios)


def _registry_recognize_batch(registry: ModelRegistry, entry: ModelEntry,
                              audios: Sequence[np.ndarray]) -> list[Result | Exception]:
    recognizer = registry.recognizer(entry)
    if len(audios) == 1:
        try:
            return [recognizer.recognize(audios[0])]
        except Exception as e:  # its own failure, like one of a batch's
            return [e]
    return recognizer.recognize_many(audios)


def _worker_trims(hold_s: float = 0.0) -> tuple[int, int]:
    """(this worker's pid, how often it has handed memory back), after holding the worker
    ``hold_s`` (so that other calls go to the other workers)."""
    time.sleep(hold_s)
    return os.getpid(), _worker["trimmer"].trims


def _registry_partial(registry: ModelRegistry, entry: ModelEntry, audio: np.ndarray) -> Result:
    """A partial result (final ones go through :func:`_registry_recognize_batch`)."""
    return registry.recognizer(entry).partial(audio)


def _worker_shares_models(hold_s: float = 0.0) -> tuple[int, bool]:
    """(this worker's pid, whether it runs the models its forkserver loaded), after holding
    the worker ``hold_s`` (so that other calls go to the other workers)."""
    import time

    from . import preload

    time.sleep(hold_s)
    return os.getpid(), preload.registry is not None and _worker["registry"] is preload.registry


def _worker_ping(hold_s: float) -> tuple[int, str | None]:
    """(this worker's pid, why it could not load its models or None), after holding the
    worker ``hold_s``."""
    time.sleep(hold_s)
    return os.getpid(), _worker.get("init_error")


def _each_worker(executor: concurrent.futures.Executor, workers: int,
                 call: Callable[[float], tuple[int, T]], timeout_s: float) -> dict[int, T]:
    """``call(hold_s)``'s answer from each of ``workers`` worker processes, by pid. Each
    call holds its worker a moment, so one quick worker cannot answer them all while another
    is still starting (a busy machine); asks again until all have (or ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    answers: dict[int, T] = {}
    while len(answers) < workers and time.monotonic() < deadline:
        calls = [executor.submit(call, 0.1) for _ in range(2 * workers)]
        answers.update(future.result(timeout=max(0.0, deadline - time.monotonic()))
                       for future in calls)
    return answers


def _processes(executor: concurrent.futures.Executor | None) -> dict[int, Any]:
    """A process pool's worker processes by pid (its private table; {} for threads)."""
    return getattr(executor, "_processes", None) or {}


def _how_workers_ended(processes: dict[int, Any]) -> str:
    """How a broken pool's workers ended, for the log: "pid 41 killed by SIGKILL" (the
    kernel's out-of-memory killer sends that), "pid 42 exited with 1". The pool stops the
    others with SIGTERM when one dies: those are named only when nothing else is."""
    ended = []
    for pid, process in sorted(processes.items()):
        with contextlib.suppress(Exception):
            process.join(0.2)  # reaped by now, or about to be
        code = getattr(process, "exitcode", None)
        if code is not None:
            ended.append((pid, code))
    causes = [(pid, code) for pid, code in ended if code != -signal.SIGTERM] or ended

    def said(code: int) -> str:
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        return f"exited with {code}"

    return ", ".join(f"pid {pid} {said(code)}" for pid, code in causes)


def _abandon(executor: concurrent.futures.ProcessPoolExecutor) -> None:
    """Stop a pool that failed to start without waiting for it (a worker stuck loading
    would make ``shutdown(wait=True)`` wait for ever)."""
    processes = list(_processes(executor).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()


@contextlib.contextmanager
def _preloading(context: Any, entries: Sequence[ModelEntry], warm_up: bool) -> Iterator[None]:
    """While the pool starts: the forkserver, if it starts now, loads ``entries`` first
    (:mod:`serving.preload`), so the workers forked from it share them. Not when any model
    runs on a GPU (a CUDA context does not survive a fork): then each worker loads its own."""
    from .preload import PRELOAD_ENV

    if any(e.config.device != "cpu" for e in entries):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="assistant-preload-") as tmp:
        path = Path(tmp) / "entries.pickle"
        path.write_bytes(pickle.dumps((tuple(entries), warm_up)))
        os.environ[PRELOAD_ENV] = str(path)
        context.set_forkserver_preload(["serving.preload"])
        try:
            yield
        finally:
            os.environ.pop(PRELOAD_ENV, None)


@dataclasses.dataclass
class _Waiting:
    """A final recognition waiting for a worker."""

    entry: ModelEntry
    audio: np.ndarray
    future: asyncio.Future[Result]
    alone: bool = False  # its last call broke the pool: it goes alone from now on


def _settle(future: asyncio.Future[Result], result: Result | None = None,
            error: BaseException | None = None) -> None:
    if future.done():  # its waiter gave up meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


class InferencePool:
    """``config.workers`` processes (or threads); at most ``queue_size`` utterances at once.

    Thread workers share ``registry`` (the server's own); process workers each build theirs.
    """

    def __init__(self, config: PoolConfig, registry: ModelRegistry | None = None,
                 on_restart: Callable[[], None] | None = None):
        self.config = config
        self.on_restart = on_restart
        self.workers = config.workers
        self.queue_size = config.queue_size
        self.kind = config.worker_kind
        self.registry = registry or ModelRegistry(warm_up=config.warm_up)
        self._executor: concurrent.futures.Executor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._in_flight = 0
        self._closed = False
        self._entries: tuple[ModelEntry, ...] = ()
        self._generation = 0  # bumped by each restart of the process pool
        self._restarting: asyncio.Lock | None = None
        self.restarts = 0
        # Why the workers are gone, after a restart failed (None while they run); the next
        # recognition tries again, and the server reports itself not ready meanwhile.
        self.broken: str | None = None
        self._broken_at = 0.0
        self.batch_utterances = config.batch_utterances
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._calls = 0  # calls of final recognitions running in the workers
        self.on_batch: Callable[[int], None] | None = None  # told each call's utterance count
        self._tasks: set[asyncio.Task[None]] = set()  # calls running (kept from the GC)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the queue lives on

    def start(self, entries: Sequence[ModelEntry], timeout_s: float = 300.0) -> None:
        """Start the workers and load ``entries`` in each (blocking)."""
        self._entries = tuple(entries)
        if self.kind == "process":
            self._executor = self._process_pool(timeout_s)
        else:
            self.registry.load(entries)
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.workers, thread_name_prefix="assistant-infer")

    def _process_pool(self, timeout_s: float) -> concurrent.futures.ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        with _preloading(context, self._entries, self.config.warm_up):
            executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=_worker_init,
                initargs=(self._entries, self.config.warm_up, os.getpid(),
                          self.config.trim_memory_s))
            try:
                answers = _each_worker(executor, self.workers, _worker_ping, timeout_s)
            except (BrokenProcessPool, concurrent.futures.TimeoutError) as e:
                _abandon(executor)
                why = ("a worker process died while loading the models"
                       if isinstance(e, BrokenProcessPool)
                       else f"the workers did not load the models within {timeout_s:g} s")
                raise ModelError(f"the recognition workers could not start: {why}") from e
        errors = sorted({error for error in answers.values() if error})
        if errors or len(answers) < self.workers:
            _abandon(executor)
            raise ModelError(f"the recognition workers could not load the models: "
                             f"{'; '.join(errors) or 'not every worker started in time'}")
        pids = set(answers)
        logger.info("%d worker processes ready (%s)", len(pids), sorted(pids))
        return executor

    def shared_models(self, timeout_s: float = 30.0) -> dict[int, bool]:
        """Whether each worker process runs the models loaded before it was forked (shared
        memory) rather than its own copy; {} for thread workers."""
        return self._ask_each_worker(_worker_shares_models, timeout_s)

    def memory_trims(self, timeout_s: float = 30.0) -> dict[int, int]:
        """How often each worker process has handed freed memory back to the system
        (``trim_memory_s``); {} for thread workers."""
        return self._ask_each_worker(_worker_trims, timeout_s)

    def _ask_each_worker(self, call: Callable[[float], tuple[int, T]], timeout_s: float
                         ) -> dict[int, T]:
        """``call(hold_s)``'s answer from every worker process, by pid; {} for threads."""
        if self.kind != "process" or self._executor is None:
            return {}
        return _each_worker(self._executor, self.workers, call, timeout_s)

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (none for thread workers)."""
        return sorted(_processes(self._executor))

    async def _restart(self, broken_generation: int, waited: bool = False) -> None:
        """Replace a broken process pool (once, however many utterances saw it break); then
        hand the final recognitions that waited meanwhile to the fresh workers.

        If no fresh pool starts, every final recognition waiting learns why, :attr:`broken`
        says it (the server reports itself not ready), calls raise at once for
        ``RESTART_RETRY_S`` (a storm of recognitions must not start a storm of pools), and
        then a restart is tried again: by the next recognition, or on a timer when none
        comes (clients may not reconnect to a server that says it is not ready; ``waited``:
        the timer's call, which has waited already)."""
        if self._restarting is None:
            self._restarting = asyncio.Lock()
        try:
            async with self._restarting:
                if self._generation != broken_generation or self._closed:
                    return  # another utterance already restarted it
                if self.broken is not None and not waited and \
                        time.monotonic() - self._broken_at < RESTART_RETRY_S:
                    raise ModelError(f"the worker processes are down: {self.broken}")
                started = time.monotonic()
                old = self._executor  # kept until replaced: calls meanwhile wait in line
                how = _how_workers_ended(_processes(old)) if old is not None else ""
                if old is not None:
                    old.shutdown(wait=False, cancel_futures=True)
                try:
                    fresh = await asyncio.to_thread(self._process_pool, 300.0)
                except Exception as e:
                    self._executor = None
                    self.broken = str(e) or type(e).__name__
                    self._broken_at = time.monotonic()
                    logger.error("the worker processes are gone and could not be restarted: "
                                 "%s", self.broken)
                    while self._waiting:  # every final recognition waiting learns why
                        _settle(self._waiting.popleft().future, error=e)
                    self._retry_later()
                    raise
                if self._closed:  # shut down meanwhile
                    fresh.shutdown(wait=False, cancel_futures=True)
                    return
                self._executor = fresh
                self.broken = None
                self._generation += 1
                self.restarts += 1
                logger.error("a worker process died (%s): the pool was restarted in %.1f s",
                             how or "how is not known", time.monotonic() - started)
                if self.on_restart is not None:
                    self.on_restart()
        finally:
            self._dispatch()

    def _retry_later(self) -> None:
        """After a failed restart: try again in ``RESTART_RETRY_S`` unless something else
        did (a recognition) or the pool stopped."""
        loop = asyncio.get_running_loop()
        generation = self._generation

        async def retry() -> None:
            if self.broken is not None and not self._closed and self._generation == generation:
                with contextlib.suppress(Exception):  # it logged why; it tries again later
                    await self._restart(generation, waited=True)

        def start() -> None:
            task = loop.create_task(retry())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.call_later(RESTART_RETRY_S, start)

    @property
    def depth(self) -> int:
        """Utterances admitted and not finished (waiting or running)."""
        return self._in_flight

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:  # created on first use, inside the running loop
            self._slots = asyncio.Semaphore(self.queue_size)
        return self._slots

    async def recognize(self, entry: ModelEntry, request: RecognitionRequest) -> Result:
        """Carry ``request`` out with ``entry``'s model; waits for room when the queue is full."""
        async with self._semaphore():
            return await self._run(entry, request)

    async def try_recognize(self, entry: ModelEntry, request: RecognitionRequest
                            ) -> Result | None:
        """Carry ``request`` out only if a worker is idle now (partials); None when busy (or
        while the workers are being restarted, or are down)."""
        restarting = self._restarting is not None and self._restarting.locked()
        if self._in_flight >= self.workers or self._semaphore().locked() or restarting or \
                self.broken is not None:
            return None
        async with self._semaphore():
            return await self._run(entry, request)

    async def _run(self, entry: ModelEntry, request: RecognitionRequest) -> Result:
        if self.broken is not None and not self._closed:
            await self._restart(self._generation)  # raises while it cannot start
        if self._closed or self._executor is None:
            raise RuntimeError("the inference pool is not running")
        self._in_flight += 1
        try:
            if not request.partial:
                self._loop = asyncio.get_running_loop()
                waiting = _Waiting(entry, request.audio, self._loop.create_future())
                self._waiting.append(waiting)
                self._dispatch()
                return await waiting.future
            loop = asyncio.get_running_loop()
            if self.kind == "process":
                for attempt in (1, 2):
                    generation = self._generation
                    try:
                        return await loop.run_in_executor(
                            self._executor, _worker_partial, entry, request.audio)
                    except BrokenProcessPool:
                        if attempt == 2 or self._closed:
                            raise  # it broke again on a fresh pool: this utterance's doing
                        await self._restart(generation)
                raise AssertionError("unreachable")
            # The lookup runs in the worker thread too: a new generation is built there.
            result: Result = await loop.run_in_executor(
                self._executor, _registry_partial, self.registry, entry, request.audio)
            return result
        finally:
            self._in_flight -= 1

    def _dispatch(self) -> None:
        """Hand waiting final recognitions to the workers that are free: each call takes its
        share of the waiting utterances of the oldest one's model (at most
        ``batch_utterances``; one after a pool broke while it ran, so that a bad utterance
        breaks no other's call)."""
        if self._restarting is not None and self._restarting.locked():
            return  # the restart dispatches them on the fresh pool
        if self._executor is None:
            return  # no workers (a restart failed): the next recognition tries again
        while self._waiting and self._calls < self.workers and not self._closed:
            while self._waiting and self._waiting[0].future.done():  # given up (cancelled)
                self._waiting.popleft()
            if not self._waiting:
                return
            first = self._waiting[0]
            share = -(-len(self._waiting) // (self.workers - self._calls))
            size = 1 if first.alone else min(share, self.batch_utterances)
            taken: list[_Waiting] = []
            for waiting in list(self._waiting):
                if len(taken) == size:
                    break
                if waiting.entry == first.entry and not waiting.future.done() and (
                        not waiting.alone or waiting is first):
                    taken.append(waiting)
            for waiting in taken:
                self._waiting.remove(waiting)
            self._calls += 1
            task = asyncio.get_running_loop().create_task(
                self._call(self._executor, first.entry, taken))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if self.on_batch is not None:
                try:
                    self.on_batch(len(taken))
                except Exception:  # a metric must not stop recognition
                    logger.exception("on_batch failed")

    async def _call(self, executor: concurrent.futures.Executor, entry: ModelEntry,
                    taken: list[_Waiting]) -> None:
        """One worker call for ``taken`` on ``executor`` (the pool when it was dispatched: a
        restart may replace ``self._executor`` before this task first runs)."""
        loop = asyncio.get_running_loop()
        audios = [w.audio for w in taken]
        generation = self._generation
        try:
            if self.kind == "process":
                results = await loop.run_in_executor(
                    executor, _worker_recognize_batch, entry, audios)
            else:
                results = await loop.run_in_executor(
                    executor, _registry_recognize_batch, self.registry, entry, audios)
        except BrokenProcessPool as e:
            self._calls -= 1
            for waiting in taken:
                if waiting.alone or self._closed:  # it broke again on a fresh pool: its doing
                    _settle(waiting.future, error=e)
                else:
                    waiting.alone = True
            again = [w for w in taken if not w.future.done()]
            self._waiting.extendleft(reversed(again))  # first in line on the fresh pool
            try:
                await self._restart(generation)  # it dispatches them
            except Exception as failure:  # no fresh pool: they learn why
                for waiting in again:
                    with contextlib.suppress(ValueError):
                        self._waiting.remove(waiting)
                    _settle(waiting.future, error=failure)
            return
        except BaseException as e:  # the call itself failed: each utterance learns why
            self._calls -= 1
            stopped = isinstance(e, asyncio.CancelledError) and self._closed
            for waiting in taken:
                _settle(waiting.future,
                        error=RuntimeError("the inference pool stopped") if stopped else e)
            self._dispatch()
            if not isinstance(e, Exception):
                raise
            return
        self._calls -= 1
        for waiting, result in zip(taken, results, strict=True):
            if isinstance(result, Exception):
                _settle(waiting.future, error=result)
            else:
                _settle(waiting.future, result=result)
        self._dispatch()

    def _fail_waiting(self) -> None:
        while self._waiting:
            _settle(self._waiting.popleft().future,
                    error=RuntimeError("the inference pool stopped"))

    def shutdown(self) -> None:
        """Stop the workers after the work already started (waits for it); utterances still
        waiting for a worker fail."""
        self._closed = True
        loop = self._loop
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if loop is not None and loop.is_running() and not on_loop:
            loop.call_soon_threadsafe(self._fail_waiting)  # the queue is the loop's
        else:
            self._fail_waiting()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def thread_count() -> int:
        return sum(1 for t in threading.enumerate() if t.name.startswith("assistant-infer"))
