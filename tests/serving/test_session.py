"""The WebSocket v1 session state machine on a fake clock: no sockets, no waiting.

Frames go in with the clock value they arrived at; actions come out. Recognitions are carried
out here the way the connection does it (a real recognizer), so the timings in the result
messages are exact differences of the fake clock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant import protocol as p
from assistant.errors import ConfigError
from assistant.pipeline import recognize_request
from serving.catalog import ModelCatalog
from serving.config import LimitsConfig, ModelSource
from serving.ws.session import (
    Cancelled,
    Close,
    Finish,
    Recognize,
    Send,
    Session,
    SessionState,
)
from tests.stages import DropShort, Record

HOME = Path(__file__).resolve().parents[2] / "assistant" / "contexts" / "home.yaml"


@pytest.fixture(scope="module")
def catalog() -> ModelCatalog:
    catalog = ModelCatalog([ModelSource("home", "context", HOME)], {"threads": 1})
    catalog.load()
    return catalog


@pytest.fixture(scope="module")
def lights(speak) -> bytes:  # type: ignore[no-untyped-def]
    audio = np.concatenate([speak("turn off the bedroom lights"), np.zeros(16000, np.float32)])
    return p_pcm(audio)


def p_pcm(audio: np.ndarray) -> bytes:
    return np.round(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def _session(catalog: ModelCatalog, vad: Any, **kwargs: Any) -> Session:
    limits = kwargs.pop("limits", LimitsConfig())
    return Session("s1", catalog.get, vad, limits, now_s=0.0, **kwargs)


def _messages(actions: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(a.message.to_json()) for a in actions if isinstance(a, Send)]


def _start(session: Session, now_s: float = 0.0, **fields: Any) -> dict[str, Any]:
    (ready,) = _messages(session.on_text(json.dumps({"type": "start", **fields}), now_s))
    return ready


def _stream(session: Session, pcm: bytes, start_s: float, chunk: int = 3200
            ) -> tuple[list[Any], float]:
    """Feed ``pcm`` in real time on the fake clock: 100 ms chunks 100 ms apart."""
    actions: list[Any] = []
    now = start_s
    for i in range(0, len(pcm), chunk):
        now = start_s + (i // chunk) * 0.1
        actions += session.on_audio(pcm[i : i + chunk], now)
    return actions, now


def test_start_and_ready(catalog: ModelCatalog, vad: Any) -> None:
    session = _session(catalog, vad)
    assert session.state is SessionState.NEW
    ready = _start(session, sample_rate_hz=16000)
    assert ready["type"] == "ready" and ready["model"] == "home"
    assert "lightsOff" in ready["intents"] and session.state is SessionState.STREAMING
    again = _messages(session.on_text('{"type":"start"}', 0.1))
    assert again[0]["code"] == "already_started" and not again[0]["fatal"]
    with pytest.raises(AttributeError):
        session.state = SessionState.CLOSED  # type: ignore[misc]  # only the session changes it


def test_unknown_model_and_audio_before_start_are_fatal(catalog: ModelCatalog, vad: Any) -> None:
    session = _session(catalog, vad)
    error, close = session.on_audio(b"\0\0", 0.0)
    assert isinstance(error, Send) and isinstance(close, Close) and close.code == 4000
    assert session.state is SessionState.CLOSED and session.on_text("{}", 1.0) == []
    other = _session(catalog, vad)
    actions = other.on_text('{"type":"start","model":"kitchen"}', 0.0)
    assert _messages(actions)[0]["code"] == "unknown_model"
    assert "available: ['home']" in _messages(actions)[0]["message"]


def test_a_result_times_from_the_frame_that_ended_the_speech(catalog: ModelCatalog, vad: Any,
                                                             lights: bytes) -> None:
    session = _session(catalog, vad)
    _start(session)
    actions, _ = _stream(session, lights, start_s=10.0)
    (work,) = [a for a in actions if isinstance(a, Recognize)]
    ended_at = work.request.utterance.end_of_speech_s
    assert ended_at is not None and 10.0 < ended_at < 13.0
    kinds = [m["type"] for m in _messages(actions)]
    assert kinds == ["speech_started", "speech_ended"]  # the result comes from complete()
    result = recognize_request(catalog_recognizer(catalog), work.request)
    (message,) = _messages(session.complete(work, result, ended_at + 0.125))
    assert message["type"] == "result" and message["intent"] == "lightsOff"
    assert message["timing"]["end_of_speech_to_result_ms"] == pytest.approx(125.0)


def catalog_recognizer(catalog: ModelCatalog) -> Any:
    from serving.models import ModelRegistry

    registry = ModelRegistry(warm_up=False)
    return registry.recognizer(catalog.get("home"))


def test_cancel_drops_what_is_in_flight(catalog: ModelCatalog, vad: Any, lights: bytes) -> None:
    sink = Record()
    session = _session(catalog, vad, sinks=[sink])
    _start(session)
    actions, now = _stream(session, lights, start_s=0.0)
    (work,) = [a for a in actions if isinstance(a, Recognize)]
    (cancelled,) = session.on_text('{"type":"cancel"}', now)
    assert isinstance(cancelled, Cancelled) and cancelled.epoch == session.epoch == 1
    assert not session.is_current(work)
    result = recognize_request(catalog_recognizer(catalog), work.request)
    assert session.complete(work, result, now + 1) == []  # never answered...
    assert [r["reason"] for r in sink.rows] == ["cancelled"]  # ...and the sinks know why
    # The next utterance gets the next id.
    more, _ = _stream(session, lights, start_s=now + 1)
    assert [a.request.utterance_id for a in more if isinstance(a, Recognize)] == [1]


def test_finalize_stop_and_drain(catalog: ModelCatalog, vad: Any, lights: bytes) -> None:
    session = _session(catalog, vad, limits=LimitsConfig(idle_timeout_s=5))
    _start(session, mode="push_to_talk")
    # Nothing said: finalize is answered at once, without a recognition.
    (empty,) = _messages(session.on_text('{"type":"finalize"}', 1.0))
    assert empty["type"] == "result" and not empty["understood"]
    assert empty["timing"]["end_of_speech_to_result_ms"] == 0.0
    actions, now = _stream(session, lights, start_s=2.0)
    assert not [a for a in actions if isinstance(a, Recognize)]  # push-to-talk: no endpoint
    assert session.idle_deadline_s == now + 5
    ended = session.on_text('{"type":"stop"}', now + 0.05)
    assert [type(a).__name__ for a in ended] == ["Send", "Recognize", "Finish"]
    assert isinstance(ended[-1], Finish) and session.state is SessionState.STOPPED
    assert session.on_audio(lights[:3200], now + 0.1) == []  # no more input
    assert session.drain(now + 0.2) == []
    # Draining a live session ends its speech and takes nothing more.
    live = _session(catalog, vad)
    _start(live)
    _, t = _stream(live, lights[: len(lights) // 4 * 2], start_s=0.0)
    drained = live.drain(t)
    assert any(isinstance(a, Recognize) for a in drained)
    assert live.state is SessionState.STOPPED


def test_limits_on_the_fake_clock(catalog: ModelCatalog, vad: Any) -> None:
    limits = LimitsConfig(max_messages_per_s=10, max_audio_speed=2.0, max_frame_bytes=4096)
    chunk = b"\0" * 3200  # 100 ms of audio
    steady = _session(catalog, vad, limits=LimitsConfig(max_audio_speed=2.0))
    _start(steady)
    assert all(steady.on_audio(chunk, 0.05 * i) == [] for i in range(200))  # 2x: allowed
    fast = _session(catalog, vad, limits=LimitsConfig(max_audio_speed=2.0))
    _start(fast)
    # 4x real time: each chunk spends 0.1 s and earns 0.05 s, so the 2 s burst lasts about
    # 2 / 0.05 = 40 chunks (38 or 39 with float rounding), then 4029.
    outcomes = [fast.on_audio(chunk, 0.025 * i) for i in range(60)]
    first = next(i for i, o in enumerate(outcomes) if o)
    assert 38 <= first <= 40 and _messages(outcomes[first])[0]["code"] == "rate_limited"
    assert outcomes[first][-1].code == 4029 and fast.state is SessionState.CLOSED
    flood = _session(catalog, vad, limits=limits)
    _start(flood)
    # A burst of 2 x 10 messages at one instant is allowed (bad ones are not fatal)...
    codes = [_messages(flood.on_text('{"type":"nope"}', 1.0))[0]["code"] for _ in range(20)]
    assert set(codes) == {"bad_message"} and flood.open
    assert _messages(flood.on_text('{"type":"nope"}', 1.0))[0]["code"] == "rate_limited"  # ...21
    assert not flood.open
    big = _session(catalog, vad, limits=limits)
    assert _messages(big.on_audio(b"\0" * 5000, 0.0))[0]["code"] == "frame_too_large"


def test_a_gate_answers_in_place_of_recognition(catalog: ModelCatalog, vad: Any,
                                                lights: bytes) -> None:
    session = _session(catalog, vad, gates=lambda: [DropShort(min_ms=60_000)])
    _start(session)
    actions, _ = _stream(session, lights, start_s=0.0)
    assert not [a for a in actions if isinstance(a, Recognize)]
    result = [m for m in _messages(actions) if m["type"] == "result"]
    assert len(result) == 1 and not result[0]["understood"]
    assert set(result[0]) == set(json.loads(p.Result(0, False, None, {}, 0.0, "", "",
                                                     p.Timing(0, 0, 0)).to_json()))


def test_finalize_right_after_the_endpointer_ended_an_utterance_is_answered(
        catalog: ModelCatalog, vad: Any, lights: bytes) -> None:
    session = _session(catalog, vad)
    _start(session)
    actions, now = _stream(session, lights, start_s=0.0)  # 1 s of silence after the speech
    assert len([a for a in actions if isinstance(a, Recognize)]) == 1  # the endpointer ended it
    # The client releases its push-to-talk button (or just asks) right after: one answer.
    answer = session.on_text('{"type":"finalize"}', now + 0.01)
    (empty,) = _messages(answer)
    assert not [a for a in answer if isinstance(a, Recognize)]
    assert (empty["type"], empty["understood"], empty["utterance_id"]) == ("result", False, 1)
    # A finalize that ends speech in progress is answered by that utterance alone.
    more, t = _stream(session, lights[: len(lights) // 4 * 2], start_s=now + 1)
    assert not [a for a in more if isinstance(a, Recognize)]
    ended = session.on_text('{"type":"finalize"}', t)
    assert [a.request.utterance_id for a in ended if isinstance(a, Recognize)] == [2]
    assert [m["type"] for m in _messages(ended)] == ["speech_ended"]


@pytest.mark.parametrize("where", ["start", "server"])
def test_grammar_endpointing_answers_a_complete_command_from_its_speculation(
        catalog: ModelCatalog, vad: Any, speak: Any, where: str) -> None:
    audio = np.concatenate([speak("what time is it"), np.zeros(16000, np.float32)])
    if where == "start":
        session = _session(catalog, vad)
        _start(session, endpointing="grammar")
    else:
        session = _session(catalog, vad, endpointing="grammar")
        _start(session)
    recognizer = catalog_recognizer(catalog)
    messages: list[dict[str, Any]] = []
    pcm = p_pcm(audio)
    recognitions = 0
    for i in range(0, len(pcm), 640):  # 20 ms frames, 20 ms apart
        now = 10.0 + i / 32000
        for action in session.on_audio(pcm[i : i + 640], now):
            if isinstance(action, Recognize):  # carried out at once, as a quick worker would
                recognitions += 1
                assert action.request.utterance.speculative
                result = recognize_request(recognizer, action.request)
                messages += _messages(session.complete(action, result, now + 0.05))
            elif isinstance(action, Send):
                messages.append(json.loads(action.message.to_json()))
    kinds = [m["type"] for m in messages]
    assert kinds == ["speech_started", "speech_ended", "result"]
    assert messages[-1]["intent"] == "getTime" and recognitions == 1
    # Computed ahead (50 ms here), the answer went out the moment the pause was long enough.
    assert messages[-1]["timing"]["end_of_speech_to_result_ms"] == 0.0


def test_an_unknown_endpointing_policy_is_refused(catalog: ModelCatalog, vad: Any) -> None:
    session = _session(catalog, vad)
    (error,) = _messages(session.on_text(json.dumps({"type": "start",
                                                     "endpointing": "eager"}), 0.0))
    assert error["type"] == "error" and "endpointing must be one of" in error["message"]
    with pytest.raises(ConfigError, match="endpointing must be one of"):
        _session(catalog, vad, endpointing="eager")
