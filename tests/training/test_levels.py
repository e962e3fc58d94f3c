"""SNR and levels are measured on the loudest 2048-sample frame, like the public benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from training.levels import (
    FRAME_SAMPLES,
    level_dbfs,
    mix_at_snr,
    peak_frame_energy,
    set_level_dbfs,
    snr_db_peak_frame,
)
from training.noises import noise_clip


def test_peak_frame_uses_non_overlapping_frames_from_the_start() -> None:
    x = np.zeros(4 * FRAME_SAMPLES, np.float32)
    x[FRAME_SAMPLES - 10 : FRAME_SAMPLES + 10] = 1.0  # a burst split over two frames
    assert peak_frame_energy(x) == pytest.approx(10.0)
    x[3 * FRAME_SAMPLES + 5] = 3.0  # one louder sample, but a frame of less energy (9)
    assert peak_frame_energy(x) == pytest.approx(10.0)


def test_a_partial_last_frame_is_ignored_like_the_benchmark() -> None:
    x = np.zeros(FRAME_SAMPLES + 100, np.float32)
    x[0] = 0.1
    x[-1] = 1.0  # in the partial frame
    assert peak_frame_energy(x) == pytest.approx(0.01)


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "hum", "fan", "music", "babble"])
@pytest.mark.parametrize("snr_db", [0.0, 7.5, 18.0, 30.0])
def test_mix_at_snr_hits_the_target(espeak_speech: np.ndarray, noise_bank, kind: str,  # type: ignore[no-untyped-def]
                                    snr_db: float) -> None:
    if kind in ("music", "babble") and not getattr(noise_bank, kind):
        pytest.skip(f"no {kind} in the noise bank")
    noise, _ = noise_clip(kind, 3 * espeak_speech.size, seed=1, bank=noise_bank)
    mixed = mix_at_snr(espeak_speech, noise, snr_db, np.random.default_rng(0))
    assert mixed.shape == espeak_speech.shape
    measured = snr_db_peak_frame(espeak_speech, mixed - espeak_speech)
    assert abs(measured - snr_db) < 0.5


def test_mix_at_snr_is_seeded(espeak_speech: np.ndarray) -> None:
    noise = np.random.default_rng(5).standard_normal(80000).astype(np.float32)
    a = mix_at_snr(espeak_speech, noise, 10.0, np.random.default_rng(1))
    b = mix_at_snr(espeak_speech, noise, 10.0, np.random.default_rng(1))
    c = mix_at_snr(espeak_speech, noise, 10.0, np.random.default_rng(2))
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_short_noise_is_looped(espeak_speech: np.ndarray) -> None:
    noise = np.random.default_rng(5).standard_normal(3000).astype(np.float32)
    mixed = mix_at_snr(espeak_speech, noise, 5.0, np.random.default_rng(0))
    assert abs(snr_db_peak_frame(espeak_speech, mixed - espeak_speech) - 5.0) < 0.5


@pytest.mark.parametrize("target", [-35.0, -20.0, -5.0])
def test_set_level_reaches_the_target_below_full_scale(espeak_speech: np.ndarray,
                                                       target: float) -> None:
    out, level = set_level_dbfs(espeak_speech, target)
    assert np.max(np.abs(out)) <= 0.99 + 1e-6
    assert level == pytest.approx(level_dbfs(out))
    assert level <= target + 1e-3
    if target <= -20:  # speech peaks ~15 dB above its loudest frame's RMS: no limiting
        assert level == pytest.approx(target, abs=0.01)
