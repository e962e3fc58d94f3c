"""One Wyoming connection as a state machine: events in, actions out; no sockets.

Home Assistant talks to speech services over Wyoming (newline-delimited JSON headers with
optional binary payloads). This session answers:

* ``describe`` with ``info``: the served models as an ASR program (speech to text) and an
  intent program, English;
* ``transcribe`` (optional model ``name``), then ``audio-start``, ``audio-chunk``s and
  ``audio-stop``: the audio between start and stop is one command (Home Assistant runs its
  own VAD and stops the stream); it goes through the utterance pipeline (segmenter, gates,
  recognition, sinks) and is answered by one ``transcript``: for Home Assistant's built-in
  intents the command as Home Assistant's own sentence matching reads it ("next track" for
  "skip this song please": :mod:`serving.wyoming.phrasing`), for other grammars the
  recognized sentence as written, or, when nothing was
  understood, an empty text (or what the model heard, with ``fallback="heard"``, for
  a conversation agent that can try it);
* ``recognize`` (text): parsed with the model's grammar into ``intent`` with entities named
  as the grammar's slots (the shipped Home Assistant context uses Home Assistant's intent and
  slot names), or ``not-recognized``.

Anything else, or an event out of order, is answered by a Wyoming ``error`` event; the
connection stays open. The shell (:mod:`serving.wyoming.handler`) carries the actions out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.intent import Entity, Intent, NotRecognized, Recognize

from assistant.errors import AudioFormatError, ConfigError
from assistant.grammar import Context, parse
from assistant.pipeline import Event as PipelineEvent
from assistant.pipeline import Pipeline, UtteranceResult
from assistant.recognizer import Result
from assistant.segmenter import DEFAULT_ENDPOINT, Segmenter, StreamConfig
from assistant.utterance import Gate, RecognitionRequest, ResultSink
from assistant.vad import SileroVad, VadState

from ..catalog import ModelEntry, UnknownModel
from ..config import LimitsConfig
from .phrasing import device_kinds, home_assistant_sentence

LANGUAGES = ("en",)
FALLBACKS = ("empty", "heard")


@dataclass(frozen=True)
class Send:
    event: Event


@dataclass(frozen=True)
class Recognition:
    request: RecognitionRequest
    model: str


Action = Send | Recognition


def error(code: str, text: str) -> Send:
    return Send(Error(text=text, code=code).event())


def pcm_to_float(chunk: AudioChunk) -> np.ndarray:
    """A chunk's samples as float32 mono (channels averaged), whatever its width."""
    width, channels = chunk.width, chunk.channels
    if width not in (1, 2, 4) or channels < 1:
        raise AudioFormatError(f"audio width {width} bytes x {channels} channels is not "
                               f"supported (1, 2 or 4 bytes, one or more channels)")
    if len(chunk.audio) % (width * channels):
        raise AudioFormatError(f"audio chunk of {len(chunk.audio)} bytes is not whole "
                               f"{width}-byte samples of {channels} channels")
    if width == 1:  # unsigned 8-bit
        x = (np.frombuffer(chunk.audio, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(chunk.audio, "<i2").astype(np.float32) / 32768.0
    else:
        x = (np.frombuffer(chunk.audio, "<i4").astype(np.float64) / 2**31).astype(np.float32)
    return x.reshape(-1, channels).mean(axis=1) if channels > 1 else x


def entities(slots: dict[str, Any]) -> list[Entity]:
    """The slots as Wyoming entities. "and a half" (slot ``half``, in the Home Assistant
    context) is folded into the unit it belongs to, so the entities are Home Assistant's own:
    two and a half minutes is minutes 2, seconds 30."""
    out = dict(slots)
    if out.pop("half", None) is not None:
        for unit, smaller, size in (("hours", "minutes", 60), ("minutes", "seconds", 60)):
            if unit in out and smaller not in out:
                out[smaller] = size // 2
                break
    return [Entity(name=k, value=v) for k, v in out.items()]


class WyomingSession:
    """See module docs. ``lookup(name)`` gives a catalogued model (None: the default) or raises
    UnknownModel; ``context(name)`` its grammar; ``info()`` the ``info`` event."""

    def __init__(self, session_id: str, lookup: Callable[[str | None], ModelEntry],
                 context: Callable[[str], Context], info: Callable[[], Event],
                 vad: SileroVad, limits: LimitsConfig,
                 gates: Callable[[], Sequence[Gate]] = list, sinks: Sequence[ResultSink] = (),
                 fallback: str = "empty"):
        if fallback not in FALLBACKS:
            raise ConfigError(f"fallback must be one of {list(FALLBACKS)}, got {fallback!r}")
        self.session_id = session_id
        self.lookup = lookup
        self.context = context
        self.info = info
        self.vad = vad
        self.limits = limits
        self.gates = gates
        self.sinks = tuple(sinks)
        self.fallback = fallback
        self.model: str | None = None  # the model of the transcription in progress
        self.pipeline: Pipeline | None = None  # between audio-start and audio-stop
        self.format = (0, 0, 0)  # the stream's rate, width and channels (audio-start)
        self.results: list[Result] = []  # of the transcription in progress
        self.owed = 0  # recognitions of the transcription not yet completed
        self.stopped = False  # audio-stop came: answer once nothing is owed
        self._kinds: dict[str, dict[str, str]] = {}  # device name -> kind, per model

    # -- events -------------------------------------------------------------------------

    def on_event(self, event: Event, now_s: float) -> list[Action]:
        try:
            return self._dispatch(event, now_s)
        except (KeyError, TypeError, ValueError) as e:  # a malformed event's data
            return [error("bad_event", f"{event.type!r} event is malformed: {e}")]

    def _dispatch(self, event: Event, now_s: float) -> list[Action]:
        if Describe.is_type(event.type):
            return [Send(self.info())]
        if Transcribe.is_type(event.type):
            return self._transcribe(Transcribe.from_event(event))
        if AudioStart.is_type(event.type):
            return self._audio_start(AudioStart.from_event(event))
        if AudioChunk.is_type(event.type):
            return self._audio_chunk(AudioChunk.from_event(event), now_s)
        if AudioStop.is_type(event.type):
            return self._audio_stop(now_s)
        if Recognize.is_type(event.type):
            return [self._recognize_text(Recognize.from_event(event))]
        return [error("unsupported_event", f"this service does not handle {event.type!r} "
                      f"events (it is speech to text and intent recognition)")]

    def _transcribe(self, transcribe: Transcribe) -> list[Action]:
        if transcribe.language and transcribe.language.split("-")[0] not in LANGUAGES:
            return [error("unsupported_language",
                          f"language {transcribe.language!r} is not served (only English)")]
        try:
            self.model = self.lookup(transcribe.name).name
        except UnknownModel as e:
            return [error("unknown_model", str(e))]
        self._reset()
        return []

    def _audio_start(self, start: AudioStart) -> list[Action]:
        model = self.model or self.lookup(None).name  # audio without transcribe: the default
        endpoint = replace(DEFAULT_ENDPOINT, max_utterance_s=self.limits.max_utterance_s,
                           min_silence_ms=int(1000 * self.limits.max_utterance_s))
        try:
            stream = StreamConfig(sample_rate_hz=start.rate, endpoint=endpoint)
        except (AudioFormatError, ConfigError) as e:
            self._reset()
            return [error("bad_audio_format", str(e))]
        self._reset()
        self.model = model
        self.format = (start.rate, start.width, start.channels)
        self.pipeline = Pipeline(Segmenter(self.vad, stream), self.gates(), self.sinks,
                                 model=model, stream_id=self.session_id)
        return []

    def _check_format(self, chunk: AudioChunk) -> None:
        """A chunk in another format than its stream's audio-start said would be read as
        that format (8 kHz audio at 16 kHz is another command): refused."""
        if (chunk.rate, chunk.width, chunk.channels) != self.format:
            rate, width, channels = self.format
            raise AudioFormatError(
                f"an audio-chunk of {chunk.rate} Hz, {chunk.width} bytes x {chunk.channels} "
                f"channels in a stream that audio-start opened at {rate} Hz, {width} bytes x "
                f"{channels} channels")

    def upcoming_frames(self, event: Event) -> tuple[VadState, np.ndarray] | None:
        """What the VAD will be given if ``event`` (an audio chunk of a running stream)
        comes next, for a look-ahead across sessions (:mod:`serving.feeder`); else None."""
        if self.pipeline is None or not AudioChunk.is_type(event.type):
            return None
        try:
            chunk = AudioChunk.from_event(event)
            self._check_format(chunk)
            samples = pcm_to_float(chunk)
        except AudioFormatError:
            return None
        return self.pipeline.upcoming_frames([samples])

    def _audio_chunk(self, chunk: AudioChunk, now_s: float) -> list[Action]:
        if self.pipeline is None:
            return [error("not_started", "audio-chunk before audio-start")]
        try:
            self._check_format(chunk)
            samples = pcm_to_float(chunk)
        except AudioFormatError as e:
            self._reset()
            return [error("bad_audio_format", str(e))]
        return self._carry(self.pipeline.feed(samples, now_s))

    def _audio_stop(self, now_s: float) -> list[Action]:
        if self.pipeline is None:
            return [error("not_started", "audio-stop before audio-start")]
        actions = self._carry(self.pipeline.finalize(now_s, always=True))
        self.stopped = True
        return actions + self._answer_if_done()

    def _carry(self, events: list[PipelineEvent]) -> list[Action]:
        assert self.model is not None
        actions: list[Action] = []
        for event in events:
            if isinstance(event, RecognitionRequest) and not event.partial:
                self.owed += 1
                actions.append(Recognition(event, self.model))
            elif isinstance(event, UtteranceResult):  # answered without recognizing
                self.results.append(event.result)
        return actions

    # -- results ------------------------------------------------------------------------

    def complete(self, work: Recognition, result: Result, now_s: float) -> list[Action]:
        """A recognition finished: the transcript once the transcription has all it needs."""
        if self.pipeline is None or not self.pipeline.is_current(work.request):
            return []
        for event in self.pipeline.complete(work.request, result, now_s):
            if isinstance(event, UtteranceResult):
                self.results.append(event.result)
        self.owed -= 1
        return self._answer_if_done()

    def failed(self, work: Recognition, message: str) -> list[Action]:
        """A recognition raised: an error now, and the transcription ends."""
        self._reset()
        return [error("internal", f"recognition failed: {message}")]

    def _answer_if_done(self) -> list[Action]:
        if not self.stopped or self.owed:
            return []
        understood = [r for r in self.results if r.understood]
        if understood:  # several only past max_utterance_s: the first command counts
            text = self._transcript(understood[0])
        else:
            heard = " ".join(r.heard for r in self.results if r.heard)
            text = heard if self.fallback == "heard" else ""
        self._reset()
        return [Send(Transcript(text=text, language="en").event())]

    def _transcript(self, result: Result) -> str:
        """An understood command as Home Assistant's sentence matching reads it (for its
        built-in intents, :mod:`serving.wyoming.phrasing`), else as the model wrote it."""
        assert result.intent is not None and self.model is not None
        kinds = self._kinds.get(self.model)
        if kinds is None:
            kinds = self._kinds[self.model] = device_kinds(self.context(self.model))
        phrased = home_assistant_sentence(result.intent, result.slots, kinds)
        return phrased if phrased is not None else result.transcript

    def _reset(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
        self.pipeline = None
        self.results = []
        self.owed = 0
        self.stopped = False

    def end(self) -> None:
        """The connection is gone: what is owed is reported to the sinks as cancelled."""
        self._reset()

    # -- text ---------------------------------------------------------------------------

    def _recognize_text(self, request: Recognize) -> Send:
        name = self.model or self.lookup(None).name
        annotation = parse(self.context(name), request.text)
        if annotation is None:
            return Send(NotRecognized(text=f"not a command of {name!r}").event())
        return Send(Intent(name=annotation.intent, entities=entities(dict(annotation.slots)),
                           text=annotation.text).event())
