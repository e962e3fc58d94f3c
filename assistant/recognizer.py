"""Speech in, intent and slots out: features -> encoder -> grammar-constrained decoding -> parse.

A :class:`Recognizer` holds read-only parts (speech model sessions, the grammar, its token
constraint, the calibration) and can serve many streams and threads at once.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import SpeechModelSpec, ensure_speech_model
from .confidence import Calibration, builtin_calibration, features
from .constraint import TokenConstraint
from .decoding import BeamSearch, Decoded, DecodingOptions, Failed, Steps, run_alone, run_together
from .errors import ConfigError, ModelError
from .features import frames_for_duration, log_mel_spectrogram
from .finality import builtin_probe
from .grammar import (
    Annotation,
    Context,
    compile_word_graph,
    load_context,
    normalize_text,
    parse_words,
    sample_sentences,
)
from .grammar.extension import Extension, extension_of, unfinished
from .grammar.nearest import NearestSentences
from .heard_numbers import number_not_in_grammar
from .intent_classifier import IntentClassifier, IntentScores
from .levels import level_dbfs, snr_estimate_db
from .numbers import int_to_words, words_to_int
from .pcm import SAMPLE_RATE_HZ
from .speech_model import DEVICE_PATTERN, EncoderOutput, SpeechModel, load_speech_model

logger = logging.getLogger("assistant.recognizer")

SlotValue = str | int
EXTENSION_CACHE = 4096  # sentences whose extensions are remembered
MAX_UTTERANCE_S = 28.0  # the encoder's window is 30 s; the trailing pad needs the rest


@dataclass(frozen=True)
class RecognizerConfig:
    """How to recognize. Change with ``dataclasses.replace``.

    A model directory stores these settings (``metadata.json`` ``recognizer``); what a user
    gives (flags, ``ASSISTANT_*``, a config file) overrides them field by field
    (:func:`resolve_config`), and nothing else does.
    """

    speech_model: str = "tiny.en"  # a bundled pretrained model (see assistant.pretrained)
    precision: str = "int8"  # "int8" or "fp32"
    beam_size: int = 4
    # When the beam's best sentence is under the threshold and is not what the free decode
    # heard, also score this many grammar sentences nearest what was heard
    # (assistant.grammar.nearest); 0 never does.
    rescue_sentences: int = 8
    threshold: float = 0.5  # understood when confidence >= threshold
    trailing_pad_ms: int = 1000  # silence appended after speech: Whisper ends sentences better
    max_utterance_s: float = MAX_UTTERANCE_S  # longer audio is cut here
    free_decoding: bool = True  # decode freely alongside the grammar (confidence, transcript)
    # Fine-tuned models: skip decoding when the intent classifier's P(out of domain) >= this.
    # 1.0 (the default) never skips: a classifier trained on synthesized speech alone called
    # real commands out of domain, and a veto before decoding cannot be undone by a confident
    # decode; its view still counts through the calibrated confidence (classifier_ood).
    ood_gate: float = 1.0
    threads: int | None = None  # onnxruntime intra-op threads (default: min(4, cores))
    # Where the speech model runs: "cpu" (ONNX Runtime), "cuda" / "cuda:N" (PyTorch on that
    # GPU, extra "cuda"), "cpu-pytorch" (the GPU path on the CPU: a check, slower than "cpu").
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.beam_size < 1:
            raise ConfigError(f"beam_size must be >= 1, got {self.beam_size}")
        if not 0 <= self.rescue_sentences <= 256:
            raise ConfigError(f"rescue_sentences must be in [0, 256], got "
                              f"{self.rescue_sentences}")
        if not 0.0 < self.ood_gate <= 1.0:
            raise ConfigError(f"ood_gate must be in (0, 1], got {self.ood_gate}")
        if not 0 <= self.trailing_pad_ms <= 5000:
            raise ConfigError(f"trailing_pad_ms must be in [0, 5000], got {self.trailing_pad_ms}")
        if not 0.5 <= self.max_utterance_s <= MAX_UTTERANCE_S:
            raise ConfigError(f"max_utterance_s must be in [0.5, {MAX_UTTERANCE_S:g}], got "
                              f"{self.max_utterance_s}")
        SpeechModelSpec(self.speech_model, self.precision)  # validates both names
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise ConfigError(f"device must be cpu, cuda, cuda:N or cpu-pytorch, got "
                              f"{self.device!r}")


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` as a dict, refusing names that are not :class:`RecognizerConfig` fields."""
    known = {f.name for f in dataclasses.fields(RecognizerConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown recognizer settings {unknown} (known: {sorted(known)})")
    return dict(overrides)


def resolve_config(stored: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None,
                   **fixed: Any) -> RecognizerConfig:
    """The settings that run: defaults, then ``stored`` ones (a model directory's), then what
    the user gave (``overrides``), then ``fixed`` (what the model itself is, e.g. its speech
    model and precision, which no setting can change)."""
    known = {f.name for f in dataclasses.fields(RecognizerConfig)}
    values = {k: v for k, v in (stored or {}).items() if k in known}
    values.update(check_overrides(overrides or {}))
    values.update(fixed)
    return RecognizerConfig(**values)


class Reason(StrEnum):
    """Why an utterance was not understood (:attr:`Result.reason`)."""

    NO_SPEECH = "no_speech"  # nothing to recognize (no speech found, or empty audio)
    GATED = "gated"  # a pipeline gate dropped the utterance before recognition
    OUT_OF_DOMAIN = "out_of_domain"  # the intent classifier called it out of domain
    NO_GRAMMAR_PATH = "no_grammar_path"  # the decoder completed no sentence of the grammar
    BELOW_THRESHOLD = "below_threshold"  # a sentence, but its confidence < threshold
    # The model heard a number the grammar does not take there (95 for a 10..90 slot); the
    # sentence has another one (assistant/heard_numbers.py).
    NUMBER_NOT_IN_GRAMMAR = "number_not_in_grammar"
    CANCELLED = "cancelled"  # the client cancelled before the result was sent


@dataclass(frozen=True)
class Result:
    """What was understood. ``intent`` and ``slots`` are empty unless ``understood``.

    Besides the answer it carries what the recognizer saw, for result sinks (quality
    metrics, monitoring, capture): the confidence ``features`` the calibration mapped, the
    stage ``timing_ms``, the utterance's ``audio_dbfs`` and, when not understood, the
    ``reason``.
    """

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
    features: dict[str, float] | None = None  # confidence features (None: no sentence)
    audio_dbfs: float | None = None  # RMS level of the recognized audio (None: no audio)
    reason: Reason | None = None  # why not understood; None when understood
    snr_db: float | None = None  # speech against the utterance's own background (estimate)
    # The encoder's states over the utterance's audio, mean-pooled (for monitoring: compared
    # with the model's reference profile, :mod:`assistant.profile`); not serialized.
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    # What the grammar's longer sentences beginning with ``transcript`` do to its meaning
    # (:class:`~assistant.grammar.extension.Extension`: nothing, as a trailing "please"; add
    # something, "... in the kitchen"; continue a slot's value, "eighty" ... "seven"):
    # grammar-aware endpointing waits longer for the last two (:mod:`assistant.endpointing`).
    # None: no sentence.
    extension: Extension | None = None
    # Whether what the model heard freely begins a sentence of the grammar but stops before
    # it ends ("set a timer for"): the speaker is likely to go on.
    heard_unfinished: bool = False
    # How likely the speech sounds finished rather than paused mid-sentence, and the probe's
    # judgement (:mod:`assistant.finality`: True finished, False unfinished, None cannot
    # tell); None also when the speech model has no probe or no speech end was found. Not
    # serialized.
    finality: float | None = None
    sounds_finished: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.speech_ms is not None:
            extra["speech_ms"] = [round(self.speech_ms[0], 1), round(self.speech_ms[1], 1)]
        if self.intent_scores is not None:  # models with an intent classifier
            extra["out_of_domain_score"] = round(self.intent_scores.out_of_domain, 4)
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
            "reason": None if self.reason is None else str(self.reason),
            "audio_dbfs": None if self.audio_dbfs is None else round(self.audio_dbfs, 2),
            "snr_db": None if self.snr_db is None else round(self.snr_db, 2),
            "features": None if self.features is None else {
                k: round(v, 4) for k, v in self.features.items()},
        }

    @classmethod
    def not_understood(cls, audio_ms: float, heard: str = "",
                       reason: Reason = Reason.NO_SPEECH) -> Result:
        return cls(False, None, {}, 0.0, "", heard, audio_ms, {}, reason=reason)


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
    out_of_domain: bool = False  # the classifier's out-of-domain gate skipped decoding
    embedding: np.ndarray | None = None  # encoder states over the audio, mean-pooled
    extension: Extension | None = None  # what its longer sentences do to its meaning
    heard_unfinished: bool = False  # the free decode begins a sentence but stops before its end
    finality: float | None = None  # how finished the speech sounds (assistant.finality)


@dataclass(frozen=True)
class _Reading:
    """A decoding's best sentence: as written, its grammar words, parse and features."""

    decoded: Decoded
    transcript: str
    words: tuple[str, ...]
    annotation: Annotation | None
    features: dict[str, float] | None


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
        # Only the encoder it was fitted on: a fine-tuned model's is another ("-commands").
        self.finality = builtin_probe(model.name)
        self.graph = compile_word_graph(context)
        self._extensions: dict[tuple[str, ...], Extension] = {}
        self.constraint = TokenConstraint(
            self.graph, model.tokenizer, model.special.eot, words_to_int, int_to_words
        )
        self.search = BeamSearch(
            model,
            self.constraint,
            DecodingOptions(beam_size=self.config.beam_size,
                            free_decoding=self.config.free_decoding),
        )

    @functools.cached_property
    def nearest(self) -> NearestSentences:
        """The nearest-sentence search of the rescue, built on its first use: most answers
        never need it, and a recognizer is rebuilt at every slot update. (Two threads may
        both build it; it is read-only, so either copy serves.)"""
        return NearestSentences(self.graph)

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
        model = load_speech_model(ensure_speech_model(spec, progress), config.threads,
                                  config.device)
        return cls(context, model, config)

    @classmethod
    def from_model_dir(
        cls, directory: str | Path,
        overrides: Mapping[str, Any] | RecognizerConfig | None = None,
        context: Context | None = None,
    ) -> Recognizer:
        """A self-describing model directory (``assistant export`` or ``assistant train``).

        It runs with the settings stored in it; ``overrides`` (the settings a user gave,
        e.g. ``{"threshold": 0.8}``) replace stored ones field by field. The speech model
        and precision are the directory's own and cannot be overridden. ``context`` replaces
        its grammar (the same intents with other slot values, e.g. the user's device names).
        """
        directory = Path(directory)
        given = _as_overrides(overrides)
        model = load_speech_model(directory, given.get("threads"),
                                  given.get("device", RecognizerConfig.device))
        if context is None:
            context = model_dir_context(directory, model.metadata)
        elif "grammar" in model.metadata and list(context.intent_names) != list(
                model.metadata["grammar"].get("intents", context.intent_names)):
            raise ModelError(f"{directory}: a replacement grammar must keep the intents "
                             f"{model.metadata['grammar'].get('intents')}")
        calibration = Calibration.from_json(model.metadata["calibration"])
        classifier = None
        if "classifier" in model.metadata:
            info = model.metadata["classifier"]
            classifier = IntentClassifier(directory / info["file"], info["labels"])
        config = model_dir_config(directory, model.metadata, given)
        return cls(context, model, config, calibration, classifier)

    def _extension(self, words: tuple[str, ...]) -> Extension:
        """See :func:`assistant.grammar.extension.extension_of` (cached per sentence)."""
        cached = self._extensions.get(words)
        if cached is None:
            if len(self._extensions) >= EXTENSION_CACHE:
                self._extensions.clear()
            cached = self._extensions[words] = extension_of(self.context, self.graph, words)
        return cached

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
                    following = self.constraint.next_state(state, token)
                    if following is None:
                        break
                    state = following
        return time.perf_counter() - started

    def describe(self) -> dict[str, Any]:
        return {
            "speech_model": self.model.describe(),
            "grammar": {"source": self.context.source, "sha256": self.context.sha256,
                        "intents": list(self.context.intent_names)},
            "threshold": self.config.threshold,
        }

    def _mel(self, audio: np.ndarray) -> tuple[np.ndarray, float]:
        """The encoder's input for ``audio`` with the trailing silence the recognizer adds,
        and the padded audio's length in seconds."""
        pad = np.zeros(self.config.trailing_pad_ms * SAMPLE_RATE_HZ // 1000, np.float32)
        padded = np.concatenate([audio, pad])
        mel = log_mel_spectrogram(padded, n_mels=self.model.dims.n_mels,
                                  n_frames=frames_for_duration(padded.size))
        return mel, padded.size / SAMPLE_RATE_HZ

    def encode(self, audio: np.ndarray) -> EncoderOutput:
        """The encoder's output for ``audio`` (float32 mono 16 kHz), as recognition sees it."""
        return self.model.encode(self._mel(np.asarray(audio, dtype=np.float32))[0])

    def analyze(self, audio: np.ndarray, rescue: bool = True) -> Analysis:
        """Decode one utterance and measure it, before any confidence is computed.

        ``rescue=False`` skips the nearest-sentence rescue (see :meth:`_rescued`), as
        a partial result does: a quick guess at audio that is still coming."""
        return run_alone(self.model, self._analysis(audio, rescue))

    def _analysis(self, audio: np.ndarray, rescue: bool) -> Steps[Analysis]:
        """:meth:`analyze` as a generator of decoder calls (:mod:`assistant.decoding`)."""
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
        mel, padded_s = self._mel(audio)
        t_features = time.perf_counter()
        encoded = self.model.encode(mel)
        finality = (None if self.finality is None
                    else self.finality.probability(encoded.hidden[0], audio))
        scores = self.classifier.classify(encoded.hidden) if self.classifier else None
        t_encoder = time.perf_counter()
        timing = {"features": 1000 * (t_features - started),
                  "encoder": 1000 * (t_encoder - t_features)}
        embedding = pooled_states(encoded.hidden, audio.size)
        if (scores is not None and self.config.ood_gate < 1.0
                and scores.out_of_domain >= self.config.ood_gate):
            timing["decoder"] = 0.0  # clearly out of domain: no need to decode
            return Analysis(audio_ms, None, None, "", "", timing, scores, out_of_domain=True,
                            embedding=embedding, finality=finality)
        decoded = yield from self.search.steps(encoded, padded_s)
        timing["decoder"] = 1000 * (time.perf_counter() - t_encoder)
        heard = self.model.tokenizer.decode(decoded.free_tokens).strip()
        heard_words = normalize_text(heard)
        reading = self._read(decoded, scores, heard_words)
        t_read = time.perf_counter()
        if rescue:
            reading = yield from self._rescued(reading, encoded, padded_s,
                                               scores, heard_words)
        timing["rescue"] = 1000 * (time.perf_counter() - t_read)
        extension = None
        if reading.annotation is not None:
            extension = self._extension(tuple(reading.words))
        return Analysis(audio_ms, reading.features, reading.annotation, reading.transcript,
                        heard, timing, scores, embedding=embedding, extension=extension,
                        heard_unfinished=unfinished(self.graph, heard_words),
                        finality=finality)

    def _read(self, decoded: Decoded, scores: IntentScores | None,
              heard_words: list[str]) -> _Reading:
        """The best hypothesis of ``decoded``: its text, words, parse and features."""
        if not decoded.hypotheses:
            return _Reading(decoded, "", (), None, None)
        best = decoded.hypotheses[0].tokens
        transcript = self.model.tokenizer.decode(best).strip()
        words = self.constraint.words_of_tokens(best) or []
        annotation = parse_words(self.context, words) if words else None
        if annotation is None:  # cannot happen for a grammar the constraint accepts
            logger.error("constrained transcript %r does not parse", transcript)
            return _Reading(decoded, transcript, tuple(words), None, None)
        values = features(decoded, annotation.intent, scores, heard_words, words)
        return _Reading(decoded, transcript, tuple(words), annotation, values)

    def _rescued(self, reading: _Reading, encoded: EncoderOutput, audio_s: float,
                 scores: IntentScores | None, heard_words: list[str]) -> Steps[_Reading]:
        """The nearest-sentence rescue: when the free decode is not the beam's best sentence,
        the grammar sentences nearest what the model heard, scored by the model.

        The beam can commit early to a first word and end far off ("check, trash, bags, off,
        the list." for "shut garage door please", while the model heard "Check rashdoor
        please"; see :mod:`assistant.grammar.nearest`). The best-scoring nearby sentence
        replaces the beam's when the calibration finds it more likely right: raw scores
        would favour any shorter sentence ("pick up" over "pick up the call"), since every
        token only lowers a sentence's log-probability. Only for a sentence that would not
        be understood (confidence under the threshold), and when the free decode is not
        already that sentence: an understood answer costs nothing more."""
        k = self.config.rescue_sentences
        current = self.calibration.probability(reading.features)
        if (k == 0 or not heard_words or list(reading.words) == heard_words
                or current >= self.config.threshold):
            return reading
        near = self.nearest.nearest(heard_words, k)
        found = yield from self.search.rescore_steps(encoded, audio_s, [n.words for n in near])
        known = {tuple(h.tokens) for h in reading.decoded.hypotheses}
        fresh = [h for h in found if tuple(h.tokens) not in known]
        if not fresh:
            return reading
        others = sorted([*reading.decoded.hypotheses, *fresh[1:]], key=lambda h: -h.logprob)
        other = self._read(dataclasses.replace(reading.decoded, hypotheses=[fresh[0], *others]),
                           scores, heard_words)
        return other if self.calibration.probability(other.features) > current else reading

    def partial(self, audio: np.ndarray) -> Result:
        """A quick guess while the user still speaks: the intent classifier when the model has
        one (no decoding), else the best grammar sentence for the audio so far."""
        if self.classifier is None:
            return self.recognize(audio, rescue=False)
        started = time.perf_counter()
        audio = np.asarray(audio, dtype=np.float32)
        mel = log_mel_spectrogram(audio, n_mels=self.model.dims.n_mels,
                                  n_frames=max(2, frames_for_duration(audio.size)))
        scores = self.classifier.classify(self.model.encode(mel).hidden)
        intent, probability = scores.best
        known = intent in self.context.intent_names
        return Result(False, intent if known else None, {}, probability if known else 0.0, "",
                      "", 1000.0 * audio.size / SAMPLE_RATE_HZ,
                      {"total": 1000 * (time.perf_counter() - started)},
                      intent_scores=scores, audio_dbfs=level_dbfs(audio))

    def recognize(self, audio: np.ndarray, rescue: bool = True) -> Result:
        """Recognize one utterance: float32 mono 16 kHz audio, trimmed to the speech
        (``rescue``: see :meth:`analyze`)."""
        started = time.perf_counter()
        return self._result(self.analyze(audio, rescue), audio, started)

    def recognize_many(self, audios: Sequence[np.ndarray],
                       on_run: Callable[[int], None] | None = None) -> list[Result | Exception]:
        """Recognize several utterances at once, their decoder runs shared
        (:func:`~assistant.decoding.run_together`): the same results as :meth:`recognize`
        one by one, but for the rounding of INT8 models, which quantize a decoder run's
        inputs as one (docs/scaling.md). An utterance whose recognition raised gets the
        exception in its place; the others are unaffected. Each result's ``timing_ms`` is
        wall time, so its decoder time includes the runs it shared with the others.
        ``on_run(utterances)``: see ``run_together``."""
        started = time.perf_counter()
        outcomes = run_together(self.model, [self._analysis(a, True) for a in audios], on_run)
        return [o.error if isinstance(o, Failed) else self._result(o, audio, started)
                for o, audio in zip(outcomes, audios, strict=True)]

    def _result(self, analysis: Analysis, audio: np.ndarray, started: float) -> Result:
        confidence = self.calibration.probability(analysis.features)
        annotation = analysis.annotation
        understood = annotation is not None and confidence >= self.config.threshold
        reason = None if understood else _reason(analysis)
        if understood and annotation is not None and number_not_in_grammar(
                self.context, annotation.text, analysis.heard):
            understood, reason = False, Reason.NUMBER_NOT_IN_GRAMMAR
        samples = np.asarray(audio, dtype=np.float32)
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
            features=analysis.features,
            audio_dbfs=level_dbfs(samples),
            reason=reason,
            snr_db=snr_estimate_db(samples),
            embedding=analysis.embedding,
            extension=analysis.extension,
            heard_unfinished=analysis.heard_unfinished,
            finality=analysis.finality,
            sounds_finished=(None if self.finality is None
                             else self.finality.judge(analysis.finality)),
        )


SAMPLES_PER_STATE = SAMPLE_RATE_HZ // 50  # Whisper's encoder: one state per 20 ms


def pooled_states(hidden: np.ndarray, samples: int) -> np.ndarray | None:
    """The mean of the encoder states that saw the audio (not the silence padded after
    it), as float32; None for no states."""
    states = hidden[0, : max(1, -(-samples // SAMPLES_PER_STATE))]
    if states.size == 0:
        return None
    return np.asarray(states.mean(axis=0), dtype=np.float32)


def model_dir_context(directory: Path, metadata: Mapping[str, Any]) -> Context:
    """A model directory's grammar, checked against the hash its metadata records."""
    grammar = metadata.get("grammar")
    if not grammar:
        raise ModelError(f"{directory} has no grammar; recognize with --context FILE.yaml")
    context = load_context(Path(directory) / grammar["file"])
    if context.sha256 != grammar.get("sha256"):
        raise ModelError(f"{directory}: {grammar['file']} does not match the hash in "
                         f"its metadata (edited after export?)")
    return context


def model_dir_config(directory: Path, metadata: Mapping[str, Any],
                     overrides: Mapping[str, Any]) -> RecognizerConfig:
    """The settings a model directory runs with: its stored ones, then ``overrides``; its
    speech model and precision are its own (a differing override is ignored, with a warning)."""
    speech_model = metadata.get("source_model", metadata.get("model", "tiny.en"))
    precision = metadata.get("precision", "int8")
    for name, own in (("speech_model", speech_model), ("precision", precision)):
        if name in overrides and overrides[name] != own:
            logger.warning("%s is %r in %s; ignoring the %s %r given", name, own,
                           directory, name, overrides[name])
    return resolve_config(metadata.get("recognizer"), overrides, speech_model=speech_model,
                          precision=precision)


def _reason(analysis: Analysis) -> Reason:
    """Why an analysed utterance that was not understood was not (see :class:`Reason`)."""
    if analysis.audio_ms == 0:
        return Reason.NO_SPEECH
    if analysis.annotation is not None:
        return Reason.BELOW_THRESHOLD
    if analysis.out_of_domain:
        return Reason.OUT_OF_DOMAIN
    return Reason.NO_GRAMMAR_PATH


def _as_overrides(overrides: Mapping[str, Any] | RecognizerConfig | None) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, RecognizerConfig):
        warnings.warn(
            "Recognizer.from_model_dir(DIR, RecognizerConfig(...)) is deprecated: pass the "
            "settings to override as a mapping, e.g. {'threshold': 0.8}. A RecognizerConfig "
            "now overrides only the fields that differ from the defaults.",
            DeprecationWarning, stacklevel=3)
        return differing_fields(overrides)
    return check_overrides(overrides)


def differing_fields(config: RecognizerConfig) -> dict[str, Any]:
    """The fields of ``config`` that differ from the defaults, as overrides (what the old
    full-config arguments meant to set)."""
    default = RecognizerConfig()
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if getattr(config, f.name) != getattr(default, f.name)}
