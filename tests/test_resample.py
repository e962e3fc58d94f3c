"""Tests for assistant.resample: quality, chunk invariance, lengths, errors."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.errors import AudioFormatError
from assistant.resample import Resampler, output_length, resample

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data from the repo
RATES_HZ = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000]


def _real_file(name: str) -> Path:
    files = sorted((DATA / name / "audio").glob("*.wav"))
    if not files:
        pytest.skip(f"real recordings {DATA / name / 'audio'} are not available")
    return files[0]


def _tone(freq_hz: float, rate_hz: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _streamed(x: np.ndarray, resampler: Resampler, chunk: int) -> np.ndarray:
    parts = [resampler.process(x[i : i + chunk]) for i in range(0, x.size, chunk)]
    return np.concatenate([*parts, resampler.flush()])


def _rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-30))


def test_import_does_not_pull_in_torch() -> None:
    code = "import sys, assistant.resample; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.parametrize("rate_hz", RATES_HZ)
@pytest.mark.parametrize("freq_hz", [300.0, 1000.0, 3300.0])
def test_tone_keeps_amplitude_and_frequency(rate_hz: int, freq_hz: float) -> None:
    y = resample(_tone(freq_hz, rate_hz, 1.0), rate_hz)
    assert y.size == 16000
    steady = y[1600:-1600]  # away from the zero-padded edges
    amplitude = np.sqrt(2 * np.mean(steady.astype(np.float64) ** 2))
    assert amplitude == pytest.approx(0.5, rel=2e-3)  # within 0.02 dB
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(steady.size)))
    peak_hz = np.argmax(spectrum) * 16000 / steady.size
    assert abs(peak_hz - freq_hz) < 16000 / steady.size


@pytest.mark.parametrize(
    ("rate_hz", "freq_hz"),
    [
        (48000, 8200.0),
        (48000, 12000.0),
        (44100, 9000.0),
        (32000, 8100.0),
        (24000, 10000.0),
        (22050, 8500.0),
    ],
)
def test_tone_above_target_nyquist_is_removed(rate_hz: int, freq_hz: float) -> None:
    y = resample(_tone(freq_hz, rate_hz, 1.0), rate_hz)
    attenuation_db = _rms_db(_tone(freq_hz, rate_hz, 1.0)) - _rms_db(y[1600:-1600])
    assert attenuation_db > 60


@pytest.mark.parametrize("rate_hz", [8000, 11025, 12000])
def test_upsampling_creates_no_images(rate_hz: int) -> None:
    y = resample(_tone(0.4 * rate_hz, rate_hz, 1.0), rate_hz)[1600:-1600]
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size))) ** 2
    freqs_hz = np.fft.rfftfreq(y.size, 1 / 16000)
    above = spectrum[freqs_hz > rate_hz / 2 + 50].sum()
    assert 10 * np.log10(above / spectrum.sum()) < -60


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_chunking_does_not_change_the_output(rate_hz: int) -> None:
    x = np.random.default_rng(rate_hz).uniform(-1, 1, size=rate_hz // 2 + 37).astype(np.float32)
    whole = resample(x, rate_hz)
    assert whole.size == output_length(x.size, rate_hz, 16000)
    resampler = Resampler(rate_hz)
    for chunk in (1, 160, 1280, 4000, x.size):
        np.testing.assert_allclose(_streamed(x, resampler, chunk), whole, atol=1e-6, rtol=0)


@settings(max_examples=30, deadline=None)
@given(
    rate_hz=st.sampled_from(RATES_HZ),
    cuts=st.lists(st.integers(0, 3000), max_size=12),
)
def test_any_split_gives_the_same_output(rate_hz: int, cuts: list[int]) -> None:
    x = np.random.default_rng(1).standard_normal(3000).astype(np.float32) * 0.3
    edges = [0, *sorted(cuts), x.size]
    resampler = Resampler(rate_hz)
    parts = [resampler.process(x[a:b]) for a, b in itertools.pairwise(edges)]
    streamed = np.concatenate([*parts, resampler.flush()])
    np.testing.assert_allclose(streamed, resample(x, rate_hz), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("n", "rate_hz", "expected"),
    [
        (0, 48000, 0),
        (1, 48000, 0),
        (2, 48000, 1),
        (3, 48000, 1),
        (1, 32000, 1),
        (3, 32000, 2),
        (441, 44100, 160),
        (100, 8000, 200),
        (1, 44100, 0),
        (3, 44100, 1),
    ],
)
def test_output_length_is_rounded_half_up(n: int, rate_hz: int, expected: int) -> None:
    assert output_length(n, rate_hz, 16000) == expected
    assert resample(np.zeros(n, dtype=np.float32), rate_hz).size == expected


def test_flush_resets_for_a_new_stream() -> None:
    x = _tone(440, 44100, 0.3)
    resampler = Resampler(44100)
    first = _streamed(x, resampler, 1000)
    second = _streamed(x, resampler, 1000)
    np.testing.assert_array_equal(first, second)


def test_equal_rates_pass_through() -> None:
    x = np.linspace(-1, 1, 1001, dtype=np.float64)
    resampler = Resampler(16000, 16000)
    out = resampler.process(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32))
    assert resampler.flush().size == 0


def test_other_target_rates() -> None:
    y = resample(_tone(1000, 16000, 1.0), 16000, 8000)
    assert y.size == 8000
    assert np.sqrt(2 * np.mean(y[800:-800] ** 2)) == pytest.approx(0.5, rel=2e-3)


@pytest.mark.parametrize("rate", [0, -16000, 192001, 10**9, 44100.5, float("nan"), "16000", True])
def test_rejects_nonsense_rates(rate: object) -> None:
    with pytest.raises(AudioFormatError, match=r"input sample rate .*" + str(rate)[:5]):
        Resampler(rate)  # type: ignore[arg-type]


def test_rejects_bad_chunks() -> None:
    resampler = Resampler(8000)
    with pytest.raises(AudioFormatError, match=r"shape \(2, 10\)"):
        resampler.process(np.zeros((2, 10), dtype=np.float32))
    with pytest.raises(AudioFormatError, match="dtype int16"):
        resampler.process(np.zeros(10, dtype=np.int16))


def test_matches_torchaudio_on_real_speech() -> None:
    functional = pytest.importorskip("torchaudio.functional")
    torch = pytest.importorskip("torch")
    digits, rate_hz = soundfile.read(_real_file("digits-dev"), dtype="float32")
    speech, _ = soundfile.read(_real_file("barista-dev"), dtype="float32")
    cases = [(digits, rate_hz, 16000), (speech, 16000, 8000), (speech, 16000, 44100)]
    for x, in_hz, out_hz in cases:
        ours = resample(x, in_hz, out_hz)
        ref = functional.resample(torch.from_numpy(x), in_hz, out_hz).numpy()
        assert abs(ours.size - ref.size) <= 1
        n = min(ours.size, ref.size)
        assert np.corrcoef(ours[:n], ref[:n])[0, 1] > 0.999
