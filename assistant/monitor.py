"""Drift detection: is live traffic still like what the model was built and checked on?

Every final answer becomes an :class:`Observation`, the signals monitoring watches (all from
the answer itself; no audio or text is kept):

========================  =========================================================
``confidence``            the calibrated confidence (0 when no sentence was decoded)
``outcome``               ``understood`` or the reason it was not (no_speech, ...)
``intent``                the intent understood (shown, never alarms: traffic's intent
                          mix is the users' choice, not a fault)
``audio_dbfs``            the utterance's RMS level
``snr_db``                its speech-to-background estimate (:mod:`assistant.levels`)
``utterance_seconds``     its length
``heard_agreement``       how much of the free decode the grammar sentence covers
                          (:func:`heard_agreement`); low when people say things the
                          grammar does not have
``encoder_distance``      how far its mean encoder state is from the reference's, along
                          the reference's principal directions (:mod:`assistant.profile`)
``encoder_residual``      and off them
``out_of_domain_score``   the intent classifier's out-of-domain score (models that have
                          one: ``assistant train`` builds it with speech that is no
                          command); high when people say other things
========================  =========================================================

A :class:`DriftMonitor` keeps a sliding window of the latest observations of one model (at
most ``drift_window_utterances`` of them, none older than ``drift_window_s``) and compares
each signal's distribution in the window with the model's :class:`ReferenceProfile` by the
population stability index, PSI = sum (live - ref) * ln(live / ref) over the reference's
bins. A signal alarms when the window holds at least ``drift_min_utterances`` (quiet hours
do not alarm), its PSI exceeds ``drift_psi_floor`` (the shift is large enough to matter) and
the shift is significant: Pearson's chi-squared statistic of the window against the
reference, or for a number the shift of its mean rank (the z of the window's mean bin index
against the reference's, a test of location with one degree of freedom and so far more power
for the common drift that moves a distribution up or down), exceeds what sampling alone gives
with probability ``drift_alpha`` (n the effective size of window and reference); it clears
when the PSI falls under half its floor or the significance under half its bar. Optionally
(``drift_joint_alpha``) a ``joint`` pseudo-signal tests all rank shifts at once, Hotelling's
T-squared against the correlation of the signals' ranks on the reference: several signals
each moving a little (a telephone line lowers confidence, level and agreement together and
raises the encoder residual) can be clear together. And where the reference knows which of
its clips were commands and which other speech (``drift_other_alpha``), an ``other_speech``
pseudo-signal estimates the share of the window's answers that is speech that is no command
(the mixture of the reference's two confidence distributions that fits the window best) and
alarms when it has risen by ``drift_other_rise``: more people saying what the grammar
lacks changes no sound, so the other tests see it late or not at all, while the mixture
knows what such answers look like. That test is sequential (Page's CUSUM of the answers'
likelihood ratios, alarming past ln(1 / ``drift_other_alpha``)), so evidence gathers over
as long as the rise lasts. The thresholds were chosen by simulation on synthesized
traffic, never on recordings of people (``benchmarks/drift.py``, benchmarks/README.md).

The monitor is pure and framework-free: the server feeds it from a result sink and exports
its state (:mod:`serving.quality`); ``assistant monitor`` replays a results log through it.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from statistics import NormalDist
from typing import Any

import numpy as np

from .errors import ConfigError
from .profile import (
    JOINT_MIN_UTTERANCES,
    NOT_UNDERSTOOD,
    OTHER,
    SMOOTHING,
    EncoderReference,
    JointReference,
    NumericReference,
    OtherSpeechReference,
    ReferenceProfile,
    SignalReference,
    categorical_reference,
    numeric_reference,
)
from .recognizer import Recognizer, Result

NUMERIC_SIGNALS = ("confidence", "audio_dbfs", "snr_db", "utterance_seconds",
                   "heard_agreement", "encoder_distance", "encoder_residual",
                   "out_of_domain_score")
CATEGORICAL_SIGNALS = ("outcome", "intent")
SIGNALS = ("confidence", "outcome", "intent", "audio_dbfs", "snr_db", "utterance_seconds",
           "heard_agreement", "encoder_distance", "encoder_residual",
           "out_of_domain_score")
INFORMATIONAL = frozenset({"intent"})  # scored and shown, never alarms
COMMAND, OTHER_SPEECH = "command", "other"  # what a reference clip was
UNDERSTOOD = "understood"
ENCODER_FOLDS = 10
# Fewer utterances leave the principal directions noisy: in-distribution traffic then reads
# as drifted on the encoder signals (profiles of 40-64 clean clips alarmed on 20-42 clean
# commands in tests), so smaller profiles get no encoder summary.
ENCODER_MIN_UTTERANCES = 100


@dataclass(frozen=True)
class MonitorConfig:
    """How drift is judged (see module docs). The window, floor, alpha, joint and
    other-speech defaults were chosen by simulation on synthesized traffic
    (benchmarks/drift_select.py: a grid over a selection set of other seeds than the reported
    scenario, benchmarks/drift.py)."""

    monitor: bool = field(default=True, metadata={
        "help": "watch quality and drift (set false to turn monitoring off)"})
    drift_window_utterances: int = field(default=100, metadata={
        "help": "the drift window: at most this many latest utterances per model"})
    drift_window_s: float = field(default=3600.0, metadata={
        "help": "the drift window: none older than this"})
    drift_min_utterances: int = field(default=60, metadata={
        "help": "no drift alarm on fewer utterances in the window"})
    drift_psi_floor: float = field(default=0.2, metadata={
        "help": "a signal alarms only above this population stability index"})
    drift_alpha: float = field(default=1e-5, metadata={
        "help": "and only above what sampling alone gives with this probability"})
    drift_joint_alpha: float = field(default=1e-4, metadata={
        "help": "also alarm (signal 'joint') when the signals' rank shifts together, their "
                "correlation on the reference counted, exceed what sampling gives with this "
                "probability: a shift that moves several signals a little (0: off)"})
    drift_other_alpha: float = field(default=1e-4, metadata={
        "help": "also alarm (signal 'other_speech') when the share of speech that is no "
                "command has risen by drift_other_rise: a CUSUM of the answers' likelihood "
                "ratios against the reference's share, alarming past ln(1/alpha), which "
                "keeps false alarms under one in 1/alpha answers (0: off)"})
    drift_other_rise: float = field(default=0.1, metadata={
        "help": "the rise of the share of other speech (0.1: ten points) the test looks for"})
    monitor_log: str = field(default="", metadata={
        "help": "append each answer's monitored signals (numbers, intent and outcome; no "
                "audio or text) to this JSON lines file, for 'assistant monitor'"})

    def __post_init__(self) -> None:
        if self.drift_window_utterances < 10:
            raise ConfigError("drift_window_utterances must be at least 10")
        if not 1 <= self.drift_min_utterances <= self.drift_window_utterances:
            raise ConfigError("drift_min_utterances must be between 1 and "
                              "drift_window_utterances")
        if self.drift_window_s <= 0:
            raise ConfigError("drift_window_s must be positive")
        if self.drift_psi_floor < 0:
            raise ConfigError("drift_psi_floor must not be negative")
        if not 0 < self.drift_alpha < 1:
            raise ConfigError("drift_alpha must be between 0 and 1")
        if not 0 <= self.drift_joint_alpha < 1:
            raise ConfigError("drift_joint_alpha must be in [0, 1) (0: off)")
        if not 0 <= self.drift_other_alpha < 1:
            raise ConfigError("drift_other_alpha must be in [0, 1) (0: off)")
        if not 0 < self.drift_other_rise < 1:
            raise ConfigError("drift_other_rise must be between 0 and 1 (a share)")


@dataclass(frozen=True)
class Observation:
    """The monitored signals of one final answer (None: not measured for it)."""

    confidence: float
    outcome: str  # "understood" or a Reason
    intent: str | None
    audio_dbfs: float | None
    snr_db: float | None
    utterance_seconds: float
    heard_agreement: float | None
    encoder_distance: float | None = None
    encoder_residual: float | None = None
    out_of_domain_score: float | None = None  # None: the model has no intent classifier

    def value(self, signal: str) -> Any:
        return getattr(self, signal)

    def to_json(self) -> dict[str, Any]:
        return {name: round(v, 4) if isinstance(v, float) else v
                for name, v in self.__dict__.items()}

    @classmethod
    def of(cls, result: Result, encoder: EncoderReference | None = None) -> Observation:
        distance = residual = None
        if encoder is not None and result.embedding is not None:
            distance, residual = encoder.distances(result.embedding)
        return cls(
            confidence=float(result.confidence),
            outcome=UNDERSTOOD if result.understood else str(result.reason or "unknown"),
            intent=result.intent,
            audio_dbfs=result.audio_dbfs,
            snr_db=result.snr_db,
            utterance_seconds=result.audio_ms / 1000.0,
            heard_agreement=heard_agreement(result.heard, result.transcript),
            encoder_distance=distance, encoder_residual=residual,
            out_of_domain_score=None if result.intent_scores is None
            else result.intent_scores.out_of_domain)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Observation:
        """From a monitor log line (:meth:`to_json`, the server's ``monitor_log``), or a
        result as ``assistant recognize`` writes it (JSON lines) or a server's ``result``
        message (``encoder_distance`` / ``encoder_residual`` / ``out_of_domain_score``
        when present)."""
        if "outcome" in data:
            values: dict[str, Any] = {f: data.get(f) for f in cls.__dataclass_fields__}
            try:
                return cls(**values)
            except TypeError as e:
                raise ConfigError(f"not a monitor log line: {e}") from e
        try:
            understood = bool(data["understood"])
            return cls(
                confidence=float(data.get("confidence") or 0.0),
                outcome=UNDERSTOOD if understood else str(data.get("reason") or "unknown"),
                intent=data.get("intent"),
                audio_dbfs=_optional(data.get("audio_dbfs")),
                snr_db=_optional(data.get("snr_db")),
                utterance_seconds=float(data.get("audio_ms") or 0.0) / 1000.0,
                heard_agreement=heard_agreement(str(data.get("heard") or ""),
                                                str(data.get("transcript") or "")),
                encoder_distance=_optional(data.get("encoder_distance")),
                encoder_residual=_optional(data.get("encoder_residual")),
                out_of_domain_score=_optional(data.get("out_of_domain_score")))
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"not a recognition result: {e}") from e


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def heard_agreement(heard: str, sentence: str) -> float | None:
    """How alike the free decode and the grammar sentence are, by words (1: the same words
    in the same order; 0: nothing in common or no sentence); None when nothing was heard."""
    heard_words = _words(heard)
    if not heard_words:
        return None
    sentence_words = _words(sentence)
    if not sentence_words:
        return 0.0
    return SequenceMatcher(None, heard_words, sentence_words, autojunk=False).ratio()


_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def _words(text: str) -> list[str]:
    """Lower-case words (both texts are the same model's writing: no number spelling)."""
    return _WORD.findall(text.lower())


def profile_from_observations(observations: Sequence[Observation],
                              embeddings: np.ndarray | None, *, speech_model: str,
                              precision: str, grammar_sha256: str,
                              source: Mapping[str, Any],
                              embedded: Sequence[int] | None = None,
                              kinds: Sequence[str | None] | None = None) -> ReferenceProfile:
    """A reference profile from observations of held-out data (and their mean-pooled encoder
    states, for the encoder summary; its distances are measured out of fold, so the reference
    spread is what unseen in-distribution audio gives, not the fit's own). ``embedded``: the
    indices of the observations the embeddings belong to (default: all, in order). ``kinds``:
    per observation, ``"command"``, ``"other"`` (speech that is no command) or None (not
    known), for the other-speech reference."""
    encoder = None
    # Every numeric signal as one value per observation (NaN where it has none): the
    # reference's bins and the joint test's rank correlation both read these.
    columns: dict[str, np.ndarray] = {}
    if embeddings is not None and len(embeddings) >= ENCODER_MIN_UTTERANCES:
        x = np.asarray(embeddings, np.float64)
        rows = np.arange(len(x)) if embedded is None else np.asarray(embedded, np.intp)
        if len(rows) != len(x):
            raise ConfigError(f"{len(x)} embeddings for {len(rows)} embedded observations")
        measured = np.full((2, len(observations)), np.nan)
        # Ten folds: each utterance measured against a fit on the other 90 %, as a live one
        # is measured against the fit on all of them (two folds read systematically far).
        folds = np.arange(len(x)) % ENCODER_FOLDS
        for fold in range(ENCODER_FOLDS):
            fitted = EncoderReference.fit(x[folds != fold])
            for k in np.flatnonzero(folds == fold):
                measured[:, rows[k]] = fitted.distances(x[k])
        encoder = EncoderReference.fit(x)
        columns = {"encoder_distance": measured[0], "encoder_residual": measured[1]}
    for name in NUMERIC_SIGNALS:
        if name not in ("encoder_distance", "encoder_residual"):
            columns[name] = np.asarray([np.nan if o.value(name) is None else o.value(name)
                                        for o in observations], np.float64)
    signals: dict[str, SignalReference] = {}
    for name in SIGNALS:
        if name in CATEGORICAL_SIGNALS:
            values = [o.intent if name == "intent" else o.value(name) for o in observations]
            if any(v is not None for v in values):
                signals[name] = categorical_reference([v for v in values if v is not None])
        elif name in columns and np.isfinite(columns[name]).any():
            signals[name] = numeric_reference(list(columns[name]))  # NaN left out
    joint = None
    if len(observations) >= JOINT_MIN_UTTERANCES:
        names, ranks = [], []
        for name, ref in signals.items():
            if isinstance(ref, NumericReference) and name not in INFORMATIONAL:
                column = columns[name]
                names.append(name)
                ranks.append(np.where(np.isnan(column), np.nan,
                                      ref.bin_of(np.nan_to_num(column)).astype(np.float64)))
        if "outcome" in signals:
            names.append(NOT_UNDERSTOOD)
            ranks.append(np.asarray([float(o.outcome != UNDERSTOOD) for o in observations]))
        if len(names) >= 2:
            joint = JointReference.fit(names, np.stack(ranks, axis=1))
    other_speech = None
    if kinds is not None:
        if len(kinds) != len(observations):
            raise ConfigError(f"{len(kinds)} kinds for {len(observations)} observations")
        known = [(o.confidence, kind == OTHER_SPEECH) for o, kind in
                 zip(observations, kinds, strict=True) if kind in (COMMAND, OTHER_SPEECH)]
        if known:
            confidence, is_other = zip(*known, strict=True)
            other_speech = OtherSpeechReference.fit(confidence, is_other)
    return ReferenceProfile(signals, encoder, speech_model, precision, grammar_sha256,
                            len(observations), source, joint, other_speech)


def profile_from_results(results: Iterable[Result | tuple[str | None, Result]],
                         recognizer: Recognizer, source: Mapping[str, Any]
                         ) -> ReferenceProfile:
    """A reference for ``recognizer``'s grammar and speech model from its answers on held-out
    data (each answer's signals and mean-pooled encoder states); an answer may come as
    ``(kind, result)``, kind ``"command"``, ``"other"`` or None (see
    :func:`profile_from_observations`)."""
    observations: list[Observation] = []
    embeddings: list[np.ndarray] = []
    embedded: list[int] = []
    kinds: list[str | None] = []
    for item in results:
        kind, result = item if isinstance(item, tuple) else (None, item)
        kinds.append(kind)
        if result.embedding is not None:
            embeddings.append(result.embedding)
            embedded.append(len(observations))
        observations.append(Observation.of(result))
    return profile_from_observations(
        observations, np.stack(embeddings) if embeddings else None,
        speech_model=str(recognizer.config.speech_model),
        precision=str(recognizer.config.precision),
        grammar_sha256=recognizer.context.sha256, source=source, embedded=embedded,
        kinds=kinds if any(k is not None for k in kinds) else None)


def profile_from_audio(recognizer: Recognizer, clips: Iterable[np.ndarray],
                       source: Mapping[str, Any]) -> ReferenceProfile:
    """Recognize every clip (float32 mono 16 kHz, cut to the utterance as the server cuts
    it) and profile the answers (:func:`profile_from_results`)."""
    return profile_from_results((recognizer.recognize(c) for c in clips), recognizer, source)


def chi2_quantile(p: float, dof: int) -> float:
    """The p-quantile of chi-squared with ``dof`` degrees of freedom (Wilson-Hilferty)."""
    z = NormalDist().inv_cdf(p)
    k = float(dof)
    return max(0.0, k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3)


class SignalState:
    """One signal's window: counts per reference bin (a view into the monitor's array of
    every signal's counts), PSI, chi-squared and alarm."""

    def __init__(self, reference: SignalReference, labels: tuple[str, ...],
                 counts: np.ndarray, critical: float):
        self.reference = reference
        self.labels = labels  # bin names (categorical values, or numeric ranges)
        self.counts = counts
        self.ref = np.asarray(reference.shares if isinstance(reference, NumericReference)
                              else [reference.shares[k] for k in labels], np.float64)
        self._edges = list(reference.edges) if isinstance(reference, NumericReference) else None
        self._index = {label: i for i, label in enumerate(labels)}
        self.critical = critical  # chi-squared beyond which the shift is not chance
        self.samples = 0
        self.psi = 0.0
        self.threshold = 0.0  # the PSI it must exceed
        self.chi2 = 0.0  # Pearson's statistic of the window against the reference
        self.shift_z = 0.0  # numbers: the z of the window's mean rank against the reference's
        self.significance = 0.0  # the larger of chi2 / its bar and z**2 / its bar; > 1: alarm
        self.alarm = False
        self.alarms = 0  # times it went into alarm

    def bin_of(self, value: Any) -> int:
        if self._edges is not None:
            return bisect.bisect_right(self._edges, value)
        return self._index.get(str(value), self._index[OTHER])

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        """(live, reference) shares per bin; live smoothed as the reference was."""
        live = (self.counts + SMOOTHING) / (self.samples + SMOOTHING * self.counts.size)
        return live, self.ref

    def describe(self) -> dict[str, Any]:
        live, ref = self.shares()
        return {"psi": round(self.psi, 4), "threshold": round(self.threshold, 4),
                "chi2": round(self.chi2, 2), "chi2_critical": round(self.critical, 2),
                "shift_z": round(self.shift_z, 2), "significance": round(self.significance, 3),
                "alarm": self.alarm, "alarms": self.alarms, "samples": self.samples,
                "bins": list(self.labels), "live": [round(float(v), 4) for v in live],
                "reference": [round(float(v), 4) for v in ref]}


class PseudoSignalState:
    """What the pseudo-signals (``joint``, ``other_speech``) share: a statistic against its
    critical value, whose ratio, the significance (1 at the bar), is their score where a
    signal's is the PSI; and the same description shape as a signal's."""

    def __init__(self, critical: float):
        self.critical = critical  # the statistic beyond which the shift is not chance
        self.samples = 0
        self.statistic = 0.0
        self.significance = 0.0
        self.alarm = False
        self.alarms = 0

    @property
    def psi(self) -> float:
        """Its score where a signal's is the PSI (``assistant_drift_score``)."""
        return self.significance

    def _describe(self, bins: list[str], live: list[float], reference: list[float]
                  ) -> dict[str, Any]:
        return {"psi": round(self.significance, 4), "threshold": 1.0,
                "chi2": round(self.statistic, 2), "chi2_critical": round(self.critical, 2),
                "shift_z": 0.0, "significance": round(self.significance, 3),
                "alarm": self.alarm, "alarms": self.alarms, "samples": self.samples,
                "bins": bins, "live": live, "reference": reference}


class JointState(PseudoSignalState):
    """The ``joint`` pseudo-signal: Hotelling's T-squared (``statistic``) of the window's
    rank shifts (each numeric signal's ``shift_z`` and the not-understood share's) against
    the reference's correlation of those ranks; chi-squared with one degree of freedom per
    signal when nothing changed."""

    def __init__(self, signals: tuple[str, ...], critical: float):
        super().__init__(critical)
        self.signals = signals

    def describe(self) -> dict[str, Any]:
        return self._describe(list(self.signals), [], [])


JOINT = "joint"
OTHER_SPEECH_SIGNAL = "other_speech"


class OtherSpeechState(PseudoSignalState):
    """The ``other_speech`` pseudo-signal, from the reference's two confidence distributions
    (commands and other speech, :class:`~assistant.profile.OtherSpeechReference`):

    * ``estimate``: the share of the window's answers that is speech that is no command, the
      mixture of the two that fits the window best (maximum likelihood; shown);
    * ``statistic``: Page's CUSUM of each answer's log-likelihood ratio of "the share rose by
      ``rise``" against the reference's share, S = max(0, S + ln(m_rise(x) / m_ref(x))). It
      alarms past ``threshold`` = ln(1 / alpha): when the reference is right, that keeps
      false alarms under one in 1 / alpha answers (ARL >= e^threshold), and it gathers
      evidence over as many answers as the rise has lasted, not one window's worth (a rise
      only: fewer non-commands is no fault);
    * ``back``: the mirror CUSUM, evidence that the share is at the reference's again rather
      than raised. An alarm clears when that passes the same threshold (as much evidence to
      clear as to raise, so a window's noisy estimate cannot switch it off mid-rise); each
      starts afresh when the other decides."""

    GRID = np.linspace(0.0, 1.0, 201)  # the shares the estimate is chosen from

    def __init__(self, reference: OtherSpeechReference, threshold: float, rise: float):
        super().__init__(threshold)
        self.reference = reference
        command = np.asarray(reference.command, np.float64)
        other = np.asarray(reference.other, np.float64)
        self._edges = list(reference.edges)
        self._log_mixtures = np.log(np.outer(1.0 - self.GRID, command)
                                    + np.outer(self.GRID, other))
        raised = min(reference.share + rise, 1.0)
        self._step = (np.log((1.0 - raised) * command + raised * other)
                      - np.log((1.0 - reference.share) * command + reference.share * other))
        self.counts = np.zeros(command.size, np.int64)
        self.estimate = reference.share
        self.back = 0.0

    def bin_of(self, confidence: float) -> int:
        return bisect.bisect_right(self._edges, confidence)

    def add(self, index: int) -> None:
        """One more answer (its confidence bin): both CUSUMs move."""
        step = float(self._step[index])
        self.statistic = max(0.0, self.statistic + step)
        self.back = max(0.0, self.back - step)

    def reset(self) -> None:
        """Start the evidence afresh (the window emptied)."""
        self.statistic = self.back = 0.0

    def judge(self) -> None:
        self.significance = self.statistic / self.critical
        if not self.samples:
            self.estimate = self.reference.share
            return
        self.estimate = float(self.GRID[int(np.argmax(self._log_mixtures @ self.counts))])

    def describe(self) -> dict[str, Any]:
        # live and reference: the shares of other speech; chi2 and its critical value: the
        # CUSUM and its threshold
        return self._describe(["share of speech that is no command"],
                              [round(self.estimate, 4)], [round(self.reference.share, 4)])


@dataclass(frozen=True)
class AlarmEvent:
    """A signal went into alarm (``raised``) or out of it."""

    signal: str
    raised: bool
    at_s: float  # the monitor's clock
    utterance: int  # the monitor's count of observations when it happened
    psi: float

    def to_json(self) -> dict[str, Any]:
        return {"signal": self.signal, "raised": self.raised, "at": round(self.at_s, 3),
                "utterance": self.utterance, "psi": round(self.psi, 4)}


class DriftMonitor:
    """One model's drift state (see module docs). Not thread-safe: feed it from one thread
    (the server's event loop)."""

    def __init__(self, profile: ReferenceProfile, config: MonitorConfig | None = None,
                 events: int = 50):
        self.profile = profile
        self.config = config or MonitorConfig()
        layout = []
        for name in SIGNALS:
            ref = profile.signals.get(name)
            if ref is not None:
                labels = _numeric_labels(ref.edges) if isinstance(ref, NumericReference) \
                    else tuple(ref.shares)
                layout.append((name, ref, labels))
        # Every signal's bins side by side in one array: a judgement is a few array
        # operations for all signals at once (microseconds per answer).
        sizes = [len(labels) for _, _, labels in layout]
        self._offsets = np.cumsum([0, *sizes[:-1]]).astype(np.intp)
        self._segment = np.repeat(np.arange(len(sizes)), sizes)
        self._counts = np.zeros(sum(sizes), np.int64)
        self._sizes = np.asarray(sizes, np.float64)
        self.states: dict[str, SignalState] = {}
        for (name, ref, labels), offset in zip(layout, self._offsets, strict=True):
            critical = chi2_quantile(1 - self.config.drift_alpha, max(1, len(labels) - 1))
            self.states[name] = SignalState(
                ref, labels, self._counts[offset : offset + len(labels)], critical)
        self._ref = np.concatenate([s.ref for s in self.states.values()]) if self.states \
            else np.zeros(0)
        self._log_ref = np.log(self._ref)
        self._ref_counts = np.asarray([max(s.reference.count, 1) for s in self.states.values()],
                                      np.float64)
        self._alarming = np.asarray([n not in INFORMATIONAL for n in self.states], bool)
        # The location test for numbers: each bin's index within its signal; the reference's
        # mean and variance of that index (categorical signals get no location test).
        self._rank = (np.arange(self._counts.size) - self._offsets[self._segment]).astype(
            np.float64)
        if self.states:
            mean = np.add.reduceat(self._rank * self._ref, self._offsets)
            var = np.add.reduceat(np.square(self._rank) * self._ref, self._offsets) - mean ** 2
        else:
            mean = var = np.zeros(0)
        self._rank_mean, self._rank_var = mean, np.maximum(var, 1e-12)
        self._ordinal = np.asarray([isinstance(st.reference, NumericReference)
                                    for st in self.states.values()], bool)
        self._z_critical = NormalDist().inv_cdf(1 - self.config.drift_alpha / 2)
        self.joint: JointState | None = None
        if self.config.drift_joint_alpha > 0 and profile.joint is not None:
            self._setup_joint(profile.joint)
        self.other: OtherSpeechState | None = None
        if self.config.drift_other_alpha > 0 and profile.other_speech is not None:
            self.other = OtherSpeechState(profile.other_speech,
                                          math.log(1.0 / self.config.drift_other_alpha),
                                          self.config.drift_other_rise)
        self.window: deque[tuple[float, dict[str, int]]] = deque()
        self.observed = 0
        self.events: deque[AlarmEvent] = deque(maxlen=events)

    @property
    def encoder(self) -> EncoderReference | None:
        return self.profile.encoder

    def observe(self, observation: Observation, now_s: float | None = None) -> list[AlarmEvent]:
        """Add one answer; returns the alarms raised or cleared by it."""
        now = time.time() if now_s is None else now_s
        bins = {}
        for name, state in self.states.items():
            value = observation.value(name)
            if value is None:
                continue
            index = state.bin_of(value)
            state.counts[index] += 1
            state.samples += 1
            bins[name] = index
        if self.other is not None:
            index = self.other.bin_of(observation.confidence)
            self.other.counts[index] += 1
            self.other.samples += 1
            self.other.add(index)
            bins[OTHER_SPEECH_SIGNAL] = index
        self.window.append((now, bins))
        self.observed += 1
        self._evict(now)
        return self._judge(now)

    def expire(self, now_s: float | None = None) -> list[AlarmEvent]:
        """Drop what fell out of the time window (call now and then when traffic stops)."""
        now = time.time() if now_s is None else now_s
        if self._evict(now):
            return self._judge(now)
        return []

    def _evict(self, now: float) -> bool:
        config = self.config
        dropped = False
        while self.window and (len(self.window) > config.drift_window_utterances
                               or now - self.window[0][0] > config.drift_window_s):
            _, bins = self.window.popleft()
            for name, index in bins.items():
                state: SignalState | OtherSpeechState = self.states[name] \
                    if name != OTHER_SPEECH_SIGNAL else self.other  # type: ignore[assignment]
                state.counts[index] -= 1
                state.samples -= 1
            dropped = True
        if dropped and not self.window and self.other is not None:
            self.other.reset()
        return dropped

    def _judge(self, now: float) -> list[AlarmEvent]:
        if not self.states:
            return []
        config = self.config
        n = np.asarray([s.samples for s in self.states.values()], np.float64)
        per_bin = n[self._segment]
        live = (self._counts + SMOOTHING) / (per_bin + SMOOTHING * self._sizes[self._segment])
        psi = np.add.reduceat((live - self._ref) * (np.log(live) - self._log_ref),
                              self._offsets)
        # Pearson's statistic on the raw shares, n the effective size of the two samples
        raw = self._counts / np.maximum(per_bin, 1.0)
        effective = 1.0 / (1.0 / np.maximum(n, 1.0) + 1.0 / self._ref_counts)
        chi2 = effective * np.add.reduceat(np.square(raw - self._ref) / self._ref,
                                           self._offsets)
        rank_mean = np.add.reduceat(self._rank * raw, self._offsets)
        # A signal with nothing in the window (e.g. a score older clients or logs lack)
        # shows no shift, not a shift from the reference's mean down to zero.
        z = np.where(self._ordinal & (n > 0), (rank_mean - self._rank_mean)
                     * np.sqrt(effective / self._rank_var), 0.0)
        changed = self._judge_joint(z, effective, n, now) + self._judge_other(now)
        for i, (name, state) in enumerate(self.states.items()):
            samples = state.samples
            state.psi = float(psi[i]) if samples else 0.0
            state.chi2 = float(chi2[i]) if samples else 0.0
            state.shift_z = float(z[i]) if samples else 0.0
            state.significance = max(state.chi2 / state.critical,
                                     state.shift_z ** 2 / self._z_critical ** 2)
            state.threshold = config.drift_psi_floor
            if name in INFORMATIONAL:
                continue
            changed += self._transition(
                name, state, now, state.psi, enough=samples >= config.drift_min_utterances,
                drifted=state.psi > config.drift_psi_floor and state.significance > 1,
                back=state.psi < 0.5 * config.drift_psi_floor or state.significance < 0.5)
        return changed

    def _transition(self, name: str, state: SignalState | PseudoSignalState, now: float,
                    score: float, *, enough: bool, drifted: bool, back: bool
                    ) -> list[AlarmEvent]:
        """Raise ``name``'s alarm when the window holds enough and it ``drifted``; clear it
        when the window holds too few or it is ``back``; the event, if either happened."""
        if not state.alarm and enough and drifted:
            state.alarm = True
            state.alarms += 1
        elif state.alarm and (not enough or back):
            state.alarm = False
        else:
            return []
        event = AlarmEvent(name, state.alarm, now, self.observed, score)
        self.events.append(event)
        return [event]

    def _setup_joint(self, joint: JointReference) -> None:
        names = list(self.states)
        keep = [i for i, name in enumerate(joint.signals)
                if name in self.states or (name == NOT_UNDERSTOOD and "outcome" in self.states)]
        if len(keep) < 2:
            return
        signals = tuple(joint.signals[i] for i in keep)
        correlation = joint.correlation[np.ix_(keep, keep)]
        self._joint_inverse = np.linalg.inv(correlation)
        self._joint_index = np.asarray([names.index(s) for s in signals if s != NOT_UNDERSTOOD],
                                       np.intp)
        self._joint_has_nu = NOT_UNDERSTOOD in signals
        if self._joint_has_nu:
            outcome = self.states["outcome"]
            self._nu_state = outcome
            self._nu_position = names.index("outcome")
            self._nu_understood = outcome.labels.index(UNDERSTOOD) \
                if UNDERSTOOD in outcome.labels else -1
            share = outcome.ref[self._nu_understood] if self._nu_understood >= 0 else 0.0
            self._nu_reference = float(min(max(1.0 - share, 1e-3), 1 - 1e-3))
        critical = chi2_quantile(1 - self.config.drift_joint_alpha, len(signals))
        self.joint = JointState(signals, critical)

    def _judge_joint(self, z: np.ndarray, effective: np.ndarray, n: np.ndarray,
                     now: float) -> list[AlarmEvent]:
        joint = self.joint
        if joint is None:
            return []
        vector = z[self._joint_index]
        if self._joint_has_nu:
            outcome = self._nu_state
            i = self._nu_position
            if outcome.samples and self._nu_understood >= 0:
                live = 1.0 - outcome.counts[self._nu_understood] / outcome.samples
                p = self._nu_reference
                nu_z = (live - p) * math.sqrt(effective[i] / (p * (1 - p)))
            else:
                nu_z = 0.0
            vector = np.append(vector, nu_z)
        joint.statistic = float(vector @ self._joint_inverse @ vector)
        joint.significance = joint.statistic / joint.critical
        joint.samples = len(self.window)
        return self._transition(
            JOINT, joint, now, joint.significance,
            enough=joint.samples >= self.config.drift_min_utterances,
            drifted=joint.significance > 1, back=joint.significance < 0.5)

    def _judge_other(self, now: float) -> list[AlarmEvent]:
        other = self.other
        if other is None:
            return []
        other.judge()
        enough = other.samples >= self.config.drift_min_utterances
        back = other.back > other.critical
        if other.alarm and (not enough or back):  # clearing: a rise's evidence starts afresh
            other.statistic = 0.0
            other.judge()
        changed = self._transition(OTHER_SPEECH_SIGNAL, other, now, other.significance,
                                   enough=enough, drifted=other.significance > 1, back=back)
        if changed and changed[0].raised:  # raised: a return's evidence starts afresh
            other.back = 0.0
        return changed

    def signal_states(self) -> dict[str, SignalState | JointState | OtherSpeechState]:
        """Every signal's state, and the joint and other-speech ones when they are on (and
        the profile has what they need)."""
        states: dict[str, SignalState | JointState | OtherSpeechState] = dict(self.states)
        if self.joint is not None:
            states[JOINT] = self.joint
        if self.other is not None:
            states[OTHER_SPEECH_SIGNAL] = self.other
        return states

    @property
    def drifting(self) -> list[str]:
        return [name for name, state in self.signal_states().items() if state.alarm]

    def status(self) -> str:
        if self.drifting:
            return "drift"
        if len(self.window) < self.config.drift_min_utterances:
            return "warming_up"
        return "ok"

    def describe(self) -> dict[str, Any]:
        """The state ``GET /v1/monitor`` and ``assistant monitor`` report."""
        return {
            "status": self.status(),
            "drifting": self.drifting,
            "window_utterances": len(self.window),
            "observed": self.observed,
            "signals": {name: state.describe() for name, state in self.signal_states().items()},
            "events": [e.to_json() for e in self.events],
            "reference": {"utterances": self.profile.utterances,
                          "speech_model": self.profile.speech_model,
                          "precision": self.profile.precision,
                          "source": dict(self.profile.source)},
            "config": {"window_utterances": self.config.drift_window_utterances,
                       "window_s": self.config.drift_window_s,
                       "min_utterances": self.config.drift_min_utterances,
                       "psi_floor": self.config.drift_psi_floor,
                       "alpha": self.config.drift_alpha,
                       "joint_alpha": self.config.drift_joint_alpha,
                       "other_alpha": self.config.drift_other_alpha,
                       "other_rise": self.config.drift_other_rise},
        }


def replay(profile: ReferenceProfile, observations: Iterable[Observation],
           config: MonitorConfig | None = None, interval_s: float = 1.0) -> DriftMonitor:
    """A monitor fed ``observations`` in order, ``interval_s`` apart (offline reports)."""
    monitor = DriftMonitor(profile, config)
    for i, observation in enumerate(observations):
        monitor.observe(observation, now_s=i * interval_s)
    return monitor


def _numeric_labels(edges: Sequence[float]) -> tuple[str, ...]:
    bounds = ["-inf", *(f"{e:.3g}" for e in edges), "inf"]
    return tuple(f"[{lo}, {hi})" for lo, hi in itertools.pairwise(bounds))
