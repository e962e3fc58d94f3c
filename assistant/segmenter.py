"""A stream of audio cut into utterances: PCM chunks in, speech events and utterance audio out.

    segmenter = Segmenter(vad, StreamConfig(sample_rate_hz=48000))
    for event in segmenter.feed(chunk):    # any size; int16, float or 16-bit LE bytes
        ...                                # SpeechStarted / SpeechEnded / UtteranceAudio
    segmenter.finalize()                   # push-to-talk: end the utterance now

Audio is resampled to 16 kHz (chunk-size independent), cut into 32 ms frames for Silero VAD,
and segmented by the :class:`~assistant.vad.Endpointer` (speech start; end after
``min_silence_ms`` of trailing silence or at ``max_utterance_s``). All decisions depend on
sample counts only, never on how the audio was chunked or on the wall clock, so the same
audio gives the same events whatever the chunking. No recognition, no I/O: the utterance
pipeline (:mod:`assistant.pipeline`) takes :class:`UtteranceAudio` from here.

Under the ``grammar`` endpointing policy (:mod:`assistant.endpointing`) a pause that reaches
``speculate_ms`` also gives a :class:`Speculation` (the audio so far, to recognize ahead of
time), and :meth:`Segmenter.commit` ends the utterance at that pause once its result says
the command is complete: at once, or when the pause has lasted long enough.
"""

from __future__ import annotations

import collections
import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from .endpointing import DEFAULT_GRAMMAR_ENDPOINTING, EndpointingPolicy, GrammarEndpointing
from .errors import AudioFormatError, ConfigError
from .pcm import SAMPLE_RATE_HZ, as_float32, pcm16le_to_float
from .resample import Resampler, check_rate
from .vad import (
    FRAME_SAMPLES,
    EndpointConfig,
    Endpointer,
    SileroVad,
    SpeechEnd,
    SpeechStart,
    VadState,
)

# Streams wait 400 ms of trailing silence and keep 200 ms of padding around the speech.
DEFAULT_ENDPOINT = EndpointConfig(min_silence_ms=400, speech_pad_ms=200)
IDLE_HISTORY_S = 2.0  # audio kept while nobody speaks, so a speech start can point back
LEVEL_FRAMES = 64  # frame levels kept for grammar endpointing (2 s)


def _frame_db(frame: np.ndarray) -> float:
    return 10.0 * math.log10(float(np.dot(frame, frame)) / frame.size + 1e-12)


def samples_to_ms(samples: int) -> float:
    return 1000.0 * samples / SAMPLE_RATE_HZ


class EndReason(StrEnum):
    """How an utterance ended."""

    SILENCE = "silence"  # the endpointer heard min_silence_ms of trailing silence
    MAX_LENGTH = "max_length"  # cut at max_utterance_s
    FINALIZE = "finalize"  # the caller ended it (push-to-talk release, stop, drain)
    COMPLETE = "complete"  # grammar endpointing: a pause after a complete command
    FILE = "file"  # a whole recording, cut to the span of its speech


@dataclass(frozen=True)
class StreamConfig:
    """How a stream is cut into utterances. Change with ``dataclasses.replace``."""

    sample_rate_hz: int = SAMPLE_RATE_HZ  # the rate of the audio fed in
    endpoint: EndpointConfig = DEFAULT_ENDPOINT
    partials: bool = False  # recognize the utterance so far while the user speaks
    partial_interval_ms: int = 500  # of speech between partial results
    endpointing: EndpointingPolicy = EndpointingPolicy.FIXED
    # The grammar policy's waits; its incomplete_ms replaces endpoint.min_silence_ms.
    grammar: GrammarEndpointing = DEFAULT_GRAMMAR_ENDPOINTING

    def __post_init__(self) -> None:
        check_rate(self.sample_rate_hz, "stream sample rate")
        if self.partial_interval_ms < 100:
            raise ConfigError(f"partial_interval_ms must be >= 100, got "
                              f"{self.partial_interval_ms}")
        object.__setattr__(self, "endpointing", EndpointingPolicy(self.endpointing))

    @property
    def speculative(self) -> bool:
        return self.endpointing is EndpointingPolicy.GRAMMAR

    @property
    def effective_endpoint(self) -> EndpointConfig:
        """What the endpointer runs with: ``endpoint``, whose trailing silence the grammar
        policy replaces by its ``incomplete_ms``."""
        if not self.speculative:
            return self.endpoint
        return replace(self.endpoint, min_silence_ms=self.grammar.incomplete_ms)


@dataclass(frozen=True)
class SpeechStarted:
    utterance_id: int
    start_ms: float  # from the start of the stream (16 kHz timeline)


@dataclass(frozen=True)
class SpeechEnded:
    utterance_id: int
    start_ms: float
    end_ms: float
    forced: bool  # cut at max_utterance_s, or ended by finalize()


@dataclass(frozen=True)
class UtteranceAudio:
    """An utterance ended (or, with ``partial``, the one in progress so far): its 16 kHz audio."""

    utterance_id: int
    audio: np.ndarray = field(repr=False, compare=False)
    partial: bool = False  # the utterance so far, for a partial result
    start_ms: float = 0.0
    end_ms: float = 0.0
    ended: EndReason | None = None  # None for partials


@dataclass(frozen=True)
class Speculation:
    """Grammar endpointing: the utterance so far, in a pause of ``speculate_ms``; recognize it
    and hand the result's wait to :meth:`Segmenter.commit` with ``pause_sample``."""

    utterance_id: int
    audio: np.ndarray = field(repr=False, compare=False)
    start_ms: float
    end_ms: float
    pause_sample: int  # the first silent sample of the pause (16 kHz, from the stream start)
    end_sample: int  # where the audio ends; the utterance ends there if committed


Segment = SpeechStarted | SpeechEnded | UtteranceAudio | Speculation


class AudioBuffer:
    """The recent audio of a stream, addressed by absolute sample index.

    Appends are amortized O(1) (the array doubles when full and is compacted in place),
    unlike concatenating a growing array on every chunk, which copies the whole utterance
    each time: 15 s of speech fed in 20 ms chunks would copy about 1 MB per chunk.
    """

    def __init__(self, capacity: int = 4 * SAMPLE_RATE_HZ):
        self._data = np.zeros(capacity, np.float32)
        self._head = 0  # index in _data of sample `start`
        self._size = 0
        self.start = 0  # absolute index of the oldest sample kept

    @property
    def end(self) -> int:
        """Absolute index one past the newest sample."""
        return self.start + self._size

    @property
    def size(self) -> int:
        """Samples kept."""
        return self._size

    @property
    def capacity(self) -> int:
        """Samples the array holds before it grows (memory in use: 4 bytes each)."""
        return int(self._data.size)

    def append(self, samples: np.ndarray) -> None:
        needed = self._size + samples.size
        if self._head + needed > self._data.size:
            if needed > self._data.size:
                grown = np.zeros(max(2 * self._data.size, needed), np.float32)
                grown[: self._size] = self._data[self._head : self._head + self._size]
                self._data = grown
            else:  # room enough once the dropped samples are gone: compact in place
                self._data[: self._size] = self._data[self._head : self._head + self._size]
            self._head = 0
        tail = self._head + self._size
        self._data[tail : tail + samples.size] = samples
        self._size = needed

    def drop_before(self, index: int) -> None:
        """Forget samples before absolute ``index``."""
        drop = min(max(0, index - self.start), self._size)
        self._head += drop
        self._size -= drop
        self.start += drop

    def slice(self, start: int, end: int) -> np.ndarray:
        """A copy of samples [start, end) (clipped to what is kept)."""
        lo = max(start, self.start) - self.start + self._head
        hi = min(end, self.end) - self.start + self._head
        return self._data[lo:max(lo, hi)].copy()


@dataclass(frozen=True)
class _Converted:
    """A chunk converted ahead (:meth:`Segmenter.upcoming_frames`): its 16 kHz samples and
    the resampler states before and after it."""

    chunk: object
    resampler_before: Resampler | None
    samples: np.ndarray
    resampler_after: Resampler | None


class Segmenter:
    """Chunks in, speech segments out (see module docs); holds only per-stream state."""

    def __init__(self, vad: SileroVad, config: StreamConfig | None = None):
        self.vad = vad
        self.config = config or StreamConfig()
        rate = self.config.sample_rate_hz
        self._resampler = Resampler(rate, SAMPLE_RATE_HZ) if rate != SAMPLE_RATE_HZ else None
        self.reset()

    def reset(self) -> None:
        """Forget all audio and state; the next sample is time zero again."""
        self._vad_state = VadState()
        self._converted: collections.deque[_Converted] = collections.deque()
        self._endpointer = Endpointer(self.config.effective_endpoint)
        if self._resampler is not None:
            self._resampler.reset()
        self._pending = np.zeros(0, np.float32)  # < one frame, not yet seen by the VAD
        self._buffer = AudioBuffer()  # the audio the VAD has seen, recent part
        self._samples = 0  # samples seen by the VAD
        self._utterance_id = 0
        self._open: int | None = None  # start sample of the utterance in progress
        self._next_partial = 0
        self._ended_since_finalize = False
        self._speculated: int | None = None  # the pause last speculated on
        self._levels: collections.deque[float] = collections.deque(maxlen=LEVEL_FRAMES)
        self._commit: tuple[int, int, int] | None = None  # (pause, at sample, end sample)

    @property
    def utterance_id(self) -> int:
        """The id of the utterance in progress or the next one."""
        return self._utterance_id

    @property
    def in_speech(self) -> bool:
        return self._open is not None

    @property
    def samples_seen(self) -> int:
        return self._samples

    def _to_16k(self, chunk: bytes | bytearray | memoryview | np.ndarray,
                resampler: Resampler | None) -> np.ndarray:
        if isinstance(chunk, bytes | bytearray | memoryview):
            samples = pcm16le_to_float(chunk)
        else:
            samples = as_float32(chunk)
        if resampler is not None:
            samples = resampler.process(samples)
        return samples

    def upcoming_frames(self, chunks: Sequence[bytes | bytearray | memoryview | np.ndarray]
                        ) -> tuple[VadState, np.ndarray]:
        """What the VAD will be given if ``chunks`` are fed next, in order: this stream's VAD
        state and the frames [n, 512], for :meth:`~assistant.vad.SileroVad.look_ahead`.

        Changes nothing that feeding sees: the resampler runs on copies of its state, and
        the converted audio is kept so that feeding these very chunk objects next does not
        convert them again (resampling 100 ms of 48 kHz audio costs more than its VAD).
        Audio that will not convert gives no frames (feeding it raises)."""
        resampler = self._resampler
        converted: collections.deque[_Converted] = collections.deque()
        try:
            for chunk in chunks:
                before = resampler
                resampler = copy.copy(resampler)  # its arrays are replaced, never written
                converted.append(_Converted(chunk, before, self._to_16k(chunk, resampler),
                                            resampler))
        except AudioFormatError:
            converted.clear()
        self._converted = converted
        audio = np.concatenate([self._pending, *(c.samples for c in converted)])
        n_frames = audio.size // FRAME_SAMPLES
        return self._vad_state, audio[: n_frames * FRAME_SAMPLES].reshape(n_frames, FRAME_SAMPLES)

    def _convert(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
        """``chunk`` at 16 kHz: converted ahead by :meth:`upcoming_frames` when it is the
        chunk expected next from this very resampler state, else now."""
        if self._converted:
            ahead = self._converted.popleft()
            # bytes only: an array or bytearray could have been changed in place since
            if (isinstance(chunk, bytes) and ahead.chunk is chunk
                    and ahead.resampler_before is self._resampler):
                self._resampler = ahead.resampler_after
                return ahead.samples
            self._converted.clear()
        return self._to_16k(chunk, self._resampler)

    def feed(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> list[Segment]:
        """Add audio; return what it caused, in order."""
        samples = self._convert(chunk)
        return self._frames(np.concatenate([self._pending, samples]))

    def _frames(self, audio: np.ndarray) -> list[Segment]:
        events: list[Segment] = []
        n_frames = audio.size // FRAME_SAMPLES
        self._pending = audio[n_frames * FRAME_SAMPLES :].copy()
        if n_frames == 0:
            return events
        self._buffer.append(audio[: n_frames * FRAME_SAMPLES])
        for i in range(n_frames):
            frame = audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            probability = self.vad.process(frame, self._vad_state)
            self._samples += FRAME_SAMPLES
            if self.config.speculative:
                self._levels.append(_frame_db(frame))
            for event in self._endpointer.feed(probability):
                events.extend(self._on_vad(event))
            if self.config.speculative:
                events.extend(self._grammar_endpointing())
            if (
                self.config.partials
                and self._open is not None
                and self._samples >= self._next_partial
            ):
                self._next_partial = self._samples + self._partial_step
                events.append(UtteranceAudio(
                    self._utterance_id, self._slice(self._open, self._samples), True,
                    samples_to_ms(self._open), samples_to_ms(self._samples)))
        self._trim()
        return events

    def _grammar_endpointing(self) -> list[Segment]:
        pause = self.pause_sample
        if pause is None or self._open is None:
            self._commit = None
            return []
        if self._commit is not None and self._commit[0] != pause:
            self._commit = None  # speech came back: that pause is over
        if self._commit is not None and self._samples >= self._commit[1]:
            return self._close_pause(self._commit[2])
        grammar = self.config.grammar
        speculate = grammar.speculate_ms * SAMPLE_RATE_HZ // 1000
        paused = self._samples - pause
        if self._speculated == pause or paused < speculate:
            return []
        padding = self.config.endpoint.pad_samples
        if paused < padding and not self._quiet_tail(speculate):
            return []  # a soft last sound still going on: wait for it
        self._speculated = pause
        end = min(pause + padding, self._samples)
        return [Speculation(self._utterance_id, self._slice(self._open, end),
                            samples_to_ms(self._open), samples_to_ms(end), pause, end)]

    def _quiet_tail(self, speculate: int) -> bool:
        """Whether the last ``speculate`` samples are quiet (see GrammarEndpointing)."""
        levels = np.asarray(self._levels)
        tail = max(1, -(-speculate // FRAME_SAMPLES))
        since_open = (self._samples - (self._open or 0)) // FRAME_SAMPLES
        speech = levels[-min(since_open, levels.size):-tail] if since_open > tail else levels[:0]
        if speech.size == 0:
            return False
        grammar = self.config.grammar
        quiet = max(float(speech.max()) - grammar.quiet_db,
                    float(np.percentile(levels, 10)) + grammar.floor_margin_db)
        return bool(levels[-tail:].max() <= quiet)

    @property
    def pause_sample(self) -> int | None:
        """The first silent sample of the pause the utterance in progress is in, or None."""
        return self._endpointer.pause_start if self._open is not None else None

    def commit(self, pause_sample: int, wait_ms: int, end_sample: int) -> list[Segment]:
        """End the utterance in progress at its pause that began at ``pause_sample``, once that
        pause has lasted ``wait_ms`` (now, if it has), with its audio ending at ``end_sample``.
        Nothing happens if speech has resumed or the utterance has ended since."""
        if self.pause_sample != pause_sample:
            return []
        at = pause_sample + wait_ms * SAMPLE_RATE_HZ // 1000
        if self._samples >= at:
            return self._close_pause(end_sample)
        self._commit = (pause_sample, at, end_sample)
        return []

    def _close_pause(self, end_sample: int) -> list[Segment]:
        self._commit = None
        events: list[Segment] = []
        for event in self._endpointer.close_pause(end_sample):
            events.extend(self._on_vad(event, complete=True))
        return events

    @property
    def _partial_step(self) -> int:
        return self.config.partial_interval_ms * SAMPLE_RATE_HZ // 1000

    def _on_vad(self, event: SpeechStart | SpeechEnd, finalizing: bool = False,
                complete: bool = False) -> list[Segment]:
        if isinstance(event, SpeechStart):
            self._open = event.start_sample
            self._next_partial = self._samples + self._partial_step
            return [SpeechStarted(self._utterance_id, samples_to_ms(event.start_sample))]
        audio = self._slice(event.start_sample, event.end_sample)
        utterance = self._utterance_id
        self._utterance_id += 1
        self._open = None
        self._ended_since_finalize = True
        start_ms, end_ms = samples_to_ms(event.start_sample), samples_to_ms(event.end_sample)
        ended = (EndReason.FINALIZE if finalizing else EndReason.COMPLETE if complete
                 else EndReason.MAX_LENGTH if event.forced else EndReason.SILENCE)
        return [
            SpeechEnded(utterance, start_ms, end_ms, event.forced or finalizing),
            UtteranceAudio(utterance, audio, False, start_ms, end_ms, ended),
        ]

    def _slice(self, start: int, end: int) -> np.ndarray:
        return self._buffer.slice(start, end)

    def _trim(self) -> None:
        keep_from = self._open if self._open is not None else (
            self._samples - int(IDLE_HISTORY_S * SAMPLE_RATE_HZ)
        )
        self._buffer.drop_before(keep_from)

    def finalize(self, answer_silence: bool = True, always: bool = False) -> list[Segment]:
        """End the utterance now (push-to-talk release); the stream then starts afresh.

        Buffered audio is flushed through the VAD. An utterance in progress ends (forced).
        If nothing was said since the last ``finalize()`` and ``answer_silence`` is true, an
        empty utterance is returned so the caller still answers (not understood). With
        ``always``, that empty utterance comes whenever this call ended none, even right
        after the endpointer ended one (a protocol ``finalize`` is always answered).
        """
        tail = self._resampler.flush() if self._resampler is not None else np.zeros(0)
        audio = np.concatenate([self._pending, tail.astype(np.float32)])
        remainder = (-audio.size) % FRAME_SAMPLES
        events = self._frames(np.concatenate([audio, np.zeros(remainder, np.float32)]))
        for event in self._endpointer.finalize(self._samples):
            events.extend(self._on_vad(event, finalizing=True))
        events = [e for e in events if not ((isinstance(e, UtteranceAudio) and e.partial)
                                            or isinstance(e, Speculation))]
        ended_now = any(isinstance(e, UtteranceAudio) for e in events)
        if answer_silence and not ended_now and (always or not self._ended_since_finalize):
            at_ms = samples_to_ms(self._samples)
            events.append(UtteranceAudio(self._utterance_id, np.zeros(0, np.float32), False,
                                         at_ms, at_ms, EndReason.FINALIZE))
            self._utterance_id += 1
        next_id = self._utterance_id
        self.reset()
        self._utterance_id = next_id
        return events
