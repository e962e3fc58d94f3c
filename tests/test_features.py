"""Tests for assistant.features: whisper log-mel features sized to the utterance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import given
from hypothesis import strategies as st

from assistant.errors import AudioError, ConfigError
from assistant.features import (
    HOP_LENGTH,
    frames_for_duration,
    log_mel_spectrogram,
    mel_filters,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data from the repo
N_SAMPLES_30S = 480000
N_FRAMES_30S = 3000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    files = sorted((DATA / "barista-dev" / "audio").glob("*.wav"))
    if not files:
        pytest.skip(f"real recordings {DATA / 'barista-dev' / 'audio'} are not available")
    audio, rate_hz = soundfile.read(files[0], dtype="float32")
    assert rate_hz == 16000
    return np.asarray(audio)


def _whisper_reference(audio: np.ndarray, n_mels: int = 80, padding: int = 0) -> np.ndarray:
    """openai-whisper's ``log_mel_spectrogram`` formula, with torch."""
    torch = pytest.importorskip("torch")
    x = torch.nn.functional.pad(torch.from_numpy(audio), (0, padding))
    window = torch.hann_window(400)
    stft = torch.stft(x, 400, 160, window=window, return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    mel_spec = torch.from_numpy(mel_filters(n_mels).copy()) @ magnitudes
    log_spec = torch.clamp(mel_spec, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def test_import_does_not_pull_in_torch() -> None:
    code = "import sys, assistant.features; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_match_transformers(n_mels: int) -> None:
    transformers = pytest.importorskip("transformers")
    extractor = transformers.WhisperFeatureExtractor(feature_size=n_mels)
    ours = mel_filters(n_mels)
    assert ours.shape == (n_mels, 201)
    np.testing.assert_allclose(ours, extractor.mel_filters.T, atol=1e-8, rtol=1e-5)


def test_mel_filters_are_cached_and_read_only() -> None:
    assert mel_filters(80) is mel_filters(80)
    assert not mel_filters(80).flags.writeable


def test_matches_transformers_on_30s_padded_speech(speech: np.ndarray) -> None:
    transformers = pytest.importorskip("transformers")
    extractor = transformers.WhisperFeatureExtractor(feature_size=80)
    ref = extractor(speech, sampling_rate=16000, return_tensors="np").input_features[0]
    ours = log_mel_spectrogram(speech, n_frames=N_FRAMES_30S)
    assert ours.shape == ref.shape == (80, N_FRAMES_30S)
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_matches_whisper_torch_formula(speech: np.ndarray, n_mels: int) -> None:
    ref = _whisper_reference(speech, n_mels, padding=N_SAMPLES_30S)
    ours = log_mel_spectrogram(speech, n_mels=n_mels, n_frames=N_FRAMES_30S)
    np.testing.assert_allclose(ours, ref[:, :N_FRAMES_30S], atol=1e-4, rtol=0)


def test_short_window_equals_first_frames_of_padded_computation(speech: np.ndarray) -> None:
    """Sized to the utterance, features are the first frames of whisper's 30 s computation:
    the same right-hand zeros, and the same maximum (the loudest frame is in the window)."""
    ref = _whisper_reference(speech, padding=N_SAMPLES_30S)
    for audio in (speech, speech[:16000], speech[: 160 * 101], speech[:333]):
        ours = log_mel_spectrogram(audio)
        n_frames = frames_for_duration(audio.size)
        assert ours.shape == (80, n_frames)
        full = _whisper_reference(audio, padding=N_SAMPLES_30S)
        np.testing.assert_allclose(ours, full[:, :n_frames], atol=1e-4, rtol=0)
    n_frames = frames_for_duration(speech.size)
    np.testing.assert_allclose(log_mel_spectrogram(speech), ref[:, :n_frames], atol=1e-4, rtol=0)


def test_trimmed_window_differs_only_by_the_floor(speech: np.ndarray) -> None:
    """A window that trims audio sees a lower maximum, so only the max - 8 floor differs
    (and the last frame, which sees zeros where the trimmed audio was)."""
    ref = _whisper_reference(speech, padding=N_SAMPLES_30S)
    loud = np.flatnonzero(ref.max(axis=0) > ref.max() - 0.5)
    n_frames = int(loud[0]) - 4  # a window ending before the speech gets loud
    assert n_frames >= 10
    ours = log_mel_spectrogram(speech, n_frames=n_frames)
    ours_floor, ref_floor = ours.max() - 2.0, ref.max() - 2.0  # (max - 8 + 4) / 4 = max - 2
    assert ours_floor < ref_floor - 0.1  # the floors really differ
    head, ref_head = ours[:, : n_frames - 1], ref[:, : n_frames - 1]
    np.testing.assert_allclose(
        np.maximum(head, ref_floor), np.maximum(ref_head, ours_floor), atol=1e-4, rtol=0
    )
    assert np.abs(head - ref_head).max() > 0.1  # ... which shows in quiet frames


def test_natural_frames_match_unpadded_whisper_except_the_edge(speech: np.ndarray) -> None:
    """On the unpadded audio whisper's last two frames see a reflection of the speech; ours see
    zeros. Every other frame agrees."""
    audio = speech[: 160 * 200]
    ref = _whisper_reference(audio)
    ours = log_mel_spectrogram(audio, n_frames=200)
    assert ref.shape == ours.shape
    np.testing.assert_allclose(ours[:, :-2], ref[:, :-2], atol=1e-4, rtol=0)


def test_n_frames_pads_and_trims() -> None:
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)
    assert log_mel_spectrogram(audio).shape == (80, 100)
    assert log_mel_spectrogram(audio, n_frames=37).shape == (80, 37)
    padded = log_mel_spectrogram(audio, n_frames=150)
    assert padded.shape == (80, 150)
    np.testing.assert_allclose(padded[:, 102:], padded.max() - 2.0)  # silence sits on the floor
    assert log_mel_spectrogram(audio, n_mels=128).shape == (128, 100)


def test_silence_is_constant() -> None:
    out = log_mel_spectrogram(np.zeros(3200, dtype=np.float32))
    assert out.shape == (80, 20)
    np.testing.assert_allclose(out, (-10.0 + 4.0) / 4.0, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("num_samples", "frames"),
    [
        (0, 0),
        (1, 2),
        (160, 2),
        (320, 2),
        (321, 4),
        (480, 4),
        (16000, 100),
        (16001, 102),
        (480000, 3000),
    ],
)
def test_frames_for_duration(num_samples: int, frames: int) -> None:
    assert frames_for_duration(num_samples) == frames


@given(st.integers(0, 10**7))
def test_frames_for_duration_is_even_and_covers(num_samples: int) -> None:
    frames = frames_for_duration(num_samples)
    assert frames % 2 == 0
    assert frames * HOP_LENGTH >= num_samples > (frames - 2) * HOP_LENGTH or num_samples == 0


def test_rejects_bad_input() -> None:
    with pytest.raises(AudioError, match=r"shape \(2, 100\)"):
        log_mel_spectrogram(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(AudioError, match="dtype int16"):
        log_mel_spectrogram(np.zeros(100, dtype=np.int16))
    with pytest.raises(AudioError, match="0 samples"):
        log_mel_spectrogram(np.zeros(0, dtype=np.float32))
    with pytest.raises(ConfigError, match="n_mels of 64"):
        log_mel_spectrogram(np.zeros(1600, dtype=np.float32), n_mels=64)
    with pytest.raises(ConfigError, match="-1"):
        frames_for_duration(-1)
