"""The SDK and ``assistant mic --file`` against a real server on loopback."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from assistant import protocol as p
from clients.sdk import (
    AsyncClient,
    Client,
    ClientError,
    ConnectError,
    ServerError,
    stream_url,
    to_pcm16,
)
from tests.serving.conftest import ServerThread, make_settings


@pytest.fixture(scope="module")
def server(vad: Any) -> Any:
    with ServerThread(make_settings(api_keys="k1"), vad) as running:
        yield running


@pytest.fixture(scope="module")
def wav(speak: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sdk") / "lights.wav"
    audio = np.concatenate([speak("turn off the bedroom lights"), np.zeros(8000, np.float32)])
    soundfile.write(path, audio, 16000, subtype="PCM_16")
    return path


def test_helpers() -> None:
    assert stream_url("ws://h:1") == "ws://h:1/v1/stream"
    assert stream_url("ws://h:1/v1/stream", "t") == "ws://h:1/v1/stream?token=t"
    assert to_pcm16(np.array([0.0, 1.0, -1.0])) == b"\x00\x00\xff\x7f\x01\x80"
    assert to_pcm16(np.array([1, -2], np.int16)) == b"\x01\x00\xfe\xff"


def test_async_client_streams_a_file_with_typed_events(server: ServerThread, wav: Path) -> None:
    async def run() -> list[p.Message]:
        async with AsyncClient(server.url, api_key="k1", partials=True,
                               sample_rate_hz=22050) as client:
            assert client.ready is not None and client.ready.sample_rate_hz == 22050
            return [e async for e in client.stream_file(wav, realtime=False)]

    events = asyncio.run(run())
    results = [e for e in events if isinstance(e, p.Result)]
    assert [(r.intent, r.slots) for r in results] == [("lightsOff", {"room": "bedroom"})]
    assert isinstance(events[-1], p.Closed) and events[-1].utterances == 1
    assert any(isinstance(e, p.SpeechStarted) for e in events)


def test_sync_client_and_raw_chunks(server: ServerThread, wav: Path) -> None:
    audio, _ = soundfile.read(wav, dtype="int16")
    with Client(server.url, api_key="k1", mode="push_to_talk") as client:
        for i in range(0, audio.size, 1600):
            client.send_audio(audio[i : i + 1600])
        client.finalize()
        events = client.events()
        result = next(e for e in events if isinstance(e, p.Result))
        assert result.intent == "lightsOff"
        client.stop()
        assert isinstance(list(events)[-1], p.Closed)
    with Client(server.url, api_key="k1") as client:
        assert [r.intent for r in client.recognize_file(wav)] == ["lightsOff"]


def test_errors_are_typed(server: ServerThread) -> None:
    with pytest.raises(ServerError) as refused:
        Client(server.url, api_key="wrong").connect()
    assert refused.value.code == "unauthorized" and refused.value.close_code == 4001
    with pytest.raises(ConnectError, match="cannot connect"):
        asyncio.run(AsyncClient("ws://127.0.0.1:9", open_timeout_s=2).connect())


def test_mic_command_streams_a_file_as_json_lines(server: ServerThread, wav: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    code = main(["mic", "--url", server.url, "--api-key", "k1", "--file", str(wav),
                 "--no-realtime", "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert lines[0]["type"] == "ready" and lines[-1]["type"] == "closed"
    assert [e["intent"] for e in lines if e["type"] == "result"] == ["lightsOff"]


def test_mic_command_explains_failures(capsys: pytest.CaptureFixture[str], wav: Path) -> None:
    from assistant.cli import main

    code = main(["mic", "--url", "ws://127.0.0.1:9", "--file", str(wav), "--retries", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "server unreachable" in err and "Traceback" not in err


def test_mic_view_shows_results() -> None:
    from clients.mic import View

    out = io.StringIO()
    view = View(out, as_json=False)
    view.event(p.Result(0, True, "lightsOn", {"room": "kitchen"}, 0.93, "Turn on the kitchen "
                        "lights.", "", p.Timing(900.0, 80.0, 95.0)))
    view.event(p.Result(1, False, None, {}, 0.1, "", "hmm", p.Timing(500.0, 50.0, 60.0)))
    text = out.getvalue()
    assert "lightsOn room=kitchen  [0.93]" in text and "95 ms" in text
    assert "(not understood)" in text


def test_mic_fails_at_once_on_what_cannot_work(capsys: pytest.CaptureFixture[str],
                                               wav: Path, tmp_path: Path) -> None:
    from assistant.cli import main

    # No server at that address from the start: one line, no retries (no --retries given).
    code = main(["mic", "--url", "ws://127.0.0.1:9", "--file", str(wav)])
    captured = capsys.readouterr()
    assert code == 1 and "server unreachable" in captured.err
    assert "reconnecting" not in captured.out + captured.err
    # The file is checked before connecting: the error is about the file, not the server.
    code = main(["mic", "--url", "ws://127.0.0.1:9", "--file", str(tmp_path / "nope.wav")])
    err = capsys.readouterr().err
    assert code == 1 and "nope.wav" in err and "unreachable" not in err


def test_mic_takes_the_page_address(server: ServerThread, wav: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    code = main(["mic", "--url", f"{server.http}/", "--api-key", "k1", "--file", str(wav),
                 "--no-realtime", "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert lines[0]["type"] == "client_status" and server.url in lines[0]["message"]
    assert [e["intent"] for e in lines if e["type"] == "result"] == ["lightsOff"]


def test_mic_file_goes_on_after_each_lost_connection(speak: Any, vad: Any, tmp_path: Path) -> None:
    import argparse
    import threading
    import time

    from clients.mic import run

    silence = np.zeros(24000, np.float32)
    commands = ["turn off the bedroom lights", "set a timer for five minutes",
                "what time is it"]
    path = tmp_path / "three.wav"
    soundfile.write(path, np.concatenate([x for c in commands for x in (speak(c), silence)]),
                    16000, subtype="PCM_16")
    out = io.StringIO()
    with ServerThread(make_settings(), vad) as server:
        args = argparse.Namespace(url=server.url, api_key=None, model=None, file=str(path),
                                  realtime=True, push_to_talk=False, partials=False, json=True,
                                  device=None, sample_rate_hz=16000, retries=1, endpointing=None,
                                  max_backoff_s=1.0)
        done: list[int] = []
        thread = threading.Thread(target=lambda: done.append(asyncio.run(run(args, out))))
        thread.start()
        # Two outages, each after another result: with --retries 1 the second one only
        # works because a good reconnect starts the budget over.
        for results in (1, 2):
            deadline = time.monotonic() + 30
            while out.getvalue().count('"type":"result"') < results:
                assert time.monotonic() < deadline, out.getvalue()
                time.sleep(0.05)
            server.run(lambda: [c.ws.transport.abort() for c in server.app.connections])
        thread.join(timeout=60)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert done == [0], lines
    intents = [e["intent"] for e in lines if e["type"] == "result" and e["understood"]]
    assert intents == ["lightsOff", "setTimer", "getTime"], lines  # each once, in order
    notes = [e["message"] for e in lines if e["type"] == "client_status"]
    assert len(notes) == 2 and all("going on from" in n for n in notes), notes


def test_idle_push_to_talk_keeps_its_session(vad: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody presses Enter for several idle timeouts: the session stays open (keepalive)."""
    import argparse

    from clients import mic

    async def silence(rate_hz: int, device: Any = None, chunk_ms: int = 100,
                      on_level: Any = None) -> Any:  # the sound card, at the I/O edge
        while True:
            await asyncio.sleep(chunk_ms / 1000)
            yield np.zeros(rate_hz * chunk_ms // 1000, np.float32)

    async def no_presses() -> Any:
        await asyncio.Event().wait()
        yield None

    monkeypatch.setattr(mic, "microphone_chunks", silence)
    monkeypatch.setattr(mic, "_enter_presses", no_presses)
    monkeypatch.setattr(mic, "input_devices", lambda: [{"index": 0}])
    out = io.StringIO()
    with ServerThread(make_settings(idle_timeout_s=1.0), vad) as server:
        args = argparse.Namespace(url=server.url, api_key=None, model=None, file=None,
                                  realtime=True, push_to_talk=True, partials=False, json=True,
                                  device=None, sample_rate_hz=16000, retries=0, endpointing=None,
                                  max_backoff_s=1.0)

        async def for_a_while() -> None:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(mic.run(args, out), 4.0)

        asyncio.run(for_a_while())
    kinds = [json.loads(line)["type"] for line in out.getvalue().splitlines()]
    assert kinds == ["ready", "client_status"], kinds  # connected, the hint; no idle close


def _fake_server_run(messages: list[str], client_side: Any) -> Any:
    """Run ``client_side(url)`` against a WebSocket peer that answers ``start`` with
    ``messages`` (raw text frames) and then reads until the client goes: a newer or broken
    server, at the I/O edge."""
    import websockets

    ready = p.Ready(session_id="s", protocol_version=1, model="home", sample_rate_hz=16000,
                    intents=("a",), limits=p.Limits(65536, 15.0, 60.0, 100.0, 20.0))

    async def handler(ws: Any) -> None:
        await ws.recv()
        await ws.send(ready.to_json())
        for message in messages:
            await ws.send(message)
        async for _ in ws:
            pass

    async def run() -> Any:
        async with websockets.serve(handler, "127.0.0.1", 0) as served:
            port = next(iter(served.sockets)).getsockname()[1]
            return await asyncio.wait_for(client_side(f"ws://127.0.0.1:{port}"), 30)

    return asyncio.run(run())


def test_messages_of_a_newer_server_are_skipped() -> None:
    result = p.Result(utterance_id=0, understood=False, intent=None, slots={}, confidence=0.0,
                      transcript="", heard="", timing=p.Timing(0.0, 0.0, 0.0))
    closed = p.Closed(session_id="s", utterances=1)
    future = json.dumps({"type": "speech_progress", "utterance_id": 0})

    async def events(url: str) -> list[str]:
        async with AsyncClient(url) as client:
            return [e.type async for e in client.stream_chunks([np.zeros(1600)] * 2)]

    assert _fake_server_run([future, result.to_json(), closed.to_json()], events) == \
        ["result", "closed"]


def test_a_server_message_the_sdk_cannot_read_ends_the_stream_with_the_reason() -> None:
    async def events(url: str) -> list[str]:
        async with AsyncClient(url) as client:
            return [e.type async for e in client.stream_chunks([np.zeros(1600)] * 2)]

    with pytest.raises(p.ProtocolError, match="not valid JSON"):
        _fake_server_run(["{not json"], events)


def test_the_audio_source_failing_is_raised_at_once(server: ServerThread) -> None:
    def unplugged() -> Any:
        yield np.zeros(1600, np.int16)
        raise ValueError("microphone unplugged")

    async def run() -> None:
        async with AsyncClient(server.url, api_key="k1") as client:
            async for _ in client.stream_chunks(unplugged()):
                pass

    async def bounded() -> None:  # the idle timeout (60 s) ends it otherwise
        await asyncio.wait_for(run(), 20)

    with pytest.raises(ValueError, match="unplugged"):
        asyncio.run(bounded())
    with Client(server.url, api_key="k1") as client, \
            pytest.raises(ValueError, match="unplugged"):
        list(client.stream_chunks(unplugged()))

    def timing_out() -> Any:  # a network microphone's read timing out
        yield np.zeros(1600, np.int16)
        raise TimeoutError("no audio from the network microphone")

    import threading

    outcome: list[BaseException] = []

    def blocking() -> None:
        with Client(server.url, api_key="k1") as client:
            try:
                list(client.stream_chunks(timing_out()))
            except BaseException as e:  # the test reads it
                outcome.append(e)

    worker = threading.Thread(target=blocking, daemon=True)
    worker.start()
    worker.join(30)  # it waited for ever (a TimeoutError read as "not done yet")
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)
    assert "network microphone" in str(outcome[0])


def test_sync_client_keepalive_stream_chunks_and_a_stopped_session(server: ServerThread,
                                                                   wav: Path) -> None:
    audio, _ = soundfile.read(wav, dtype="int16")

    def slow_chunks() -> Any:  # blocks between chunks, as a capture device does
        import time

        for i in range(0, audio.size, 1600):
            time.sleep(0.005)
            yield audio[i : i + 1600]

    with Client(server.url, api_key="k1") as client:
        client.keepalive()
        events = list(client.stream_chunks(slow_chunks()))
        assert [(e.intent, e.slots) for e in events if isinstance(e, p.Result)] == \
            [("lightsOff", {"room": "bedroom"})]
        assert isinstance(events[-1], p.Closed)
        with pytest.raises(ClientError, match="session was stopped"):
            client.recognize_file(wav)
        with pytest.raises(ClientError, match="session was stopped"):
            client.keepalive()
        client.connect()  # a new session on the same client works again
        assert [r.intent for r in client.recognize_file(wav)] == ["lightsOff"]


def test_retry_after_goes_out_in_hundredths_never_zero() -> None:
    assert p.error(p.ErrorCode.RATE_LIMITED, "m", True, 0.0073525599978165705).retry_after_s \
        == 0.01
    assert p.error(p.ErrorCode.RATE_LIMITED, "m", True, 0.41).retry_after_s == 0.41
    assert p.error(p.ErrorCode.RATE_LIMITED, "m", True, 5.981).retry_after_s == 5.99
    assert p.error(p.ErrorCode.SERVER_FULL, "m", True).retry_after_s is None


def test_ctrl_c_while_a_blocking_client_waits_is_a_keyboard_interrupt(tmp_path: Path) -> None:
    """Ctrl-C in ``for event in client.events()`` (as in a microphone loop) raises
    KeyboardInterrupt and closes the stream; it was a RuntimeError from closing a generator
    that was still running."""
    import subprocess
    import sys

    script = tmp_path / "interrupted.py"
    script.write_text(f"""
import asyncio, faulthandler, os, signal, sys, threading
faulthandler.dump_traceback_later(40, exit=True)  # a hang shows every thread's stack
# A program started in the background by a non-interactive shell (as CI runs the tests)
# inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it: a terminal
# program has it.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
import websockets
from assistant import protocol as p
from clients.sdk import Client

ready = p.Ready(session_id="s", protocol_version=1, model="home", sample_rate_hz=16000,
                intents=("a",), limits=p.Limits(65536, 15.0, 60.0, 100.0, 20.0))
port = []

async def handler(ws):
    await ws.recv()
    await ws.send(ready.to_json())
    async for _ in ws:  # then says nothing: the client waits
        pass

async def serve():
    async with websockets.serve(handler, "127.0.0.1", 0) as served:
        port.append(next(iter(served.sockets)).getsockname()[1])
        await asyncio.Future()

threading.Thread(target=asyncio.run, args=(serve(),), daemon=True).start()
while not port:
    pass
client = Client(f"ws://127.0.0.1:{{port[0]}}")
client.connect()
print("connected", file=sys.stderr, flush=True)
# A terminal's Ctrl-C, which Linux hands to the main thread.
threading.Timer(1.0, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)).start()
try:
    for event in client.events():
        pass
except KeyboardInterrupt:
    print("interrupted", flush=True)
client.close()
print("closed", flush=True)
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.split() == ["interrupted", "closed"], proc.stderr
    assert "RuntimeError" not in proc.stderr
