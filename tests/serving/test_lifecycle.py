"""``assistant serve`` as a process: it says where it listens, and SIGTERM drains in-flight
utterances before closing with 1001."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_drains_the_utterance_in_flight(speak) -> None:  # type: ignore[no-untyped-def]
    audio = np.concatenate([speak("turn off the bedroom lights"), np.zeros(16000, np.float32)])
    pcm = np.round(audio * 32767).astype("<i2").tobytes()
    env = {**os.environ, "ASSISTANT_WORKER_KIND": "thread", "ASSISTANT_LOG_JSON": "true"}
    server = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", "0"],
                              cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    try:
        url = None
        deadline = time.monotonic() + 120
        before = []
        for line in server.stderr:
            before.append(line)
            match = re.search(r"listening on (ws://\S+)", line)
            if match:
                url = match.group(1)
                break
            assert time.monotonic() < deadline, "no 'listening on' line"
        assert url is not None and url.endswith("/v1/stream")
        with connect(url) as ws:
            ws.send(json.dumps({"type": "start"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            for i in range(0, len(pcm), 3200):
                ws.send(pcm[i : i + 3200])
            while json.loads(ws.recv(timeout=10))["type"] != "speech_ended":
                pass
            server.send_signal(signal.SIGTERM)  # the result is not sent yet (or just now)
            events = []
            with pytest.raises(ConnectionClosed):
                while True:
                    events.append(json.loads(ws.recv(timeout=20)))
            assert ws.close_code == 1001 and "shutting down" in (ws.close_reason or "")
        kinds = [e["type"] for e in events]
        assert "result" in kinds, events
        result = next(e for e in events if e["type"] == "result")
        assert result["intent"] == "lightsOff"
        assert events[-1] == {"type": "error", "code": "shutting_down",
                              "message": "the server is shutting down", "fatal": True,
                              "retry_after_s": None}
        assert server.wait(timeout=30) == 0
        # With JSON logs every line of stderr is one JSON object, "ready" and "stopped" too.
        lines = [*before, *server.stderr.read().splitlines()]
        logs = [json.loads(line) for line in lines if line.strip()]
        assert any(r["message"].startswith("ready: listening on") for r in logs)
        assert any(r["message"] == "stopped" for r in logs)
        assert any(r.get("session_id") and r["message"].startswith("result 0") for r in logs)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stderr.close()


def _long_command(speak) -> bytes:  # type: ignore[no-untyped-def]
    """About 9 s of speech in one utterance (slow to recognize), then silence."""
    words = speak("set a timer for twenty five minutes and turn off the bedroom lights",
                  pad_s=0.1)
    audio = np.concatenate([words, words, words, np.zeros(16000, np.float32)])
    return np.round(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def test_draining_keeps_answering_probes_and_says_why_it_closes(speak, vad) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import urllib.error
    import urllib.request

    from tests.serving.conftest import ServerThread, make_settings

    pcm = _long_command(speak)
    for drain_timeout_s in (30.0, 0.05):  # time enough for the result, then far too little
        server = ServerThread(make_settings(workers=1, drain_timeout_s=drain_timeout_s), vad)
        with server, connect(server.url) as ws:
            ws.send(json.dumps({"type": "start", "mode": "push_to_talk"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            for i in range(0, len(pcm), 32000):
                ws.send(pcm[i : i + 32000])
            ws.send(json.dumps({"type": "finalize"}))
            while json.loads(ws.recv(timeout=20))["type"] != "speech_ended":
                pass
            shutdown = asyncio.run_coroutine_threadsafe(server.app.shutdown(), server.loop)
            # While it drains, probes get 503 (not a refused connection) and new streams
            # are told it is shutting down.
            with pytest.raises(urllib.error.HTTPError) as ready:
                urllib.request.urlopen(f"{server.http}/readyz", timeout=5)
            with ready.value as response:
                assert (response.code, response.read()) == (503, b"draining\n")
            if drain_timeout_s > 1:
                with connect(server.url) as late:
                    refused = json.loads(late.recv(timeout=10))
                    assert refused["code"] == "shutting_down"
            events = []
            with pytest.raises(ConnectionClosed):
                while True:
                    events.append(json.loads(ws.recv(timeout=60)))
            assert ws.close_code == 1001
            assert events[-1]["type"] == "error" and events[-1]["code"] == "shutting_down"
            kinds = [e["type"] for e in events]
            if drain_timeout_s > 1:
                assert kinds == ["result", "error"], kinds
            shutdown.result(timeout=60)


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _descendants(pid: int) -> set[int]:
    found = _children(pid)
    for child in list(found):
        found |= _descendants(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_of_the_server_ends_its_worker_processes() -> None:
    server = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", "0",
                               "--workers", "2", "--worker-kind", "process"],
                              cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    try:
        for line in server.stderr:
            if "ready: listening on" in line:
                break
        workers = {c for c in _descendants(server.pid) if _alive(c)}
        # the two workers, the forkserver that forked them, multiprocessing's tracker
        assert len(workers) >= 4, workers
        server.kill()
        server.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stderr.close()
