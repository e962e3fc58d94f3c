"""A model's reference profile: what its answers and audio looked like where it was built.

Monitoring (:mod:`assistant.monitor`) compares live traffic with this profile. It holds, for
one grammar and one speech model, the distribution of every monitored signal
(:data:`assistant.monitor.SIGNALS`) over held-out synthesized speech of the grammar (and the
user's own recordings, when given), and a compact summary of the encoder: the mean of the
utterances' mean-pooled encoder states and a few principal directions, so that a live
utterance's distance from what the model was built on is one number per utterance.

Numeric signals are kept as bin edges (the reference's quantiles) with the share of the
reference in each bin; categorical ones as shares per value. The signals move together (a
less sure answer is more often not understood), so the profile also keeps how they move
together: the correlation of the numeric signals' ranks (bin indices) and the not-understood
indicator over the reference utterances (:class:`JointReference`), which the monitor's joint
test needs. Where the reference clips are known to be commands or other speech (synthesized
ones are), it also keeps the confidence distribution of each kind and the share of other
speech (:class:`OtherSpeechReference`), from which the monitor estimates how much of live
traffic is speech that is no command. Nothing in a profile is audio or text a person said:
shares, edges, the correlations and the encoder summary only.

Where profiles live:

* a model directory: ``profile.json`` (written by ``assistant train`` from its held-out
  voices, or by ``assistant profile --model DIR``);
* a grammar served zero-shot: ``<grammar stem>.profile.json`` beside the YAML
  (``assistant profile --context FILE.yaml``), made for one speech model and precision.

A profile for another grammar (its hash) or speech model is not used (:func:`find_profile`
says why in the log).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

logger = logging.getLogger("assistant.profile")

KIND = "assistant-reference-profile"
VERSION = 1
NUMERIC_BINS = 8
ENCODER_COMPONENTS = 8
SMOOTHING = 0.5  # added to every bin's count (live and reference) so no share is zero


@dataclass(frozen=True)
class NumericReference:
    """A numeric signal's reference: interior bin edges and the reference share per bin."""

    edges: tuple[float, ...]  # len(shares) - 1 interior edges, increasing
    shares: tuple[float, ...]
    count: int  # reference utterances that had this signal

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges), values, side="right")

    def to_json(self) -> dict[str, Any]:
        return {"kind": "numeric", "edges": [round(e, 6) for e in self.edges],
                "shares": [round(s, 6) for s in self.shares], "count": self.count}


@dataclass(frozen=True)
class CategoricalReference:
    """A categorical signal's reference: the share of each value (others share one bin)."""

    shares: Mapping[str, float]
    count: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": "categorical", "shares": {k: round(v, 6) for k, v in
                                                  self.shares.items()}, "count": self.count}


SignalReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class EncoderReference:
    """The reference utterances' mean-pooled encoder states: their mean, top principal
    directions and the spread along each, and the typical distance off those directions."""

    mean: np.ndarray = field(repr=False)  # [d]
    components: np.ndarray = field(repr=False)  # [k, d], orthonormal rows
    scales: np.ndarray = field(repr=False)  # [k] standard deviation along each component
    residual_scale: float  # median norm of what the components leave out

    def distances(self, embedding: np.ndarray) -> tuple[float, float]:
        """(``encoder_distance``, ``encoder_residual``) of one utterance: its RMS distance
        from the mean in units of the reference's spread along the principal directions, and
        the norm of the rest relative to the reference's median."""
        centred = np.asarray(embedding, dtype=np.float64) - self.mean
        projected = self.components @ centred
        distance = float(np.sqrt(np.mean(np.square(projected / self.scales))))
        residual = centred - self.components.T @ projected
        return distance, float(np.linalg.norm(residual) / self.residual_scale)

    def to_json(self) -> dict[str, Any]:
        return {"mean": _floats(self.mean), "components": [_floats(c) for c in self.components],
                "scales": _floats(self.scales), "residual_scale": round(self.residual_scale, 6)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EncoderReference:
        return cls(np.asarray(data["mean"], np.float64),
                   np.asarray(data["components"], np.float64),
                   np.asarray(data["scales"], np.float64), float(data["residual_scale"]))

    @classmethod
    def fit(cls, embeddings: np.ndarray, components: int = ENCODER_COMPONENTS
            ) -> EncoderReference:
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < components + 2:
            raise ModelError(f"an encoder reference needs at least {components + 2} "
                             f"utterances, got {x.shape[0] if x.ndim == 2 else 0}")
        mean = x.mean(axis=0)
        centred = x - mean
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        top = vt[:components]
        scales = np.maximum(singular[:components] / math.sqrt(x.shape[0] - 1), 1e-9)
        residual = centred - (centred @ top.T) @ top
        residual_scale = max(float(np.median(np.linalg.norm(residual, axis=1))), 1e-9)
        return cls(mean, top, scales, residual_scale)


NOT_UNDERSTOOD = "not_understood"  # the joint test's indicator of an answer not understood
JOINT_MIN_UTTERANCES = 100  # fewer leave the correlations too noisy to invert
JOINT_MIN_EIGENVALUE = 0.05  # the correlation matrix is kept well conditioned


@dataclass(frozen=True)
class JointReference:
    """How the signals' ranks move together over the reference utterances: their
    correlation matrix (positive definite; pairs seen together in fewer than 30 utterances
    count as uncorrelated)."""

    signals: tuple[str, ...]
    correlation: np.ndarray = field(repr=False)  # [p, p]

    def to_json(self) -> dict[str, Any]:
        return {"signals": list(self.signals),
                "correlation": [_floats(row) for row in self.correlation]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JointReference:
        signals = tuple(str(s) for s in data["signals"])
        correlation = np.asarray(data["correlation"], np.float64)
        if correlation.shape != (len(signals), len(signals)):
            raise ModelError(f"joint reference: a {correlation.shape} correlation matrix for "
                             f"{len(signals)} signals")
        return cls(signals, correlation)

    @classmethod
    def fit(cls, signals: Sequence[str], ranks: np.ndarray) -> JointReference:
        """From ``ranks`` [utterances, signals] (NaN where a signal has no value)."""
        x = np.asarray(ranks, np.float64)
        p = x.shape[1]
        correlation = np.eye(p)
        for i in range(p):
            for j in range(i + 1, p):
                both = ~np.isnan(x[:, i]) & ~np.isnan(x[:, j])
                a, b = x[both, i], x[both, j]
                if both.sum() >= 30 and a.std() > 0 and b.std() > 0:
                    correlation[i, j] = correlation[j, i] = float(np.corrcoef(a, b)[0, 1])
        values, vectors = np.linalg.eigh(correlation)
        repaired = (vectors * np.maximum(values, JOINT_MIN_EIGENVALUE)) @ vectors.T
        scale = np.sqrt(np.diag(repaired))
        return cls(tuple(signals), repaired / np.outer(scale, scale))


OTHER_SPEECH_BINS = 10
OTHER_SPEECH_MIN_COMMANDS = 100  # fewer leave the two distributions too rough to unmix
OTHER_SPEECH_MIN_OTHERS = 20


@dataclass(frozen=True)
class OtherSpeechReference:
    """How the answers' confidence is distributed over the reference's commands and over
    its other speech (speech that is no command of the grammar), binned at the deciles of
    all of them, and the share of other speech in the reference. Live traffic is then a
    mixture, ``(1 - share) * command + share * other``, whose share the monitor estimates
    (:mod:`assistant.monitor`)."""

    edges: tuple[float, ...]
    command: tuple[float, ...]  # shares per bin (smoothed), commands
    other: tuple[float, ...]  # and other speech
    share: float  # of other speech in the reference
    commands: int
    others: int

    def to_json(self) -> dict[str, Any]:
        return {"score": "confidence", "edges": list(self.edges), "command": list(self.command),
                "other": list(self.other), "share": self.share, "commands": self.commands,
                "others": self.others}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OtherSpeechReference:
        edges = tuple(float(e) for e in data["edges"])
        command = tuple(float(v) for v in data["command"])
        other = tuple(float(v) for v in data["other"])
        if not len(command) == len(other) == len(edges) + 1:
            raise ModelError(f"other-speech reference: {len(edges)} edges for "
                             f"{len(command)} and {len(other)} shares")
        return cls(edges, command, other, float(data["share"]), int(data["commands"]),
                   int(data["others"]))

    @classmethod
    def fit(cls, confidence: Sequence[float], is_other: Sequence[bool]
            ) -> OtherSpeechReference | None:
        """From each reference answer's confidence and whether it was other speech; None
        when there are too few of either kind."""
        x = np.asarray(confidence, np.float64)
        other = np.asarray(is_other, bool)
        if (~other).sum() < OTHER_SPEECH_MIN_COMMANDS or other.sum() < OTHER_SPEECH_MIN_OTHERS:
            return None
        edges = np.unique(np.quantile(x, np.linspace(0, 1, OTHER_SPEECH_BINS + 1)[1:-1]))
        edges = np.asarray(_floats(edges[edges > x.min()]))  # as stored; no empty first bin

        def shares(values: np.ndarray) -> tuple[float, ...]:
            counts = np.bincount(np.searchsorted(edges, values, side="right"),
                                 minlength=len(edges) + 1) + SMOOTHING
            return tuple(_floats(counts / counts.sum()))

        return cls(tuple(edges.tolist()), shares(x[~other]), shares(x[other]),
                   round(float(other.mean()), 6), int((~other).sum()), int(other.sum()))


@dataclass(frozen=True)
class ReferenceProfile:
    """See module docs."""

    signals: Mapping[str, SignalReference]
    encoder: EncoderReference | None
    speech_model: str  # e.g. "tiny.en"
    precision: str  # "int8" or "fp32"
    grammar_sha256: str
    utterances: int
    source: Mapping[str, Any]  # how it was made: data, voices, noises, command
    joint: JointReference | None = None  # None: too few utterances (or an older profile)
    # None: the reference's clips were not known to be commands or not (recordings only),
    # too few of either, or an older profile
    other_speech: OtherSpeechReference | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": KIND, "version": VERSION,
            "speech_model": self.speech_model, "precision": self.precision,
            "grammar_sha256": self.grammar_sha256, "utterances": self.utterances,
            "source": dict(self.source),
            "signals": {name: ref.to_json() for name, ref in self.signals.items()},
            "encoder": None if self.encoder is None else self.encoder.to_json(),
            "joint": None if self.joint is None else self.joint.to_json(),
            "other_speech": None if self.other_speech is None else self.other_speech.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        if data.get("kind") != KIND or data.get("version") != VERSION:
            raise ModelError(f"not a reference profile of version {VERSION} (kind "
                             f"{data.get('kind')!r}, version {data.get('version')!r})")
        signals: dict[str, SignalReference] = {}
        for name, ref in data["signals"].items():
            if ref["kind"] == "numeric":
                signals[name] = NumericReference(tuple(ref["edges"]), tuple(ref["shares"]),
                                                 int(ref["count"]))
            else:
                signals[name] = CategoricalReference(dict(ref["shares"]), int(ref["count"]))
        encoder = EncoderReference.from_json(data["encoder"]) if data.get("encoder") else None
        joint = JointReference.from_json(data["joint"]) if data.get("joint") else None
        other = OtherSpeechReference.from_json(data["other_speech"]) \
            if data.get("other_speech") else None
        return cls(signals, encoder, data["speech_model"], data["precision"],
                   data["grammar_sha256"], int(data["utterances"]), dict(data["source"]),
                   joint, other)

    def save(self, path: Path) -> None:
        """Write it in one step (a reader never sees half a profile)."""
        path = Path(path)
        scratch = path.with_name(f".{path.name}.tmp")
        scratch.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        scratch.replace(path)

    @classmethod
    def load(cls, path: Path) -> ReferenceProfile:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls.from_json(data)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelError(f"cannot read reference profile {path}: {e}") from e

    def summary(self) -> dict[str, Any]:
        """What ``/v1/monitor`` shows of the reference (no encoder arrays)."""
        return {"speech_model": self.speech_model, "precision": self.precision,
                "utterances": self.utterances, "source": dict(self.source),
                "signals": {name: ref.to_json() for name, ref in self.signals.items()}}


def numeric_reference(values: Sequence[float], bins: int = NUMERIC_BINS) -> NumericReference:
    """Edges at the reference's quantiles (ties merged) and the share in each bin."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if x.size == 0:
        raise ModelError("a numeric reference needs at least one value")
    quantiles = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
    edges = tuple(float(e) for e in np.unique(quantiles))
    counts = np.bincount(np.searchsorted(np.asarray(edges), x, side="right"),
                         minlength=len(edges) + 1)
    shares = (counts + SMOOTHING) / (counts.sum() + SMOOTHING * counts.size)
    return NumericReference(edges, tuple(float(s) for s in shares), int(x.size))


def categorical_reference(values: Sequence[str]) -> CategoricalReference:
    if not values:
        raise ModelError("a categorical reference needs at least one value")
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    total = len(values) + SMOOTHING * (len(counts) + 1)
    shares = {k: (c + SMOOTHING) / total for k, c in sorted(counts.items())}
    shares[OTHER] = SMOOTHING / total
    return CategoricalReference(shares, len(values))


OTHER = "(other)"  # a categorical value the reference never saw


def find_profile(path: Path, kind: str, speech_model: str, precision: str,
                 grammar_sha256: str) -> ReferenceProfile | None:
    """The profile of a served source (``kind`` "model": a model directory; "context": a
    grammar file), if there is one for this speech model, precision and grammar."""
    candidate = Path(path) / "profile.json" if kind == "model" else \
        Path(path).with_name(Path(path).stem + ".profile.json")
    if not candidate.is_file():
        return None
    try:
        profile = ReferenceProfile.load(candidate)
    except ModelError as e:
        logger.warning("%s", e)
        return None
    made_for = (profile.speech_model, profile.precision)
    if made_for != (speech_model, precision):
        logger.warning("%s was made for %s %s, not %s %s: not used", candidate, *made_for,
                       speech_model, precision)
        return None
    if profile.grammar_sha256 != grammar_sha256:
        logger.info("%s was made for another version of the grammar; its signal shares "
                    "are used, its intent mix may differ", candidate)
    return profile


def _floats(x: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in np.asarray(x).ravel()]
