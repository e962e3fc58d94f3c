"""The drift benchmarks' bookkeeping: alarms matched to segments, and the settings rule."""

from __future__ import annotations

from typing import Any

from benchmarks.drift import Segment, analyse, scenario
from benchmarks.drift_select import choose


def test_alarms_are_matched_to_the_segment_they_were_raised_in() -> None:
    segments = scenario(in_distribution=100, per_shift=50, recovery=40)
    assert [s.kind for s in segments] == ["in", "noise", "in", "oog", "in", "phrasing", "in",
                                          "telephone"]
    bounds = []
    start = 0
    for segment in segments:
        bounds.append((start, start + segment.clips))
        start += segment.clips
    events = [  # the monitor's answer count when each happened
        {"signal": "snr_db", "raised": True, "utterance": 130},  # noise, 30 answers in
        {"signal": "snr_db", "raised": False, "utterance": 160},  # a clearing: not a raise
        {"signal": "joint", "raised": True, "utterance": 150},  # noise again, later
        {"signal": "audio_dbfs", "raised": True, "utterance": 170},  # recovery: false alarm
        {"signal": "joint", "raised": True, "utterance": 300},  # phrasing (280-330), 20 in
    ]
    rows = {r["segment"]: r for r in analyse(segments, bounds, events)}
    noise = rows["a: unseen noise, SNR -6..-1 dB"]
    assert noise["detected"] and noise["delay_answers"] == 30
    assert noise["first_signal"] == "snr_db" and noise["alarms_raised"] == ["snr_db@30",
                                                                           "joint@50"]
    assert rows["recovery 1"]["false_alarms"] == 1
    assert rows["in-distribution"]["false_alarms"] == 0
    assert rows["b: 30 % out of grammar"]["detected"] is False
    assert rows["c: unsupported phrasing"]["delay_answers"] == 20
    assert Segment("x", "in", 1, 1).shift is False


def _row(delays: dict[str, int | None], false_per_day: float, **settings: Any) -> dict[str, Any]:
    worst = max(d if d is not None else 10**6 for d in delays.values())
    base = {"drift_psi_floor": 0.2, "drift_alpha": 1e-5, "drift_joint_alpha": 1e-4,
            "drift_other_alpha": 0.0}
    return {**base, **settings, "delays": delays, "worst_delay": worst,
            "false_per_day": false_per_day, "false_in_stretches": 0,
            "feasible": worst <= 150 and false_per_day <= 0.25}


def test_the_rule_prefers_feasible_then_fast_then_quiet_then_strict() -> None:
    fast_noisy = _row({"a": 40, "b": 60}, 0.5)  # not feasible: too many false alarms
    slow = _row({"a": 140, "b": 150}, 0.1)
    quick = _row({"a": 90, "b": 100}, 0.2, drift_other_alpha=1e-3)
    same_but_stricter = _row({"a": 90, "b": 100}, 0.2, drift_other_alpha=1e-4)
    chosen, fallback = choose([fast_noisy, slow, quick, same_but_stricter])
    assert chosen is same_but_stricter and not fallback
    # None feasible: the quiet row that detects the most shifts within 200 answers.
    misses = _row({"a": 60, "b": None}, 0.1)
    late = _row({"a": 180, "b": 190}, 0.2)
    chosen, fallback = choose([fast_noisy, misses, late])
    assert chosen is late and fallback
