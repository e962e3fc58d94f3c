"""The monitoring result sink (serving.quality) on made-up answers and a fake clock."""

from __future__ import annotations

import numpy as np

from assistant.monitor import MonitorConfig, Observation, profile_from_observations
from assistant.profile import ReferenceProfile
from assistant.recognizer import Reason, Result
from assistant.segmenter import EndReason
from assistant.utterance import Completed, Utterance
from serving.metrics import Metrics
from serving.quality import QualitySink


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_000_000.0

    def __call__(self) -> float:
        return self.now_s


def answer(understood: bool, *, intent: str = "lightsOn", snr_db: float = 25.0,
           confidence: float = 0.95, heard: str = "turn on the lights") -> Result:
    if understood:
        return Result(True, intent, {}, confidence, "turn on the lights", heard, 1200.0,
                      {"total": 80.0}, audio_dbfs=-25.0, snr_db=snr_db)
    return Result(False, None, {}, 0.2, "turn on the lights", heard, 1200.0, {"total": 80.0},
                  audio_dbfs=-25.0, reason=Reason.BELOW_THRESHOLD, snr_db=snr_db)


def completed(result: Result, utterance_id: int, *, partial: bool = False,
              stream: str = "s1") -> Completed:
    utterance = Utterance(utterance_id, np.zeros(16000, np.float32),
                          ended=None if partial else EndReason.SILENCE)
    return Completed(utterance, result, model="home", stream_id=stream,
                     latency_ms=None if partial else 120.0)


def reference(rng: np.random.Generator) -> ReferenceProfile:
    observations = [Observation.of(answer(rng.random() > 0.05, snr_db=float(rng.normal(25, 4)),
                                          confidence=float(rng.uniform(0.8, 1.0))))
                    for _ in range(400)]
    return profile_from_observations(observations, None, speech_model="tiny.en",
                                     precision="int8", grammar_sha256="x", source={})


def test_the_sink_counts_quality_and_agreement() -> None:
    metrics, clock = Metrics(), Clock()
    sink = QualitySink(metrics, lambda name: None, clock=clock)
    sink.on_result(completed(answer(True, intent="lightsOff"), 0, partial=True))
    sink.on_result(completed(answer(True), 0))  # the partial named another intent
    sink.on_result(completed(answer(True), 1, partial=True))
    sink.on_result(completed(answer(True), 1))
    sink.on_result(completed(answer(False, heard="could you turn the lights on for me"), 2))
    cancelled = completed(replace_reason(answer(False), Reason.CANCELLED), 3)
    sink.on_result(cancelled)
    value = metrics.value
    assert value("assistant_results_total", model="home", intent="lightsOn",
                 understood="true") == 2
    assert value("assistant_not_understood_total", model="home",
                 reason="below_threshold") == 1
    # A cancelled answer is never counted, so no such series is exported at all.
    assert metrics.registry.get_sample_value("assistant_not_understood_total",
                                             {"model": "home", "reason": "cancelled"}) is None
    assert value("assistant_not_understood_total", model="home",
                 reason="number_not_in_grammar") == 0
    assert value("assistant_partial_agreement_total", model="home", outcome="agreed") == 1
    assert value("assistant_partial_agreement_total", model="home", outcome="disagreed") == 1
    assert value("assistant_confidence_count", model="home") == 3
    assert value("assistant_utterance_endings_total", model="home", ended="silence") == 3
    assert value("assistant_heard_agreement_bucket", model="home", le="0.99") == 1
    assert value("assistant_end_of_speech_to_result_seconds_count", model="home") == 3
    # no intent classifier on these answers: no out-of-domain scores
    assert value("assistant_out_of_domain_score_count", model="home") == 0
    state = sink.describe()["home"]
    assert state["answers"] == 3 and state["understood"] == 2
    assert state["drift"]["status"] == "no_reference"
    assert [r["understood"] for r in state["recent"]] == [True, True, False]
    assert state["timeline"][-1]["answers"] == 3
    assert state["timeline"][-1]["latency_p95_ms"] == 120.0


def replace_reason(result: Result, reason: Reason) -> Result:
    from dataclasses import replace

    return replace(result, reason=reason)


def test_drift_is_exported_and_a_reload_starts_a_new_window() -> None:
    rng = np.random.default_rng(0)
    profiles = {"home": reference(rng)}
    metrics, clock = Metrics(), Clock()
    sink = QualitySink(metrics, profiles.get, clock=clock)
    for i in range(200):
        clock.now_s += 5
        sink.on_result(completed(answer(True, snr_db=float(rng.normal(25, 4)),
                                        confidence=float(rng.uniform(0.8, 1.0))), i))
    sink.refresh()  # what a scrape of /metrics does
    assert metrics.value("assistant_drift_alarm", model="home", signal="snr_db") == 0
    assert (metrics.value("assistant_drift_window_utterances", model="home")
            == MonitorConfig().drift_window_utterances)
    for i in range(200, 400):  # the room got noisy
        clock.now_s += 5
        sink.on_result(completed(answer(True, snr_db=float(rng.normal(5, 4)),
                                        confidence=float(rng.uniform(0.8, 1.0))), i))
    sink.refresh()
    assert metrics.value("assistant_drift_alarm", model="home", signal="snr_db") == 1
    assert metrics.value("assistant_drift_score", model="home", signal="snr_db") > 1
    assert sink.describe()["home"]["drift"]["status"] == "drift"
    clock.now_s += 2 * 3600  # two quiet hours: the window empties, the alarm clears
    sink.refresh()
    assert metrics.value("assistant_drift_alarm", model="home", signal="snr_db") == 0
    assert metrics.value("assistant_drift_window_utterances", model="home") == 0
    profiles["home"] = reference(rng)  # a reload brought a new profile
    sink.on_result(completed(answer(True), 400))
    assert sink.describe()["home"]["drift"]["observed"] == 1


def test_with_monitoring_off_only_operations_are_counted() -> None:
    from assistant.monitor import MonitorConfig

    metrics = Metrics()
    sink = QualitySink(metrics, lambda name: None, MonitorConfig(monitor=False))
    sink.on_result(completed(answer(True), 0))
    assert metrics.value("assistant_results_total", model="home", intent="lightsOn",
                         understood="true") == 1
    assert metrics.value("assistant_confidence_count", model="home") == 0
    assert sink.describe() == {}


def test_the_classifier_out_of_domain_score_is_exported() -> None:
    from dataclasses import replace

    from assistant.intent_classifier import IntentScores

    metrics = Metrics()
    sink = QualitySink(metrics, lambda name: None, clock=Clock())
    for i, ood in enumerate((0.02, 0.03, 0.97)):
        scores = IntentScores(("lightsOn", "<out-of-domain>"), np.array([1 - ood, ood]))
        sink.on_result(completed(replace(answer(ood < 0.5), intent_scores=scores), i))
    value = metrics.value
    assert value("assistant_out_of_domain_score_count", model="home") == 3
    assert value("assistant_out_of_domain_score_bucket", model="home", le="0.05") == 2
    assert value("assistant_out_of_domain_score_sum", model="home") > 1.0
