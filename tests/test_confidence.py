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
