"""Final recognitions that wait together go to a worker together (serving/inference.py), and
each still gets its own answer: over the wire, and through a worker pool that broke."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pytest
from websockets.sync.client import connect

from assistant.utterance import RecognitionRequest, Utterance
from tests.serving.conftest import ServerThread, make_settings
from tests.serving.test_server import DocClient

COMMANDS = [("turn off the bedroom lights", "lightsOff", {"room": "bedroom"}),
            ("set a timer for five minutes", "setTimer", {"duration": 5, "unit": "minutes"}),
            ("what time is it", "getTime", {})]


@pytest.fixture(scope="module")
def commands(speak) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    return [speak(text) for text, _, _ in COMMANDS]


def _calls(server: ServerThread) -> tuple[float, float]:
    """(worker calls, utterances in them) so far."""
    metrics = server.app.metrics
    return (metrics.value("assistant_recognition_call_utterances_count"),
            metrics.value("assistant_recognition_call_utterances_sum"))


@pytest.mark.parametrize(("batch_utterances", "device"),
                         [(8, "cpu"), (1, "cpu"), (8, "cpu-pytorch")])
def test_utterances_waiting_together_are_recognized_together(
        vad: Any, commands: list[np.ndarray], batch_utterances: int, device: str) -> None:
    """Nine clients send a command at once to one worker process: the utterances that queue
    behind the first share calls (unless batch_utterances is 1), and every client gets the
    answer it asked for; also with the speech model on PyTorch (``--device cuda``'s path,
    here on the CPU)."""
    if device != "cpu":
        pytest.importorskip("torch")
    settings = make_settings(worker_kind="process", workers=1,
                             batch_utterances=batch_utterances, recognizer={"device": device})
    with ServerThread(settings, vad) as server:
        answers: list[tuple[Any, ...] | None] = [None] * 9
        ready = threading.Barrier(9)

        def client(i: int) -> None:
            with connect(server.url, open_timeout=10) as ws:
                doc = DocClient(ws)
                doc.start()
                ready.wait(timeout=30)
                doc.audio(commands[i % 3])
                doc.command("finalize")
                result = doc.until("result", timeout_s=60)
                answers[i] = (result["intent"], result["slots"])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert answers == [COMMANDS[i % 3][1:] for i in range(9)]
        calls, utterances = _calls(server)
    assert utterances == 9
    if batch_utterances == 1:
        assert calls == 9
    else:
        assert calls < 9  # some utterances shared a call


def _kill_the_worker(pool: Any) -> None:
    """SIGKILL the pool's one worker process (the OOM killer, say) and wait until the pool
    has seen it go."""
    (pid,) = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pid in pool.worker_pids():
        time.sleep(0.05)


def test_a_batch_whose_worker_died_is_recognized_again_one_by_one(
        vad: Any, commands: list[np.ndarray]) -> None:
    settings = make_settings(worker_kind="process", workers=1, batch_utterances=8)
    with ServerThread(settings, vad) as server:
        pool = server.app.pool
        _kill_the_worker(pool)
        entry = server.app.services.catalog.get(None)
        sizes: list[int] = []
        pool.on_batch = sizes.append

        async def recognize_all() -> list[Any]:
            requests = [RecognitionRequest(Utterance(i, commands[i % 3]), 0) for i in range(4)]
            return await asyncio.gather(*(pool.recognize(entry, r) for r in requests))

        results = server.call(recognize_all(), timeout_s=120)
    assert [(r.intent, r.slots) for r in results] == [COMMANDS[i % 3][1:] for i in range(4)]
    assert pool.restarts == 1
    # The call that found the pool broken held the first utterance; it then went alone on
    # the fresh pool, and the three that waited meanwhile went together.
    assert sizes == [1, 1, 3]


def test_when_no_fresh_pool_can_start_the_waiting_utterances_learn_why(
        vad: Any, commands: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool that broke and cannot be restarted (say, no memory to fork) answers every
    utterance waiting for it with the reason, instead of leaving them waiting; reports
    itself not ready; refuses at once for a while, then tries again."""
    from assistant.errors import ModelError

    settings = make_settings(worker_kind="process", workers=1, batch_utterances=8)
    with ServerThread(settings, vad) as server:
        pool = server.app.pool
        _kill_the_worker(pool)

        def cannot_fork(timeout_s: float) -> Any:
            raise OSError("cannot fork a worker: out of memory")

        monkeypatch.setattr(pool, "_process_pool", cannot_fork)
        entry = server.app.services.catalog.get(None)

        async def recognize_all() -> list[Any]:
            requests = [RecognitionRequest(Utterance(i, commands[i % 3]), 0) for i in range(3)]
            return await asyncio.gather(*(pool.recognize(entry, r) for r in requests),
                                        return_exceptions=True)

        outcomes = server.call(recognize_all(), timeout_s=60)
        assert [type(o) for o in outcomes] == [OSError] * 3
        assert "out of memory" in str(outcomes[0])
        assert pool.depth == 0
        # Meanwhile the server says it is not ready, and why; the next recognition tries
        # the restart again, and once a pool starts all is well.
        assert not server.app.ready
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.http}/readyz", timeout=10)
        with refused.value as response:
            assert response.code == 503
            assert "workers down: cannot fork a worker" in response.read().decode()
        with connect(server.url, open_timeout=10) as late:  # a new stream is told why
            error = json.loads(late.recv(timeout=10))
        assert (error["code"], error["message"]) == (
            "not_ready", "the recognition workers are down: cannot fork a worker: out of memory")
        monkeypatch.undo()
        with pytest.raises(ModelError, match="the worker processes are down: cannot fork"):
            server.call(pool.recognize(entry, RecognitionRequest(Utterance(8, commands[0]),
                                                                 0)), timeout_s=60)
        assert pool.restarts == 0  # failed a moment ago: no new pool tried yet
        monkeypatch.setattr("serving.inference.RESTART_RETRY_S", 0.0)
        again = server.call(pool.recognize(entry, RecognitionRequest(
            Utterance(9, commands[0]), 0)), timeout_s=120)
        assert (again.intent, again.slots) == COMMANDS[0][1:]
        assert server.app.ready and pool.broken is None and pool.restarts == 1


def test_a_pool_that_could_not_restart_tries_again_by_itself(
        vad: Any, commands: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """With no recognition coming (clients do not reconnect to a server that is not
    ready), a failed restart is tried again on a timer, and the server becomes ready."""
    monkeypatch.setattr("serving.inference.RESTART_RETRY_S", 1.0)
    settings = make_settings(worker_kind="process", workers=1)
    with ServerThread(settings, vad) as server:
        pool = server.app.pool
        _kill_the_worker(pool)
        real = pool._process_pool
        tries: list[float] = []

        def fails_once(timeout_s: float) -> Any:
            tries.append(time.monotonic())
            if len(tries) == 1:
                raise OSError("cannot fork a worker: out of memory")
            return real(timeout_s)

        monkeypatch.setattr(pool, "_process_pool", fails_once)
        entry = server.app.services.catalog.get(None)
        with pytest.raises(OSError):
            server.call(pool.recognize(entry, RecognitionRequest(Utterance(0, commands[0]), 0)),
                        timeout_s=60)
        assert not server.app.ready
        deadline = time.monotonic() + 120
        while not server.app.ready and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.app.ready and pool.restarts == 1 and len(tries) == 2
        assert tries[1] - tries[0] >= 0.9  # after the retry interval, not at once
        result = server.call(pool.recognize(entry, RecognitionRequest(
            Utterance(1, commands[1]), 0)), timeout_s=60)
        assert (result.intent, result.slots) == COMMANDS[1][1:]


def test_a_worker_that_cannot_load_its_models_stops_the_start_with_the_reason(
        server: ServerThread, tmp_path: Any) -> None:
    """A worker process that cannot load its models (here the speech model's folder is
    gone) fails the pool's start with the worker's own message, whichever of the workers it
    was (it used to break the pool: a BrokenProcessPool traceback, no reason)."""
    from assistant.errors import ModelError
    from serving.config import PoolConfig
    from serving.inference import InferencePool

    broken = [dataclasses.replace(e, speech_dir=tmp_path / "missing")
              for e in server.app.services.catalog.entries()]
    pool = InferencePool(PoolConfig(workers=2, worker_kind="process"))
    with pytest.raises(ModelError, match=r"could not load the models: .*missing"):
        pool.start(broken, timeout_s=120)


def test_a_worker_stuck_loading_its_models_fails_the_start_in_time(
        server: ServerThread, tmp_path: Any) -> None:
    """A worker that never finishes loading (here its model's tokenizer is a named pipe that
    nobody writes: the read blocks for ever) fails the start after ``timeout_s`` with a
    clear error, and the start does not wait for the stuck process."""
    from assistant.errors import ModelError
    from serving.config import PoolConfig
    from serving.inference import InferencePool

    real = server.app.services.catalog.entries()
    stuck = tmp_path / "stuck"
    stuck.mkdir()
    metadata = json.loads((real[0].speech_dir / "metadata.json").read_text())
    metadata["files"] = {}
    (stuck / "metadata.json").write_text(json.dumps(metadata))
    os.mkfifo(stuck / "tokenizer.json")
    entries = [dataclasses.replace(e, speech_dir=stuck) for e in real]
    pool = InferencePool(PoolConfig(workers=1, worker_kind="process"))
    started = time.monotonic()
    with pytest.raises(ModelError, match="did not load the models within 5 s"):
        pool.start(entries, timeout_s=5)
    assert time.monotonic() - started < 60
