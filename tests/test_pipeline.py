"""The utterance pipeline: gates before recognition, sinks after it, requests carried out by
the shell, answers without recognizing, cancel; and the registry that names the stages."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from assistant.errors import ConfigError
from assistant.gates import GATES, create_gates
from assistant.gates.min_duration import MinDurationGate
from assistant.pipeline import (
    Pipeline,
    PipelineConfig,
    UtteranceResult,
    recognize_request,
)
from assistant.recognizer import Reason
from assistant.registry import Spec, create
from assistant.segmenter import EndReason, Segmenter, SpeechEnded
from assistant.sinks import SINKS, close_sinks
from assistant.stream import RecognizerSession
from assistant.utterance import Completed, RecognitionRequest
from tests.stages import DropShort, Record


@pytest.fixture(scope="module")
def stop_then_lights(speak) -> np.ndarray:  # type: ignore[no-untyped-def]
    silence = np.zeros(16000, np.float32)
    return np.concatenate([speak("stop"), silence, speak("turn off the bedroom lights"),
                           silence])


def _feed(session: RecognizerSession, audio: np.ndarray, chunk: int = 1600) -> list[object]:
    events: list[object] = []
    for start in range(0, audio.size, chunk):
        events += session.feed(audio[start : start + chunk])
    return events + session.finalize()


def _midpoint_ms(home_recognizer, vad, audio: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """A length between the two utterances' (measured by the same segmenter, no gate)."""
    ended = [e for e in _feed(RecognizerSession(home_recognizer, vad), audio)
             if isinstance(e, SpeechEnded)]
    short, long = sorted(e.end_ms - e.start_ms for e in ended)
    assert long > short + 200
    return (short + long) / 2


def test_a_gate_drops_and_the_sinks_see_every_answer(home_recognizer, vad,  # type: ignore[no-untyped-def]
                                                     stop_then_lights: np.ndarray) -> None:
    gate, sink = DropShort(min_ms=_midpoint_ms(home_recognizer, vad, stop_then_lights)), Record()
    session = RecognizerSession(home_recognizer, vad, gates=[gate], sinks=[sink], model="home",
                                stream_id="s1")
    events = _feed(session, stop_then_lights)
    results = [e for e in events if isinstance(e, UtteranceResult)]
    assert [r.utterance_id for r in results] == [0, 1]
    dropped, kept = results[0].result, results[1].result
    assert not dropped.understood and dropped.reason is Reason.GATED
    assert "decoder" not in dropped.timing_ms  # never recognized
    assert kept.understood and kept.intent == "lightsOff" and kept.reason is None
    assert gate.seen == 2
    first, second = sink.rows
    assert (first["gate"], first["reason"], first["stream"], first["model"]) == (
        "drop_short", "gated", "s1", "home")
    assert second["gate"] is None and second["intent"] == "lightsOff"
    # What the recognizer saw goes with the answer: features, timings, level, latency.
    assert second["has_features"] and second["audio_dbfs"] < -10
    assert {"features", "encoder", "decoder", "gates", "total"} <= set(second["timing"])
    assert second["latency_ms"] is not None and second["latency_ms"] >= 0


def test_a_failing_sink_costs_no_answer(home_recognizer, vad, speak,  # type: ignore[no-untyped-def]
                                        caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def on_result(self, completed: Completed) -> None:
            raise RuntimeError("disk full")

    after = Record()
    session = RecognizerSession(home_recognizer, vad, sinks=[Broken(), after])
    with caplog.at_level(logging.ERROR, "assistant.pipeline"):
        events = _feed(session, speak("turn off the bedroom lights"))
    assert [e.result.intent for e in events if isinstance(e, UtteranceResult)] == ["lightsOff"]
    assert [r["intent"] for r in after.rows] == ["lightsOff"]  # later sinks still ran
    assert "result sink Broken failed" in caplog.text and "disk full" in caplog.text


def test_requests_wait_for_the_shell_and_cancel_drops_them(home_recognizer, vad, speak  # type: ignore[no-untyped-def]
                                                           ) -> None:
    sink = Record()
    pipeline = Pipeline(Segmenter(vad), sinks=[sink])
    audio = np.concatenate([speak("turn off the bedroom lights"), np.zeros(16000, np.float32)])
    events = pipeline.feed(audio[:8000], now_s=100.0) + pipeline.feed(audio[8000:], now_s=101.0)
    requests = [e for e in events if isinstance(e, RecognitionRequest)]
    assert len(requests) == 1 and not sink.rows  # nothing recognized yet: the shell does it
    request = requests[0]
    assert request.utterance.ended is EndReason.SILENCE
    assert request.utterance.end_of_speech_s == 101.0
    answer = pipeline.complete(request, recognize_request(home_recognizer, request), 101.25)
    assert isinstance(answer[0], UtteranceResult) and answer[0].result.intent == "lightsOff"
    assert answer[0].latency_ms == pytest.approx(250.0)  # on the shell's clock
    # A request still owed when the client cancels is reported as cancelled, never answered.
    more = pipeline.feed(audio, now_s=102.0)
    owed = next(e for e in more if isinstance(e, RecognitionRequest))
    pipeline.cancel()
    assert sink.rows[-1]["reason"] == "cancelled"
    assert pipeline.complete(owed, recognize_request(home_recognizer, owed), 103.0) == []
    assert not pipeline.is_current(owed)
    # Ids go on after a cancel.
    later = pipeline.feed(audio, now_s=104.0)
    assert next(e for e in later if isinstance(e, RecognitionRequest)).utterance_id == 2


def test_nothing_said_is_answered_without_recognizing(vad) -> None:  # type: ignore[no-untyped-def]
    sink = Record()
    pipeline = Pipeline(Segmenter(vad), gates=[DropShort(min_ms=10_000)], sinks=[sink])
    pipeline.feed(np.zeros(8000, np.float32), now_s=0.0)
    events = pipeline.finalize(now_s=0.5)
    assert len(events) == 1 and isinstance(events[0], UtteranceResult)
    assert events[0].result.reason is Reason.NO_SPEECH  # not the gate: there was nothing
    assert sink.rows[0]["gate"] is None
    assert pipeline.finalize(now_s=1.0, answer_silence=False) == []


def test_specs_name_and_configure_stages(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert Spec.parse("min_duration, min_ms = 250") == Spec("min_duration", (("min_ms", "250"),))
    gate = create(GATES, "min_duration,min_ms=250")
    assert isinstance(gate, MinDurationGate) and gate.min_ms == 250.0
    with pytest.raises(ConfigError, match=r"unknown gate 'wake' \(known: \['min_duration'\]"):
        create(GATES, "wake")
    with pytest.raises(ConfigError, match=r"no option 'min_s' \(options: \['min_ms'\]\)"):
        create(GATES, "min_duration,min_s=1")
    with pytest.raises(ConfigError, match=r"min_duration\.min_ms='short' is not a valid float"):
        create(GATES, "min_duration,min_ms=short")
    with pytest.raises(ConfigError, match="must be in"):
        create(GATES, "min_duration,min_ms=-5")
    with pytest.raises(ConfigError, match="is not option=value"):
        Spec.parse("min_duration,300")
    # Any importable class, without registering it; and a new name is one line.
    assert isinstance(create(GATES, "tests.stages:DropShort,min_ms=10"), DropShort)
    with pytest.raises(ConfigError, match="cannot import"):
        create(SINKS, "tests.no_such_module:Sink")
    GATES.register("drop_short", DropShort)
    try:
        assert create_gates(["drop_short,min_ms=20"])[0].min_ms == 20.0
    finally:
        GATES.unregister("drop_short")
    # Checked when the config is made, before any stream or file.
    with pytest.raises(ConfigError, match="unknown sink 'nope'"):
        PipelineConfig(sinks=("nope",))
    sink_file = tmp_path / "results.jsonl"
    config = PipelineConfig(gates=("min_duration",), sinks=(f"jsonl,path={sink_file}",))
    assert not sink_file.exists()  # checked, not opened
    sinks = config.make_sinks()
    close_sinks(sinks)
    assert [type(s).__name__ for s in sinks] == ["JsonLinesSink"] and sink_file.exists()
