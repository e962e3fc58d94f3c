"""Audio in the one form the rest of the assistant uses: float32 mono at 16 kHz in [-1, 1].

* :func:`read_audio` reads any file libsndfile can decode (WAV, FLAC, OGG/Vorbis, MP3 with
  libsndfile >= 1.1, ...), mixes channels down to their mean and resamples to 16 kHz with
  :mod:`assistant.resample`.
* :func:`pcm16le_to_float`, :func:`float_to_pcm16le` and :func:`as_float32` convert the chunks
  that clients stream (16-bit little-endian PCM bytes, int16 or float arrays); they and
  :data:`SAMPLE_RATE_HZ` are defined in :mod:`assistant.pcm` and importable from here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import soundfile

from assistant.errors import AudioError, AudioFormatError
from assistant.pcm import (
    PCM16_SCALE,
    SAMPLE_RATE_HZ,
    as_float32,
    float_to_pcm16le,
    pcm16le_to_float,
)
from assistant.resample import resample

__all__ = ["PCM16_SCALE", "SAMPLE_RATE_HZ", "as_float32", "float_to_pcm16le",
           "pcm16le_to_float", "read_audio"]

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
        try:
            mono = resample(mono, rate_hz, SAMPLE_RATE_HZ)
        except AudioFormatError as e:
            raise AudioFormatError(f"audio file {str(file)!r}: {e}") from e
        logger.debug("resampled %s from %d Hz to %d Hz", file, rate_hz, SAMPLE_RATE_HZ)
    clipped: np.ndarray = np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
    return clipped
