"""Each augmentation changes the audio the way it claims; settings fully determine the result."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import welch

from assistant.audio import SAMPLE_RATE_HZ
from training.augment import AugmentConfig, AugmentSettings, apply, sample_settings
from training.codecs import clip, codec_round_trip, telephone
from training.levels import level_dbfs, snr_db_peak_frame
from training.rooms import reverberate


def _band_power(x: np.ndarray, low_hz: float, high_hz: float) -> float:
    freqs, power = welch(x, fs=SAMPLE_RATE_HZ, nperseg=1024)
    return float(power[(freqs >= low_hz) & (freqs < high_hz)].sum())


def test_telephone_band_removes_high_and_low_frequencies() -> None:
    x = np.random.default_rng(0).standard_normal(SAMPLE_RATE_HZ).astype(np.float32) * 0.1
    y = telephone(x)
    assert y.shape == x.shape
    # > 4 kHz: gone with the 8 kHz round trip; < 300 Hz: the band-pass.
    assert _band_power(y, 4200, 8000) < 1e-3 * _band_power(x, 4200, 8000)
    assert _band_power(y, 20, 150) < 0.1 * _band_power(x, 20, 150)
    assert _band_power(y, 800, 3000) > 0.5 * _band_power(x, 800, 3000)


def test_clipping_caps_peaks() -> None:
    x = np.sin(np.linspace(0, 40 * np.pi, 16000)).astype(np.float32) * 0.8
    y = clip(x, 0.5)
    assert np.max(np.abs(y)) == pytest.approx(0.4)
    assert np.mean(np.abs(y) >= 0.4 - 1e-6) > 0.3  # flattened tops


@pytest.mark.parametrize("codec", ["opus", "mp3"])
def test_codec_round_trip_keeps_length_and_changes_samples(espeak_speech: np.ndarray,
                                                           codec: str) -> None:
    x = espeak_speech * 0.5
    y = codec_round_trip(x, codec, quality=0.0)
    assert y.shape == x.shape
    assert not np.array_equal(x, y)
    assert abs(level_dbfs(y) - level_dbfs(x)) < 3.0  # still the same speech, roughly
    assert codec_round_trip(x, codec, 0.0).tobytes() == y.tobytes()  # deterministic


def test_room_adds_a_reverberant_tail(espeak_speech: np.ndarray, room_bank) -> None:  # type: ignore[no-untyped-def]
    slowest = int(np.argmax(room_bank.rt60_s))
    wet = reverberate(espeak_speech, room_bank.ir(slowest))
    assert wet.size == espeak_speech.size + room_bank.ir(slowest).size - 1
    tail = wet[espeak_speech.size :]
    assert np.sqrt(np.mean(tail[:1600] ** 2)) > 1e-3 * np.max(np.abs(wet))


def test_speed_perturbation_changes_duration(espeak_speech: np.ndarray) -> None:
    settings = AugmentSettings(speed=1.1, level_dbfs=-20.0)
    fast, _ = apply(espeak_speech, settings, None, None)
    assert fast.size == pytest.approx(espeak_speech.size / 1.1, abs=2)


def test_silence_level_and_noise_as_recorded(espeak_speech: np.ndarray, noise_bank) -> None:  # type: ignore[no-untyped-def]
    settings = AugmentSettings(lead_s=0.5, trail_s=1.0, noise="pink", noise_seed=3,
                               snr_db=12.0, level_dbfs=-26.0)
    out, source = apply(espeak_speech, settings, None, noise_bank)
    assert source == "pink"
    assert out.size == espeak_speech.size + int(1.5 * SAMPLE_RATE_HZ)
    assert level_dbfs(out) == pytest.approx(-26.0, abs=0.01)
    clean, _ = apply(espeak_speech, replace(settings, noise=None, snr_db=None), None, None)
    assert np.max(np.abs(out[:4000])) > 0  # noise under the leading silence
    assert np.all(clean[:4000] == 0)


def test_mixing_before_level_keeps_the_snr(espeak_speech: np.ndarray, noise_bank) -> None:  # type: ignore[no-untyped-def]
    settings = AugmentSettings(noise="white", noise_seed=9, snr_db=6.0, level_dbfs=-30.0)
    noisy, _ = apply(espeak_speech, settings, None, noise_bank)
    clean, _ = apply(espeak_speech, replace(settings, noise=None, snr_db=None), None, None)
    gain = np.dot(noisy, clean) / np.dot(clean, clean)  # the level step scaled both alike
    speech = clean * gain
    assert abs(snr_db_peak_frame(speech, noisy - speech) - 6.0) < 0.5


def test_same_seed_same_settings_and_bytes(espeak_speech: np.ndarray, room_bank,  # type: ignore[no-untyped-def]
                                           noise_bank) -> None:
    config = AugmentConfig()
    outs = []
    for seed in (7, 7, 8):
        settings = sample_settings(np.random.default_rng(seed), config, room_bank, noise_bank)
        outs.append((settings, apply(espeak_speech, settings, room_bank, noise_bank)[0]))
    assert outs[0][0] == outs[1][0]
    assert outs[0][1].tobytes() == outs[1][1].tobytes()
    assert outs[0][1].tobytes() != outs[2][1].tobytes()
    assert AugmentSettings.from_json(outs[0][0].to_json()) == outs[0][0]


def test_sampled_settings_stay_in_range(room_bank, noise_bank) -> None:  # type: ignore[no-untyped-def]
    config = AugmentConfig()
    rng = np.random.default_rng(0)
    draws = [sample_settings(rng, config, room_bank, noise_bank) for _ in range(300)]
    assert all(0.9 <= s.speed <= 1.1 for s in draws)
    assert all(0.1 <= s.lead_s <= 1.5 and 0.1 <= s.trail_s <= 1.5 for s in draws)
    assert all(-35 <= s.level_dbfs <= -5 for s in draws)
    snrs = [s.snr_db for s in draws if s.snr_db is not None]
    assert min(snrs) >= 0 and max(snrs) <= 30 and len(snrs) > 200
    kinds = {s.noise for s in draws}
    assert {"music", "babble", "pink", "fan"} <= kinds
    assert {s.channel for s in draws} == {"none", "telephone", "opus", "mp3"}


def test_calibration_can_draw_fine_tunings_augmentation(espeak_speech: np.ndarray,
                                                         room_bank, noise_bank) -> None:  # type: ignore[no-untyped-def]
    """``training.calibrate --augment training``: the clip and the condition it records are a
    function of the seed, and half the clips (not fine-tuning's 80 %) are noisy."""
    from training.calibrate import CALIBRATION_AUGMENT, _TrainingAugment

    augment = _TrainingAugment()
    a, condition = augment(espeak_speech, np.random.default_rng(7))
    b, again = augment(espeak_speech, np.random.default_rng(7))
    assert np.array_equal(a, b) and condition == again
    assert set(condition) == {"noise", "snr_db", "room", "channel"}
    assert a.size > espeak_speech.size  # leading and trailing silence at least
    rng = np.random.default_rng(1)
    noisy = [sample_settings(rng, CALIBRATION_AUGMENT, room_bank, noise_bank).noise is not None
             for _ in range(2000)]
    assert 0.45 < np.mean(noisy) < 0.55
