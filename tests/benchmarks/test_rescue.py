"""The bookkeeping of benchmarks/rescue.py: what a setting is judged by."""

from __future__ import annotations

import numpy as np

from assistant.confidence import builtin_calibration
from benchmarks.rescue import judge, markdown


def _rows(rng: np.random.Generator, grammar: str) -> list[dict[str, object]]:
    """Clips whose features say plainly whether they are right: good commands score well on
    every feature of the shipped calibration, wrong ones and other speech badly."""
    names = builtin_calibration("tiny.en").names
    good = {"regret_per_token": 0.05, "max_regret": 0.5, "logprob_per_token": -0.1,
            "free_gap_per_token": 0.0, "no_speech": 0.01, "nbest_margin": 8.0}
    bad = {"regret_per_token": 2.0, "max_regret": 9.0, "logprob_per_token": -3.0,
           "free_gap_per_token": -2.5, "no_speech": 0.3, "nbest_margin": 0.1}
    rows: list[dict[str, object]] = []
    for kind, label, base, count in (("in", 1, good, 30), ("in", 0, bad, 5),
                                     ("near", 0, bad, 10), ("out", 0, bad, 6)):
        for _ in range(count):
            features = {n: base[n] + float(rng.normal(0, 0.05)) for n in names}
            rows.append({"grammar": grammar, "kind": kind, "label": label, "ms": 40.0,
                         "features": features})
    return rows


def test_a_setting_is_judged_by_held_out_and_shipped_acceptance() -> None:
    rng = np.random.default_rng(0)
    rows = [r for g in ("a", "b", "c") for r in _rows(rng, g)]
    result = judge(rows, in_grammar=3 * 40)
    assert result["in_grammar_clips"] == 120
    assert result["sentences_right"] == 90
    assert result["negatives"] == {"near": 30, "out": 18}
    for view in ("held_out", "shipped"):
        assert result[view]["accepted_right"] == 90
        assert result[view]["accepted_wrong"] == 0
        assert result[view]["false_accepts"] == {"near": 0, "out": 0}
    assert result["held_out_ece"] < 0.05
    assert result["mean_ms"] == result["mean_ms_understood"] == 40.0
    assert result["mean_ms_not_understood"] == 40.0
    table = markdown({"settings": {"0": result}})
    assert "| 0 | 90/120 | 90 / 0 | near 0/30, out 0/18 |" in table


def test_false_accepts_are_counted_by_kind() -> None:
    rng = np.random.default_rng(1)
    rows = [r for g in ("a", "b", "c") for r in _rows(rng, g)]
    good = next(r for r in rows if r["label"] == 1)["features"]
    for row in rows:
        if row["kind"] == "near" and row["grammar"] == "b":
            row["features"] = dict(good)  # indistinguishable from a right command
    result = judge(rows, in_grammar=120)
    assert result["shipped"]["false_accepts"] == {"near": 10, "out": 0}
    assert result["held_out"]["false_accepts"]["out"] == 0
    assert result["held_out"]["false_accepts"]["near"] == 10
