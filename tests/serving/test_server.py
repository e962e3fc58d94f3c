"""A real server on loopback with real models, driven by a client written from docs/protocol.md.

``DocClient`` below uses nothing from this project (raw ``websockets`` + ``json``): it follows
the document, so these tests check the document as much as the server.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.serving.conftest import ServerThread, make_settings


class DocClient:
    """A minimal client following docs/protocol.md only."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    def start(self, **fields: Any) -> dict[str, Any]:
        self.ws.send(json.dumps({"type": "start", "protocol_version": 1, **fields}))
        return self.next()

    def audio(self, samples: np.ndarray, rate_hz: int = 16000, chunk_ms: int = 100,
              realtime: float = 0.0) -> None:
        pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        step = 2 * rate_hz * chunk_ms // 1000
        for i in range(0, len(pcm), step):
            self.ws.send(pcm[i : i + step])
            if realtime:
                time.sleep(chunk_ms / 1000 / realtime)

    def command(self, kind: str) -> None:
        self.ws.send(json.dumps({"type": kind}))

    def next(self, timeout_s: float = 30) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout_s))
        self.events.append(event)
        return event

    def until(self, kind: str, timeout_s: float = 30) -> dict[str, Any]:
        while True:
            event = self.next(timeout_s)
            if event["type"] == kind:
                return event

    def rest(self) -> list[dict[str, Any]]:
        """Every event until the server closes the connection."""
        out = []
        try:
            while True:
                out.append(self.next())
        except ConnectionClosed:
            return out

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code


def doc_client(server: ServerThread, **headers: str) -> Any:
    return connect(server.url, additional_headers=headers or None, max_size=2**22,
                   open_timeout=10)


@pytest.fixture(scope="module")
def lights(speak) -> np.ndarray:  # type: ignore[no-untyped-def]
    return speak("turn off the bedroom lights")


@pytest.fixture(scope="module")
def two_commands(speak) -> np.ndarray:  # type: ignore[no-untyped-def]
    silence = np.zeros(16000, np.float32)
    return np.concatenate([speak("turn off the bedroom lights"), silence,
                           speak("set a timer for five minutes"), silence])


def _summary(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event["utterance_id"], event["understood"], event["intent"], event["slots"])


def test_one_connection_many_utterances(server: ServerThread, two_commands: np.ndarray) -> None:
    with doc_client(server) as ws:
        client = DocClient(ws)
        ready = client.start(partials=True)
        assert ready["type"] == "ready" and ready["protocol_version"] == 1
        assert ready["model"] == "home" and "lightsOff" in ready["intents"]
        assert ready["limits"]["max_frame_bytes"] == 65536
        client.audio(two_commands)
        client.command("stop")
        events = client.rest()
        assert client.close_code == 1000
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "closed" and events[-1]["utterances"] == 2
    results = [e for e in events if e["type"] == "result"]
    assert [_summary(r) for r in results] == [
        (0, True, "lightsOff", {"room": "bedroom"}),
        (1, True, "setTimer", {"duration": 5, "unit": "minutes"}),
    ]
    for r in results:
        timing = r["timing"]
        assert timing["audio_ms"] > 500 and timing["processing_ms"] > 0
        assert 0 < timing["end_of_speech_to_result_ms"] < 5000
    # Each utterance: started, ended, result, in that order (partials in between).
    for uid in (0, 1):
        order = [e["type"] for e in events if e.get("utterance_id") == uid
                 and e["type"] != "partial"]
        assert order == ["speech_started", "speech_ended", "result"]


def test_push_to_talk_finalize_and_cancel(server: ServerThread, lights: np.ndarray) -> None:
    with doc_client(server) as ws:
        client = DocClient(ws)
        client.start(mode="push_to_talk", sample_rate_hz=16000)
        client.audio(lights[:8000])
        client.command("cancel")  # dropped: nothing comes back for it
        client.audio(np.concatenate([lights, np.zeros(16000, np.float32)]))
        client.command("finalize")  # the user let go of the button
        result = client.until("result")
        assert result["intent"] == "lightsOff" and result["understood"]
        client.command("finalize")  # nothing said since: an empty, not-understood answer
        empty = client.until("result")
        assert not empty["understood"] and empty["utterance_id"] > result["utterance_id"]
        client.command("stop")
        assert client.rest()[-1]["type"] == "closed"


def test_resampled_rates_give_the_same_result(server: ServerThread, lights: np.ndarray) -> None:
    from assistant.resample import resample

    for rate in (8000, 44100):
        with doc_client(server) as ws:
            client = DocClient(ws)
            assert client.start(sample_rate_hz=rate)["sample_rate_hz"] == rate
            client.audio(resample(lights, 16000, rate), rate_hz=rate)
            client.command("stop")
            results = [e for e in client.rest() if e["type"] == "result"]
        assert [(r["intent"], r["slots"]) for r in results] == [("lightsOff",
                                                                 {"room": "bedroom"})]


def test_streaming_barista_matches_recognize_recording(vad) -> None:  # type: ignore[no-untyped-def]
    from assistant.audio import read_audio
    from assistant.recognizer import Recognizer, RecognizerConfig
    from assistant.recording import recognize_recording
    from serving.config import ModelSource
    from tests.conftest import shared_data

    root = shared_data("barista-dev")
    rows = [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines()][:6]
    grammar = root / "coffee_maker.yaml"
    recognizer = Recognizer.from_context(grammar, RecognizerConfig(threads=1))
    settings = make_settings((ModelSource("barista", "context", grammar),))
    with ServerThread(settings, vad) as server:
        for row in rows:
            audio = read_audio(root / row["audio"])
            expected = recognize_recording(recognizer, vad, audio)
            with doc_client(server) as ws:
                client = DocClient(ws)
                client.start(model="barista", min_silence_ms=2000)
                client.audio(audio)
                client.command("stop")
                results = [e for e in client.rest() if e["type"] == "result"]
            assert len(results) == 1, row["audio"]
            got = results[0]
            assert (got["understood"], got["intent"], got["slots"]) == (
                expected.understood, expected.intent, expected.slots), row["audio"]
            assert got["confidence"] == pytest.approx(expected.confidence, abs=1e-3)


# -- bad input ----------------------------------------------------------------------------

def _check_still_serving(server: ServerThread, lights: np.ndarray) -> None:
    with doc_client(server) as ws:
        client = DocClient(ws)
        client.start()
        client.audio(lights)
        client.command("finalize")
        assert client.until("result")["intent"] == "lightsOff"


def _fatal(client: DocClient) -> tuple[dict[str, Any], int | None]:
    events = client.rest()
    errors = [e for e in events if e["type"] == "error"]
    assert errors and errors[-1]["fatal"], events
    return errors[-1], client.close_code


@pytest.mark.parametrize(("setup", "code", "close"), [
    ("audio_before_start", "not_started", 4000),
    ("odd_bytes", "bad_audio_format", 4002),
    ("rate_too_high", "bad_audio_format", 4002),
    ("rate_not_integer", "bad_message", None),
    ("unknown_model", "unknown_model", 4000),
    ("bad_version", "unsupported_version", 4000),
    ("oversized_frame", "frame_too_large", 1009),
    ("flood", "rate_limited", 4029),
    ("too_fast_audio", "rate_limited", 4029),
])
def test_bad_input_gets_a_clear_error(server: ServerThread, lights: np.ndarray, setup: str,
                                      code: str, close: int | None) -> None:
    with doc_client(server) as ws:
        client = DocClient(ws)
        if setup == "audio_before_start":
            ws.send(b"\x00\x00" * 160)
        elif setup == "odd_bytes":
            client.start()
            ws.send(b"\x00" * 321)
        elif setup == "rate_too_high":
            client.ws.send(json.dumps({"type": "start", "sample_rate_hz": 1_000_000}))
        elif setup == "rate_not_integer":
            first = client.start(sample_rate_hz="16k")
            assert first["type"] == "error" and first["code"] == code and not first["fatal"]
            assert "sample_rate_hz must be an integer" in first["message"]
            assert client.start()["type"] == "ready"  # the session goes on
            return
        elif setup == "unknown_model":
            client.ws.send(json.dumps({"type": "start", "model": "nope"}))
        elif setup == "bad_version":
            client.ws.send(json.dumps({"type": "start", "protocol_version": 99}))
        elif setup == "oversized_frame":
            client.start()
            ws.send(b"\x00" * 70000)
        elif setup == "flood":
            client.start()
            for _ in range(400):
                try:
                    ws.send('{"type": "cancel"}')
                except ConnectionClosed:
                    break
        elif setup == "too_fast_audio":
            client.start()
            try:
                for _ in range(60):  # 60 s of audio at once: over 20x real time
                    ws.send(b"\x00\x00" * 16000)
            except ConnectionClosed:
                pass
        error, close_code = _fatal(client)
        assert error["code"] == code, error
        assert close_code == close
        if setup in ("flood", "too_fast_audio"):
            assert error["retry_after_s"] is not None
    _check_still_serving(server, lights)


def _errors_counted(server: ServerThread, code: str) -> int:
    text = server.run(lambda: server.app.metrics.render().decode())
    line = next((ln for ln in text.splitlines()
                 if ln.startswith(f'assistant_errors_total{{code="{code}"}}')), "x 0")
    return int(float(line.split()[-1]))


def _counted_once(server: ServerThread, code: str, before: int) -> None:
    deadline = time.monotonic() + 5
    while _errors_counted(server, code) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _errors_counted(server, code) == before + 1


def test_a_frame_too_large_to_read_closes_1009_naming_the_limit(server: ServerThread) -> None:
    before = _errors_counted(server, "frame_too_large")
    with doc_client(server) as ws:
        client = DocClient(ws)
        client.start()
        ws.send(b"\x00" * (4 * 65536 + 2))
        assert client.rest() == []  # never read, so no error event (docs/protocol.md)
        assert client.close_code == 1009
        assert ws.close_reason == f"frame exceeds limit of {4 * 65536} bytes"
    _counted_once(server, "frame_too_large", before)


@pytest.mark.parametrize("started", [False, True])
def test_a_text_frame_that_is_not_utf8_closes_1007_and_is_counted(
        server: ServerThread, lights: np.ndarray, started: bool) -> None:
    before = _errors_counted(server, "bad_message")
    with doc_client(server) as ws:
        client = DocClient(ws)
        if started:
            client.start()
        ws.send(b'\xff\xfe{"type": "stop"}', text=True)
        assert client.rest() == []  # the WebSocket layer closes first (docs/protocol.md)
        assert client.close_code == 1007
        assert "invalid start byte" in ws.close_reason
    _counted_once(server, "bad_message", before)
    _check_still_serving(server, lights)


def test_malformed_json_is_not_fatal(server: ServerThread, lights: np.ndarray) -> None:
    with doc_client(server) as ws:
        client = DocClient(ws)
        ws.send("{not json")
        error = client.next()
        assert error["type"] == "error" and error["code"] == "bad_message"
        assert not error["fatal"] and "not valid JSON" in error["message"]
        ws.send('{"type": "dance"}')
        assert "unknown message type 'dance'" in client.next()["message"]
        ws.send('{"type": "finalize"}')
        assert client.next()["code"] == "not_started"
        assert client.start()["type"] == "ready"
        assert client.start()["code"] == "already_started"
        client.audio(lights)
        client.command("finalize")
        assert client.until("result")["intent"] == "lightsOff"


def test_slow_reader_is_closed_and_others_are_served(vad, lights: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(outbox_size=8, max_audio_speed=1000.0, max_messages_per_s=1000.0)
    with ServerThread(settings, vad) as server:
        # A reader that never reads: events pile up until the server gives up on it.
        with connect(server.url, max_queue=1, max_size=2**22) as ws:
            ws.send(json.dumps({"type": "start", "partials": True}))
            speech = np.round(lights * 32767).astype("<i2").tobytes()
            deadline = time.monotonic() + 30
            try:
                while time.monotonic() < deadline:
                    ws.send(speech[: 2 * 16000])  # speech starts over and over
                    ws.send(json.dumps({"type": "finalize"}))
                    if server.run(lambda: len(server.app.connections)) == 0:
                        break
            except ConnectionClosed:
                pass
            assert server.run(lambda: len(server.app.connections)) == 0
        errors = server.app.metrics.value("assistant_errors_total", code="slow_consumer")
        assert errors == 1
        _check_still_serving(server, lights)


def test_disconnect_mid_utterance_leaks_nothing(server: ServerThread, lights: np.ndarray) -> None:
    baseline_tasks = server.task_count()
    baseline_threads = threading.active_count()
    for _ in range(3):
        with doc_client(server) as ws:
            client = DocClient(ws)
            client.start(partials=True)
            client.audio(lights[: len(lights) // 2])  # speech in progress...
        # ...and the client is gone (closed without stop)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (server.run(lambda: len(server.app.connections))
                                           or server.task_count() > baseline_tasks):
        time.sleep(0.05)  # a handler's last steps run just after its connection is gone
    assert server.run(lambda: len(server.app.connections)) == 0
    assert server.task_count() <= baseline_tasks
    assert threading.active_count() <= baseline_threads + server.app.pool.workers
    _check_still_serving(server, lights)
    with urllib.request.urlopen(f"{server.http}/metrics") as r:
        metrics = r.read().decode()
    active = [ln for ln in metrics.splitlines() if ln.startswith("assistant_active_sessions ")]
    assert active == ["assistant_active_sessions 0.0"]


# -- limits and auth -------------------------------------------------------------------------

def test_server_full_idle_and_connection_rate(vad, lights: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(max_sessions=1, idle_timeout_s=1.0, connections_per_min=12.0,
                             retry_after_s=7.0)
    with ServerThread(settings, vad) as server:
        with doc_client(server) as first:
            DocClient(first).start()
            with doc_client(server) as second:
                error, close = _fatal(DocClient(second))
            assert (error["code"], close, error["retry_after_s"]) == ("server_full", 4030, 7.0)
            started = time.monotonic()
            error, close = _fatal(DocClient(first))  # sends nothing: idle
            assert (error["code"], close) == ("idle_timeout", 4031)
            assert 0.5 < time.monotonic() - started < 5
        codes = []
        for _ in range(4):  # a burst of 12/4 = 3: the 4th or 5th connection is over the rate
            with doc_client(server) as ws:
                client = DocClient(ws)
                with contextlib.suppress(ConnectionClosed):  # refused before it is sent
                    ws.send(json.dumps({"type": "start"}))
                first = client.next()
                codes.append(first["type"] if first["type"] == "ready" else first["code"])
                client.rest()
        assert codes[0] == "ready" and "rate_limited" in codes


@pytest.fixture(scope="module")
def keyed_server(vad) -> Iterator[ServerThread]:  # type: ignore[no-untyped-def]
    with ServerThread(make_settings(api_keys="secret-one,secret-two", token_ttl_s=60.0),
                      vad) as server:
        yield server


def test_api_keys_and_browser_tokens(keyed_server: ServerThread) -> None:
    server = keyed_server
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        with doc_client(server, **headers) as ws:
            error, close = _fatal(DocClient(ws))
            assert (error["code"], close) == ("unauthorized", 4001)
    with doc_client(server, Authorization="Bearer secret-two") as ws:
        assert DocClient(ws).start()["type"] == "ready"
    # A browser: trade the key for a token, then connect with ?token=.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{server.http}/v1/token",
                                                      method="POST"))
    refused.value.close()
    assert refused.value.code == 401
    request = urllib.request.Request(f"{server.http}/v1/token", method="POST",
                                     headers={"Authorization": "Bearer secret-one"})
    with urllib.request.urlopen(request) as r:
        token = json.load(r)["token"]
    with connect(f"{server.url}?token={token}") as ws:
        assert DocClient(ws).start()["type"] == "ready"
    with connect(f"{server.url}?token={token[:-2]}xx") as ws:
        assert _fatal(DocClient(ws))[1] == 4001
    with pytest.raises(urllib.error.HTTPError) as models:
        urllib.request.urlopen(f"{server.http}/v1/models")
    models.value.close()
    assert models.value.code == 401
    with urllib.request.urlopen(f"{server.http}/v1/models?token={token}") as r:
        assert json.load(r)["default"] == "home"


def test_refuses_to_listen_beyond_localhost_without_keys() -> None:
    from assistant.errors import ConfigError
    from serving.server import check_exposure

    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0 without API keys"):
        check_exposure(make_settings(host="0.0.0.0"))
    check_exposure(make_settings(host="0.0.0.0", insecure=True))
    check_exposure(make_settings(host="0.0.0.0", api_keys="k"))


def test_other_web_sites_cannot_use_the_server_through_a_browser(vad) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(allowed_origins="https://app.example.com, http://localhost:3000/")
    with ServerThread(settings, vad) as server:
        own = server.http
        for origin in (None, own, "https://app.example.com", "HTTPS://APP.example.com/",
                       "http://localhost:3000"):
            headers = {} if origin is None else {"Origin": origin}
            with doc_client(server, **headers) as ws:
                assert DocClient(ws).start()["type"] == "ready", origin
        for origin in ("https://evil.example", "null", "http://127.0.0.1:1",
                       "https://app.example.com.evil.example"):
            with pytest.raises(InvalidStatus) as refused:
                doc_client(server, Origin=origin)
            assert refused.value.response.status_code == 403, origin
            assert b"--allowed-origins" in refused.value.response.body
        # POSTs from another site's page are refused too; the page itself stays readable.
        reload = urllib.request.Request(f"{own}/v1/reload", method="POST",
                                        headers={"Origin": "https://evil.example"})
        with pytest.raises(urllib.error.HTTPError) as post:
            urllib.request.urlopen(reload)
        post.value.close()
        assert post.value.code == 403
        page = urllib.request.Request(f"{own}/", headers={"Origin": "https://evil.example"})
        with urllib.request.urlopen(page) as r:
            assert r.status == 200


def test_origin_rules() -> None:
    from serving.ws.http import origin_allowed

    listed = frozenset({"https://app.example.com"})
    assert origin_allowed(None, "127.0.0.1:8765", frozenset())
    assert origin_allowed("http://127.0.0.1:8765", "127.0.0.1:8765", frozenset())
    assert origin_allowed("https://assistant.lan", "assistant.lan", frozenset())
    assert not origin_allowed("http://127.0.0.1:8766", "127.0.0.1:8765", frozenset())
    assert not origin_allowed("http://evil.example", None, frozenset())
    assert not origin_allowed("file://", "", frozenset())
    assert origin_allowed("https://app.example.com/", "127.0.0.1:8765", listed)
    assert not origin_allowed("https://app.example.com:444", "127.0.0.1:8765", listed)
    assert origin_allowed("https://anything.example", "127.0.0.1:8765", frozenset({"*"}))


# -- HTTP ---------------------------------------------------------------------------------

def _get(url: str, method: str = "GET") -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method)) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        with e:  # an unclosed error response is a ResourceWarning (an error here) at GC
            return e.code, e.headers["Content-Type"], e.read().decode()


def test_http_endpoints(server: ServerThread) -> None:
    base = server.http
    assert _get(f"{base}/healthz")[0] == 200
    assert _get(f"{base}/readyz")[:1] == (200,)
    status, kind, body = _get(f"{base}/metrics")
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    for name in ("assistant_end_of_speech_to_result_seconds_bucket", "assistant_active_sessions",
                 "assistant_errors_total", "assistant_results_total"):
        assert name in body
    status, kind, body = _get(f"{base}/v1/models")
    assert status == 200 and kind == "application/json"
    described = json.loads(body)["models"][0]
    assert (described["name"], described["precision"], described["device"]) == (
        "home", "int8", "cpu")
    status, kind, body = _get(f"{base}/v1/monitor")
    monitor = json.loads(body)
    assert status == 200 and monitor["state"] == "ready" and monitor["default"] == "home"
    assert monitor["models"]["home"]["model"]["name"] == "home"
    assert monitor["models"]["home"]["drift"]["status"] in ("no_reference", "warming_up")
    assert _get(f"{base}/v1/monitor", "POST")[0] == 405
    status, kind, body = _get(f"{base}/")
    assert status == 200 and kind.startswith("text/html") and "audio-worklet" not in body
    assert _get(f"{base}/static/audio-worklet.js")[0] == 200
    assert "registerProcessor" in _get(f"{base}/static/audio-worklet.js")[2]
    assert _get(f"{base}/nope")[0] == 404
    assert _get(f"{base}/healthz", "POST")[0] == 405
    assert _get(f"{base}/v1/token", "POST")[2].strip().startswith("{")


def test_assistant_monitor_reads_a_running_server(server: ServerThread, lights: np.ndarray,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    _check_still_serving(server, lights)  # one answer for the monitor to report
    assert main(["monitor", "--url", server.http, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["home"]["answers"] >= 1 and report["home"]["recent"][-1]["intent"] == \
        "lightsOff"
    assert main(["monitor", "--url", server.http]) == 0
    assert capsys.readouterr().out.startswith("model home: ")
    assert main(["monitor", "--url", "http://127.0.0.1:9"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_reload_keeps_connections(server: ServerThread, lights: np.ndarray) -> None:
    with doc_client(server) as ws:
        client = DocClient(ws)
        client.start()
        status, _, body = _get(f"{server.http}/v1/reload?model=home", "POST")
        assert status == 200 and json.loads(body) == {"reloaded": ["home"]}
        client.audio(lights)
        client.command("finalize")
        assert client.until("result")["intent"] == "lightsOff"
    failed_before = server.app.metrics.value("assistant_model_reloads_total", outcome="failed")
    assert _get(f"{server.http}/v1/reload?model=nope", "POST")[0] == 400
    # A name that is not served is the caller's mistake, not a failed reload.
    assert server.app.metrics.value("assistant_model_reloads_total",
                                    outcome="failed") == failed_before


def test_audio_is_processed_off_the_event_loop_and_waiting_counts(vad, two_commands: np.ndarray  # type: ignore[no-untyped-def]
                                                                  ) -> None:
    from assistant.pipeline import PipelineConfig
    from tests.stages import SlowFirst

    SlowFirst.made.clear()
    settings = make_settings(pipeline=PipelineConfig(gates=("tests.stages:SlowFirst",)))
    half = len(two_commands) // 2  # the first command and its silence; then the second
    with ServerThread(settings, vad) as server, doc_client(server) as ws:
        client = DocClient(ws)
        client.start()
        client.audio(two_commands[:half])
        time.sleep(0.3)  # the first utterance is now held up in the gate for 1 s...
        client.audio(two_commands[half:], chunk_ms=200)  # ...while these frames arrive
        client.command("stop")
        results = [e for e in client.rest() if e["type"] == "result"]
    assert [r["intent"] for r in results] == ["lightsOff", "setTimer"]
    (gate,) = [g for g in SlowFirst.made if g.threads]  # the session's own gate
    assert len(gate.threads) == 2 and all(t.startswith("assistant-feed") for t in gate.threads)
    # The second utterance's frames arrived while the first was held up: that wait is part
    # of its end-of-speech-to-result time, counted from when its last frame came.
    assert results[1]["timing"]["end_of_speech_to_result_ms"] > 400


def test_concurrent_streams_share_vad_runs_and_get_their_own_results(
        server: ServerThread, two_commands: np.ndarray, lights: np.ndarray) -> None:
    """Streams fed together run their VAD in shared batches (serving/feeder.py) and each
    gets exactly what it gets alone."""
    audios = [two_commands, np.concatenate([np.zeros(8000, np.float32), lights])]

    def run(audio: np.ndarray) -> list[tuple[Any, ...]]:
        with doc_client(server) as ws:
            client = DocClient(ws)
            client.start()
            client.audio(audio, realtime=3.0)
            client.command("stop")
            return [(e["type"], *(_summary(e) if e["type"] == "result" else
                                  (e["utterance_id"], e.get("start_ms"), e.get("end_ms"))))
                    for e in client.rest() if e["type"] in ("result", "speech_ended")]

    alone = [run(audio) for audio in audios]
    stats = server.app.services.feeder.stats
    before = stats.frames_ahead, stats.frames_used
    together: list[list[tuple[Any, ...]]] = [[] for _ in range(6)]

    def one(i: int) -> None:
        together[i] = run(audios[i % 2])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r[3:5] for r in alone[0] if r[0] == "result"] == [
        ("lightsOff", {"room": "bedroom"}), ("setTimer", {"duration": 5, "unit": "minutes"})]
    assert together == [alone[i % 2] for i in range(6)]
    # Their frames ran in shared batches, and each stream took every frame foreseen for it.
    assert stats.frames_ahead - before[0] == stats.frames_used - before[1] > 0
    # Operators see both kinds in /metrics (the streams alone above ran theirs one by one).
    metrics = server.app.metrics
    assert metrics.value("assistant_vad_frames_total", how="batched") >= stats.frames_ahead
    assert metrics.value("assistant_vad_frames_total", how="alone") > 0


def test_sessions_count_when_they_start_and_name_their_client(server: ServerThread,
                                                              caplog: pytest.LogCaptureFixture
                                                              ) -> None:
    def started() -> float:
        text = _get(f"{server.http}/metrics")[2]
        return float(next(ln for ln in text.splitlines()
                          if ln.startswith("assistant_sessions_total ")).split()[-1])

    before = started()
    with doc_client(server) as ws:  # connects, never starts
        ws.send(json.dumps({"type": "cancel"}))
        assert DocClient(ws).next()["code"] == "not_started"
    assert started() == before
    with caplog.at_level("INFO", logger="assistant.serving"), doc_client(server) as ws:
        assert DocClient(ws).start(client="kiosk-7 v2.1")["type"] == "ready"
    assert started() == before + 1
    assert any("client 'kiosk-7 v2.1'" in r.getMessage() for r in caplog.records)


def test_what_a_reload_validated_is_what_runs(vad, lights: np.ndarray,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    from serving.config import ModelSource
    from tests.serving.conftest import HOME

    context = tmp_path / "home.yaml"
    context.write_text(HOME.read_text())
    source = (ModelSource("home", "context", context),)

    def models_hash() -> str:
        return str(json.loads(_get(f"{server.http}/v1/models")[2])["models"][0]["grammar_sha256"])

    def understood() -> dict[str, Any]:
        with doc_client(server) as ws:
            client = DocClient(ws)
            client.start()
            client.audio(lights)
            client.command("finalize")
            return client.until("result")

    with ServerThread(make_settings(source, worker_kind="process", workers=1), vad) as server:
        served = models_hash()
        assert _get(f"{server.http}/v1/reload", "POST")[0] == 200
        # Broken after the reload: nothing re-reads it behind the server's back.
        context.write_text("context: [unclosed\n")
        assert understood()["intent"] == "lightsOff"
        assert models_hash() == served
        assert _get(f"{server.http}/readyz")[0] == 200
        # A reload of the broken file fails, named, and the old grammar keeps serving.
        status, _, body = _get(f"{server.http}/v1/reload", "POST")
        assert status == 500 and "home.yaml" in body
        assert understood()["intent"] == "lightsOff" and models_hash() == served
        # A valid edit runs from the next reload on, and /v1/models says so.
        context.write_text(HOME.read_text().replace('      - "guest room"\n',
                                                    '      - "guest room"\n      - "attic"\n'))
        assert models_hash() == served
        assert _get(f"{server.http}/v1/reload", "POST")[0] == 200
        assert models_hash() != served and understood()["intent"] == "lightsOff"


@pytest.mark.parametrize("realtime", [1.0, 0.0])
def test_grammar_endpointing_over_the_wire(server: ServerThread, speak: Any,
                                           realtime: float) -> None:
    """Real time: the complete command ends early; as fast as possible: speculations come
    back late and are dropped. The same answers either way, in order."""
    def words(text: str) -> np.ndarray:
        audio = speak(text, pad_s=0.0)
        loud = np.flatnonzero(np.abs(audio) > 1e-3)
        return audio[loud[0] : loud[-1] + 1]

    def ended_complete() -> float:
        text = _get(f"{server.http}/metrics")[2]
        return sum(float(ln.split()[-1]) for ln in text.splitlines()
                   if ln.startswith("assistant_utterance_endings_total")
                   and 'ended="complete"' in ln)

    before = ended_complete()
    silence = np.zeros(16000, np.float32)
    audio = np.concatenate([silence[:8000], words("what time is it"), silence, silence[:8000],
                            words("set a timer for"), silence[:12000],  # 750 ms: hesitation
                            words("five minutes"), silence, silence])
    with doc_client(server) as ws:
        client = DocClient(ws)
        assert client.start(endpointing="grammar")["type"] == "ready"
        client.audio(audio, chunk_ms=40, realtime=realtime)
        client.command("stop")
        events = client.rest()
    results = [e for e in events if e["type"] == "result"]
    assert [_summary(r) for r in results] == [
        (0, True, "getTime", {}),
        (1, True, "setTimer", {"duration": 5, "unit": "minutes"}),
    ]
    for uid in (0, 1):
        order = [e["type"] for e in events if e.get("utterance_id") == uid]
        assert order == ["speech_started", "speech_ended", "result"]
    if realtime:  # the grammar ended the first command, not 1000 ms of silence
        assert ended_complete() >= before + 1
        text = _get(f"{server.http}/metrics")[2]
        assert any(ln.startswith('assistant_speculations_total{model="home"}')
                   and float(ln.split()[-1]) >= 1 for ln in text.splitlines())
