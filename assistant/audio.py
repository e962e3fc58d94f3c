"""Audio in the one form the rest of the assistant uses: float32 mono at 16 kHz in [-1, 1].

* :func:`read_audio` reads any file libsndfile can decode (WAV, FLAC, OGG/Vorbis, MP3 with
  libsndfile >= 1.1, ...), mixes channels down to their mean and resamples to 16 kHz with
  :mod:`assistant.resample`.
* :func:`pcm16le_to_float`, :func:`float_to_pcm16le` and :func:`as_float32` convert the chunks
  that clients stream (16-bit little-endian PCM bytes, int16 or float arrays).

Integer PCM maps to floats by dividing by 32768 (so -32768 -> -1.0), like soundfile and
whisper; :func:`float_to_pcm16le` inverts that exactly for every int16 value.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from assistant.errors import AudioError, AudioFormatError

SAMPLE_RATE_HZ = 16000  # the one rate everything after reading and resampling runs at
PCM16_SCALE = 32768.0  # int16 full scale: float = int16 / PCM16_SCALE

logger = logging.getLogger("assistant.audio")


def read_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an audio file as float32 mono samples at :data:`SAMPLE_RATE_HZ` in [-1, 1].

    Channels are averaged; other sample rates are resampled; samples beyond full scale (float
    files, resampling overshoot) are clipped to [-1, 1].

    Raises :class:`AudioError` when the file is missing, a directory, empty or holds no
    samples, and :class:`AudioFormatError` when it is not audio libsndfile can decode, has an
    unsupported sample rate or holds non-finite samples.
    """
    file = Path(path)
    if not file.exists():
        raise AudioError(f"audio file {str(file)!r} does not exist")
    if file.is_dir():
        raise AudioError(f"audio path {str(file)!r} is a directory, not a file")
    if file.stat().st_size == 0:
        raise AudioError(f"audio file {str(file)!r} is empty (0 bytes)")
    try:
        data, rate_hz = soundfile.read(file, dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as e:
        raise AudioFormatError(
            f"audio file {str(file)!r} is not in a readable audio format: {e.error_string}"
        ) from e
    except (RuntimeError, TypeError, ValueError) as e:
        raise AudioFormatError(f"audio file {str(file)!r} could not be decoded: {e}") from e
    if data.shape[0] == 0:
        raise AudioError(f"audio file {str(file)!r} contains no samples (0 frames)")
    if not np.all(np.isfinite(data)):
        raise AudioFormatError(f"audio file {str(file)!r} contains NaN or infinite samples")

    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    if rate_hz != SAMPLE_RATE_HZ:
        from assistant.resample import resample  # resample imports this module's rate

        try:
            mono = resample(mono, rate_hz, SAMPLE_RATE_HZ)
        except AudioFormatError as e:
            raise AudioFormatError(f"audio file {str(file)!r}: {e}") from e
        logger.debug("resampled %s from %d Hz to %d Hz", file, rate_hz, SAMPLE_RATE_HZ)
    clipped: np.ndarray = np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
    return clipped


def pcm16le_to_float(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Decode 16-bit little-endian PCM bytes to float32 samples in [-1, 1)."""
    size = memoryview(data).nbytes
    if size % 2:
        raise AudioFormatError(f"chunk of {size} bytes is not whole 16-bit samples")
    samples = np.frombuffer(data, dtype="<i2")
    return samples.astype(np.float32) / np.float32(PCM16_SCALE)


def float_to_pcm16le(samples: Any) -> bytes:
    """Encode float samples (1-D, nominally in [-1, 1]) as 16-bit little-endian PCM bytes.

    Values are scaled by 32768, rounded to nearest and clipped to the int16 range, so
    ``float_to_pcm16le(pcm16le_to_float(b)) == b`` for any PCM bytes ``b``.
    """
    x = as_float32(samples)
    scaled = np.clip(np.rint(x * PCM16_SCALE), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def as_float32(chunk: Any) -> np.ndarray:
    """Return a 1-D chunk as float32 samples: int16 is divided by 32768, floats are cast.

    Raises :class:`AudioFormatError` for other dtypes (int32, uint8, bool, ...) and for
    arrays that are not 1-D (interleave or mix channels first).
    """
    x = np.asarray(chunk)
    if x.ndim != 1:
        raise AudioFormatError(f"expected a 1-D mono chunk, got an array of shape {x.shape}")
    if x.dtype == np.int16:
        return x.astype(np.float32) / np.float32(PCM16_SCALE)
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32, copy=False)
    raise AudioFormatError(
        f"unsupported sample dtype {x.dtype}: expected int16 PCM or float samples in [-1, 1]"
    )
