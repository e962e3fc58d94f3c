"""The evidence-per-answer estimate behind benchmarks/drift_information.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.drift_information import AFTER, BEFORE, cross_validated_score, divergence


def test_divergence_of_the_two_mixtures() -> None:
    # Commands and other speech told apart perfectly: the KL divergence of Bernoulli(0.3)
    # from Bernoulli(0.1), 0.151 nats (smoothing moves it a little).
    exact = AFTER * math.log(AFTER / BEFORE) + (1 - AFTER) * math.log((1 - AFTER) / (1 - BEFORE))
    apart = divergence(np.zeros(20_000), np.ones(20_000))
    assert apart == pytest.approx(exact, rel=0.02)
    # Alike: no evidence at all, whatever the share.
    rng = np.random.default_rng(0)
    same = divergence(rng.normal(size=20_000), rng.normal(size=20_000))
    assert 0 <= same < 0.002
    # Partly apart: in between.
    partly = divergence(rng.normal(0, 1, 20_000), rng.normal(1.5, 1, 20_000))
    assert same < partly < apart


def test_the_cross_validated_score_ranks_other_speech_higher() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(600) < 0.2
    x = np.stack([rng.normal(np.where(y, 1.5, 0.0), 1.0), rng.normal(size=600)], axis=1)
    score = cross_validated_score(x, y)
    auc = float(np.mean(score[y][:, None] > score[~y][None, :]))
    assert 0.8 < auc < 0.95  # what one informative feature of the two gives (about 0.86)
