"""How sure the recognizer is that it understood a command: features and a calibrated map.

Zero-shot, the only evidence is how much the grammar had to bend what the speech model
wanted to write. Per utterance we measure (:func:`features`):

``regret_per_token``   mean over the chosen tokens of (best log-prob in the whole vocabulary -
                       log-prob of the token the grammar allowed): ~0 when the model would have
                       written the sentence anyway, large when the grammar forced it.
``max_regret``         the worst single forced token.
``logprob_per_token``  mean log-prob of the sentence.
``free_gap_per_token`` sentence mean log-prob minus the free (unconstrained) decode's.
``no_speech``          Whisper's no-speech probability.
``nbest_margin``       log-prob gap to the runner-up sentence (capped), i.e. ambiguity.
``heard_match``        how much of what the model wrote freely is the grammar's sentence:
                       1 - word edit distance / the longer word count (1: the same words).
                       A question near the domain ("what is the capital of France") is heard
                       as itself and forced into a command ("what is the time"): low.
``log_branching``      mean over the sentence's tokens of log(tokens the grammar allowed
                       there): how much choice the grammar gave. In a large grammar some
                       sentence fits almost any speech, so the other features mean less.

Fine-tuned models add their intent classifier's view (:data:`CLASSIFIER_FEATURES`):
``classifier_agrees`` (its probability of the decoded intent) and ``classifier_ood`` (its
probability that the speech is out of domain).

A logistic model maps them to the probability that the command is right. It is fitted on
synthesized speech only (``training/calibrate.py``: in-grammar sentences labelled by whether
they were recognized correctly, out-of-grammar sentences and non-speech labelled 0) and stored
as JSON per speech model in ``assistant/calibration/``. Real recordings are never used.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .decoding import Decoded
from .errors import ModelError
from .intent_classifier import IntentScores

logger = logging.getLogger("assistant.confidence")

FEATURES = (
    "regret_per_token",
    "max_regret",
    "logprob_per_token",
    "free_gap_per_token",
    "no_speech",
    "nbest_margin",
)
# Computed for every utterance too; calibrations fitted before they existed do not use them.
EXTRA_FEATURES = ("heard_match", "log_branching")
CLASSIFIER_FEATURES = ("classifier_agrees", "classifier_ood")
MARGIN_CAP = 10.0


def word_match(heard: Sequence[str], sentence: Sequence[str]) -> float:
    """1 - word-level edit distance / the longer length (1.0 for two empty lists)."""
    longer = max(len(heard), len(sentence))
    if longer == 0:
        return 1.0
    previous = list(range(len(sentence) + 1))
    for i, word in enumerate(heard, 1):
        current = [i]
        for j, other in enumerate(sentence, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (word != other)))
        previous = current
    return 1.0 - previous[-1] / longer


def features(
    decoded: Decoded, intent: str | None = None, scores: IntentScores | None = None,
    heard_words: Sequence[str] = (), sentence_words: Sequence[str] = (),
) -> dict[str, float] | None:
    """The confidence features of an utterance, or None when no sentence was completed.

    ``intent`` is the decoded sentence's intent and ``scores`` the intent classifier's output,
    when the model has one; ``heard_words`` and ``sentence_words`` are the normalized words of
    the free decode and of the grammar's sentence.
    """
    if not decoded.hypotheses:
        return None
    best = decoded.hypotheses[0]
    n = max(len(best.tokens), 1)
    per_token = best.logprob / n
    free_n = len(decoded.free_tokens)
    free_gap = per_token - decoded.free_logprob / free_n if free_n else 0.0
    margin = (
        min(best.logprob - decoded.hypotheses[1].logprob, MARGIN_CAP)
        if len(decoded.hypotheses) > 1
        else MARGIN_CAP
    )
    values = {
        "regret_per_token": best.regret / n,
        "max_regret": best.max_regret,
        "logprob_per_token": per_token,
        "free_gap_per_token": free_gap,
        "no_speech": decoded.no_speech_prob,
        "nbest_margin": margin,
        "heard_match": word_match(heard_words, sentence_words),
        "log_branching": best.log_branching / n,
    }
    if scores is not None:
        values["classifier_agrees"] = scores.of(intent)
        values["classifier_ood"] = scores.out_of_domain
    return values


@dataclass(frozen=True)
class Calibration:
    """Logistic map from standardized features to P(command understood correctly)."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    info: dict[str, Any]

    def probability(self, values: dict[str, float] | None) -> float:
        if values is None:
            return 0.0
        z = self.bias
        for name, mean, scale, weight in zip(
            self.names, self.mean, self.scale, self.weights, strict=True
        ):
            z += weight * (values[name] - mean) / scale
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.names),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
            "info": self.info,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        try:
            names = tuple(data["features"])
            unknown = set(names) - set(FEATURES) - set(CLASSIFIER_FEATURES)
            if unknown:
                raise ModelError(f"calibration uses unknown features {sorted(unknown)}")
            return cls(
                names=names,
                mean=tuple(float(x) for x in data["mean"]),
                scale=tuple(float(x) for x in data["scale"]),
                weights=tuple(float(x) for x in data["weights"]),
                bias=float(data["bias"]),
                info=dict(data.get("info", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"malformed calibration: {e}") from e

    @classmethod
    def uncalibrated(cls) -> Calibration:
        """A rough hand-set map (mean regret 1.5 nats/token -> 0.5), before any fit exists."""
        names = FEATURES
        weights = tuple(-2.5 if n == "regret_per_token" else 0.0 for n in names)
        return cls(names, (0.0,) * len(names), (1.0,) * len(names), weights, 3.75,
                   {"data": "none: hand-set, not calibrated"})

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot read calibration {path}: {e}") from e


def builtin_calibration(model_name: str) -> Calibration:
    """The calibration shipped for a pretrained speech model (``tiny.en``, ``base``).

    A model without one (a new pretrained model, before ``training/calibrate.py`` has run for
    it) gets tiny.en's, with a warning: its confidences are then only roughly calibrated.
    """
    folder = resources.files("assistant") / "calibration"
    resource = folder / f"{model_name}.json"
    if not resource.is_file():
        logger.warning("no calibration shipped for %r; using tiny.en's", model_name)
        resource = folder / "tiny.en.json"
        if not resource.is_file():
            logger.warning("no calibration shipped at all: confidences are not calibrated")
            return Calibration.uncalibrated()
    return Calibration.from_json(json.loads(resource.read_text()))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, names: tuple[str, ...], l2: float = 1e-2, iters: int = 50
) -> Calibration:
    """Fit a standardized, L2-regularized logistic regression by Newton's method."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    design = np.hstack([z, np.ones((len(z), 1))])
    w = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -50, 50)))
        grad = design.T @ (p - y) + penalty * w
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Calibration(
        names=names,
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        weights=tuple(float(v) for v in w[:-1]),
        bias=float(w[-1]),
        info={},
    )


def fit_logistic_cv(
    x: np.ndarray, y: np.ndarray, names: tuple[str, ...],
    grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 30.0), folds: int = 5, seed: int = 0,
) -> Calibration:
    """:func:`fit_logistic` with its L2 strength chosen by k-fold cross-validated log-loss.

    Small calibration sets with correlated features overfit without it (weights of opposite
    signs on near-duplicate features); the fold split is seeded, so the choice is reproducible.
    """
    order = np.random.default_rng(seed).permutation(len(y))
    parts = np.array_split(order, min(folds, len(y)))
    losses = []
    for l2 in grid:
        total = 0.0
        for part in parts:
            train = np.setdiff1d(order, part)
            if len(set(y[train].tolist())) < 2:
                continue
            model = fit_logistic(x[train], y[train], names, l2=l2)
            p = np.array([model.probability(dict(zip(names, row, strict=True)))
                          for row in x[part]])
            p = np.clip(p, 1e-6, 1 - 1e-6)
            total -= float(np.sum(y[part] * np.log(p) + (1 - y[part]) * np.log(1 - p)))
        losses.append(total)
    best = grid[int(np.argmin(losses))]
    fitted = fit_logistic(x, y, names, l2=best)
    return Calibration(fitted.names, fitted.mean, fitted.scale, fitted.weights, fitted.bias,
                       {"l2": best, "cv_log_loss": dict(zip(map(str, grid), losses,
                                                            strict=True))})


COMPACT_FEATURES = ("logprob_per_token", "regret_per_token", "classifier_ood")


def fit_parsimonious(
    rows: list[dict[str, float]], y: np.ndarray,
    candidates: tuple[tuple[str, ...], ...], margin: float = 0.02,
) -> Calibration:
    """Fit each candidate feature set with :func:`fit_logistic_cv` and keep the smallest one
    whose cross-validated log-loss is within ``margin`` (relative) of the best.

    Small calibration sets (a few hundred synthesized clips) reward fewer features: richer
    sets fit the augmentation's quirks (a single forced token on a hard clip) rather than
    what generalizes to real speech.
    """
    fits = []
    for names in candidates:
        x = np.array([[row[n] for n in names] for row in rows])
        calibration = fit_logistic_cv(x, y, names)
        fits.append((min(calibration.info["cv_log_loss"].values()), len(names), calibration))
    best = min(loss for loss, _, _ in fits)
    eligible = [f for f in fits if f[0] <= best * (1 + margin)]
    _, _, chosen = min(eligible, key=lambda f: (f[1], f[0]))
    info = {**chosen.info, "selected_from": [list(c) for c in candidates],
            "cv_log_loss_by_set": [round(f[0], 3) for f in fits]}
    return Calibration(chosen.names, chosen.mean, chosen.scale, chosen.weights, chosen.bias,
                       info)
