"""Signal levels and SNR, measured the way the public speech-to-intent benchmark does.

The Picovoice benchmark scales its noise so that the energy of the loudest 2048-sample frame
of the speech over that of the noise is the target SNR (non-overlapping frames from the first
sample; a partial last frame is ignored). Mixing here uses the same definition, so "12 dB"
in a manifest means what it means in the benchmark. Levels are the RMS of that loudest frame
in dB relative to full scale (a full-scale square wave is 0 dBFS).
"""

from __future__ import annotations

import numpy as np

from assistant.errors import AudioError

FRAME_SAMPLES = 2048  # 128 ms at 16 kHz, the benchmark's frame
_TINY = 1e-20


def _frames(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(-1)
    if x.size < FRAME_SAMPLES:  # shorter than one frame: the whole clip is the frame
        x = np.pad(x, (0, FRAME_SAMPLES - x.size))
    count = x.size // FRAME_SAMPLES
    return x[: count * FRAME_SAMPLES].reshape(count, FRAME_SAMPLES)


def peak_frame_energy(x: np.ndarray) -> float:
    """Sum of squares of the loudest non-overlapping 2048-sample frame."""
    return float((_frames(x) ** 2).sum(axis=1).max())


def level_dbfs(x: np.ndarray) -> float:
    """RMS of the loudest frame in dBFS (-inf for digital silence)."""
    energy = peak_frame_energy(x)
    if energy <= 0.0:
        return float("-inf")
    return float(10.0 * np.log10(energy / FRAME_SAMPLES))


def snr_db_peak_frame(speech: np.ndarray, noise: np.ndarray) -> float:
    """SNR in dB: loudest-frame energy of ``speech`` over that of ``noise`` (same length)."""
    noise_energy = peak_frame_energy(noise)
    if noise_energy <= 0.0:
        return float("inf")
    return float(10.0 * np.log10(max(peak_frame_energy(speech), _TINY) / noise_energy))


def fit_noise(noise: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """A ``samples``-long stretch of ``noise`` from a random offset, looped if it is shorter."""
    noise = np.asarray(noise, np.float32).reshape(-1)
    if noise.size == 0:
        raise AudioError("noise clip is empty")
    if noise.size < samples:
        noise = np.tile(noise, samples // noise.size + 1)
    start = int(rng.integers(0, noise.size - samples + 1))
    return noise[start : start + samples]


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float,
               rng: np.random.Generator) -> np.ndarray:
    """``speech`` plus a random stretch of ``noise`` scaled to ``snr_db`` (peak-frame SNR).

    The noise segment has the speech's length (taken from a random offset, looped if the
    noise is shorter). ``snr_db_peak_frame(speech, result - speech)`` equals ``snr_db``
    up to float32 rounding.
    """
    speech = np.asarray(speech, np.float32).reshape(-1)
    segment = fit_noise(noise, speech.size, rng)
    noise_energy = peak_frame_energy(segment)
    if noise_energy <= 0.0:
        raise AudioError("noise segment is digital silence; cannot mix it at an SNR")
    speech_energy = peak_frame_energy(speech)
    if speech_energy <= 0.0:
        raise AudioError("speech is digital silence; its SNR is undefined")
    scale = np.sqrt(speech_energy / (noise_energy * 10.0 ** (snr_db / 10.0)))
    return (speech.astype(np.float64) + scale * segment).astype(np.float32)


def set_level_dbfs(x: np.ndarray, target_dbfs: float, max_peak: float = 0.99
                   ) -> tuple[np.ndarray, float]:
    """``x`` scaled to a loudest-frame level of ``target_dbfs``, but never past ``max_peak``.

    Returns the scaled audio and the level it actually got (lower than the target when the
    peak limit applied).
    """
    x = np.asarray(x, np.float32)
    current = level_dbfs(x)
    if not np.isfinite(current):
        return x, current
    gain = 10.0 ** ((target_dbfs - current) / 20.0)
    peak = float(np.max(np.abs(x)))
    if peak * gain > max_peak:
        gain = max_peak / peak
    out = (x.astype(np.float64) * gain).astype(np.float32)
    return out, level_dbfs(out)
