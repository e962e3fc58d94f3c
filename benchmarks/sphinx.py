"""Baseline: a classic grammar recognizer, PocketSphinx with the context as JSGF.

What a user of Rhasspy-style assistants runs: CMU Sphinx's English acoustic model and
CMUdict (both inside the ``pocketsphinx`` wheel) decode the VAD-cut utterance with the
grammar as a finite-state search, and the hypothesis is parsed with
:func:`assistant.grammar.parse`. Words missing from CMUdict get espeak-ng's pronunciation
(:mod:`benchmarks.pronounce`); words with none are left out of the JSGF and reported.

A grammar search always returns a path of the grammar when one reaches its end, so there is
no confidence to threshold: an utterance is rejected only when no sentence of the grammar
fits at all (an empty hypothesis). That is how such recognizers are used.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from assistant.audio import SAMPLE_RATE_HZ
from assistant.errors import MissingDependencyError
from assistant.grammar import Context, load_context, parse
from assistant.recognizer import Result

from .jsgf import context_to_jsgf, vocabulary
from .pronounce import Pronunciations, pronounce

logger = logging.getLogger("benchmarks.sphinx")


def _decoder_class() -> Any:
    try:
        from pocketsphinx import Decoder
    except ImportError as e:
        raise MissingDependencyError("pocketsphinx", "bench", "the PocketSphinx baseline") from e
    return Decoder


class PocketSphinxEngine:
    """Recognize commands of one context with PocketSphinx (see module docs)."""

    name = "pocketsphinx"

    def __init__(self, context: Context | str | Path):
        if not isinstance(context, Context):
            context = load_context(Path(context))
        self.context = context
        decoder_class = _decoder_class()
        self._decoder = decoder_class(samprate=SAMPLE_RATE_HZ, lm=None, loglevel="FATAL")
        self.pronunciations: Pronunciations = pronounce(vocabulary(context),
                                                        self._decoder.lookup_word)
        for word in self.pronunciations.from_g2p:
            self._decoder.add_word(word, self.pronunciations.phones[word], True)
        if self.pronunciations.missing:
            logger.warning("no pronunciation for %s: left out of the grammar",
                           ", ".join(self.pronunciations.missing))
        self.jsgf = context_to_jsgf(context, Path(context.source).stem,
                                    void_words=self.pronunciations.missing)
        self._decoder.add_jsgf_string("commands", self.jsgf)
        self._decoder.activate_search("commands")

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"engine": "pocketsphinx", "version": version("pocketsphinx"),
                "acoustic_model": "en-us (bundled)", "dictionary": "cmudict-en-us (bundled)",
                "g2p_words": list(self.pronunciations.from_g2p),
                "missing_words": list(self.pronunciations.missing)}

    def transcribe(self, audio: np.ndarray) -> str:
        pcm = (np.clip(np.asarray(audio, np.float32), -1.0, 1.0) * 32767).astype("<i2")
        self._decoder.start_utt()
        self._decoder.process_raw(pcm.tobytes(), full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""

    def recognize(self, audio: np.ndarray) -> Result:
        """Recognize one VAD-cut utterance (float32, 16 kHz); same result type as ours."""
        started = time.perf_counter()
        text = self.transcribe(audio)
        annotation = parse(self.context, text) if text else None
        elapsed_ms = 1000 * (time.perf_counter() - started)
        audio_ms = 1000.0 * audio.size / SAMPLE_RATE_HZ
        if annotation is None:
            return Result(False, None, {}, 0.0, "", text, audio_ms, {"total": elapsed_ms})
        return Result(True, annotation.intent, dict(annotation.slots), 1.0, text, text,
                      audio_ms, {"total": elapsed_ms})
