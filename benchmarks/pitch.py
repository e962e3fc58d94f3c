"""A speaker's median pitch, estimated from a recording, for fairness slices by voice pitch.

Per 40 ms frame (10 ms hop) of 16 kHz audio: the normalized autocorrelation over lags for
60-400 Hz (YIN's cumulative mean normalized difference, without its parabolic refinement);
a frame is voiced when its loudness is within 30 dB of the loudest frame and its best
difference dip is below 0.25. The median F0 of the voiced frames is the speaker's pitch (None
when fewer than 5 frames are voiced). Good to a few Hz on clean speech, which is all a band
of 145 / 190 Hz needs; measure it on the clean recording, before any noise is added.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE_HZ = 16000
FRAME = 640  # 40 ms
HOP = 160  # 10 ms
MIN_HZ, MAX_HZ = 60.0, 400.0
THRESHOLD = 0.25
BANDS_HZ = (145.0, 190.0)  # low < 145 <= mid < 190 <= high (the held-out report's bands)


def frame_f0(frame: np.ndarray) -> float | None:
    """F0 of one frame in Hz, or None when it is not clearly periodic."""
    min_lag = int(SAMPLE_RATE_HZ / MAX_HZ)
    max_lag = int(SAMPLE_RATE_HZ / MIN_HZ)
    x = frame.astype(np.float64) - frame.mean()
    width = x.size - max_lag
    if width <= 0:
        return None
    base = x[:width]
    lags = np.arange(1, max_lag + 1)
    diff = np.array([np.sum((base - x[lag : lag + width]) ** 2) for lag in lags])
    cumulative = np.cumsum(diff) / lags
    cmnd = np.where(cumulative > 0, diff / np.maximum(cumulative, 1e-12), 1.0)
    window = cmnd[min_lag - 1 :]
    below = np.flatnonzero(window < THRESHOLD)
    if below.size == 0:
        return None
    lag = below[0]
    while lag + 1 < window.size and window[lag + 1] < window[lag]:  # walk down to the dip
        lag += 1
    return SAMPLE_RATE_HZ / (lag + min_lag)


def median_pitch_hz(audio: np.ndarray) -> float | None:
    """The median F0 of the voiced frames of a 16 kHz recording (see module docs)."""
    x = np.asarray(audio, np.float32)
    if x.size < FRAME:
        return None
    starts = range(0, x.size - FRAME + 1, HOP)
    energy = np.array([float(np.mean(x[s : s + FRAME] ** 2)) for s in starts])
    loud = energy >= energy.max() * 10 ** (-30 / 10)
    f0s = [f for s, keep in zip(starts, loud, strict=True) if keep
           and (f := frame_f0(x[s : s + FRAME])) is not None]
    return float(np.median(f0s)) if len(f0s) >= 5 else None


def pitch_band(pitch_hz: float | None) -> str:
    if pitch_hz is None:
        return "unknown"
    low, high = BANDS_HZ
    if pitch_hz < low:
        return f"low (< {low:g} Hz)"
    return f"mid ({low:g}-{high:g} Hz)" if pitch_hz < high else f"high (>= {high:g} Hz)"
