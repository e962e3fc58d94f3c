"""How loud an utterance is, and how far its speech stands above its own background.

Both are cheap measures of the audio a recognition saw, reported with every result so that
monitoring can tell quiet microphones and noisy rooms from what the model was built on:

* :func:`level_dbfs`: RMS level in dB relative to full scale;
* :func:`snr_estimate_db`: the 90th against the 10th percentile (nearest rank) of 32 ms
  frame powers. An utterance cut by the VAD keeps some padding around the speech, so its
  quietest frames are background; this is an estimate, not a measurement (steady noise
  that never pauses reads as speech), good for watching a population's distribution move.
"""

from __future__ import annotations

import math

import numpy as np

SILENCE_DBFS = -120.0  # the level reported for digital silence (log of zero)
FRAME = 512  # 32 ms at 16 kHz
SNR_RANGE_DB = (-10.0, 80.0)


def level_dbfs(audio: np.ndarray) -> float | None:
    """RMS level of float samples in dB relative to full scale (None for no samples)."""
    if audio.size == 0:
        return None
    rms = math.sqrt(float(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else SILENCE_DBFS


def snr_estimate_db(audio: np.ndarray) -> float | None:
    """Speech-to-background ratio of one utterance (see module docs); None under 4 frames."""
    frames = audio.size // FRAME
    if frames < 4:
        return None
    x = audio[: frames * FRAME].reshape(frames, FRAME)
    per_frame = np.sort(np.einsum("ij,ij->i", x, x, dtype=np.float64) / FRAME)
    loud, quiet = per_frame[(9 * (frames - 1)) // 10], per_frame[(frames - 1) // 10]
    ratio = 10.0 * math.log10((loud + 1e-12) / (quiet + 1e-12))
    return float(min(max(ratio, SNR_RANGE_DB[0]), SNR_RANGE_DB[1]))
