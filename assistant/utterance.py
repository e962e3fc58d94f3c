"""An utterance on its way through the pipeline, and the two kinds of stage that plug in.

    segmenter -> gates -> RecognitionRequest -> (the shell recognizes) -> complete -> sinks

* A :class:`Gate` sees each :class:`Utterance` before recognition and lets it through
  (possibly changed, e.g. with its audio trimmed) or drops it (returns None): a wake word,
  a push-to-talk policy, a minimum length. Gates are made per stream, so they may keep state.
* A :class:`ResultSink` sees every answer, as a :class:`Completed`: what was heard, what was
  understood and what the recognizer saw (its confidence features, stage timings, the audio
  level), the end-of-speech-to-result latency and which gate, if any, dropped it. Quality
  metrics, drift monitors and opt-in capture are sinks. Sinks may be shared by many streams;
  the shells call them from one thread.

Everything here is neutral: no wire format, no I/O, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from .pcm import SAMPLE_RATE_HZ
from .recognizer import Reason, Result
from .segmenter import EndReason


@dataclass(frozen=True)
class Utterance:
    """One utterance (or, when ``ended`` is None, the one in progress so far: a partial)."""

    utterance_id: int  # unique in its stream, in order
    audio: np.ndarray = field(repr=False, compare=False)  # float32 mono 16 kHz
    start_ms: float = 0.0  # where it is in the stream (or the recording)
    end_ms: float = 0.0
    ended: EndReason | None = EndReason.SILENCE
    end_of_speech_s: float | None = None  # the shell's clock when the audio that ended it came
    timing_ms: dict[str, float] = field(default_factory=dict, compare=False)  # stages so far
    # Grammar endpointing: recognized ahead of its end, in a pause (its result decides
    # whether the utterance ends there; see assistant.endpointing). Not partial.
    speculative: bool = False

    @property
    def partial(self) -> bool:
        return self.ended is None and not self.speculative

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.audio.size / SAMPLE_RATE_HZ


@dataclass(frozen=True)
class RecognitionRequest:
    """Recognize ``utterance`` (the shell does: in process or in a worker pool), then hand the
    result to :meth:`assistant.pipeline.Pipeline.complete` with this request."""

    utterance: Utterance
    epoch: int  # cancel() starts a new epoch: results of older requests are dropped

    @property
    def audio(self) -> np.ndarray:
        return self.utterance.audio

    @property
    def partial(self) -> bool:
        return self.utterance.partial

    @property
    def utterance_id(self) -> int:
        return self.utterance.utterance_id


@dataclass(frozen=True)
class Completed:
    """What a result sink receives for each answer (partials included)."""

    utterance: Utterance
    result: Result
    model: str = ""  # the model's name in the shell ("" when it has none)
    stream_id: str = ""  # the session, the file, ... ("" when there is none)
    latency_ms: float | None = None  # end of speech to result, on the shell's clock
    gate: str | None = None  # the gate that dropped the utterance, if one did

    @property
    def final(self) -> bool:
        """An answer the client gets: not a partial, not dropped by a cancel."""
        return not self.utterance.partial and self.result.reason is not Reason.CANCELLED


@runtime_checkable
class Gate(Protocol):
    """Before recognition: return the utterance (or a changed copy) to go on, None to drop.

    Optional: ``reset()`` is called when the stream starts afresh (cancel, reset).
    """

    def admit(self, utterance: Utterance) -> Utterance | None: ...


@runtime_checkable
class ResultSink(Protocol):
    """After recognition: ``on_result`` for every answer. Must be quick and must not raise
    (an exception is logged and the answer still goes out). Optional: ``close()``."""

    def on_result(self, completed: Completed) -> None: ...


def stage_name(stage: object) -> str:
    """A gate's or sink's name: its ``name`` attribute, else its class name."""
    name = getattr(stage, "name", None)
    return name if isinstance(name, str) and name else type(stage).__name__
