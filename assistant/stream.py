"""The streaming recognizer in process: PCM chunks in, events out, no I/O.

    session = RecognizerSession(recognizer, vad, StreamConfig(sample_rate_hz=48000))
    for event in session.feed(chunk):      # any size; int16, float or 16-bit LE bytes
        ...                                # SpeechStarted / PartialResult / SpeechEnded /
    for event in session.finalize():       #   UtteranceResult
        ...                                # push-to-talk: end the utterance now

A :class:`RecognizerSession` is the in-process shell of the utterance pipeline
(:mod:`assistant.pipeline`): the :class:`~assistant.segmenter.Segmenter` cuts the stream,
gates may drop utterances, each one is recognized at once in this thread, and result sinks
see every answer. The same audio gives the same events whatever the chunking.

The segmentation names (:class:`Segmenter`, :class:`StreamConfig`, the events) live in
:mod:`assistant.segmenter` and are importable from here as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from .pipeline import Event as PipelineEvent
from .pipeline import PartialResult, Pipeline, UtteranceResult, resolve
from .recognizer import Recognizer
from .segmenter import (
    DEFAULT_ENDPOINT,
    IDLE_HISTORY_S,
    EndReason,
    Segmenter,
    SpeechEnded,
    SpeechStarted,
    StreamConfig,
    UtteranceAudio,
)
from .utterance import Gate, ResultSink
from .vad import SileroVad

__all__ = [
    "DEFAULT_ENDPOINT",
    "IDLE_HISTORY_S",
    "EndReason",
    "Event",
    "PartialResult",
    "RecognizerSession",
    "Segmenter",
    "SpeechEnded",
    "SpeechStarted",
    "StreamConfig",
    "UtteranceAudio",
    "UtteranceResult",
]

Event = SpeechStarted | SpeechEnded | PartialResult | UtteranceResult


class RecognizerSession:
    """A stream whose utterances are recognized as they end (see module docs).

    ``gates`` are this stream's own (see :func:`assistant.gates.create_gates`); ``sinks``
    may be shared with other streams. ``clock`` times the end-of-speech-to-result latency
    that sinks see; it never changes what is recognized.
    """

    def __init__(self, recognizer: Recognizer, vad: SileroVad, config: StreamConfig | None = None,
                 *, gates: Sequence[Gate] = (), sinks: Sequence[ResultSink] = (),
                 model: str = "", stream_id: str = "",
                 clock: Callable[[], float] = time.perf_counter):
        self.recognizer = recognizer
        self.segmenter = Segmenter(vad, config)
        self.pipeline = Pipeline(self.segmenter, gates, sinks, model=model, stream_id=stream_id)
        self._clock = clock

    @property
    def config(self) -> StreamConfig:
        return self.segmenter.config

    def feed(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> list[Event]:
        return self._run(self.pipeline.feed(chunk, self._clock()))

    def finalize(self) -> list[Event]:
        return self._run(self.pipeline.finalize(self._clock()))

    def cancel(self) -> None:
        """Drop the utterance in progress; the next one gets the next id."""
        self.pipeline.cancel()

    def reset(self) -> None:
        self.pipeline.reset()

    def _run(self, events: list[PipelineEvent]) -> list[Event]:
        done = resolve(self.pipeline, events, self.recognizer, self._clock)
        return [e for e in done if isinstance(e, SpeechStarted | SpeechEnded | PartialResult
                                               | UtteranceResult)]
