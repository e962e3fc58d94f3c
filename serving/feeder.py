"""The feeder: one thread that drives the sessions off the event loop, batching their VAD.

Every listener's session is fed here (resampling, VAD, segmentation, the pipeline's
bookkeeping), never on the event loop, one call into a session at a time (its lock). Calls
queue while the thread works; each round takes all of them and first runs the voice-activity
detection of the audio they carry for all their streams together, one batched model run per
frame position (:meth:`~assistant.vad.SileroVad.look_ahead`), so the calls then find their
frames' probabilities computed. Nothing else changes: a call whose stream went another way
(a ``finalize`` or a refused frame before its audio) computes afresh, so every session gets
the results it would get alone.

Why: with many real-time streams the VAD was most of the server process' work. Silero runs
one 32 ms frame in about 0.22 ms alone and 0.06 ms per frame in a batch of 32-100 (2 cores),
and 100 streams give it 3,125 frames a second: about two thirds of a core one by one, which
the recognition workers then lacked (docs/scaling.md). A round takes what queued while the
last one ran, so a server with a few streams runs calls one by one as before, with no
waiting; while many streams send audio (GATHER_MIN_STREAMS or more in the last
GATHER_WINDOW_S), each round first waits GATHER_S (10 ms) for the others' audio to join it,
unless a stream sending faster than real time (a file, say) is among those waiting: its
chunks would each wait in turn.

One thread: with 64 real-time streams on 2 cores under outside load, two feeder threads took
CPU from the recognition workers (client-side latency p50 1.4-1.6 s against 0.97-1.05 s with
one; ``benchmarks/load.py``, docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from assistant.vad import SileroVad, VadState

logger = logging.getLogger("assistant.serving.feeder")

T = TypeVar("T")
Upcoming = Callable[[], "tuple[VadState, np.ndarray] | None"]


class FeederClosed(RuntimeError):
    """A call came after :meth:`Feeder.shutdown`."""


@dataclass
class _Call:
    lock: threading.Lock
    call: Callable[..., Any]
    args: tuple[Any, ...]
    upcoming: Upcoming | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass
class FeederStats:
    """What the feeder did (for tests and benchmarks)."""

    rounds: int = 0
    calls: int = 0
    vad_runs: int = 0  # batched model runs of look-aheads
    frames_ahead: int = 0  # frames whose probabilities were computed in them ...
    frames_used: int = 0  # ... and those the calls then took (the rest went another way)


SETTLE_EVERY_S = 0.002  # results wait at most about this long for others of their round
# While GATHER_MIN_STREAMS or more streams sent audio in the last GATHER_WINDOW_S, a round
# waits GATHER_S for more before it starts, unless one of the streams waiting was served in
# the round before (it sends faster than real time, a file say, and would wait once per
# chunk): rounds of one call each ran the VAD a frame at a time. 100 quiet streams cost 0.59
# cores without the wait, 0.42 with 5 ms and 0.37 with 10 ms; 100 streams of commands p95
# 317-330 ms without, 211-268 ms with 10 ms (less CPU left more for recognition;
# benchmarks/load.py, docs/scaling.md). A first rule on the rate of calls alone made a Home
# Assistant pipeline's transcript 5x slower (benchmarks/home_assistant.py, one connection
# per command with its audio sent at once: median 71 -> 344 ms).
GATHER_S = 0.010
GATHER_MIN_STREAMS = 8
GATHER_WINDOW_S = 0.25  # a real-time stream sends every 100 ms or so


class Feeder:
    """See module docs. ``await feeder.call(lock, fn, *args, upcoming=...)`` runs
    ``fn(*args)`` under ``lock`` in the feeder thread; ``upcoming()`` (called there, under the
    same lock) says which VAD state and frames ``fn`` will run, or None."""

    def __init__(self, vad: SileroVad, name: str = "assistant-feed",
                 gather_s: float = GATHER_S, gather_min_streams: int = GATHER_MIN_STREAMS,
                 on_vad_frames: Callable[[str, int], None] | None = None):
        self.vad = vad
        # Told after each round how many VAD frames ran "batched" and "alone" since the last.
        self.on_vad_frames = on_vad_frames
        self._frames_reported = (vad.frames_batched, vad.frames_alone)
        self.gather_s = gather_s
        self.gather_min_streams = gather_min_streams
        self._streams_seen_s: dict[int, float] = {}  # a session's lock -> its last audio
        self.stats = FeederStats()
        self._queue: list[_Call] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def call(self, lock: threading.Lock, call: Callable[..., T], *args: Any,
                   upcoming: Upcoming | None = None) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._wake:
            if self._closed:
                raise FeederClosed("the server is stopping: no more audio is processed")
            if not self._thread.is_alive():
                raise FeederClosed("the feeder thread is gone (see the log)")
            self._queue.append(_Call(lock, call, args, upcoming, loop, future))
            self._wake.notify()
        return await future

    def shutdown(self) -> None:
        """Run no more calls: those waiting are cancelled, the one running finishes."""
        with self._wake:
            self._closed = True
            waiting, self._queue = self._queue, []
            self._wake.notify()
        _cancel(waiting)
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        served: set[int] = set()  # the streams (session locks) with audio in the last round
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                waiting = {id(item.lock) for item in self._queue if item.upcoming is not None}
            talking = self._streams_talking(time.perf_counter())
            if self.gather_s > 0 and talking >= self.gather_min_streams and not waiting & served:
                time.sleep(self.gather_s)  # let the other streams' audio join this round
            with self._wake:
                calls, self._queue = self._queue, []
            now_s = time.perf_counter()
            served = {id(item.lock) for item in calls if item.upcoming is not None}
            for key in served:
                self._streams_seen_s[key] = now_s
            try:
                self._round(calls, len(served))
            except BaseException:  # a bug here must not leave sessions waiting forever
                logger.exception("a feeder round failed; its calls are cancelled")
                _cancel(calls)

    def _streams_talking(self, now_s: float) -> int:
        """Streams that sent audio in the last GATHER_WINDOW_S (older ones are forgotten)."""
        seen = self._streams_seen_s
        for key in [k for k, t in seen.items() if now_s - t > GATHER_WINDOW_S]:
            del seen[key]
        return len(seen)

    def _round(self, calls: list[_Call], audio_streams: int) -> None:
        self.stats.rounds += 1
        foreseen = self._look_ahead(calls, audio_streams)
        done: list[tuple[_Call, Any, BaseException | None]] = []
        settled_s = time.perf_counter()
        for index, item in enumerate(calls):
            if self._closed:  # stopping: what has not started never will
                _cancel(calls[index:])
                break
            if item.future.cancelled():  # its caller went away before it ran
                continue
            try:
                with item.lock:
                    done.append((item, item.call(*item.args), None))
            except BaseException as e:  # handed to the caller, who raises it
                done.append((item, None, e))
            self.stats.calls += 1
            # Waking a loop from another thread writes to its self-pipe (8 % of the server
            # process' time with 100 streams when every call did): results go in groups, but
            # none waits more than SETTLE_EVERY_S for the rest of its round.
            if time.perf_counter() - settled_s >= SETTLE_EVERY_S:
                _settle_all(done)
                done, settled_s = [], time.perf_counter()
        self.stats.frames_used += sum(state.foreseen_taken - taken
                                      for state, taken in foreseen)
        _settle_all(done)
        self._report_frames()

    def _report_frames(self) -> None:
        if self.on_vad_frames is None:
            return
        now = (self.vad.frames_batched, self.vad.frames_alone)
        for how, count, before in zip(("batched", "alone"), now, self._frames_reported,
                                      strict=True):
            if count > before:
                self.on_vad_frames(how, count - before)
        self._frames_reported = now

    def _look_ahead(self, calls: list[_Call], audio_streams: int
                    ) -> list[tuple[VadState, int]]:
        """Run ahead the VAD of the calls' streams (``audio_streams`` of them carry audio);
        returns each stream's state and how many foreseen frames it had taken before."""
        streams: list[tuple[VadState, np.ndarray]] = []
        seen: set[int] = set()
        if audio_streams < 2:
            return []  # one stream alone gains nothing from running ahead
        for item in calls:
            if item.upcoming is None:
                continue
            try:
                with item.lock:
                    found = item.upcoming()
                if found is None or not found[1].shape[0] or id(found[0]) in seen:
                    continue
            except Exception:  # never fatal: the call computes its frames itself
                logger.exception("looking ahead failed")
                continue
            seen.add(id(found[0]))
            streams.append(found)
        if len(streams) < 2:
            return []  # one stream alone gains nothing from running ahead
        try:
            self.stats.vad_runs += self.vad.look_ahead(streams)
        except Exception:  # never fatal: the calls compute their frames themselves
            logger.exception("looking ahead failed")
            for state, _ in streams:
                state.foreseen.clear()
            return []
        self.stats.frames_ahead += sum(frames.shape[0] for _, frames in streams)
        return [(state, state.foreseen_taken) for state, _ in streams]


def _settle_all(done: list[tuple[_Call, Any, BaseException | None]]) -> None:
    for loop in {id(item.loop): item.loop for item, _, _ in done}.values():
        _settle(loop, [d for d in done if d[0].loop is loop])


def _cancel(calls: list[_Call]) -> None:
    for item in calls:
        _settle(item.loop, [(item, None, None)], cancel=True)


def _settle(loop: asyncio.AbstractEventLoop,
            done: list[tuple[_Call, Any, BaseException | None]], cancel: bool = False) -> None:
    """Hand calls' results (or errors, or cancellation) to their futures on ``loop``."""
    def settle() -> None:
        for item, result, error in done:
            if item.future.done():
                continue
            try:
                if cancel:
                    item.future.cancel()
                elif error is not None:
                    if isinstance(error, StopIteration):  # a future refuses to hold one
                        error = RuntimeError(f"StopIteration raised in {item.call!r}")
                    item.future.set_exception(error)
                else:
                    item.future.set_result(result)
            except Exception:  # one bad result must not keep the others from their callers
                logger.exception("could not hand a result to its caller")

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(settle)
