"""The feeder thread: calls in order under their session's lock, VAD looked ahead in batches."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from assistant.vad import FRAME_SAMPLES, SileroVad, VadState
from serving.feeder import Feeder, FeederClosed


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


@pytest.mark.parametrize("gather_s", [0.0, 0.02])
def test_many_streams_gather_into_rounds(vad: SileroVad, gather_s: float) -> None:
    """Eight streams sending 500 calls a second: taken a few at a time without gathering, in
    rounds of several when each round waits for the others' audio."""
    feeder = Feeder(vad, gather_s=gather_s)
    states = [VadState() for _ in range(8)]
    frames = _frames(7, 1)

    async def stream(i: int) -> int:
        lock = threading.Lock()
        await asyncio.sleep(0.002 * i)  # streams out of step, as real ones are
        for _ in range(25):
            await feeder.call(lock, vad.process, frames[0], states[i],
                              upcoming=lambda i=i: (states[i], frames))
            await asyncio.sleep(0.013 + 0.001 * i)
        return 25

    async def main() -> list[int]:
        return await asyncio.gather(*(stream(i) for i in range(8)))

    try:
        assert asyncio.run(main()) == [25] * 8
    finally:
        feeder.shutdown()
    stats = feeder.stats
    assert stats.calls == 200 and stats.frames_used == stats.frames_ahead
    if gather_s:
        assert stats.rounds <= 80 and stats.frames_ahead >= 150
    else:
        assert stats.rounds >= 110


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
