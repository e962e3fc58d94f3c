"""Reference profiles and drift detection (assistant.profile, assistant.monitor)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from assistant.errors import ConfigError, ModelError
from assistant.monitor import (
    SIGNALS,
    DriftMonitor,
    MonitorConfig,
    Observation,
    chi2_quantile,
    heard_agreement,
    profile_from_observations,
    replay,
)
from assistant.profile import (
    OTHER,
    EncoderReference,
    ReferenceProfile,
    categorical_reference,
    find_profile,
    numeric_reference,
)

INTENTS = ("lightsOn", "lightsOff", "setTimer")


def observations(rng: np.random.Generator, n: int, *, snr_db: float = 25.0,
                 oog: float = 0.05, classifier: bool = False) -> list[Observation]:
    """Answers of a made-up model: ``oog`` of them out of the grammar, the rest understood;
    with an intent classifier's out-of-domain score when ``classifier``."""
    out = []
    for _ in range(n):
        understood = rng.random() >= oog
        score = None
        if classifier:  # drawn first, so that the other draws do not depend on it
            score = float(rng.beta(1, 30) if understood else rng.beta(6, 2))
        out.append(Observation(
            confidence=float(rng.beta(12, 1.5) if understood else rng.beta(1.5, 6)),
            outcome="understood" if understood else "below_threshold",
            intent=str(rng.choice(INTENTS)) if understood else None,
            audio_dbfs=float(rng.normal(-26, 4)),
            snr_db=float(rng.normal(snr_db, 4)),
            utterance_seconds=float(rng.uniform(0.8, 2.5)),
            heard_agreement=float(min(1.0, rng.beta(20, 1)) if understood else rng.beta(2, 3)),
            encoder_distance=float(abs(rng.normal(1, 0.3))),
            encoder_residual=float(abs(rng.normal(1, 0.2))),
            out_of_domain_score=score))
    return out


def make_profile(n: int = 600, seed: int = 0) -> ReferenceProfile:
    return profile_from_observations(
        observations(np.random.default_rng(seed), n), None, speech_model="tiny.en",
        precision="int8", grammar_sha256="abc", source={"data": "test"})


def test_numeric_reference_bins_at_quantiles_and_merges_ties() -> None:
    rng = np.random.default_rng(1)
    ref = numeric_reference(list(rng.normal(size=1000)))
    assert len(ref.edges) == 7 and len(ref.shares) == 8
    assert all(abs(s - 1 / 8) < 0.01 for s in ref.shares)
    tied = numeric_reference([1.0] * 50 + [0.0] * 50)
    assert tied.edges == (0.0, 1.0) and sum(tied.shares) == pytest.approx(1.0)
    with pytest.raises(ModelError):
        numeric_reference([float("nan")])


def test_categorical_reference_keeps_a_share_for_unseen_values() -> None:
    ref = categorical_reference(["a", "a", "b"])
    assert set(ref.shares) == {"a", "b", OTHER}
    assert ref.shares["a"] > ref.shares["b"] > ref.shares[OTHER] > 0
    assert sum(ref.shares.values()) == pytest.approx(1.0)


def test_profile_round_trips_through_json_and_is_found_only_for_its_model(tmp_path: Path
                                                                         ) -> None:
    rng = np.random.default_rng(2)
    embeddings = rng.normal(size=(120, 16))
    profile = profile_from_observations(observations(rng, 120), embeddings,
                                        speech_model="tiny.en", precision="int8",
                                        grammar_sha256="abc", source={"voices": ["x"]})
    # every signal but the classifier's score (this made-up model has no classifier)
    assert set(profile.signals) == set(SIGNALS) - {"out_of_domain_score"}
    assert profile.encoder is not None and profile.encoder.components.shape == (8, 16)
    grammar = tmp_path / "home.yaml"
    grammar.write_text("context: {}\n")
    profile.save(tmp_path / "home.profile.json")
    again = find_profile(grammar, "context", "tiny.en", "int8", "abc")
    assert again is not None and again.to_json() == json.loads(json.dumps(profile.to_json()))
    assert find_profile(grammar, "context", "base", "int8", "abc") is None  # other model
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    assert find_profile(model_dir, "model", "tiny.en", "int8", "abc") is None
    (model_dir / "profile.json").write_text("{\"kind\": \"something else\"}")
    assert find_profile(model_dir, "model", "tiny.en", "int8", "abc") is None  # logged
    with pytest.raises(ModelError, match="not a reference profile"):
        ReferenceProfile.load(model_dir / "profile.json")


def test_encoder_reference_measures_distance_in_and_off_its_directions() -> None:
    rng = np.random.default_rng(3)
    basis = np.linalg.qr(rng.normal(size=(32, 32)))[0]
    scales = np.array([8, 6, 5, 4, 3, 2.5, 2, 1.5] + [0.1] * 24)
    x = (rng.normal(size=(500, 32)) * scales) @ basis.T + 5.0
    ref = EncoderReference.fit(x)
    inside = np.mean([ref.distances(v)[0] for v in x[:100]])
    assert 0.7 < inside < 1.3  # about one spread from the mean
    far = x[0] + 10 * scales[0] * basis[:, 0]
    assert ref.distances(far)[0] > 2 * inside
    off = x[0] + 5.0 * basis[:, 20]  # a direction the reference barely varies in
    assert ref.distances(off)[1] > 5 * ref.distances(x[0])[1]
    with pytest.raises(ModelError):
        EncoderReference.fit(x[:5])


def test_chi2_quantile_matches_known_values() -> None:
    assert chi2_quantile(0.95, 7) == pytest.approx(14.067, rel=0.01)
    assert chi2_quantile(0.9999, 9) == pytest.approx(33.72, rel=0.02)


def test_heard_agreement() -> None:
    assert heard_agreement("Turn off the lights.", "turn off the lights") == 1.0
    assert heard_agreement("", "turn off the lights") is None
    assert heard_agreement("turn off the lights", "") == 0.0
    partly = heard_agreement("could you please turn off the lights for me",
                             "turn off the lights")
    assert partly is not None and 0.4 < partly < 0.8


def test_in_distribution_traffic_raises_no_alarm_for_days() -> None:
    profile = make_profile()
    rng = np.random.default_rng(10)
    events = []
    monitor = DriftMonitor(profile)
    for i, observation in enumerate(observations(rng, 6000)):
        events += monitor.observe(observation, now_s=i * 10.0)
    assert [e for e in events if e.raised] == []
    assert monitor.status() == "ok"


@pytest.mark.parametrize("shift, signal", [
    (lambda rng, n: observations(rng, n, snr_db=5.0), "snr_db"),
    (lambda rng, n: observations(rng, n, oog=0.4), "outcome"),
])
def test_a_shift_raises_an_alarm_within_the_window_and_it_clears_after(
        shift: Callable[[np.random.Generator, int], list[Observation]], signal: str) -> None:
    profile = make_profile()
    rng = np.random.default_rng(11)
    monitor = DriftMonitor(profile)
    for i, observation in enumerate(observations(rng, 400)):
        assert monitor.observe(observation, now_s=float(i)) == []
    raised_at = None
    for i, observation in enumerate(shift(rng, 300)):
        for event in monitor.observe(observation, now_s=400.0 + i):
            if event.raised and event.signal == signal and raised_at is None:
                raised_at = i
    assert raised_at is not None and raised_at < MonitorConfig().drift_window_utterances
    assert monitor.status() == "drift" and signal in monitor.drifting
    for i, observation in enumerate(observations(rng, 400)):
        monitor.observe(observation, now_s=700.0 + i)
    assert monitor.drifting == []
    states = monitor.describe()["signals"]
    assert states[signal]["alarms"] == 1 and not states[signal]["alarm"]


def test_quiet_hours_do_not_alarm_and_the_time_window_expires() -> None:
    profile = make_profile()
    rng = np.random.default_rng(12)
    config = MonitorConfig(drift_window_s=600.0)
    monitor = DriftMonitor(profile, config)
    shifted = observations(rng, config.drift_min_utterances - 1, snr_db=0.0)
    for i, observation in enumerate(shifted):  # few, however odd: no alarm
        assert monitor.observe(observation, now_s=float(i)) == []
    assert monitor.status() == "warming_up"
    assert monitor.observe(observations(rng, 1, snr_db=0.0)[0], now_s=100.0)  # enough now
    assert monitor.status() == "drift"
    cleared = monitor.expire(now_s=10_000.0)  # an hour of silence later
    assert len(monitor.window) == 0 and cleared and not any(e.raised for e in cleared)
    assert "snr_db" in {e.signal for e in cleared} and monitor.drifting == []
    assert all(s.samples == 0 for s in monitor.states.values())


def test_intent_mix_is_shown_but_never_alarms() -> None:
    profile = make_profile()
    rng = np.random.default_rng(13)
    monitor = DriftMonitor(profile)
    for i, observation in enumerate(observations(rng, 300)):
        monitor.observe(Observation(**{**observation.__dict__, "intent": "lightsOn"
                                       if observation.intent else None}), now_s=float(i))
    intent = monitor.describe()["signals"]["intent"]
    assert intent["psi"] > intent["threshold"] and not intent["alarm"]
    assert monitor.status() == "ok"


def test_observations_from_a_results_log(tmp_path: Path) -> None:
    line = {"understood": False, "intent": None, "slots": {}, "confidence": 0.31,
            "transcript": "turn off the lights", "heard": "could you turn off the lights",
            "audio_ms": 1500.0, "reason": "below_threshold", "audio_dbfs": -30.5,
            "snr_db": 21.0}
    observation = Observation.from_json(line)
    assert observation.outcome == "below_threshold" and observation.utterance_seconds == 1.5
    assert observation.heard_agreement is not None and observation.heard_agreement < 1
    assert observation.encoder_distance is None and observation.out_of_domain_score is None
    scored = Observation.from_json({**line, "out_of_domain_score": 0.93})
    assert scored.out_of_domain_score == 0.93
    # a monitor log line keeps it too, and one written before it existed reads as None
    assert Observation.from_json(scored.to_json()).out_of_domain_score == 0.93
    older = {k: v for k, v in scored.to_json().items() if k != "out_of_domain_score"}
    assert Observation.from_json(older).out_of_domain_score is None
    with pytest.raises(ConfigError, match="not a recognition result"):
        Observation.from_json({"intent": "x"})
    monitor = replay(make_profile(), [observation] * 10)
    assert monitor.observed == 10 and monitor.status() == "warming_up"


def test_monitor_config_is_checked() -> None:
    with pytest.raises(ConfigError):
        MonitorConfig(drift_min_utterances=500)
    with pytest.raises(ConfigError):
        MonitorConfig(drift_alpha=0.0)


def test_a_real_recognition_carries_what_monitoring_needs(home_recognizer,  # type: ignore[no-untyped-def]
                                                          speak) -> None:  # type: ignore[no-untyped-def]
    audio = speak("turn off the kitchen lights")
    result = home_recognizer.recognize(audio)
    assert result.understood and result.snr_db is not None and result.snr_db > 20
    assert result.embedding is not None
    assert result.embedding.shape == (home_recognizer.model.dims.n_audio_state,)
    noisy = audio + 0.05 * np.random.default_rng(0).standard_normal(audio.size).astype(
        np.float32)
    noisy_result = home_recognizer.recognize(noisy)
    assert noisy_result.snr_db is not None and noisy_result.snr_db < result.snr_db - 10
    assert "embedding" not in result.to_dict() and "snr_db" in result.to_dict()


@pytest.mark.parametrize("name", ["home", "home_assistant"])
def test_shipped_profiles_match_their_grammars(name: str) -> None:
    from assistant.grammar import load_context

    contexts = Path(__file__).resolve().parent.parent / "assistant" / "contexts"
    grammar = contexts / f"{name}.yaml"
    profile = find_profile(grammar, "context", "tiny.en", "int8",
                           load_context(grammar).sha256)
    assert profile is not None, f"regenerate: assistant profile --context {grammar}"
    assert profile.grammar_sha256 == load_context(grammar).sha256
    assert profile.utterances >= 200 and profile.encoder is not None
    assert profile.source["voices"] == "training voices of the catalogue"


def test_the_joint_signal_sees_many_small_shifts_at_once() -> None:
    profile = make_profile(2000)
    joint = profile.joint
    assert joint is not None and "not_understood" in joint.signals
    # What moves together on the reference is kept: a less sure answer is more often not
    # understood; level and SNR are drawn independently.
    index = {name: i for i, name in enumerate(joint.signals)}
    assert joint.correlation[index["confidence"], index["not_understood"]] < -0.25
    assert abs(joint.correlation[index["audio_dbfs"], index["snr_db"]]) < 0.1
    again = ReferenceProfile.from_json(json.loads(json.dumps(profile.to_json())))
    assert again.joint is not None and np.allclose(again.joint.correlation, joint.correlation,
                                                   atol=1e-6)
    config = MonitorConfig(drift_joint_alpha=1e-5)

    def nudged(rng: np.random.Generator, n: int) -> list[Observation]:  # each a little off
        return [Observation(**{**o.__dict__, "audio_dbfs": o.audio_dbfs - 1.1,
                               "snr_db": o.snr_db - 1.1,
                               "utterance_seconds": o.utterance_seconds + 0.11,
                               "confidence": o.confidence * 0.993,
                               "heard_agreement": o.heard_agreement * 0.993})
                for o in observations(rng, n)]

    # 300 answers of that, 20 times: the joint test raises where no one signal does.
    joint_raised = single_raised = calm_events = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        monitor, calm = DriftMonitor(profile, config), DriftMonitor(profile, config)
        for i, observation in enumerate(nudged(rng, 300)):
            monitor.observe(observation, float(i))
        for i, observation in enumerate(observations(rng, 300)):
            calm.observe(observation, float(i))
        joint_raised += any(e.raised and e.signal == "joint" for e in monitor.events)
        single_raised += any(e.raised and e.signal != "joint" for e in monitor.events)
        calm_events += len(calm.events)
    assert joint_raised >= single_raised + 4 and joint_raised >= 16, (joint_raised,
                                                                     single_raised)
    assert calm_events == 0
    described = monitor.describe()
    assert described["signals"]["joint"]["bins"] == list(monitor.joint.signals)  # type: ignore[union-attr]
    assert described["config"]["joint_alpha"] == 1e-5
    assert "joint" in DriftMonitor(profile).describe()["signals"]  # on by default
    off = DriftMonitor(profile, MonitorConfig(drift_joint_alpha=0.0))
    assert "joint" not in off.describe()["signals"]
    # A profile without the joint summary (too few utterances, or an older one): no joint.
    small = make_profile(60)
    assert small.joint is None
    assert "joint" not in DriftMonitor(small, config).describe()["signals"]


def test_a_moderate_shift_of_a_number_is_seen_by_the_location_test() -> None:
    # SNR 2 dB lower than the reference's (sd 4), one window each of 20 draws: across
    # eight bins the chi-squared statistic often stays under its bar, but the window's mean
    # rank has clearly moved; drawn like the reference, neither test calls it.
    profile = make_profile(n=3000)
    config = MonitorConfig(drift_psi_floor=0.0)  # judge significance alone
    by_bins = by_location = calm_alarms = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        shifted, calm = DriftMonitor(profile, config), DriftMonitor(profile, config)
        for i, observation in enumerate(observations(rng, config.drift_window_utterances,
                                                     snr_db=23.0)):
            shifted.observe(observation, now_s=float(i))
        for i, observation in enumerate(observations(rng, config.drift_window_utterances)):
            calm.observe(observation, now_s=float(i))
        state = shifted.states["snr_db"]
        assert state.shift_z < 0
        by_bins += state.chi2 > state.critical
        by_location += state.alarm
        calm_alarms += calm.states["snr_db"].alarm
        assert not state.alarm or state.significance >= 0.5  # it clears under half its bar
        assert shifted.describe()["signals"]["snr_db"]["shift_z"] == pytest.approx(
            state.shift_z, abs=0.01)
    assert by_location >= by_bins + 5 and by_location >= 12
    assert calm_alarms == 0


def test_more_speech_that_is_no_command_is_seen_by_the_classifier_score() -> None:
    # A model with an intent classifier: its out-of-domain score is profiled and watched.
    # Traffic where 30 % of answers sound like no command to the classifier (the grammar
    # still finds a sentence for them, so outcome and confidence barely move) alarms on it.
    profile = make_profile_with_classifier()
    assert "out_of_domain_score" in profile.signals
    assert profile.joint is not None and "out_of_domain_score" in profile.joint.signals
    rng = np.random.default_rng(14)
    monitor = DriftMonitor(profile)
    for i, observation in enumerate(observations(rng, 400, classifier=True)):
        assert monitor.observe(observation, now_s=float(i)) == []
    raised_at = None
    for i, observation in enumerate(observations(rng, 300, classifier=True)):
        if rng.random() < 0.3:
            observation = Observation(**{**observation.__dict__,
                                         "out_of_domain_score": float(rng.beta(6, 2))})
        for event in monitor.observe(observation, now_s=400.0 + i):
            if event.raised and raised_at is None:
                raised_at = i
                assert event.signal in ("out_of_domain_score", "joint")
    assert raised_at is not None and raised_at < MonitorConfig().drift_window_utterances
    assert monitor.states["out_of_domain_score"].shift_z > 0
    # without the classifier's score (a zero-shot model) the same monitor has no such state
    assert "out_of_domain_score" not in DriftMonitor(make_profile()).states


def make_profile_with_classifier(n: int = 600, seed: int = 0) -> ReferenceProfile:
    return profile_from_observations(
        observations(np.random.default_rng(seed), n, classifier=True), None,
        speech_model="tiny.en", precision="int8", grammar_sha256="abc",
        source={"data": "test"})


def mixed_traffic(rng: np.random.Generator, n: int, other_share: float
                  ) -> tuple[list[Observation], list[str]]:
    """Answers and what each was: commands (most understood, some lost to noise and so not
    sure) and ``other_share`` of speech that is no command (rarely sure of anything)."""
    rows, kinds = [], []
    for _ in range(n):
        other = rng.random() < other_share
        understood = not other and rng.random() < 0.75
        confidence = (rng.beta(12, 1.5) if understood else
                      rng.beta(1.2, 8) if other else rng.beta(2, 4))
        rows.append(Observation(
            confidence=float(confidence),
            outcome="understood" if understood else "below_threshold",
            intent=str(rng.choice(INTENTS)) if understood else None,
            audio_dbfs=float(rng.normal(-26, 4)), snr_db=float(rng.normal(25, 4)),
            utterance_seconds=float(rng.uniform(0.8, 2.5)),
            heard_agreement=float(rng.beta(20, 1) if understood else rng.beta(2, 3))))
        kinds.append("other" if other else "command")
    return rows, kinds


def test_a_rise_of_speech_that_is_no_command_is_estimated_and_alarms() -> None:
    rng = np.random.default_rng(21)
    rows, kinds = mixed_traffic(rng, 600, 0.1)
    profile = profile_from_observations(rows, None, speech_model="tiny.en", precision="int8",
                                        grammar_sha256="abc", source={}, kinds=kinds)
    other = profile.other_speech
    assert other is not None and other.commands + other.others == 600
    assert abs(other.share - 0.1) < 0.03
    assert sum(other.command) == pytest.approx(1.0, abs=1e-4)
    assert sum(other.other) == pytest.approx(1.0, abs=1e-4)
    again = ReferenceProfile.from_json(json.loads(json.dumps(profile.to_json())))
    assert again.other_speech == other
    # Without kinds (recordings only) there is no such reference and no such state.
    plain = profile_from_observations(rows, None, speech_model="tiny.en", precision="int8",
                                      grammar_sha256="abc", source={})
    assert plain.other_speech is None
    assert "other_speech" not in DriftMonitor(plain).signal_states()
    # Days of the same mix: no other-speech alarm; then 30 % other speech: one, soon, with
    # the live estimate near 30 %; back to the reference mix, it clears. (These made-up
    # answers tell commands from other speech less well than real ones: alpha 1e-3.)
    config = MonitorConfig(drift_other_alpha=1e-3)
    monitor = DriftMonitor(profile, config)
    calm, _ = mixed_traffic(rng, 4000, 0.1)
    calm_events = []
    for i, observation in enumerate(calm):
        calm_events += monitor.observe(observation, now_s=float(i))
    assert not any(e.signal == "other_speech" for e in calm_events)
    assert abs(monitor.describe()["signals"]["other_speech"]["live"][0] - 0.1) < 0.07
    raised_at = None
    shifted, _ = mixed_traffic(rng, 300, 0.3)
    for i, observation in enumerate(shifted):
        for event in monitor.observe(observation, now_s=4000.0 + i):
            if event.raised and event.signal == "other_speech" and raised_at is None:
                raised_at = i
    assert raised_at is not None and raised_at < 200
    state = monitor.describe()["signals"]["other_speech"]
    assert state["alarms"] >= 1 and abs(state["live"][0] - 0.3) < 0.12
    assert state["reference"] == [round(other.share, 4)]
    # While the rise lasts the alarm stays up (a window's noisy estimate does not clear it)
    more, _ = mixed_traffic(rng, 2000, 0.3)
    for i, observation in enumerate(more):
        monitor.observe(observation, now_s=4300.0 + i)
    state = monitor.describe()["signals"]["other_speech"]
    assert state["alarm"] and state["alarms"] == 1
    # and clears once as much evidence says the share is back.
    back, _ = mixed_traffic(rng, 800, 0.1)
    cleared_at = None
    for i, observation in enumerate(back):
        for event in monitor.observe(observation, now_s=6300.0 + i):
            if event.signal == "other_speech" and not event.raised and cleared_at is None:
                cleared_at = i
    assert cleared_at is not None and not monitor.describe()["signals"]["other_speech"]["alarm"]
    # Fewer non-commands than the reference is no fault: no alarm.
    quiet = DriftMonitor(profile, config)
    for i, observation in enumerate(mixed_traffic(rng, 300, 0.0)[0]):
        quiet.observe(observation, now_s=float(i))
    assert quiet.describe()["signals"]["other_speech"]["chi2"] == 0.0
    assert not any(e.signal == "other_speech" for e in quiet.events)
    off = DriftMonitor(profile, MonitorConfig(drift_other_alpha=0.0))
    assert "other_speech" not in off.signal_states()
    with pytest.raises(ConfigError, match="drift_other_rise"):
        MonitorConfig(drift_other_rise=0.0)  # a rise of nothing could never alarm
