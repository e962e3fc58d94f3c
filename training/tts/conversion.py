"""Simple voice conversion: shift pitch and formants separately, in numpy/scipy.

Most voices here are adult male; raising the pitch *and* the formants (a shorter vocal tract)
turns them into plausible female- and child-like speakers, lowering both gives deeper ones.
Shifting pitch alone (a phase vocoder) sounds like a chipmunk; shifting formants alone sounds
like a smaller head. The method separates the two with a source-filter split on the STFT:

1. spectral envelope per frame by cepstral smoothing (:data:`LIFTER_SAMPLES` quefrencies,
   about the vocal tract, well below any pitch period);
2. the residual (spectrum / envelope, a flat "excitation") is pitch-shifted by a phase-vocoder
   time stretch followed by polyphase resampling (harmonics move, duration stays);
3. the envelope is warped along frequency by ``formant_ratio`` and put back on the shifted
   residual.

Output keeps the input's length and RMS. Deterministic: no randomness at all.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

N_FFT = 1024  # 64 ms at 16 kHz
HOP = 256  # 16 ms, 75 % overlap
LIFTER_SAMPLES = 28  # cepstral envelope: quefrencies below 1.75 ms (pitch above 570 Hz)
_EPS = 1e-8


def _stft(x: np.ndarray) -> np.ndarray:
    """[frames, N_FFT // 2 + 1] complex, centred frames, Hann window."""
    padded = np.pad(x, (N_FFT // 2, N_FFT // 2 + HOP))
    frames = 1 + (padded.size - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    return np.fft.rfft(padded[index] * np.hanning(N_FFT), axis=1)


def _istft(spectrum: np.ndarray, length: int) -> np.ndarray:
    window = np.hanning(N_FFT)
    frames = np.fft.irfft(spectrum, n=N_FFT, axis=1) * window
    size = N_FFT + HOP * (frames.shape[0] - 1)
    out = np.zeros(size)
    norm = np.zeros(size)
    for i in range(frames.shape[0]):
        out[i * HOP : i * HOP + N_FFT] += frames[i]
        norm[i * HOP : i * HOP + N_FFT] += window**2
    out /= np.maximum(norm, 1e-3)
    return out[N_FFT // 2 : N_FFT // 2 + length]


def _envelope(spectrum: np.ndarray) -> np.ndarray:
    log_magnitude = np.log(np.abs(spectrum) + _EPS)
    cepstrum = np.fft.irfft(log_magnitude, n=N_FFT, axis=1)
    cepstrum[:, LIFTER_SAMPLES : N_FFT - LIFTER_SAMPLES + 1] = 0.0
    return np.exp(np.fft.rfft(cepstrum, axis=1).real)


def _time_stretch(x: np.ndarray, factor: float) -> np.ndarray:
    """Phase-vocoder stretch: ``factor`` times longer, same pitch."""
    spectrum = _stft(x)
    last = spectrum.shape[0] - 1
    steps = np.arange(0.0, last, 1.0 / factor)
    steps = steps[steps < last]  # a float step can land on the stop value
    lower = np.minimum(steps.astype(int), last - 1)
    frac = (steps - lower)[:, None]
    magnitude = (1 - frac) * np.abs(spectrum[lower]) + frac * np.abs(spectrum[lower + 1])
    expected = 2 * np.pi * HOP * np.arange(spectrum.shape[1]) / N_FFT
    delta = np.angle(spectrum[lower + 1]) - np.angle(spectrum[lower]) - expected
    delta -= 2 * np.pi * np.round(delta / (2 * np.pi))
    phase = np.angle(spectrum[0]) + np.cumsum(np.vstack([np.zeros_like(expected),
                                                         (delta + expected)[:-1]]), axis=0)
    return _istft(magnitude * np.exp(1j * phase), round(x.size * factor))


def _pitch_shift(x: np.ndarray, ratio: float) -> np.ndarray:
    """Every frequency times ``ratio``, same duration (formants move too)."""
    fraction = Fraction(ratio).limit_denominator(64)
    stretched = _time_stretch(x, float(fraction))
    shifted = resample_poly(stretched, fraction.denominator, fraction.numerator)
    out = np.zeros(x.size)
    out[: min(x.size, shifted.size)] = shifted[: x.size]
    return out


def _warp(envelope: np.ndarray, ratio: float) -> np.ndarray:
    bins = np.arange(envelope.shape[1], dtype=np.float64)
    source = np.clip(bins / ratio, 0, bins[-1])
    lower = np.floor(source).astype(int)
    upper = np.minimum(lower + 1, bins.size - 1)
    frac = source - lower
    return (1 - frac) * envelope[:, lower] + frac * envelope[:, upper]


def convert(audio: np.ndarray, semitones: float, formant_ratio: float) -> np.ndarray:
    """``audio`` (float32 mono) with pitch moved ``semitones`` and formants by ``formant_ratio``.

    +4 st / 1.12 is a typical male-to-female shift, +8 st / 1.22 child-like.
    """
    x = np.asarray(audio, np.float64)
    if (semitones == 0.0 and formant_ratio == 1.0) or x.size < N_FFT:
        return np.asarray(audio, np.float32)
    spectrum = _stft(x)
    envelope = _envelope(spectrum)
    residual = _istft(spectrum / envelope, x.size)
    if semitones != 0.0:
        residual = _pitch_shift(residual, 2.0 ** (semitones / 12.0))
    shifted = _stft(residual)
    frames = min(shifted.shape[0], envelope.shape[0])
    out = _istft(shifted[:frames] * _warp(envelope[:frames], formant_ratio), x.size)
    gain = np.sqrt(np.mean(x**2) / (np.mean(out**2) + _EPS))
    return (out * gain).astype(np.float32)
