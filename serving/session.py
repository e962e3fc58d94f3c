"""One client's session as a state machine: frames in, actions out; no sockets, no asyncio.

``on_text``/``on_audio`` take a frame and the clock value when it arrived and return
:class:`Send` (a message), :class:`Recognize` (an utterance to run), :class:`Close`
(after a fatal error), :class:`Finish` (after ``stop``: send ``closed`` once the results are
out) and :class:`Cancelled` (drop what is queued from earlier epochs). The shell in
:mod:`serving.connection` carries them out. Audio is cut into utterances by a
:class:`~assistant.stream.Segmenter` of its own; the models are shared and only looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from assistant import protocol as p
from assistant.errors import AudioFormatError, ConfigError
from assistant.recognizer import Result
from assistant.stream import (
    DEFAULT_ENDPOINT,
    Segmenter,
    SpeechEnded,
    SpeechStarted,
    StreamConfig,
    UtteranceAudio,
)
from assistant.vad import SileroVad

from .config import LimitsConfig
from .limits import TokenBucket
from .models import LoadedModel


@dataclass(frozen=True)
class Send:
    message: p.Message


@dataclass(frozen=True)
class Recognize:
    utterance_id: int
    audio: np.ndarray = field(repr=False, compare=False)
    partial: bool
    end_of_speech_s: float  # clock value when the frame or command that ended it arrived
    epoch: int  # bumped by cancel: older work is dropped
    model: str


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
    """See module docs. ``lookup(name)`` returns a loaded model or raises ProtocolError."""

    def __init__(self, session_id: str, lookup: Callable[[str | None], LoadedModel],
                 vad: SileroVad, limits: LimitsConfig, now_s: float):
        self.session_id = session_id
        self.lookup = lookup
        self.vad = vad
        self.limits = limits
        self.state = "new"  # new -> streaming -> stopped (no more input) | closed (fatal)
        self.model: str | None = None
        self.segmenter: Segmenter | None = None
        self.epoch = 0
        self._offset = 0  # connection utterance id = offset + segmenter utterance id
        self.last_received_s = now_s
        self._messages = TokenBucket(limits.max_messages_per_s, 2 * limits.max_messages_per_s,
                                     now_s)
        self._audio = TokenBucket(limits.max_audio_speed, max(2.0, limits.max_audio_speed),
                                  now_s)
        self._bytes_per_s = 2 * p.DEFAULT_SAMPLE_RATE_HZ

    @property
    def idle_deadline_s(self) -> float:
        return self.last_received_s + self.limits.idle_timeout_s

    @property
    def open(self) -> bool:
        return self.state in ("new", "streaming")

    def fatal(self, code: p.ErrorCode, message: str, retry_after_s: float | None = None
              ) -> list[Action]:
        self.state = "closed"
        return [Send(p.error(code, message, True, retry_after_s)),
                Close(p.close_code(code), _reason(message))]

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
        if self.segmenter is None:
            return [Send(p.error(p.ErrorCode.NOT_STARTED,
                                 f"{message.type!r} before 'start'", False))]
        if isinstance(message, p.Finalize):
            return self._segments(self.segmenter.finalize(), now_s)
        return self._cancel()

    def on_audio(self, data: bytes, now_s: float) -> list[Action]:
        if not self.open:
            return []
        refused = self._admit(len(data), now_s)
        if refused is not None:
            return refused
        if self.segmenter is None:
            return self.fatal(p.ErrorCode.NOT_STARTED,
                              "audio before 'start' (send a start message first)")
        seconds = len(data) / self._bytes_per_s
        if not self._audio.take(seconds, now_s):
            return self.fatal(p.ErrorCode.RATE_LIMITED,
                              f"audio faster than {self.limits.max_audio_speed:g}x real time",
                              self._audio.retry_after_s(seconds, now_s))
        try:
            events = self.segmenter.feed(data)
        except AudioFormatError as e:
            return self.fatal(p.ErrorCode.BAD_AUDIO_FORMAT, str(e))
        return self._segments(events, now_s)

    def drain(self, now_s: float) -> list[Action]:
        """Shutting down: end the speech in progress (recognized) and take no more input."""
        if self.state != "streaming" or self.segmenter is None:
            self.state = "stopped" if self.state != "closed" else self.state
            return []
        self.state = "stopped"
        return self._segments(_without_empty(self.segmenter.finalize()), now_s)

    # -- commands -----------------------------------------------------------------------

    def _start(self, start: p.Start) -> list[Action]:
        if self.segmenter is not None:
            return [Send(p.error(p.ErrorCode.ALREADY_STARTED,
                                 "the session has started already", False))]
        if start.protocol_version != p.PROTOCOL_VERSION:
            return self.fatal(p.ErrorCode.UNSUPPORTED_VERSION,
                              f"protocol_version {start.protocol_version} is not supported "
                              f"(this server speaks {p.PROTOCOL_VERSION})")
        try:
            model = self.lookup(start.model)
        except p.ProtocolError as e:
            return self.fatal(e.code, str(e))
        endpoint = replace(DEFAULT_ENDPOINT, max_utterance_s=self.limits.max_utterance_s)
        if start.mode == "push_to_talk":  # only finalize (or max_utterance_s) ends speech
            endpoint = replace(endpoint, min_silence_ms=int(1000 * endpoint.max_utterance_s))
        elif start.min_silence_ms is not None:
            endpoint = replace(endpoint, min_silence_ms=start.min_silence_ms)
        try:
            stream = StreamConfig(sample_rate_hz=start.sample_rate_hz, endpoint=endpoint,
                                  partials=start.partials)
        except (AudioFormatError, ConfigError) as e:
            return self.fatal(p.ErrorCode.BAD_AUDIO_FORMAT, str(e))
        self.segmenter = Segmenter(self.vad, stream)
        self._bytes_per_s = 2 * start.sample_rate_hz
        self.model = model.source.name
        self.state = "streaming"
        intents = tuple(model.recognizer.context.intent_names)
        return [Send(p.Ready(self.session_id, p.PROTOCOL_VERSION, self.model,
                             start.sample_rate_hz, intents, limits_message(self.limits)))]

    def _stop(self, now_s: float) -> list[Action]:
        actions: list[Action] = []
        if self.segmenter is not None:
            actions = self._segments(_without_empty(self.segmenter.finalize()), now_s)
        self.state = "stopped"
        return [*actions, Finish()]

    def _cancel(self) -> list[Action]:
        assert self.segmenter is not None
        segmenter = self.segmenter
        self._offset += segmenter.utterance_id + (1 if segmenter.in_speech else 0)
        segmenter.reset()
        self.epoch += 1
        return [Cancelled(self.epoch)]

    def _segments(self, events: list[SpeechStarted | SpeechEnded | UtteranceAudio],
                  now_s: float) -> list[Action]:
        assert self.model is not None
        out: list[Action] = []
        for event in events:
            uid = self._offset + event.utterance_id
            if isinstance(event, SpeechStarted):
                out.append(Send(p.SpeechStarted(uid, round(event.start_ms, 1))))
            elif isinstance(event, SpeechEnded):
                out.append(Send(p.SpeechEnded(uid, round(event.start_ms, 1),
                                              round(event.end_ms, 1), event.forced)))
            else:
                out.append(Recognize(uid, event.audio, event.partial, now_s, self.epoch,
                                     self.model))
        return out


def _without_empty(events: list[SpeechStarted | SpeechEnded | UtteranceAudio]
                   ) -> list[SpeechStarted | SpeechEnded | UtteranceAudio]:
    """finalize() answers silence with an empty utterance; stop and drain do not need it."""
    return [e for e in events if not (isinstance(e, UtteranceAudio) and e.audio.size == 0)]


def _reason(message: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    encoded = message.encode("utf-8")
    return message if len(encoded) <= 123 else encoded[:120].decode("utf-8", "ignore") + "..."
