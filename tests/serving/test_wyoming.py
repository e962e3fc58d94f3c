"""Home Assistant's Wyoming protocol, driven with the ``wyoming`` package's own client the
way Home Assistant drives a speech service: describe, transcribe with audio events, and
recognize for intents; concurrent pipelines; bad events get error events."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.intent import Intent, NotRecognized, Recognize

from serving.config import ModelSource
from tests.serving.conftest import ServerThread, make_settings

REPO = Path(__file__).resolve().parents[2]
HA = REPO / "assistant" / "contexts" / "home_assistant.yaml"


@pytest.fixture(scope="module")
def server(vad: Any) -> Iterator[ServerThread]:
    sources = (ModelSource("ha", "context", HA),
               ModelSource("home", "context", REPO / "assistant" / "contexts" / "home.yaml"))
    settings = make_settings(sources, wyoming_uri="tcp://127.0.0.1:0")
    with ServerThread(settings, vad) as running:
        yield running


def _port(server: ServerThread) -> int:
    (wyoming,) = [lst for lst in server.app.listeners if lst.name == "wyoming"]
    return int(wyoming.port)


def _pcm(audio: np.ndarray, rate: int = 16000, width: int = 2, channels: int = 1) -> bytes:
    if rate != 16000:
        from assistant.resample import resample

        audio = resample(audio, 16000, rate)
    if width == 2:
        samples = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
    else:
        samples = np.round(np.clip(audio, -1, 1) * (2**31 - 1)).astype("<i4")
    return np.repeat(samples, channels).tobytes() if channels > 1 else samples.tobytes()


async def _transcribe(port: int, audio: np.ndarray, name: str | None = None, rate: int = 16000,
                      width: int = 2, channels: int = 1) -> Event:
    async with AsyncTcpClient("127.0.0.1", port, read_timeout=60) as client:
        await client.write_event(Transcribe(name=name, language="en").event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        pcm = _pcm(audio, rate, width, channels)
        step = rate * width * channels // 10  # 100 ms, as Home Assistant sends
        for i in range(0, len(pcm), step):
            await client.write_event(AudioChunk(rate=rate, width=width, channels=channels,
                                                audio=pcm[i : i + step]).event())
        await client.write_event(AudioStop().event())
        event = await client.read_event()
        assert event is not None
        return event


async def _ask(port: int, *events: Event) -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port, read_timeout=30) as client:
        out = []
        for event in events:
            await client.write_event(event)
            answer = await client.read_event()
            assert answer is not None
            out.append(answer)
        return out


def test_describe_lists_the_models_for_speech_and_text(server: ServerThread) -> None:
    (event,) = asyncio.run(_ask(_port(server), Describe().event()))
    info = Info.from_event(event)
    assert [m.name for m in info.asr[0].models] == ["ha", "home"]
    assert [m.name for m in info.intent[0].models] == ["ha", "home"]
    assert info.asr[0].models[0].languages == ["en"] and info.asr[0].installed
    # No made-up links: the speech model's origin, none for the service itself.
    assert info.asr[0].models[0].attribution.url == "https://github.com/openai/whisper"
    assert info.asr[0].attribution.url == ""


def test_speech_to_text_in_home_assistants_phrasing(server: ServerThread, speak: Any) -> None:
    port = _port(server)
    silence = np.zeros(8000, np.float32)
    lights = np.concatenate([silence, speak("turn on the kitchen lights"), silence])
    event = asyncio.run(_transcribe(port, lights))
    assert Transcript.is_type(event.type)
    # Home Assistant's built-in intent, in the words of its own sentences (which fire it:
    # tests/serving/test_wyoming_phrasing.py checks them with hassil).
    assert Transcript.from_event(event).text == "turn on the lights in the kitchen"
    # The same at 48 kHz stereo, 32-bit, and with the other model named: not Home
    # Assistant's intents, so the sentence as the model wrote it.
    event = asyncio.run(_transcribe(port, lights, name="home", rate=48000, width=4, channels=2))
    assert Transcript.from_event(event).text.lower().rstrip(".") in (
        "turn on the kitchen lights", "turn on the kitchen light")
    # Not a command: an empty transcript (Home Assistant then says it did not understand).
    chatter = np.concatenate([silence, speak("what is the capital of france"), silence])
    assert Transcript.from_event(asyncio.run(_transcribe(port, chatter))).text == ""


def test_text_to_intent_with_home_assistants_names(server: ServerThread) -> None:
    port = _port(server)
    answers = asyncio.run(_ask(
        port, Recognize(text="Set a timer for two and a half minutes").event(),
        Recognize(text="turn off the living room lights").event(),
        Recognize(text="what is the capital of france").event()))
    timer = Intent.from_event(answers[0])
    assert timer.name == "HassStartTimer"
    assert {e.name: e.value for e in timer.entities} == {"minutes": 2, "seconds": 30}
    lights = Intent.from_event(answers[1])
    assert (lights.name, {e.name: e.value for e in lights.entities}) == (
        "HassTurnOff", {"area": "living room", "domain": "light"})
    assert NotRecognized.is_type(answers[2].type)


def test_concurrent_pipelines_each_get_their_own_answer(server: ServerThread,
                                                         speak: Any) -> None:
    port = _port(server)
    silence = np.zeros(8000, np.float32)
    commands = {"pause the music": "HassMediaPause", "what time is it": "HassGetCurrentTime",
                "turn off the office lights": "HassTurnOff", "what's the weather": "HassGetWeather"}

    async def all_at_once() -> list[Event]:
        return await asyncio.gather(*(
            _transcribe(port, np.concatenate([silence, speak(text), silence]))
            for text in commands))

    stats = server.app.services.feeder.stats
    before = stats.frames_ahead, stats.frames_used
    events = asyncio.run(all_at_once())
    # Their VAD ran in shared batches, each stream taking every frame foreseen for it.
    assert stats.frames_ahead - before[0] == stats.frames_used - before[1] > 0
    texts = [Transcript.from_event(e).text for e in events]
    (_, recognize) = asyncio.run(_ask(port, Describe().event(),
                                      Recognize(text=texts[0]).event()))
    assert Intent.from_event(recognize).name == "HassMediaPause"
    for text, expected in zip(texts, commands.values(), strict=True):
        (answer,) = asyncio.run(_ask(port, Recognize(text=text).event()))
        assert Intent.is_type(answer.type) and Intent.from_event(answer).name == expected, text


def test_bad_events_get_error_events_and_the_connection_goes_on(server: ServerThread) -> None:
    port = _port(server)
    answers = asyncio.run(_ask(
        port,
        Event(type="synthesize", data={"text": "hello"}),  # a TTS request: not served here
        AudioChunk(rate=16000, width=2, channels=1, audio=b"\0" * 320).event(),  # no start
        Transcribe(name="nope").event(),
        Transcribe(language="fr").event(),
        AudioStart(rate=5, width=2, channels=1).event(),
        Event(type="recognize", data={}),  # no text
        Describe().event()))  # still answered
    codes = [Error.from_event(e).code for e in answers[:-1]]
    assert codes == ["unsupported_event", "not_started", "unknown_model",
                     "unsupported_language", "bad_audio_format", "bad_event"]

    async def other_rate() -> list[Event]:
        # A chunk in another format than its stream's start (8 kHz read as 16 kHz would be
        # another command): refused, not misread; the connection goes on.
        async with AsyncTcpClient("127.0.0.1", port, read_timeout=30) as client:
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            await client.write_event(AudioChunk(rate=8000, width=2, channels=1,
                                                audio=b"\0" * 320).event())
            refused = await client.read_event()
            await client.write_event(Describe().event())
            described = await client.read_event()
            assert refused is not None and described is not None
            return [refused, described]

    refused, described = asyncio.run(other_rate())
    assert Error.from_event(refused).code == "bad_audio_format"
    assert "8000 Hz" in Error.from_event(refused).text and Info.is_type(described.type)
    assert Info.is_type(answers[-1].type)
    metrics = server.run(lambda: server.app.metrics.render().decode())
    assert 'assistant_errors_total{code="unsupported_event"}' in metrics


def test_idle_and_oversized_connections_are_closed_with_the_reason(
        vad: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(wyoming_uri="tcp://127.0.0.1:0", idle_timeout_s=1.0)
    with ServerThread(settings, vad) as server:
        port = _port(server)

        async def idle() -> list[Event | None]:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                return [await asyncio.wait_for(client.read_event(), 30) for _ in range(2)]

        refused, closed = asyncio.run(idle())
        assert refused is not None and Error.from_event(refused).code == "idle_timeout"
        assert closed is None

        async def huge() -> list[Event | None]:
            # A chunk announcing 10 minutes of audio: refused before its payload is read.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            start = AudioStart(rate=16000, width=2, channels=1).event()
            writer.write((json.dumps({"type": start.type, "data": start.data}) + "\n").encode())
            # The chunk claims a format that would allow it: the stream's own counts.
            chunk = AudioChunk(rate=192000, width=4, channels=8, audio=b"").event()
            header = {"type": chunk.type, "data": chunk.data, "payload_length": 19_200_000}
            writer.write((json.dumps(header) + "\n").encode() + b"\0" * 4096)
            await writer.drain()
            from wyoming.event import async_read_event

            try:
                return [await asyncio.wait_for(async_read_event(reader), 30) for _ in range(2)]
            finally:
                writer.close()

        async def malformed(header: bytes) -> bytes:
            # Not an event (as the library's reader): the connection ends, quietly.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(header)
            await writer.drain()
            try:
                return await asyncio.wait_for(reader.read(), 30)
            finally:
                writer.close()

        with caplog.at_level(logging.ERROR, logger="assistant.serving.wyoming"):
            assert asyncio.run(malformed(b'{"type": "' + b"x" * 70_000 + b'"}\n')) == b""
            assert asyncio.run(
                malformed(b'{"type": "describe", "payload_length": Infinity}\n')) == b""
        assert caplog.records == []  # no traceback logged for a client's garbage

        refused, closed = asyncio.run(huge())
        assert refused is not None and Error.from_event(refused).code == "frame_too_large"
        assert "480000 bytes" in Error.from_event(refused).text and closed is None
        metrics = server.run(lambda: server.app.metrics.render().decode())
        assert 'assistant_errors_total{code="idle_timeout"} 1.0' in metrics


def test_the_wyoming_command_and_its_exposure_rules(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    from assistant.errors import ConfigError
    from serving.server import check_exposure
    from serving.wyoming.listener import parse_uri

    assert parse_uri("tcp://0.0.0.0:10300") == ("tcp", "0.0.0.0", 10300)
    assert parse_uri("unix:///run/assistant.sock") == ("unix", "/run/assistant.sock", 0)
    for bad in ("tcp://host", "http://host:1", "unix://"):
        with pytest.raises(ConfigError, match="wyoming_uri"):
            parse_uri(bad)
    with pytest.raises(ConfigError, match="no authentication"):
        check_exposure(make_settings(wyoming_uri="tcp://0.0.0.0:10300"))
    check_exposure(make_settings(wyoming_uri="tcp://0.0.0.0:10300", insecure=True))

    server = subprocess.Popen([sys.executable, "-m", "assistant.cli", "wyoming", "--uri",
                               "tcp://127.0.0.1:0", "--port", "0", "--worker-kind", "thread"],
                              cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    try:
        port = None
        for line in server.stderr:
            match = re.search(r"ready: wyoming on tcp://127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        assert port is not None
        (event,) = asyncio.run(_ask(port, Describe().event()))
        assert Info.from_event(event).asr[0].models[0].name == "home"
    finally:
        server.terminate()
        server.wait(timeout=60)
        server.stderr.close()
    assert server.returncode == 0


def _put(url: str, body: bytes, method: str = "PUT", **headers: str
         ) -> tuple[int, dict[str, Any]]:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.load(e)


def test_new_device_names_are_understood_at_once(vad: Any, speak: Any, tmp_path: Path) -> None:
    import json
    import urllib.request

    slots_file = tmp_path / "slots.yaml"
    settings = make_settings((ModelSource("ha", "context", HA),),
                             wyoming_uri="tcp://127.0.0.1:0", slots_file=str(slots_file))
    silence = np.zeros(8000, np.float32)
    command = np.concatenate([silence, speak("turn on the aquarium pump"), silence])
    with ServerThread(settings, vad) as server:
        port = _port(server)
        before = Transcript.from_event(asyncio.run(_transcribe(port, command))).text
        assert "aquarium" not in before.lower()  # not a device yet
        with urllib.request.urlopen(f"{server.http}/v1/models/ha/slots") as r:
            devices = json.load(r)["slots"]["device"]
        names = [*devices, "aquarium pump", {"value": "tv", "synonyms": ["telly"]}]
        names = [n for n in names if n != "tv"]
        status, changed = _put(f"{server.http}/v1/models/ha/slots/device",
                               json.dumps(names).encode())
        assert status == 200, changed
        assert changed["values"] == len(names) and changed["persisted"] is True
        # The very next utterance, over Wyoming and over text, knows the new name.
        after = Transcript.from_event(asyncio.run(_transcribe(port, command))).text
        assert after.lower().rstrip(".") == "turn on the aquarium pump"
        (intent,) = asyncio.run(_ask(port, Recognize(text="switch off the telly").event()))
        assert {e.name: e.value for e in Intent.from_event(intent).entities} == {"name": "tv"}
        # Values the grammar cannot take change nothing; errors are named.
        status, refused = _put(f"{server.http}/v1/models/ha/slots/device",
                               json.dumps(["lamp", "lamp"]).encode())
        assert status == 400 and "listed twice" in refused["error"]
        assert _put(f"{server.http}/v1/models/ha/slots/nope", b'["x"]')[0] == 400
        assert _put(f"{server.http}/v1/models/nope/slots/device", b'["x"]')[0] == 404
        assert _put(f"{server.http}/v1/models/ha/slots/device", b"{oops")[0] == 400
        too_big = json.dumps(["x" * 100] * 20000).encode()
        assert _put(f"{server.http}/v1/models/ha/slots/device", too_big)[0] == 413
        (still,) = asyncio.run(_ask(port, Recognize(text="turn on the aquarium pump").event()))
        assert Intent.is_type(still.type)
    # The names outlive a restart: they are in the slots file.
    assert "aquarium pump" in slots_file.read_text()
    with ServerThread(settings, vad) as server:
        (again,) = asyncio.run(_ask(_port(server),
                                    Recognize(text="turn on the aquarium pump").event()))
        assert Intent.from_event(again).name == "HassTurnOn"


def test_a_body_behind_expect_100_continue(vad: Any) -> None:
    import socket

    with ServerThread(make_settings((ModelSource("ha", "context", HA),)), vad) as server:
        body = b'["hall lamp", "desk lamp"]'
        head = (f"PUT /v1/models/ha/slots/light HTTP/1.1\r\nHost: 127.0.0.1:{server.app.port}"
                f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Expect: 100-continue\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", server.app.port), timeout=30) as sock:
            sock.sendall(head)
            assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
            sock.sendall(body)
            reply = sock.makefile("rb").readline()
        assert reply.startswith(b"HTTP/1.1 200"), reply
        lights = server.run(lambda: server.app.services.catalog.slot_values("ha")["light"])
        assert lights == ["hall lamp", "desk lamp"]


def test_a_slots_file_with_a_mistake_changes_nothing(vad: Any, tmp_path: Path) -> None:
    import json

    slots_file = tmp_path / "slots.yaml"
    settings = make_settings((ModelSource("ha", "context", HA),), slots_file=str(slots_file))
    with ServerThread(settings, vad) as server:
        device = f"{server.http}/v1/models/ha/slots/device"
        assert _put(device, b'["aquarium pump", "tv"]')[0] == 200
        slots_file.write_text("ha:\n  device: [lamp, lamp]\n  area: [attic]\n")
        status, failed = _put(f"{server.http}/v1/reload", b"", method="POST")
        assert status >= 400
        assert f"slots file {slots_file}" in failed["error"] and "listed twice" in failed["error"]
        # Nothing of the file was taken: other slot types can still be changed, and the
        # devices are those served before.
        status, changed = _put(f"{server.http}/v1/models/ha/slots/area",
                               json.dumps(["kitchen", "attic"]).encode())
        assert status == 200, changed
        values = server.run(lambda: server.app.services.catalog.slot_values("ha"))
        assert values["device"] == ["aquarium pump", "tv"]
        assert values["area"] == ["kitchen", "attic"]
        # A request's mistake names the request, not a line of the edited grammar.
        status, refused = _put(device, b'["lamp", "lamp"]')
        assert status == 400 and refused["error"].startswith("the request: ")
        assert "home_assistant.yaml:" not in refused["error"]  # no line of the edited text
