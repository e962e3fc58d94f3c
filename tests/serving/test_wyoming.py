"""Home Assistant's Wyoming protocol, driven with the ``wyoming`` package's own client the
way Home Assistant drives a speech service: describe, transcribe with audio events, and
recognize for intents; concurrent pipelines; bad events get error events."""

from __future__ import annotations

import asyncio
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


def test_speech_to_text_in_home_assistants_phrasing(server: ServerThread, speak: Any) -> None:
    port = _port(server)
    silence = np.zeros(8000, np.float32)
    lights = np.concatenate([silence, speak("turn on the kitchen lights"), silence])
    event = asyncio.run(_transcribe(port, lights))
    assert Transcript.is_type(event.type)
    assert Transcript.from_event(event).text.lower().rstrip(".") == "turn on the kitchen lights"
    # The same at 48 kHz stereo, 32-bit, and with the other model named.
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

    events = asyncio.run(all_at_once())
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
    assert Info.is_type(answers[-1].type)
    metrics = server.run(lambda: server.app.metrics.render())
    assert 'assistant_errors_total{code="unsupported_event"}' in metrics


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
