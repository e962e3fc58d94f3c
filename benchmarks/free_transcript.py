"""Baseline: free transcription, then text matching to the grammar (Home Assistant's pipeline).

Speech-to-text with no knowledge of the commands, then the transcript is normalized and
parsed with the grammar (:func:`assistant.grammar.parse`). With ``fuzzy``, a transcript that
does not parse is read again from its first sentence only (greedy Whisper decoding often
repeats a command until it runs out of tokens) and replaced by the nearest grammar sentence
when that is at most ``max_edit_fraction`` of its words away (:mod:`benchmarks.fuzzy_match`).

The speech-to-text is the same bundled Whisper model as ours (same ONNX sessions, same audio
padding), decoded greedily without the grammar, so the comparison isolates the decoding
strategy.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from assistant.audio import SAMPLE_RATE_HZ
from assistant.decoding import BLANK_TOKEN, DecodingOptions
from assistant.features import frames_for_duration, log_mel_spectrogram
from assistant.grammar import (
    Annotation,
    Context,
    compile_word_graph,
    normalize_text,
    parse,
    parse_words,
)
from assistant.recognizer import Result
from assistant.speech_model import KVCache, SpeechModel

from .fuzzy_match import nearest_sentence

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


@dataclass(frozen=True)
class Transcript:
    text: str
    elapsed_ms: float  # features + encoder + greedy decoding


class FreeTranscriber:
    """Greedy, unconstrained Whisper decoding with our ONNX model (text tokens only)."""

    def __init__(self, model: SpeechModel, trailing_pad_ms: int = 1000, cache_size: int = 8):
        self.model = model
        self.trailing_pad_ms = trailing_pad_ms
        self.options = DecodingOptions()
        self._text_only = np.zeros(model.dims.n_vocab, dtype=bool)
        self._text_only[: model.special.eot + 1] = True  # text tokens and end-of-text
        self._cache: OrderedDict[bytes, Transcript] = OrderedDict()
        self._cache_size = cache_size

    def _greedy(self, audio: np.ndarray) -> str:
        pad = np.zeros(self.trailing_pad_ms * SAMPLE_RATE_HZ // 1000, np.float32)
        padded = np.concatenate([np.asarray(audio, np.float32), pad])
        mel = log_mel_spectrogram(padded, n_mels=self.model.dims.n_mels,
                                  n_frames=frames_for_duration(padded.size))
        encoded = self.model.encode(mel)
        eot = self.model.special.eot
        logprobs, cache = self.model.decode(np.array([self.model.prompt], np.int64),
                                            KVCache.empty(self.model.dims, 1), encoded)
        tokens: list[int] = []
        for _ in range(self.options.max_tokens(padded.size / SAMPLE_RATE_HZ)):
            scores = np.where(self._text_only, logprobs[0, -1], -np.inf)
            if not tokens:
                scores[[BLANK_TOKEN, eot]] = -np.inf
            token = int(np.argmax(scores))
            if token == eot:
                break
            tokens.append(token)
            logprobs, cache = self.model.decode(np.array([[token]], np.int64), cache, encoded)
        return self.model.tokenizer.decode(tokens).strip()

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """The transcript of one utterance (remembered for the last few, so two matchers
        reading the same audio share one decode)."""
        key = hashlib.sha1(np.ascontiguousarray(audio, np.float32).tobytes()).digest()
        if key in self._cache:
            return self._cache[key]
        started = time.perf_counter()
        text = self._greedy(audio)
        transcript = Transcript(text, 1000 * (time.perf_counter() - started))
        self._cache[key] = transcript
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return transcript


class TextMatchEngine:
    """Transcribe freely, then parse with the grammar (optionally the nearest sentence)."""

    def __init__(self, transcriber: FreeTranscriber, context: Context, fuzzy: bool = False,
                 max_edit_fraction: float = 0.2):
        self.transcriber = transcriber
        self.context = context
        self.fuzzy = fuzzy
        self.max_edit_fraction = max_edit_fraction
        self.graph = compile_word_graph(context) if fuzzy else None
        self.name = "whisper-free+fuzzy" if fuzzy else "whisper-free+parse"

    def _nearest(self, text: str) -> Annotation | None:
        assert self.graph is not None
        best: Annotation | None = None
        best_share = float("inf")
        first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
        for candidate in dict.fromkeys((first, text)):
            words = normalize_text(candidate)
            nearest = nearest_sentence(self.graph, words) if words else None
            if nearest is None:
                continue
            share = nearest.distance / max(1, len(nearest.words))
            if nearest.distance <= max(1, round(self.max_edit_fraction * len(nearest.words))) \
                    and share < best_share:
                best, best_share = parse_words(self.context, nearest.words), share
        return best

    def recognize(self, audio: np.ndarray) -> Result:
        """Recognize one VAD-cut utterance (float32, 16 kHz); same result type as ours."""
        transcript = self.transcriber.transcribe(audio)
        started = time.perf_counter()
        annotation = parse(self.context, transcript.text)
        if annotation is None and self.graph is not None:
            annotation = self._nearest(transcript.text)
        elapsed_ms = transcript.elapsed_ms + 1000 * (time.perf_counter() - started)
        audio_ms = 1000.0 * audio.size / SAMPLE_RATE_HZ
        timing = {"transcribe": transcript.elapsed_ms, "total": elapsed_ms}
        if annotation is None:
            return Result(False, None, {}, 0.0, "", transcript.text, audio_ms, timing)
        return Result(True, annotation.intent, dict(annotation.slots), 1.0, annotation.text,
                      transcript.text, audio_ms, timing)
