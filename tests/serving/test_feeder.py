"""The feeder thread: calls in order under their session's lock, VAD looked ahead in batches."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from assistant.vad import FRAME_SAMPLES, SileroVad, VadState
from serving.feeder import Feeder, FeederClosed, FeederStats


def _frames(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((n, FRAME_SAMPLES))).astype(np.float32)


def test_calls_queued_together_share_vad_runs_and_results(vad: SileroVad) -> None:
    feeder = Feeder(vad)
    gate = threading.Event()
    states = [VadState() for _ in range(3)]
    frames = [_frames(i, 4 + i) for i in range(3)]
    alone = [vad.probabilities(fs.reshape(-1)) for fs in frames]

    def feed(i: int) -> list[float]:
        return [vad.process(f, states[i]) for f in frames[i]]

    def broken() -> Any:
        raise RuntimeError("no frames today")

    async def main() -> list[Any]:
        locks = [threading.Lock() for _ in range(4)]
        blocker = asyncio.ensure_future(feeder.call(locks[3], gate.wait, 5.0))
        await asyncio.sleep(0.05)  # the thread now waits in the blocker: the rest queue
        calls = [feeder.call(locks[i], feed, i, upcoming=lambda i=i: (states[i], frames[i]))
                 for i in range(3)]
        failing = feeder.call(locks[3], lambda: 1 // 0, upcoming=broken)
        stopping = feeder.call(locks[3], lambda: next(iter(())))  # raises StopIteration
        tasks = [asyncio.ensure_future(c) for c in (*calls, stopping, failing)]
        await asyncio.sleep(0.05)
        gate.set()
        await blocker
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        *got, stopped, error = asyncio.run(main())
    finally:
        feeder.shutdown()
    assert isinstance(error, ZeroDivisionError)  # the caller gets the call's own error ...
    assert isinstance(stopped, RuntimeError)  # ... or one a future can hold
    assert "StopIteration" in str(stopped)
    for mine, expected in zip(got, alone, strict=True):
        np.testing.assert_allclose(mine, expected, atol=1e-5, rtol=0)
    assert feeder.stats.vad_runs == 6 and feeder.stats.frames_ahead == 4 + 5 + 6
    assert feeder.stats.frames_used == 4 + 5 + 6
    assert all(not state.foreseen for state in states)  # every frame came from the batches


def test_a_stopped_feeder_cancels_what_waits_and_refuses_more(vad: SileroVad) -> None:
    feeder = Feeder(vad)
    gate = threading.Event()
    lock = threading.Lock()

    async def main() -> None:
        running = asyncio.ensure_future(feeder.call(lock, gate.wait, 5.0))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(feeder.call(lock, lambda: "never"))
        await asyncio.sleep(0.01)
        stopper = threading.Thread(target=feeder.shutdown)
        stopper.start()
        await asyncio.sleep(0.05)
        gate.set()  # the call in progress finishes ...
        assert await running is True
        with pytest.raises(asyncio.CancelledError):  # ... the one waiting never runs
            await waiting
        stopper.join(5)
        with pytest.raises(FeederClosed, match="stopping"):
            await feeder.call(lock, lambda: None)

    asyncio.run(main())


def _eight_streams(vad: SileroVad, gather_s: float, fast: bool = False
                  ) -> tuple[FeederStats, float]:
    """Eight real-time-like streams (a call every 13-20 ms each), and with ``fast`` a ninth
    that sends 100 calls back to back while the eight go on; the feeder's counters after
    them, and how long the fast stream took."""
    feeder = Feeder(vad, gather_s=gather_s)
    states = [VadState() for _ in range(9)]
    frames = _frames(7, 1)
    fast_done = asyncio.Event() if fast else None
    fast_s = 0.0

    async def stream(i: int) -> None:
        nonlocal fast_s
        lock = threading.Lock()
        started = time.perf_counter()
        await asyncio.sleep(0.002 * i)  # streams out of step, as real ones are
        calls = 0
        while (calls < 100 if i == 8 else
               calls < 25 or (fast_done is not None and not fast_done.is_set())):
            await feeder.call(lock, vad.process, frames[0], states[i],
                              upcoming=lambda i=i: (states[i], frames))
            calls += 1
            if i < 8:
                await asyncio.sleep(0.013 + 0.001 * i)
        if i == 8 and fast_done is not None:
            fast_s = time.perf_counter() - started
            fast_done.set()

    async def main() -> None:
        await asyncio.gather(*(stream(i) for i in range(9 if fast else 8)))

    try:
        asyncio.run(main())
    finally:
        feeder.shutdown()
    return feeder.stats, fast_s


def test_many_streams_gather_into_rounds(vad: SileroVad) -> None:
    """Eight streams: their calls are taken a few at a time without waiting, in rounds of
    several when each round waits for the others' audio."""
    (plain, _), (gathered, _) = _eight_streams(vad, 0.0), _eight_streams(vad, 0.02)
    for stats in (plain, gathered):
        assert stats.calls == 200 and stats.frames_used == stats.frames_ahead
    assert gathered.rounds < 0.6 * plain.rounds
    assert gathered.frames_ahead >= 150  # most frames ran in shared batches


def test_a_fast_stream_among_many_is_not_held_back(vad: SileroVad) -> None:
    """A stream sending back to back while eight others talk: rounds it is waiting in do
    not wait for others (or it would wait once per call)."""
    stats, fast_s = _eight_streams(vad, 0.05, fast=True)
    assert stats.calls >= 300
    assert fast_s < 2.5  # 100 waits of 50 ms would take 5 s


def test_a_stream_alone_never_waits(vad: SileroVad) -> None:
    """A lone stream fed as fast as it goes (a file sent faster than real time): no round
    waits for others, however many calls a second it makes."""
    feeder = Feeder(vad, gather_s=0.05)
    state, frames = VadState(), _frames(8, 1)

    async def main() -> float:
        lock = threading.Lock()
        started = time.perf_counter()
        for _ in range(100):
            await feeder.call(lock, vad.process, frames[0], state,
                              upcoming=lambda: (state, frames))
        return time.perf_counter() - started

    try:
        took_s = asyncio.run(main())
    finally:
        feeder.shutdown()
    assert feeder.stats.rounds == 100
    assert took_s < 2.5  # 100 waits of 50 ms would take 5 s
