"""Whole recordings (files): cut to the speech with the VAD, then one pass of the pipeline.

A recording holds one command, possibly with long silence around it and pauses inside it,
so it is cut to the span from the first speech to the last (:func:`assistant.vad.command_span`:
with a second look when the VAD finds nothing, so a soft one-word command is not vetoed)
and that one utterance goes through the same gates, recognition and result sinks as a
streamed one (:meth:`assistant.pipeline.Pipeline.submit`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .pipeline import Pipeline, UtteranceResult, resolve
from .recognizer import Recognizer, Result
from .segmenter import DEFAULT_ENDPOINT, EndReason, samples_to_ms
from .utterance import Gate, ResultSink, Utterance
from .vad import DEFAULT_SECOND_LOOK, EndpointConfig, SecondLook, SileroVad, command_span

# A recording is cut to the span of all its speech, so no segment length limit applies
# (the recognizer's own max_utterance_s still bounds what it sees).
RECORDING_ENDPOINT = replace(DEFAULT_ENDPOINT, max_utterance_s=math.inf)


def recognize_recording(
    recognizer: Recognizer, vad: SileroVad, audio: np.ndarray,
    endpoint: EndpointConfig = RECORDING_ENDPOINT, *, gates: Sequence[Gate] = (),
    sinks: Sequence[ResultSink] = (), model: str = "", stream_id: str = "",
    second_look: SecondLook | None = DEFAULT_SECOND_LOOK,
) -> Result:
    """Recognize the command in a 16 kHz recording; not understood when it holds no speech."""
    started = time.perf_counter()
    span, _found = command_span(audio, vad, endpoint, second_look)
    vad_ms = 1000 * (time.perf_counter() - started)
    start, end = span if span is not None else (0, 0)
    utterance = Utterance(0, np.asarray(audio[start:end], np.float32), samples_to_ms(start),
                          samples_to_ms(end), EndReason.FILE, timing_ms={"vad": vad_ms})
    pipeline = Pipeline(None, gates, sinks, model=model, stream_id=stream_id)
    answers = resolve(pipeline, pipeline.submit(utterance), recognizer)
    answer = next(e for e in answers if isinstance(e, UtteranceResult))
    return answer.result
