"""Channel effects: telephone band, lossy codec round trips, clipping.

* :func:`telephone`: 300-3400 Hz band-pass (4th-order Butterworth) and a round trip through
  8 kHz, like a narrow-band phone call;
* :func:`codec_round_trip`: encode and decode with libsndfile's Opus (OGG) or MP3 (LAME /
  mpg123) at 16 kHz; ``quality`` 0..1 maps to libsndfile's compression level 0.95..0
  (quality 0: about 25 kbit/s; libsndfile rejects MP3 at level 1.0); both are deterministic;
* :func:`clip`: hard clipping at a fraction of the peak, like an overdriven input.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfiltfilt

from assistant.audio import SAMPLE_RATE_HZ
from assistant.errors import AudioError, ConfigError
from assistant.resample import resample

TELEPHONE_BAND_HZ = (300.0, 3400.0)
TELEPHONE_RATE_HZ = 8000
MAX_COMPRESSION_LEVEL = 0.95
CODECS = {"opus": ("OGG", "OPUS"), "mp3": ("MP3", "MPEG_LAYER_III")}


def telephone(x: np.ndarray) -> np.ndarray:
    sos = butter(4, TELEPHONE_BAND_HZ, btype="bandpass", fs=SAMPLE_RATE_HZ, output="sos")
    band = sosfiltfilt(sos, np.asarray(x, np.float64))
    narrow = resample(band.astype(np.float32), SAMPLE_RATE_HZ, TELEPHONE_RATE_HZ)
    back = resample(narrow, TELEPHONE_RATE_HZ, SAMPLE_RATE_HZ)
    out = np.zeros(len(x), np.float32)
    out[: min(out.size, back.size)] = back[: out.size]
    return out


def codec_round_trip(x: np.ndarray, codec: str, quality: float) -> np.ndarray:
    """``x`` encoded with ``codec`` ("opus" or "mp3") at ``quality`` 0..1 and decoded."""
    if codec not in CODECS:
        raise ConfigError(f"unknown codec {codec!r} (known: {sorted(CODECS)})")
    if not 0.0 <= quality <= 1.0:
        raise ConfigError(f"codec quality must be in [0, 1], got {quality}")
    container, subtype = CODECS[codec]
    buffer = io.BytesIO()
    try:
        sf.write(buffer, np.clip(x, -1, 1), SAMPLE_RATE_HZ, format=container, subtype=subtype,
                 compression_level=MAX_COMPRESSION_LEVEL * (1.0 - quality))
        buffer.seek(0)
        decoded, rate = sf.read(buffer, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{codec} round trip failed in libsndfile "
                         f"{sf.__libsndfile_version__}: {e}") from e
    if rate != SAMPLE_RATE_HZ:
        decoded = resample(decoded.mean(axis=1), rate, SAMPLE_RATE_HZ)[:, None]
    out = np.zeros(len(x), np.float32)
    mono = decoded.mean(axis=1)
    out[: min(out.size, mono.size)] = mono[: out.size]
    return out


def clip(x: np.ndarray, fraction_of_peak: float) -> np.ndarray:
    """Hard-clip ``x`` at ``fraction_of_peak`` times its absolute peak."""
    if not 0.0 < fraction_of_peak <= 1.0:
        raise ConfigError(f"clip fraction must be in (0, 1], got {fraction_of_peak}")
    limit = float(np.max(np.abs(x))) * fraction_of_peak
    return np.clip(x, -limit, limit).astype(np.float32)
