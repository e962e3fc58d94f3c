"""Whole recordings (files): cut to the speech with the VAD, then recognize once.

A recording holds one command, possibly with long silence around it and pauses inside it,
so it is cut to the span from the first speech to the last (:func:`assistant.vad.speech_span`).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from .audio import SAMPLE_RATE_HZ
from .recognizer import Recognizer, Result
from .vad import EndpointConfig, SileroVad, speech_span

# Files are cut offline, so the endpointing can be generous with pauses inside a command.
RECORDING_ENDPOINT = EndpointConfig(min_silence_ms=400, speech_pad_ms=200, max_utterance_s=600)


def recognize_recording(
    recognizer: Recognizer, vad: SileroVad, audio: np.ndarray,
    endpoint: EndpointConfig = RECORDING_ENDPOINT,
) -> Result:
    """Recognize the command in a 16 kHz recording; not understood when it holds no speech."""
    started = time.perf_counter()
    span = speech_span(audio, vad, endpoint)
    vad_ms = 1000 * (time.perf_counter() - started)
    if span is None:
        result = Result.not_understood(audio_ms=0.0, heard="")
        return replace(result, timing_ms={"vad": vad_ms, "total": vad_ms})
    start, end = span
    result = recognizer.recognize(audio[start:end])
    timing = {"vad": vad_ms, **result.timing_ms}
    timing["total"] = timing.get("total", 0.0) + vad_ms
    return replace(result, timing_ms=timing,
                   speech_ms=(1000 * start / SAMPLE_RATE_HZ, 1000 * end / SAMPLE_RATE_HZ))
