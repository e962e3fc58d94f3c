"""Grammar-aware endpointing: the grammar's view of a sentence, the policy, and the pipeline
that speculates, commits and drops speculations (real VAD, real recognizer, espeak speech)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant import protocol as p
from assistant.endpointing import EndpointingPolicy, GrammarEndpointing, parse_policy
from assistant.errors import ConfigError
from assistant.grammar import compile_word_graph, context_from_yaml, load_context
from assistant.grammar.extension import Extension, extension_of, unfinished
from assistant.pipeline import (
    PartialResult,
    Pipeline,
    RecognitionRequest,
    UtteranceResult,
    recognize_request,
)
from assistant.recognizer import Reason, Result
from assistant.segmenter import EndReason, Segmenter, SpeechEnded, StreamConfig
from assistant.stream import RecognizerSession
from assistant.utterance import Completed

HOME = Path(__file__).resolve().parents[1] / "assistant" / "contexts" / "home.yaml"
GRAMMAR = StreamConfig(endpointing=EndpointingPolicy.GRAMMAR)
CHUNK = 320  # 20 ms
SILENCE = np.zeros(16000, np.float32)

CAFE = """
context:
  expressions:
    order:
      - "[can i get] (a) $size:size $drink:drink (with $milk:milk) (please)"
    hours:
      - "when do you open (today) (please)"
  slots:
    size: [small, large]
    drink: [latte, tea]
    milk: [oat milk, soy milk]
"""

THERMOSTAT = """
context:
  expressions:
    setTemperature:
      - "set it to $pv.TwoDigitInteger:degrees (degrees) (please)"
    heat:
      - "heat the $room:room"
  slots:
    room: [living, living room, kitchen]
"""


# -- the grammar's view --------------------------------------------------------------------

def _w(text: str) -> list[str]:
    return text.split()


@pytest.fixture(scope="module")
def cafe() -> Any:
    context = context_from_yaml(CAFE)
    return context, compile_word_graph(context)


def test_an_extension_counts_only_when_it_changes_the_meaning(cafe: Any) -> None:
    context, graph = cafe
    large_latte = _w("can i get a large latte")
    assert extension_of(context, graph, large_latte) is Extension.ADDS  # "... with oat milk"
    assert extension_of(context, graph, [*large_latte, "with", "oat", "milk"]) is Extension.NONE
    assert extension_of(context, graph, _w("when do you open")) is Extension.NONE  # today, please
    assert extension_of(context, graph, _w("can i get a")) is Extension.ADDS  # only goes on
    assert extension_of(context, graph, _w("what is the capital")) is Extension.NONE


def test_a_slot_value_that_may_go_on() -> None:
    context = context_from_yaml(THERMOSTAT)
    graph = compile_word_graph(context)
    assert extension_of(context, graph, _w("set it to eighty")) is Extension.CONTINUES_VALUE
    assert extension_of(context, graph, _w("set it to eighty seven")) is Extension.NONE
    assert extension_of(context, graph, _w("set it to five")) is Extension.NONE
    assert extension_of(context, graph, _w("heat the living")) is Extension.CONTINUES_VALUE


def test_home_grammar_extensions() -> None:
    context = load_context(HOME)
    graph = compile_word_graph(context)
    assert extension_of(context, graph, _w("what time is it")) is Extension.NONE
    assert extension_of(context, graph, _w("turn on the lights")) is Extension.ADDS


def test_unfinished_words(cafe: Any) -> None:
    _, graph = cafe
    assert unfinished(graph, _w("can i get a large"))
    assert not unfinished(graph, _w("can i get a large latte"))  # a whole sentence
    assert not unfinished(graph, _w("what is the capital"))  # not the grammar's
    assert not unfinished(graph, [])


# -- the policy ------------------------------------------------------------------------------

def _result(understood: bool = True, extension: Extension | None = Extension.NONE,
            heard_match: float = 1.0, heard_unfinished: bool = False,
            sounds_finished: bool | None = None) -> Result:
    return Result(understood, "x" if understood else None, {}, 0.9, "t", "t", 500.0,
                  features={"heard_match": heard_match}, extension=extension,
                  heard_unfinished=heard_unfinished,
                  reason=None if understood else Reason.BELOW_THRESHOLD,
                  sounds_finished=sounds_finished)


def test_policy_waits() -> None:
    policy = GrammarEndpointing()
    assert policy.wait_ms(_result()) == policy.complete_ms
    assert policy.wait_ms(_result(heard_match=0.75)) == policy.complete_ms
    assert policy.wait_ms(_result(extension=Extension.ADDS)) == policy.extendable_ms
    assert policy.wait_ms(_result(extension=Extension.CONTINUES_VALUE)) is None
    assert policy.wait_ms(_result(heard_match=0.25)) is None  # heard something else
    assert policy.wait_ms(_result(understood=False, extension=None)) is None
    assert policy.wait_ms(_result(heard_unfinished=True)) is None
    assert policy.wait_ms(_result(understood=False, heard_unfinished=True)) is None


def test_the_speech_decides_for_an_extendable_sentence() -> None:
    """Where the speech model has a finality probe: a last word that sounds finished commits
    soon, one that sounds unfinished waits longest, and when the probe cannot tell the
    grammar's wait stays; a sentence nothing extends never waits on the probe."""
    policy = GrammarEndpointing(use_finality=True)
    adds = Extension.ADDS
    assert policy.wait_ms(_result(extension=adds, sounds_finished=True)) == policy.complete_ms
    assert policy.wait_ms(_result(extension=adds, sounds_finished=False)) is None
    assert policy.wait_ms(_result(extension=adds, sounds_finished=None)) == policy.extendable_ms
    assert policy.wait_ms(_result(sounds_finished=False)) == policy.complete_ms
    off = GrammarEndpointing()  # the default: the grammar alone
    for judged in (True, False, None):
        assert off.wait_ms(_result(extension=adds, sounds_finished=judged)) == off.extendable_ms
    assert policy.wait_ms(_result(extension=Extension.CONTINUES_VALUE,
                                  sounds_finished=True)) is None


def test_policy_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="speculate_ms <= complete_ms"):
        GrammarEndpointing(complete_ms=500, extendable_ms=400)
    with pytest.raises(ConfigError, match="min_heard_match"):
        GrammarEndpointing(min_heard_match=1.5)
    with pytest.raises(ConfigError, match="endpointing must be one of"):
        parse_policy("eager")
    lowered = GrammarEndpointing().waiting(300)
    assert (lowered.incomplete_ms, lowered.extendable_ms, lowered.complete_ms) == (300, 300, 150)
    assert StreamConfig(endpointing=EndpointingPolicy.GRAMMAR).effective_endpoint \
        .min_silence_ms == GrammarEndpointing().incomplete_ms
    assert StreamConfig().effective_endpoint.min_silence_ms == StreamConfig().endpoint \
        .min_silence_ms


def test_start_message_names_a_policy() -> None:
    assert p.Start(endpointing="grammar").endpointing == "grammar"
    with pytest.raises(p.ProtocolError, match="endpointing must be one of"):
        p.Start(endpointing="eager")


# -- streams -----------------------------------------------------------------------------------

class Collect:
    def __init__(self) -> None:
        self.completed: list[Completed] = []

    def on_result(self, completed: Completed) -> None:
        self.completed.append(completed)


def _run(recognizer: Any, vad: Any, audio: np.ndarray, config: StreamConfig
         ) -> tuple[list[tuple[float, Any]], Collect]:
    """(stream position in s when it came, event) for every result, and what sinks saw."""
    sink = Collect()
    session = RecognizerSession(recognizer, vad, config, sinks=[sink])
    out = []
    for start in range(0, audio.size, CHUNK):
        for event in session.feed(audio[start : start + CHUNK]):
            if isinstance(event, UtteranceResult):
                out.append(((start + CHUNK) / 16000, event))
    return out, sink


def test_a_complete_command_is_answered_sooner_with_the_same_result(
        home_recognizer: Any, vad: Any, speak: Any) -> None:
    audio = np.concatenate([speak("what time is it"), SILENCE])
    fixed, _ = _run(home_recognizer, vad, audio, StreamConfig())
    grammar, sink = _run(home_recognizer, vad, audio, GRAMMAR)
    assert len(fixed) == len(grammar) == 1
    (fixed_s, fixed_event), (grammar_s, grammar_event) = fixed[0], grammar[0]
    assert grammar_event.result.understood and grammar_event.result.intent == "getTime"
    assert grammar_event.result.extension is Extension.NONE
    assert (grammar_event.result.intent, grammar_event.result.slots) == (
        fixed_event.result.intent, fixed_event.result.slots)
    # 400 ms of silence against about 150: a quarter of a second sooner at least.
    assert grammar_s <= fixed_s - 0.2
    (completed,) = sink.completed
    assert completed.utterance.ended is EndReason.COMPLETE and completed.final


def _words(speak: Any, text: str) -> np.ndarray:
    """Speech without the silence espeak puts around it."""
    audio = speak(text, pad_s=0.0)
    loud = np.flatnonzero(np.abs(audio) > 1e-3)
    return audio[loud[0] : loud[-1] + 1]


def test_a_pause_after_an_unfinished_command_is_waited_out(
        home_recognizer: Any, vad: Any, speak: Any) -> None:
    audio = np.concatenate([SILENCE[:8000], _words(speak, "set a timer for"),
                            np.zeros(12000, np.float32),  # 750 ms
                            _words(speak, "five minutes"), SILENCE, SILENCE])
    fixed, _ = _run(home_recognizer, vad, audio, StreamConfig())
    grammar, _ = _run(home_recognizer, vad, audio, GRAMMAR)
    assert len(fixed) == 2  # the fixed 400 ms cut the command in two
    assert [(e.result.intent, dict(e.result.slots)) for _, e in grammar] == [
        ("setTimer", {"duration": 5, "unit": "minutes"})]


def _speculate(pipeline: Pipeline, audio: np.ndarray) -> tuple[RecognitionRequest, int]:
    """Feed until the pipeline asks for a speculation; the request and samples fed."""
    for start in range(0, audio.size, CHUNK):
        events = pipeline.feed(audio[start : start + CHUNK], start / 16000)
        requests = [e for e in events if isinstance(e, RecognitionRequest)]
        if requests:
            assert requests[0].utterance.speculative and not requests[0].partial
            return requests[0], start + CHUNK
    raise AssertionError("no speculation")


def test_a_speculation_is_dropped_when_speech_resumes(
        home_recognizer: Any, vad: Any, speak: Any) -> None:
    audio = np.concatenate([SILENCE[:8000], _words(speak, "what time is it"),
                            np.zeros(4800, np.float32), _words(speak, "please"), SILENCE,
                            SILENCE])
    pipeline = Pipeline(Segmenter(vad, GRAMMAR))
    request, fed = _speculate(pipeline, audio)
    result = recognize_request(home_recognizer, request)
    assert result.understood
    resumed = audio[fed : fed + 4800 + 8000]  # the rest of the pause, then "please"
    events = pipeline.feed(resumed, 1.0)
    assert not any(isinstance(e, SpeechEnded) for e in events)  # still one utterance
    assert pipeline.complete(request, result, 1.1) == []  # too late: dropped
    rest = audio[fed + resumed.size :]
    answers = []
    for start in range(0, rest.size, CHUNK):
        for event in pipeline.feed(rest[start : start + CHUNK], 2.0):
            if isinstance(event, RecognitionRequest):  # carried out at once, in process
                answers += pipeline.complete(event, recognize_request(home_recognizer, event))
    (answer,) = [e for e in answers if isinstance(e, UtteranceResult)]
    spoken = audio.size - SILENCE.size * 2 - 8000  # both parts and the pause between
    assert answer.utterance_id == 0 and answer.audio.size >= spoken  # "please" included


def test_a_commit_waits_for_the_pause_and_reuses_the_speculation(
        home_recognizer: Any, vad: Any, speak: Any) -> None:
    audio = np.concatenate([SILENCE[:8000], _words(speak, "what time is it"), SILENCE])
    config = replace(GRAMMAR, grammar=replace(GRAMMAR.grammar, complete_ms=300,
                                              extendable_ms=400))
    pipeline = Pipeline(Segmenter(vad, config))
    request, fed = _speculate(pipeline, audio)
    result = recognize_request(home_recognizer, request)
    assert pipeline.complete(request, result, 1.0) == []  # the pause is not 300 ms yet
    answered_at = None
    for start in range(fed, audio.size, CHUNK):
        events = pipeline.feed(audio[start : start + CHUNK], 2.0)
        assert not any(isinstance(e, RecognitionRequest) for e in events)  # no second run
        answers = [e for e in events if isinstance(e, UtteranceResult)]
        if answers:
            assert answers[0].result is result
            answered_at = start + CHUNK
            break
    assert answered_at is not None
    pause_ms = 1000 * (answered_at - request.utterance.end_ms * 16) / 16000
    assert pause_ms >= 300 - 200  # the utterance's end includes up to 200 ms of padding


def test_push_to_talk_and_finalize_are_unchanged(home_recognizer: Any, vad: Any,
                                                 speak: Any) -> None:
    session = RecognizerSession(home_recognizer, vad, GRAMMAR)
    audio = speak("what time is it", pad_s=0.2)
    events = session.feed(audio[: audio.size - 1600])
    events += session.finalize()
    results = [e for e in events if isinstance(e, UtteranceResult)]
    assert len(results) == 1 and results[0].result.intent == "getTime"


def test_with_partials_a_gate_and_a_cancel(home_recognizer: Any, vad: Any, speak: Any) -> None:
    """Partials and speculations side by side; a gate that drops the speculation leaves the
    ending to the endpointer (and drops the final too); a cancel drops a speculation's result."""
    from tests.stages import DropShort

    audio = np.concatenate([SILENCE[:8000], _words(speak, "what time is it"), SILENCE, SILENCE])
    config = replace(GRAMMAR, partials=True, partial_interval_ms=200)
    session = RecognizerSession(home_recognizer, vad, config)
    events = [e for start in range(0, audio.size, CHUNK)
              for e in session.feed(audio[start : start + CHUNK])]
    assert any(isinstance(e, PartialResult) for e in events)
    (answer,) = [e for e in events if isinstance(e, UtteranceResult)]
    assert answer.result.intent == "getTime"

    sink = Collect()
    gated = RecognizerSession(home_recognizer, vad, GRAMMAR, gates=[DropShort(min_ms=60_000)],
                              sinks=[sink])
    events = [e for start in range(0, audio.size, CHUNK)
              for e in gated.feed(audio[start : start + CHUNK])]
    (dropped,) = [e for e in events if isinstance(e, UtteranceResult)]
    assert dropped.result.reason is Reason.GATED
    assert sink.completed[0].utterance.ended is EndReason.SILENCE  # the endpointer ended it

    pipeline = Pipeline(Segmenter(vad, GRAMMAR))
    request, fed = _speculate(pipeline, audio)
    pipeline.cancel()
    assert pipeline.complete(request, recognize_request(home_recognizer, request)) == []
    rest = pipeline.feed(audio[fed:])
    assert not any(isinstance(e, UtteranceResult | SpeechEnded) for e in rest)  # dropped
