"""How loud an utterance is, and how far its speech stands above its own background.

Both are cheap measures of the audio a recognition saw, reported with every result so that
monitoring can tell quiet microphones and noisy rooms from what the model was built on:

* :func:`level_dbfs`: RMS level in dB relative to full scale;
* :func:`speech_end_s`: where the speech ends, at 10 ms resolution: the last frame within
  45 dB of the loudest and 12 dB over the background (the quietest tenth of frames);
* :func:`level_dips`: where the level dips inside the speech (mostly between words), where
  a pause could be;
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


def frame_levels_db(audio: np.ndarray, sample_rate_hz: int = 16000) -> np.ndarray:
    """The level of each whole 10 ms frame of ``audio``, in dB (1e-12 under digital silence)."""
    frame = sample_rate_hz // 100
    frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    return np.asarray(10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1)
                                    + 1e-12))


def level_dips(audio: np.ndarray, sample_rate_hz: int = 16000) -> list[int]:
    """Samples at the middle of each 30 ms dip of the level inside the speech: 10 ms frames
    25 dB under the speech's loud frames (their 90th percentile), in the middle 60 % of the
    span from the first to the last frame within 45 dB of the loudest and 12 dB over the
    quietest tenth. Mostly between words, sometimes a stop consonant's closure; [] for
    speech shorter than 100 ms."""
    frame = sample_rate_hz // 100
    level = frame_levels_db(audio, sample_rate_hz)
    if level.size == 0:
        return []
    floor = float(np.percentile(level, 10))
    loud = np.flatnonzero(level >= max(floor + 12.0, float(level.max()) - 45.0))
    if loud.size < 10:
        return []
    first, last = int(loud[0]), int(loud[-1])
    top = float(np.percentile(level[first : last + 1], 90))
    low = level < top - 25.0
    span = last - first
    out, run = [], 0
    for k in range(first, last + 1):
        run = run + 1 if low[k] else 0
        if run == 3 and first + 0.2 * span <= k - 1 <= first + 0.8 * span:
            out.append((k - 1) * frame)
    return out


def speech_end_s(audio: np.ndarray, sample_rate_hz: int = 16000) -> float:
    """Where the speech in ``audio`` ends, in seconds at 10 ms resolution (0.0: none found):
    the end of the last 10 ms frame within 45 dB of the loudest and 12 dB over the quietest
    tenth of the frames."""
    frame = sample_rate_hz // 100
    level = frame_levels_db(audio, sample_rate_hz)
    if level.size == 0:
        return 0.0
    threshold = max(float(np.percentile(level, 10)) + 12.0, float(level.max()) - 45.0)
    loud = np.flatnonzero(level >= threshold)
    return float((loud[-1] + 1) * frame / sample_rate_hz) if loud.size else 0.0
