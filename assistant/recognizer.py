"""Speech in, intent and slots out: features -> encoder -> grammar-constrained decoding -> parse.

A :class:`Recognizer` holds read-only parts (speech model sessions, the grammar, its token
constraint, the calibration) and can serve many streams and threads at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import SpeechModelSpec, ensure_speech_model
from .audio import SAMPLE_RATE_HZ
from .confidence import Calibration, builtin_calibration, features
from .constraint import TokenConstraint
from .decoding import BeamSearch, DecodingOptions
from .errors import ConfigError, ModelError
from .features import frames_for_duration, log_mel_spectrogram
from .grammar import (
    Annotation,
    Context,
    compile_word_graph,
    load_context,
    parse_words,
    sample_sentences,
)
from .intent_classifier import IntentClassifier, IntentScores
from .numbers import int_to_words, words_to_int
from .speech_model import SpeechModel

logger = logging.getLogger("assistant.recognizer")

SlotValue = str | int


@dataclass(frozen=True)
class RecognizerConfig:
    """How to recognize. Change with ``dataclasses.replace``."""

    speech_model: str = "tiny.en"  # a bundled pretrained model (see assistant.pretrained)
    precision: str = "int8"  # "int8" or "fp32"
    beam_size: int = 4
    threshold: float = 0.5  # understood when confidence >= threshold
    trailing_pad_ms: int = 1000  # silence appended after speech: Whisper ends sentences better
    max_utterance_s: float = 28.0  # the encoder sees at most 30 s; longer audio is cut
    free_decoding: bool = True  # decode freely alongside the grammar (confidence, transcript)
    ood_gate: float = 0.97  # fine-tuned models: skip decoding when P(out of domain) >= this
    threads: int | None = None  # onnxruntime intra-op threads (default: min(4, cores))

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.beam_size < 1:
            raise ConfigError(f"beam_size must be >= 1, got {self.beam_size}")
        if not 0.0 < self.ood_gate <= 1.0:
            raise ConfigError(f"ood_gate must be in (0, 1], got {self.ood_gate}")
        if not 0 <= self.trailing_pad_ms <= 5000:
            raise ConfigError(f"trailing_pad_ms must be in [0, 5000], got {self.trailing_pad_ms}")
        if not 0.5 <= self.max_utterance_s <= 28.0:
            raise ConfigError(f"max_utterance_s must be in [0.5, 28], got {self.max_utterance_s}")
        SpeechModelSpec(self.speech_model, self.precision)  # validates both names


@dataclass(frozen=True)
class Result:
    """What was understood. ``intent`` and ``slots`` are empty unless ``understood``."""

    understood: bool
    intent: str | None
    slots: dict[str, SlotValue]
    confidence: float
    transcript: str  # the grammar sentence as the model wrote it ("" if none was completed)
    heard: str  # what the model wrote without the grammar (may be cut short)
    audio_ms: float
    timing_ms: dict[str, float] = field(default_factory=dict)
    speech_ms: tuple[float, float] | None = None  # where the speech was in a recording
    # The intent classifier's view of the same audio (models that have one); not serialized.
    intent_scores: IntentScores | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        extra = {}
        if self.speech_ms is not None:
            extra["speech_ms"] = [round(self.speech_ms[0], 1), round(self.speech_ms[1], 1)]
        return {
            "understood": self.understood,
            "intent": self.intent,
            "slots": dict(self.slots),
            "confidence": round(self.confidence, 4),
            "transcript": self.transcript,
            "heard": self.heard,
            "audio_ms": round(self.audio_ms, 1),
            "timing_ms": {k: round(v, 2) for k, v in self.timing_ms.items()},
            **extra,
        }

    @classmethod
    def not_understood(cls, audio_ms: float, heard: str = "") -> Result:
        return cls(False, None, {}, 0.0, "", heard, audio_ms, {})


@dataclass(frozen=True)
class Analysis:
    """An utterance decoded and measured, before confidence (see :meth:`Recognizer.analyze`)."""

    audio_ms: float
    features: dict[str, float] | None  # None: no grammar sentence was completed
    annotation: Annotation | None
    transcript: str
    heard: str
    timing_ms: dict[str, float]
    intent_scores: IntentScores | None = None  # the intent classifier's view, if the model has one


class Recognizer:
    """Recognize commands of one grammar with one speech model (see module docs)."""

    def __init__(
        self,
        context: Context,
        model: SpeechModel,
        config: RecognizerConfig | None = None,
        calibration: Calibration | None = None,
        classifier: IntentClassifier | None = None,
    ):
        self.context = context
        self.model = model
        self.classifier = classifier
        self.config = config or RecognizerConfig()
        self.calibration = calibration or builtin_calibration(model.name)
        self.graph = compile_word_graph(context)
        self.constraint = TokenConstraint(
            self.graph, model.tokenizer, model.special.eot, words_to_int, int_to_words
        )
        self.search = BeamSearch(
            model,
            self.constraint,
            DecodingOptions(beam_size=self.config.beam_size,
                            free_decoding=self.config.free_decoding),
        )

    @classmethod
    def from_context(
        cls,
        context: Context | str | Path,
        config: RecognizerConfig | None = None,
        progress: Any = None,
    ) -> Recognizer:
        """Zero-shot: a grammar and a bundled pretrained model (built on first use)."""
        config = config or RecognizerConfig()
        if not isinstance(context, Context):
            context = load_context(Path(context))
        spec = SpeechModelSpec(config.speech_model, config.precision)
        model = SpeechModel(ensure_speech_model(spec, progress), threads=config.threads)
        return cls(context, model, config)

    @classmethod
    def from_model_dir(
        cls, directory: str | Path, config: RecognizerConfig | None = None
    ) -> Recognizer:
        """A self-describing model directory (``assistant export`` or ``assistant train``)."""
        directory = Path(directory)
        model = SpeechModel(directory, threads=config.threads if config else None)
        grammar = model.metadata.get("grammar")
        if not grammar:
            raise ModelError(f"{directory} has no grammar; recognize with --context FILE.yaml")
        context = load_context(directory / grammar["file"])
        if context.sha256 != grammar.get("sha256"):
            raise ModelError(f"{directory}: {grammar['file']} does not match the hash in "
                             f"its metadata (edited after export?)")
        calibration = Calibration.from_json(model.metadata["calibration"])
        classifier = None
        if "classifier" in model.metadata:
            info = model.metadata["classifier"]
            classifier = IntentClassifier(directory / info["file"], info["labels"])
        stored = model.metadata.get("recognizer", {})
        base = RecognizerConfig(speech_model=model.metadata.get("source_model", "tiny.en"),
                                precision=model.precision)
        known = {k: v for k, v in stored.items() if k in RecognizerConfig.__dataclass_fields__}
        merged = replace(base, **known)
        if config is not None:
            merged = replace(config, speech_model=merged.speech_model,
                             precision=merged.precision)
        return cls(context, model, merged, calibration, classifier)

    def warm_up(self, sentences: int = 24) -> float:
        """Run the models once and precompute the grammar constraint along sample sentences.

        The first utterance otherwise pays onnxruntime's first-run allocations and the
        constraint's cache misses (tens of ms each). Returns the seconds it took.
        """
        started = time.perf_counter()
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE_HZ).astype(np.float32)
        self.analyze(0.01 * noise)
        tokenizer = self.model.tokenizer
        for annotation in sample_sentences(self.context, sentences, seed=0):
            text = annotation.text
            for written in (f" {text[:1].upper()}{text[1:]}.", f" {text}"):
                state = self.constraint.start
                for token in tokenizer.encode(written):
                    ids, states = self.constraint.allowed(state)
                    where = int(np.searchsorted(ids, token))
                    if where >= ids.size or ids[where] != token:
                        break
                    state = states[where]
        return time.perf_counter() - started

    def describe(self) -> dict[str, Any]:
        return {
            "speech_model": self.model.describe(),
            "grammar": {"source": self.context.source, "sha256": self.context.sha256,
                        "intents": list(self.context.intent_names)},
            "threshold": self.config.threshold,
        }

    def analyze(self, audio: np.ndarray) -> Analysis:
        """Decode one utterance and measure it, before any confidence is computed."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ConfigError(f"audio must be 1-D mono samples, got shape {audio.shape}")
        limit = int(self.config.max_utterance_s * SAMPLE_RATE_HZ)
        if audio.size > limit:
            logger.warning("utterance of %.1f s cut to %.1f s", audio.size / SAMPLE_RATE_HZ,
                           self.config.max_utterance_s)
            audio = audio[:limit]
        audio_ms = 1000.0 * audio.size / SAMPLE_RATE_HZ
        if audio.size == 0:
            return Analysis(audio_ms, None, None, "", "", {})
        started = time.perf_counter()
        pad = np.zeros(self.config.trailing_pad_ms * SAMPLE_RATE_HZ // 1000, np.float32)
        padded = np.concatenate([audio, pad])
        mel = log_mel_spectrogram(padded, n_mels=self.model.dims.n_mels,
                                  n_frames=frames_for_duration(padded.size))
        t_features = time.perf_counter()
        encoded = self.model.encode(mel)
        scores = self.classifier.classify(encoded.hidden) if self.classifier else None
        t_encoder = time.perf_counter()
        timing = {"features": 1000 * (t_features - started),
                  "encoder": 1000 * (t_encoder - t_features)}
        if scores is not None and scores.out_of_domain >= self.config.ood_gate:
            timing["decoder"] = 0.0  # clearly out of domain: no need to decode
            return Analysis(audio_ms, None, None, "", "", timing, scores)
        decoded = self.search.decode(encoded, padded.size / SAMPLE_RATE_HZ)
        timing["decoder"] = 1000 * (time.perf_counter() - t_encoder)
        heard = self.model.tokenizer.decode(decoded.free_tokens).strip()
        annotation = None
        transcript = ""
        if decoded.hypotheses:
            best = decoded.hypotheses[0].tokens
            transcript = self.model.tokenizer.decode(best).strip()
            words = self.constraint.words_of_tokens(best)
            annotation = parse_words(self.context, words) if words else None
            if annotation is None:  # cannot happen for a grammar the constraint accepts
                logger.error("constrained transcript %r does not parse", transcript)
        values = features(decoded, annotation.intent, scores) if annotation else None
        return Analysis(audio_ms, values, annotation, transcript, heard, timing, scores)

    def partial(self, audio: np.ndarray) -> Result:
        """A quick guess while the user still speaks: the intent classifier when the model has
        one (no decoding), else the best grammar sentence for the audio so far."""
        if self.classifier is None:
            return self.recognize(audio)
        started = time.perf_counter()
        audio = np.asarray(audio, dtype=np.float32)
        mel = log_mel_spectrogram(audio, n_mels=self.model.dims.n_mels,
                                  n_frames=max(2, frames_for_duration(audio.size)))
        scores = self.classifier.classify(self.model.encode(mel).hidden)
        intent, probability = scores.best
        known = intent in self.context.intent_names
        return Result(False, intent if known else None, {}, probability if known else 0.0, "",
                      "", 1000.0 * audio.size / SAMPLE_RATE_HZ,
                      {"total": 1000 * (time.perf_counter() - started)})

    def recognize(self, audio: np.ndarray) -> Result:
        """Recognize one utterance: float32 mono 16 kHz audio, trimmed to the speech."""
        started = time.perf_counter()
        analysis = self.analyze(audio)
        confidence = self.calibration.probability(analysis.features)
        annotation = analysis.annotation
        understood = annotation is not None and confidence >= self.config.threshold
        timing = {**analysis.timing_ms, "total": 1000 * (time.perf_counter() - started)}
        return Result(
            understood=understood,
            intent=annotation.intent if understood and annotation else None,
            slots=dict(annotation.slots) if understood and annotation else {},
            confidence=confidence,
            transcript=analysis.transcript,
            heard=analysis.heard,
            audio_ms=analysis.audio_ms,
            timing_ms=timing,
            intent_scores=analysis.intent_scores,
        )
