"""Tests for assistant.audio: reading files, PCM conversion, chunk dtypes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import given
from hypothesis import strategies as st

from assistant.audio import (
    SAMPLE_RATE_HZ,
    as_float32,
    float_to_pcm16le,
    pcm16le_to_float,
    read_audio,
)
from assistant.errors import AudioError, AudioFormatError
from assistant.resample import resample

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data from the repo


def _real_files(name: str, count: int) -> list[Path]:
    files = sorted((DATA / name / "audio").glob("*.wav"))
    if not files:
        pytest.skip(f"real recordings {DATA / name / 'audio'} are not available")
    return files[:count]


def _tone(freq_hz: float, rate_hz: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate_hz * seconds)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_import_does_not_pull_in_torch() -> None:
    code = "import sys, assistant.audio; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_reads_16k_pcm16_exactly(tmp_path: Path) -> None:
    pcm = (np.arange(-32768, 32768, 7, dtype=np.int32)).astype(np.int16)
    path = tmp_path / "a.wav"
    soundfile.write(path, pcm, SAMPLE_RATE_HZ, subtype="PCM_16")
    audio = read_audio(path)
    assert audio.dtype == np.float32
    np.testing.assert_array_equal(audio, pcm.astype(np.float32) / 32768)


def test_mixes_channels_down_to_their_mean(tmp_path: Path) -> None:
    left = _tone(440, SAMPLE_RATE_HZ, 0.5)
    right = _tone(1000, SAMPLE_RATE_HZ, 0.5, amplitude=0.25)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), SAMPLE_RATE_HZ, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(path), (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("rate_hz", [8000, 22050, 44100, 48000])
def test_resamples_to_16k(tmp_path: Path, rate_hz: int) -> None:
    source = _tone(440, rate_hz, 0.7)
    path = tmp_path / "tone.wav"
    soundfile.write(path, source, rate_hz, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.size == round(source.size * SAMPLE_RATE_HZ / rate_hz)
    np.testing.assert_allclose(audio, resample(source, rate_hz), atol=1e-7)


@pytest.mark.parametrize(
    ("ext", "fmt", "subtype"), [("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS")]
)
def test_reads_compressed_formats(tmp_path: Path, ext: str, fmt: str, subtype: str) -> None:
    source = _tone(440, SAMPLE_RATE_HZ, 0.5)
    path = tmp_path / f"tone.{ext}"
    soundfile.write(path, source, SAMPLE_RATE_HZ, format=fmt, subtype=subtype)
    audio = read_audio(path)
    assert audio.size == source.size
    assert np.corrcoef(audio, source)[0, 1] > 0.99


def test_clips_float_files_to_full_scale(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    soundfile.write(path, np.array([0.5, 1.5, -2.0], dtype=np.float32), 16000, subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(path), [0.5, 1.0, -1.0])


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match=r"nope\.wav.*does not exist"):
        read_audio(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="is a directory"):
        read_audio(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav.*empty \(0 bytes\)"):
        read_audio(path)


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(AudioFormatError, match=r"notes\.wav.*not in a readable audio format"):
        read_audio(path)


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    soundfile.write(path, np.zeros(0, dtype=np.int16), SAMPLE_RATE_HZ)
    assert path.stat().st_size > 0
    with pytest.raises(AudioError, match=r"silent\.wav.*no samples"):
        read_audio(path)


def test_non_finite_samples(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    soundfile.write(path, np.array([0.0, np.nan], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioFormatError, match="NaN or infinite"):
        read_audio(path)


def test_reads_real_recordings() -> None:
    for path in _real_files("barista-dev", 2) + _real_files("digits-dev", 2):
        info = soundfile.info(path)
        audio = read_audio(path)
        assert audio.dtype == np.float32 and audio.ndim == 1
        expected = (2 * info.frames * SAMPLE_RATE_HZ + info.samplerate) // (2 * info.samplerate)
        assert audio.size == expected
        assert 0.01 < np.abs(audio).max() <= 1.0


def test_pcm16_odd_byte_count() -> None:
    with pytest.raises(
        AudioFormatError, match=r"^chunk of 1001 bytes is not whole 16-bit samples$"
    ):
        pcm16le_to_float(bytes(1001))


def test_pcm16_is_little_endian_and_scaled() -> None:
    data = b"\x00\x80" + b"\xff\x7f" + b"\x00\x40" + b"\x00\x00"
    np.testing.assert_array_equal(pcm16le_to_float(data), [-1.0, 32767 / 32768, 0.5, 0.0])


@given(st.binary(max_size=2000).map(lambda b: b[: len(b) // 2 * 2]))
def test_pcm16_round_trips(data: bytes) -> None:
    samples = pcm16le_to_float(data)
    assert samples.dtype == np.float32
    assert float_to_pcm16le(samples) == data


def test_float_to_pcm16_clips_and_rounds() -> None:
    out = np.frombuffer(float_to_pcm16le(np.array([2.0, -2.0, 1.0, 0.49 / 32768])), dtype="<i2")
    np.testing.assert_array_equal(out, [32767, -32768, 32767, 0])


def test_as_float32_accepts_int16_and_floats() -> None:
    pcm = np.array([-32768, 0, 16384], dtype=np.int16)
    np.testing.assert_array_equal(as_float32(pcm), [-1.0, 0.0, 0.5])
    for dtype in (np.float16, np.float32, np.float64):
        out = as_float32(np.array([0.25, -0.5], dtype=dtype))
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, [0.25, -0.5])


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_, np.complex64])
def test_as_float32_rejects_other_dtypes(dtype: type) -> None:
    with pytest.raises(AudioFormatError, match=f"unsupported sample dtype {np.dtype(dtype)}"):
        as_float32(np.zeros(4, dtype=dtype))


def test_as_float32_rejects_2d() -> None:
    with pytest.raises(AudioFormatError, match=r"shape \(2, 3\)"):
        as_float32(np.zeros((2, 3), dtype=np.float32))
