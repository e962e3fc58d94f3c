"""One WebSocket v1 client's session as a state machine: frames in, actions out; no sockets.

``on_text``/``on_audio`` take a frame and the clock value when it arrived and return
:class:`Send` (a message), :class:`Recognize` (a pipeline request to carry out), :class:`Close`
(after a fatal error), :class:`Finish` (after ``stop``: send ``closed`` once the results are
out) and :class:`Cancelled` (drop what is queued from earlier epochs). The shell in
:mod:`serving.ws.connection` carries them out and hands each recognition's result back to
:meth:`Session.complete`. Audio goes through the utterance pipeline
(:class:`~assistant.pipeline.Pipeline`: segmenter, gates, sinks); this module only turns its
neutral events into protocol v1 messages. Only the session changes its :class:`SessionState`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np

from assistant import protocol as p
from assistant.endpointing import DEFAULT_GRAMMAR_ENDPOINTING, EndpointingPolicy, parse_policy
from assistant.errors import AudioFormatError, ConfigError
from assistant.pipeline import Event, PartialResult, Pipeline, UtteranceResult
from assistant.recognizer import Result
from assistant.segmenter import (
    DEFAULT_ENDPOINT,
    Segmenter,
    SpeechEnded,
    SpeechStarted,
    StreamConfig,
)
from assistant.utterance import Gate, RecognitionRequest, ResultSink
from assistant.vad import EndpointConfig, SileroVad, VadState

from ..catalog import ModelEntry, UnknownModel
from ..config import LimitsConfig
from ..limits import TokenBucket


class SessionState(Enum):
    NEW = "new"  # connected, no start yet
    STREAMING = "streaming"
    STOPPED = "stopped"  # no more input (stop, drain): what is queued still goes out
    CLOSED = "closed"  # a fatal error: only the error goes out


@dataclass(frozen=True)
class Send:
    message: p.Message


@dataclass(frozen=True)
class Recognize:
    request: RecognitionRequest
    model: str  # the catalogue name; the shell looks the entry up when it runs it

    @property
    def partial(self) -> bool:
        return self.request.partial

    @property
    def epoch(self) -> int:
        return self.request.epoch


@dataclass(frozen=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True)
class Finish:
    """``stop`` received: send ``closed`` after everything queued, then close normally."""


@dataclass(frozen=True)
class Cancelled:
    epoch: int  # the new epoch; work of earlier ones is dropped


Action = Send | Recognize | Close | Finish | Cancelled


def limits_message(limits: LimitsConfig) -> p.Limits:
    return p.Limits(limits.max_frame_bytes, limits.max_utterance_s, limits.idle_timeout_s,
                    limits.max_messages_per_s, limits.max_audio_speed)


def result_message(utterance_id: int, result: Result, end_of_speech_to_result_ms: float
                   ) -> p.Result:
    timing = p.Timing(round(result.audio_ms, 1), round(result.timing_ms.get("total", 0.0), 2),
                      round(end_of_speech_to_result_ms, 2))
    return p.Result(utterance_id, result.understood, result.intent, dict(result.slots),
                    round(result.confidence, 4), result.transcript, result.heard, timing)


def partial_message(utterance_id: int, result: Result) -> p.Partial:
    return p.Partial(utterance_id, result.understood, result.intent, dict(result.slots),
                     round(result.confidence, 4), result.transcript)


class Session:
    """See module docs. ``lookup(name)`` gives a catalogued model or raises UnknownModel;
    ``gates()`` a new set of gates for the stream; ``sinks`` see every answer."""

    def __init__(self, session_id: str, lookup: Callable[[str | None], ModelEntry],
                 vad: SileroVad, limits: LimitsConfig, now_s: float,
                 gates: Callable[[], Sequence[Gate]] = list, sinks: Sequence[ResultSink] = (),
                 endpointing: str = EndpointingPolicy.FIXED):
        self.session_id = session_id
        self.endpointing = parse_policy(endpointing)  # unless the start message says
        self.lookup = lookup
        self.vad = vad
        self.limits = limits
        self._state = SessionState.NEW
        self.model: str | None = None
        self.start: p.Start | None = None  # the start message that began the stream
        self.pipeline: Pipeline | None = None
        self._gates = gates
        self._sinks = tuple(sinks)
        self.last_received_s = now_s
        self._messages = TokenBucket(limits.max_messages_per_s, 2 * limits.max_messages_per_s,
                                     now_s)
        self._audio = TokenBucket(limits.max_audio_speed, max(2.0, limits.max_audio_speed),
                                  now_s)
        self._bytes_per_s = 2 * p.DEFAULT_SAMPLE_RATE_HZ

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def epoch(self) -> int:
        return self.pipeline.epoch if self.pipeline is not None else 0

    @property
    def idle_deadline_s(self) -> float:
        return self.last_received_s + self.limits.idle_timeout_s

    @property
    def open(self) -> bool:
        return self._state in (SessionState.NEW, SessionState.STREAMING)

    def fatal(self, code: p.ErrorCode, message: str, retry_after_s: float | None = None
              ) -> list[Action]:
        self._state = SessionState.CLOSED
        return [Send(p.error(code, message, True, retry_after_s)),
                Close(p.close_code(code), _reason(message))]

    def close_slow_consumer(self) -> Close:
        """The client does not read its events: stop here, send nothing more."""
        self._state = SessionState.CLOSED
        return Close(int(p.CloseCode.SLOW_CONSUMER), "events not read fast enough")

    def end(self) -> None:
        """The connection is gone: answers still owed are reported to the sinks as cancelled."""
        if self.pipeline is not None:
            self.pipeline.close()

    # -- input --------------------------------------------------------------------------

    def _admit(self, size: int, now_s: float) -> list[Action] | None:
        self.last_received_s = now_s
        if size > self.limits.max_frame_bytes:
            return self.fatal(p.ErrorCode.FRAME_TOO_LARGE,
                              f"frame of {size} bytes is over the limit of "
                              f"{self.limits.max_frame_bytes} bytes")
        if not self._messages.take(1.0, now_s):
            return self.fatal(p.ErrorCode.RATE_LIMITED,
                              f"more than {self.limits.max_messages_per_s:g} messages a second",
                              self._messages.retry_after_s(1.0, now_s))
        return None

    def on_text(self, text: str, now_s: float) -> list[Action]:
        if not self.open:
            return []
        refused = self._admit(len(text.encode("utf-8", "replace")), now_s)
        if refused is not None:
            return refused
        try:
            message = p.parse(text, p.CLIENT_MESSAGES)
        except p.ProtocolError as e:
            return [Send(p.error(e.code, str(e), False))]
        if isinstance(message, p.Start):
            return self._start(message)
        if isinstance(message, p.Stop):
            return self._stop(now_s)
        if isinstance(message, p.KeepAlive):
            return []  # its arrival reset the idle clock; nothing else to do
        if self.pipeline is None:
            return [Send(p.error(p.ErrorCode.NOT_STARTED,
                                 f"{message.type!r} before 'start'", False))]
        if isinstance(message, p.Finalize):  # always answered (docs/protocol.md)
            return self._actions(self.pipeline.finalize(now_s, always=True))
        self.pipeline.cancel()
        return [Cancelled(self.pipeline.epoch)]

    def upcoming_frames(self, chunks: Sequence[bytes]) -> tuple[VadState, np.ndarray] | None:
        """What the VAD will be given if audio ``chunks`` come next (for a look-ahead across
        sessions, :mod:`serving.feeder`); None while the stream is not running."""
        if self._state is not SessionState.STREAMING or self.pipeline is None:
            return None
        return self.pipeline.upcoming_frames(chunks)

    def on_audio(self, data: bytes, now_s: float) -> list[Action]:
        if not self.open:
            return []
        refused = self._admit(len(data), now_s)
        if refused is not None:
            return refused
        if self.pipeline is None:
            return self.fatal(p.ErrorCode.NOT_STARTED,
                              "audio before 'start' (send a start message first)")
        seconds = len(data) / self._bytes_per_s
        if not self._audio.take(seconds, now_s):
            return self.fatal(p.ErrorCode.RATE_LIMITED,
                              f"audio faster than {self.limits.max_audio_speed:g}x real time",
                              self._audio.retry_after_s(seconds, now_s))
        try:
            events = self.pipeline.feed(data, now_s)
        except AudioFormatError as e:
            return self.fatal(p.ErrorCode.BAD_AUDIO_FORMAT, str(e))
        return self._actions(events)

    def drain(self, now_s: float) -> list[Action]:
        """Shutting down: end the speech in progress (recognized) and take no more input."""
        if self._state is SessionState.CLOSED:
            return []
        streaming = self._state is SessionState.STREAMING
        self._state = SessionState.STOPPED
        if not streaming or self.pipeline is None:
            return []
        return self._actions(self.pipeline.finalize(now_s, answer_silence=False))

    # -- results ------------------------------------------------------------------------

    def complete(self, work: Recognize, result: Result, now_s: float) -> list[Action]:
        """A recognition finished: its message (nothing if it was cancelled since, or the
        session closed on a fatal error: the sinks then hear it was cancelled, at ``end``)."""
        if self.pipeline is None or self._state is SessionState.CLOSED:
            return []
        return self._actions(self.pipeline.complete(work.request, result, now_s))

    def is_current(self, work: Recognize) -> bool:
        return self.pipeline is not None and self.pipeline.is_current(work.request)

    # -- commands -----------------------------------------------------------------------

    def _start(self, start: p.Start) -> list[Action]:
        if self.pipeline is not None:
            return [Send(p.error(p.ErrorCode.ALREADY_STARTED,
                                 "the session has started already", False))]
        if start.protocol_version != p.PROTOCOL_VERSION:
            return self.fatal(p.ErrorCode.UNSUPPORTED_VERSION,
                              f"protocol_version {start.protocol_version} is not supported "
                              f"(this server speaks {p.PROTOCOL_VERSION})")
        try:
            model = self.lookup(start.model)
        except UnknownModel as e:
            return self.fatal(p.ErrorCode.UNKNOWN_MODEL, str(e))
        try:
            stream = StreamConfig(sample_rate_hz=start.sample_rate_hz,
                                  endpoint=self._endpoint(start), partials=start.partials,
                                  **self._endpointing(start))
        except (AudioFormatError, ConfigError) as e:
            return self.fatal(p.ErrorCode.BAD_AUDIO_FORMAT, str(e))
        self.pipeline = Pipeline(Segmenter(self.vad, stream), self._gates(), self._sinks,
                                 model=model.name, stream_id=self.session_id)
        self._bytes_per_s = 2 * start.sample_rate_hz
        self.model = model.name
        self.start = start
        self._state = SessionState.STREAMING
        return [Send(p.Ready(self.session_id, p.PROTOCOL_VERSION, model.name,
                             start.sample_rate_hz, model.intents, limits_message(self.limits)))]

    def _endpoint(self, start: p.Start) -> EndpointConfig:
        endpoint = replace(DEFAULT_ENDPOINT, max_utterance_s=self.limits.max_utterance_s)
        if start.mode == "push_to_talk":  # only finalize (or max_utterance_s) ends speech
            return replace(endpoint, min_silence_ms=int(1000 * endpoint.max_utterance_s))
        if start.min_silence_ms is not None:
            return replace(endpoint, min_silence_ms=start.min_silence_ms)
        return endpoint

    def _endpointing(self, start: p.Start) -> dict[str, Any]:
        """The stream's endpointing policy: the start message's, else the server's; the
        grammar policy waits min_silence_ms, when given, for an incomplete command."""
        policy = parse_policy(start.endpointing or self.endpointing)
        if start.mode == "push_to_talk" or policy is EndpointingPolicy.FIXED:
            return {}
        grammar = DEFAULT_GRAMMAR_ENDPOINTING
        if start.min_silence_ms is not None:
            grammar = grammar.waiting(start.min_silence_ms)
        return {"endpointing": policy, "grammar": grammar}

    def _stop(self, now_s: float) -> list[Action]:
        actions: list[Action] = []
        if self.pipeline is not None and self._state is SessionState.STREAMING:
            actions = self._actions(self.pipeline.finalize(now_s, answer_silence=False))
        self._state = SessionState.STOPPED
        return [*actions, Finish()]

    def _actions(self, events: list[Event]) -> list[Action]:
        assert self.model is not None
        out: list[Action] = []
        for event in events:
            if isinstance(event, SpeechStarted):
                out.append(Send(p.SpeechStarted(event.utterance_id, round(event.start_ms, 1))))
            elif isinstance(event, SpeechEnded):
                out.append(Send(p.SpeechEnded(event.utterance_id, round(event.start_ms, 1),
                                              round(event.end_ms, 1), event.forced)))
            elif isinstance(event, RecognitionRequest):
                out.append(Recognize(event, self.model))
            elif isinstance(event, PartialResult):
                out.append(Send(partial_message(event.utterance_id, event.result)))
            elif isinstance(event, UtteranceResult):
                out.append(Send(result_message(event.utterance_id, event.result,
                                               event.latency_ms or 0.0)))
        return out


def _reason(message: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    encoded = message.encode("utf-8")
    return message if len(encoded) <= 123 else encoded[:120].decode("utf-8", "ignore") + "..."
