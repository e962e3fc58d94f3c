"""Abusive and unlucky clients get documented answers, never a crash: malformed messages,
odd credentials, guessing keys, DNS rebinding against the keyless local server."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import ServerThread, make_settings
from tests.serving.test_server import DocClient, _check_still_serving, _fatal, doc_client

REPO = Path(__file__).resolve().parents[2]


def _http(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read().decode()


def _handshake_status(server: ServerThread, host: str, origin: str | None = None) -> int:
    """The HTTP status of a raw WebSocket handshake sent with ``Host: host``."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /v1/stream HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", server.app.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


@pytest.mark.parametrize("frame", [
    "[" * 60000,  # nested too deeply for the parser
    '{"type": "start", "client": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
    '{"type": "start", "protocol_version": ' + "1" * 5000 + "}",  # past the digit limit
    '{"type": "start", "min_silence_ms": 1e999}',
    '{"type": "start", "model": ""}',
    '{"type": "start", "sample_rate_hz": ' + "9" * 400 + "}",
])
def test_malformed_messages_are_bad_messages_not_crashes(server: ServerThread,
                                                         frame: str) -> None:
    with doc_client(server) as ws:
        client = DocClient(ws)
        ws.send(frame)
        error = client.next()
        assert error["type"] == "error", error
        if error["fatal"]:  # a start the server could parse but not accept
            assert error["code"] == "bad_audio_format" and client.rest() == []
            assert client.close_code == 4002
            return
        assert error["code"] == "bad_message" and len(error["message"]) < 400
        assert client.start()["type"] == "ready"  # the session goes on


def test_non_ascii_credentials_are_unauthorized(vad: Any) -> None:
    from websockets.sync.client import connect

    with ServerThread(make_settings(api_keys="right-key"), vad) as server:
        for token in ("v1.x.%C3%A9", "v1.%C3%A9.x"):
            with connect(f"{server.url}?token={token}", open_timeout=10) as ws:
                error, close = _fatal(DocClient(ws))
                assert (error["code"], close) == ("unauthorized", 4001)
            status, headers, _ = _http(f"{server.http}/v1/models?token={token}")
            assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
        assert _http(f"{server.http}/v1/models", Authorization="Bearer k\u00e9y".encode(
            ).decode("latin-1"))[0] == 401


def test_failed_authentication_is_rate_limited_per_address(vad: Any) -> None:
    with ServerThread(make_settings(api_keys="right-key", auth_failures_per_min=3.0),
                      vad) as server:
        for _ in range(3):
            with doc_client(server, Authorization="Bearer guess") as ws:
                error, close = _fatal(DocClient(ws))
                assert (error["code"], close) == ("unauthorized", 4001)
        # The address spent its budget: refused before its credentials are looked at,
        # the right key included, until the budget refills.
        with doc_client(server, Authorization="Bearer right-key") as ws:
            error, close = _fatal(DocClient(ws))
            assert (error["code"], close) == ("rate_limited", 4029)
            assert 0 < error["retry_after_s"] <= 20
        status, headers, _ = _http(f"{server.http}/v1/token", "POST",
                                   Authorization="Bearer right-key")
        assert status == 429 and 1 <= int(headers["Retry-After"]) <= 20
        assert _http(f"{server.http}/healthz")[0] == 200  # what needs no key is unaffected
        metrics = _http(f"{server.http}/metrics")[2]
        assert 'assistant_errors_total{code="rate_limited"} 1.0' in metrics


def test_keyless_server_answers_only_loopback_host_names(server: ServerThread) -> None:
    port = server.app.port
    evil = f"rebind.evil.example:{port}"
    assert _handshake_status(server, evil, origin=f"http://{evil}") == 403
    for path, method in (("/v1/models", "GET"), ("/v1/reload", "POST"), ("/", "GET")):
        status, _, body = _http(f"{server.http}{path}", method, Host=evil,
                                Origin=f"http://{evil}")
        assert status == 403 and "allowed-hosts" in body, (path, status, body)
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}",
                 f"app.localhost:{port}"):
        assert _http(f"{server.http}/v1/models", Host=host)[0] == 200, host
        assert _handshake_status(server, host) == 101, host
    assert _http(f"{server.http}/healthz", Host=f"10.1.2.3:{port}")[0] == 200  # probes by IP


def test_named_hosts_and_keyed_servers_answer_other_names(vad: Any) -> None:
    with ServerThread(make_settings(allowed_hosts="assistant.lan"), vad) as server:
        port = server.app.port
        assert _http(f"{server.http}/v1/models", Host=f"assistant.lan:{port}")[0] == 200
        assert _http(f"{server.http}/v1/models", Host=f"other.lan:{port}")[0] == 403
    with ServerThread(make_settings(api_keys="k"), vad) as keyed:
        status, _, _ = _http(f"{keyed.http}/v1/models", Host="any.name.example",
                             Authorization="Bearer k")
        assert status == 200
        assert json.loads(_http(f"{keyed.http}/v1/models", Authorization="Bearer k")[2])[
            "default"] == "home"


def test_a_dead_worker_process_is_replaced_and_counted(vad: Any, speak: Any,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    import signal
    import time

    lights = speak("turn off the bedroom lights")

    with ServerThread(make_settings(worker_kind="process", workers=1), vad) as server, \
            caplog.at_level(logging.ERROR, logger="assistant.serving.inference"):
        pool = server.app.pool
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)  # the kernel's OOM killer, say
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and pid in pool.worker_pids():
            time.sleep(0.05)
        _check_still_serving(server, lights)
        assert server.app.metrics.value("assistant_worker_restarts_total") == 1
        (new_pid,) = pool.worker_pids()
        assert new_pid != pid
    # The log says which worker died and how (an out-of-memory kill is a SIGKILL).
    assert f"a worker process died (pid {pid} killed by SIGKILL)" in caplog.text


@pytest.mark.parametrize("trim_memory_s", [0.2, -1.0])
def test_idle_workers_hand_freed_memory_back(vad, speak, trim_memory_s: float) -> None:  # type: ignore[no-untyped-def]
    """Workers after a recognition and a pause; the server process once its last session
    has closed (not while one is open)."""
    lights = speak("turn off the bedroom lights")
    settings = make_settings(worker_kind="process", workers=1, trim_memory_s=trim_memory_s)
    with ServerThread(settings, vad) as server:
        services = server.app.services
        assert list(server.app.pool.memory_trims().values()) == [0]
        with doc_client(server) as open_one:  # a session stays open meanwhile
            DocClient(open_one).start()
            _check_still_serving(server, lights)  # one recognition, then a pause
            deadline = time.monotonic() + (5.0 if trim_memory_s >= 0 else 0.6)
            while time.monotonic() < deadline:
                (trims,) = server.app.pool.memory_trims().values()
                if trims:
                    break
                time.sleep(0.1)
            assert services.memory_trims == 0  # a session is open
        deadline = time.monotonic() + (5.0 if trim_memory_s >= 0 else 0.6)
        while time.monotonic() < deadline and not services.memory_trims:
            time.sleep(0.05)
    assert trims >= 1 if trim_memory_s >= 0 else trims == 0
    assert services.memory_trims == (1 if trim_memory_s >= 0 else 0)


def test_worker_processes_share_the_models_loaded_before_the_fork() -> None:
    """In a fresh process (the forkserver is one per process, and preloads for the first
    pool only): the workers run the forkserver's models, and still answer."""
    script = """
from tests.serving.conftest import ServerThread, make_settings
with ServerThread(make_settings(worker_kind="process", workers=2)) as server:
    shared = server.app.pool.shared_models()
    print(sorted(shared.values()), len(shared))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[True, True] 2", out.stdout
