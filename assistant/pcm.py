"""The one sample format the assistant runs on, and the 16-bit PCM that clients stream.

After reading and resampling, audio is float32 mono at :data:`SAMPLE_RATE_HZ` in [-1, 1].
:func:`pcm16le_to_float`, :func:`float_to_pcm16le` and :func:`as_float32` convert the chunks
that clients stream (16-bit little-endian PCM bytes, int16 or float arrays).

Integer PCM maps to floats by dividing by 32768 (so -32768 -> -1.0), like soundfile and
whisper; :func:`float_to_pcm16le` inverts that exactly for every int16 value. Pure numpy: no
files, no resampling (:mod:`assistant.audio`, :mod:`assistant.resample` build on this).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assistant.errors import AudioFormatError

SAMPLE_RATE_HZ = 16000  # the one rate everything after reading and resampling runs at
PCM16_SCALE = 32768.0  # int16 full scale: float = int16 / PCM16_SCALE


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
