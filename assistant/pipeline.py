"""The one utterance pipeline every entry point runs: segment -> gates -> recognize -> sinks.

    pipeline = Pipeline(Segmenter(vad, stream_config), gates, sinks, model="home")
    for event in pipeline.feed(chunk, now_s):        # Sans-I/O: events out, nothing run
        if isinstance(event, RecognitionRequest):
            result = recognize_request(recognizer, event)   # or in a worker pool, later
            events = pipeline.complete(event, result, now_s)  # -> UtteranceResult, sinks
        ...                                          # SpeechStarted / SpeechEnded / ...

The pipeline owns what every shell needs the same way: utterance ids that stay in order
across ``cancel()``, the gates (:mod:`assistant.gates`), the answers given without recognizing
(nothing said, dropped by a gate), dropping the results of cancelled requests, and handing
every answer to the result sinks (:mod:`assistant.sinks`) with its latency on the shell's
clock, and grammar-aware endpointing (:mod:`assistant.endpointing`): a speculation's result
decides when the segmenter ends the utterance, and the answer is that result, not a second
recognition. It recognizes nothing itself: :class:`~assistant.stream.RecognizerSession` (in
process), the server's sessions (worker pool) and :func:`~assistant.recording.
recognize_recording` (whole files, through :meth:`Pipeline.submit`) carry requests out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .endpointing import GrammarEndpointing
from .errors import ConfigError
from .gates import create_gates
from .levels import level_dbfs
from .recognizer import Reason, Recognizer, Result
from .registry import Spec, options_of
from .segmenter import (
    EndReason,
    Segment,
    Segmenter,
    Speculation,
    SpeechEnded,
    SpeechStarted,
    UtteranceAudio,
)
from .sinks import SINKS, create_sinks
from .utterance import Completed, Gate, RecognitionRequest, ResultSink, Utterance, stage_name
from .vad import VadState

logger = logging.getLogger("assistant.pipeline")


@dataclass(frozen=True)
class PipelineConfig:
    """Which gates and sinks run, as specs (``"name,option=value"``, see
    :mod:`assistant.registry`); checked here, built per stream (gates) or per run (sinks).
    Gates are cheap and have no side effects, so one set is built here to check their values
    too; sinks (which may open files) are only checked for names and option types."""

    gates: tuple[str, ...] = field(default=(), metadata={
        "flag": "--gate", "help": "a gate before recognition, e.g. min_duration,min_ms=300"})
    sinks: tuple[str, ...] = field(default=(), metadata={
        "flag": "--sink", "help": "a result sink, e.g. jsonl,path=results.jsonl"})

    def __post_init__(self) -> None:
        create_gates(self.gates)
        for spec in self.sinks:
            options_of(SINKS, Spec.parse(spec))

    def make_gates(self) -> list[Gate]:
        return create_gates(self.gates)

    def make_sinks(self) -> list[ResultSink]:
        return create_sinks(self.sinks)


@dataclass(frozen=True)
class PartialResult:
    utterance_id: int
    result: Result  # the best guess for the speech so far


@dataclass(frozen=True)
class UtteranceResult:
    utterance_id: int
    result: Result
    audio: np.ndarray = field(repr=False, compare=False)  # the 16 kHz speech recognized
    latency_ms: float | None = field(default=None, compare=False)  # end of speech to result


Event = SpeechStarted | SpeechEnded | RecognitionRequest | PartialResult | UtteranceResult


def recognize_request(recognizer: Recognizer, request: RecognitionRequest) -> Result:
    """Carry a request out in this thread: a partial guess or a final recognition."""
    return run_recognition(recognizer, request.audio, request.partial)


def run_recognition(recognizer: Recognizer, audio: np.ndarray, partial: bool) -> Result:
    return recognizer.partial(audio) if partial else recognizer.recognize(audio)


class Pipeline:
    """One stream's pipeline (see module docs). ``segmenter`` may be None for callers that
    only :meth:`submit` whole utterances (files)."""

    def __init__(self, segmenter: Segmenter | None = None, gates: Sequence[Gate] = (),
                 sinks: Sequence[ResultSink] = (), *, model: str = "", stream_id: str = ""):
        self.segmenter = segmenter
        self.gates = list(gates)
        self.sinks = list(sinks)
        self.model = model
        self.stream_id = stream_id
        self.epoch = 0
        self._offset = 0  # stream utterance id = offset + segmenter utterance id
        self._outstanding: dict[int, RecognitionRequest] = {}  # finals not yet completed
        # Grammar endpointing: the speculation in flight, and the last one's result.
        self._speculation: tuple[RecognitionRequest, Speculation] | None = None
        self._speculated: tuple[Utterance, Result] | None = None

    # -- a stream of audio ----------------------------------------------------------------

    def feed(self, chunk: bytes | bytearray | memoryview | np.ndarray,
             now_s: float | None = None) -> list[Event]:
        """Audio in (any size); ``now_s`` is the shell's clock when it arrived."""
        return self._segments(self._stream().feed(chunk), now_s)

    def upcoming_frames(self, chunks: Sequence[bytes | bytearray | memoryview | np.ndarray]
                        ) -> tuple[VadState, np.ndarray]:
        """What the VAD will be given if ``chunks`` are fed next (see
        :meth:`~assistant.segmenter.Segmenter.upcoming_frames`)."""
        return self._stream().upcoming_frames(chunks)

    def finalize(self, now_s: float | None = None, answer_silence: bool = True,
                 always: bool = False) -> list[Event]:
        """End the utterance in progress now (push-to-talk release, stop). With nothing said
        since the last finalize, ``answer_silence`` answers "not understood" all the same;
        ``always`` answers so whenever this call ended no utterance (see
        :meth:`~assistant.segmenter.Segmenter.finalize`)."""
        return self._segments(self._stream().finalize(answer_silence, always), now_s)

    def cancel(self) -> None:
        """Drop the utterance in progress and every answer not yet given; ids go on."""
        segmenter = self._stream()
        self._offset += segmenter.utterance_id + (1 if segmenter.in_speech else 0)
        segmenter.reset()
        self._drop_outstanding()
        self._reset_gates()
        self._speculation = self._speculated = None

    def reset(self) -> None:
        """Start afresh: time and utterance ids from zero, answers not yet given dropped."""
        if self.segmenter is not None:
            self.segmenter.reset()
        self._offset = 0
        self._drop_outstanding()
        self._reset_gates()
        self._speculation = self._speculated = None

    def close(self) -> None:
        """The stream is gone: answers still owed are reported to the sinks as cancelled."""
        self._drop_outstanding()

    def _stream(self) -> Segmenter:
        if self.segmenter is None:
            raise ConfigError("this pipeline has no segmenter: submit() whole utterances")
        return self.segmenter

    def _segments(self, segments: list[Segment], now_s: float | None,
                  ended_s: float | None = None) -> list[Event]:
        """The pipeline events of segments; ``ended_s`` (default ``now_s``) is when the
        audio that ended an utterance came."""
        events: list[Event] = []
        ended_s = now_s if ended_s is None else ended_s
        for segment in segments:
            uid = self._offset + segment.utterance_id
            if isinstance(segment, Speculation):
                events += self._speculate(segment, uid, now_s)
            elif isinstance(segment, UtteranceAudio):
                utterance = Utterance(uid, segment.audio, segment.start_ms, segment.end_ms,
                                      segment.ended, None if segment.partial else ended_s)
                known = self._known_result(utterance)
                events += (self.submit(utterance) if known is None
                           else self._answer(known[0], known[1], now_s))
            else:
                events.append(replace(segment, utterance_id=uid))
        return events

    # -- grammar-aware endpointing ----------------------------------------------------------

    def _speculate(self, segment: Speculation, uid: int, now_s: float | None) -> list[Event]:
        utterance = Utterance(uid, segment.audio, segment.start_ms, segment.end_ms,
                              EndReason.COMPLETE, now_s, speculative=True)
        for gate in self.gates:
            admitted = gate.admit(utterance)
            if admitted is None:
                return []
            utterance = admitted
        request = RecognitionRequest(utterance, self.epoch)
        self._speculation = (request, segment)
        return [request]

    def _speculation_done(self, request: RecognitionRequest, result: Result,
                          now_s: float | None) -> list[Event]:
        """A speculation's result: end the utterance at its pause (now or once the pause
        lasts long enough), or nothing when speech has resumed or the grammar says wait."""
        if self._speculation is None or self._speculation[0] is not request:
            return []  # a newer speculation (or none) counts now
        segment = self._speculation[1]
        self._speculation = None
        segmenter = self._stream()
        if (self._offset + segmenter.utterance_id != request.utterance_id
                or segmenter.pause_sample != segment.pause_sample):
            return []  # speech came back, or the utterance ended another way meanwhile
        self._speculated = (request.utterance, result)
        wait_ms = self._policy.wait_ms(result)
        if wait_ms is None:
            return []
        ended = segmenter.commit(segment.pause_sample, wait_ms, segment.end_sample)
        return self._segments(ended, now_s, ended_s=request.utterance.end_of_speech_s)

    @property
    def _policy(self) -> GrammarEndpointing:
        return self._stream().config.grammar

    def _known_result(self, utterance: Utterance) -> tuple[Utterance, Result] | None:
        """The speculation's result for a final utterance with the very same audio (the
        grammar ended it, or the endpointer did at the same point): no second recognition."""
        if self._speculated is None or utterance.partial:
            return None
        speculated, result = self._speculated
        if (speculated.utterance_id, speculated.start_ms, speculated.end_ms) != (
                utterance.utterance_id, utterance.start_ms, utterance.end_ms):
            return None
        self._speculated = None
        return replace(speculated, ended=utterance.ended, speculative=False,
                       end_of_speech_s=utterance.end_of_speech_s), result

    # -- one utterance ----------------------------------------------------------------------

    def submit(self, utterance: Utterance) -> list[Event]:
        """Gate one utterance: a request to carry out, an answer at once, or nothing (a
        partial a gate dropped)."""
        if not utterance.partial and utterance.audio.size == 0:
            nothing = Result.not_understood(0.0, reason=Reason.NO_SPEECH)
            return self._answer(utterance, nothing, utterance.end_of_speech_s)
        if self.gates:
            started = time.perf_counter()
            for gate in self.gates:
                admitted = gate.admit(utterance)
                if admitted is None:
                    return [] if utterance.partial else self._gated(utterance, gate)
                utterance = admitted
            gates_ms = 1000 * (time.perf_counter() - started)
            utterance = replace(utterance, timing_ms={**utterance.timing_ms, "gates": gates_ms})
        request = RecognitionRequest(utterance, self.epoch)
        if not utterance.partial:
            self._outstanding[utterance.utterance_id] = request
        return [request]

    def complete(self, request: RecognitionRequest, result: Result,
                 now_s: float | None = None) -> list[Event]:
        """The result of ``request``: its answer event (and the sinks see it), or nothing if
        the request was cancelled since."""
        if not self.is_current(request):
            return []
        if request.utterance.speculative:
            return self._speculation_done(request, result, now_s)
        if not request.partial:
            self._outstanding.pop(request.utterance_id, None)
        return self._answer(request.utterance, result, now_s)

    def is_current(self, request: RecognitionRequest) -> bool:
        """Whether ``request`` still counts (no cancel or reset since it was made)."""
        return request.epoch == self.epoch

    # -- answers ----------------------------------------------------------------------------

    def _gated(self, utterance: Utterance, gate: Gate) -> list[Event]:
        dropped = replace(Result.not_understood(utterance.duration_ms, reason=Reason.GATED),
                          audio_dbfs=level_dbfs(utterance.audio))
        return self._answer(utterance, dropped, utterance.end_of_speech_s, stage_name(gate))

    def _answer(self, utterance: Utterance, result: Result, now_s: float | None,
                gate: str | None = None) -> list[Event]:
        result = _with_stages(result, utterance)
        latency_ms = (None if now_s is None or utterance.end_of_speech_s is None
                      else 1000 * (now_s - utterance.end_of_speech_s))
        self._notify(Completed(utterance, result, self.model, self.stream_id, latency_ms, gate))
        if utterance.partial:
            return [PartialResult(utterance.utterance_id, result)]
        return [UtteranceResult(utterance.utterance_id, result, utterance.audio, latency_ms)]

    def _notify(self, completed: Completed) -> None:
        for sink in self.sinks:
            try:
                sink.on_result(completed)
            except Exception:  # a sink must never cost an answer
                logger.exception("result sink %s failed on utterance %d", stage_name(sink),
                                 completed.utterance.utterance_id)

    def _drop_outstanding(self) -> None:
        owed = sorted(self._outstanding.values(), key=lambda r: r.utterance_id)
        self._outstanding.clear()
        self.epoch += 1
        for request in owed:
            cancelled = Result.not_understood(request.utterance.duration_ms,
                                              reason=Reason.CANCELLED)
            self._notify(Completed(request.utterance, cancelled, self.model, self.stream_id))

    def _reset_gates(self) -> None:
        for gate in self.gates:
            reset: Callable[[], None] | None = getattr(gate, "reset", None)
            if reset is not None:
                reset()


def _with_stages(result: Result, utterance: Utterance) -> Result:
    """Add the timings of the stages before recognition (VAD of a file, gates) to a result,
    and, for a whole recording, where its speech was."""
    if not utterance.timing_ms and utterance.ended is not EndReason.FILE:
        return result
    timing = {**utterance.timing_ms, **result.timing_ms}
    timing["total"] = result.timing_ms.get("total", 0.0) + sum(utterance.timing_ms.values())
    speech_ms = result.speech_ms
    if utterance.ended is EndReason.FILE and utterance.audio.size:
        speech_ms = (utterance.start_ms, utterance.end_ms)
    return replace(result, timing_ms=timing, speech_ms=speech_ms)


def resolve(pipeline: Pipeline, events: list[Event], recognizer: Recognizer,
            clock: Callable[[], float] = time.perf_counter) -> list[Event]:
    """Carry the pipeline's requests out in this thread, in order (the in-process shell)."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, RecognitionRequest):
            result = recognize_request(recognizer, event)
            out += pipeline.complete(event, result, clock())
        else:
            out.append(event)
    return out
