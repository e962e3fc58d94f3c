from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.confidence import FEATURES, Calibration, builtin_calibration, fit_logistic
from assistant.errors import ModelError


def test_fit_recovers_a_known_logistic_and_is_calibrated() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 2))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5)))
    y = (rng.random(20000) < p).astype(float)
    cal = fit_logistic(x, y, ("regret_per_token", "max_regret"), l2=0.0)
    raw = np.array(cal.weights) / np.array(cal.scale)
    assert raw == pytest.approx([2.0, -1.0], abs=0.1)
    probs = np.array([cal.probability({"regret_per_token": a, "max_regret": b}) for a, b in x])
    for lo in (0.1, 0.5, 0.8):
        inside = (probs >= lo) & (probs < lo + 0.1)
        assert abs(probs[inside].mean() - y[inside].mean()) < 0.05


def test_round_trip_and_shipped_calibrations() -> None:
    for name in ("tiny.en", "base"):
        cal = builtin_calibration(name)
        assert cal.names == FEATURES
        assert Calibration.from_json(json.loads(json.dumps(cal.to_json()))) == cal
        assert "synthesized" in cal.info["data"]
        assert cal.probability(None) == 0.0


def test_malformed_calibration_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="unknown features"):
        Calibration.from_json({"features": ["nope"], "mean": [0], "scale": [1],
                               "weights": [1], "bias": 0})
    with pytest.raises(ModelError, match="malformed"):
        Calibration.from_json({"features": []})


def test_heard_match_is_the_share_of_words_in_common() -> None:
    from assistant.confidence import word_match

    assert word_match([], []) == 1.0
    assert word_match(["turn", "on", "the", "lights"], ["turn", "on", "the", "lights"]) == 1.0
    # A near-domain question forced into a command keeps half its words.
    assert word_match(["what", "is", "the", "capital", "of", "france"],
                      ["what", "is", "the", "time"]) == 0.5
    assert word_match(["a", "b", "c"], []) == 0.0


def test_new_features_are_measured_and_old_calibrations_ignore_them(home_recognizer, speak) -> None:  # type: ignore[no-untyped-def]
    from assistant.confidence import EXTRA_FEATURES

    result = home_recognizer.recognize(speak("turn off the kitchen lights"))
    assert result.features is not None and set(EXTRA_FEATURES) <= set(result.features)
    assert result.features["heard_match"] > 0.5
    assert 0 < result.features["log_branching"] < 12  # log of tokens allowed per step
