"""Whisper log-mel features in numpy, for a window sized to the utterance.

The formula is openai-whisper's ``log_mel_spectrogram`` (and HF ``WhisperFeatureExtractor``):
a 400-point STFT (25 ms) with a periodic Hann window every 160 samples (10 ms), power
spectrum, Slaney-style mel filters (``librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)``,
whisper's ``mel_filters.npz``), ``log10(max(mel, 1e-10))``, a floor at ``max - 8`` and
``(x + 4) / 4``.

Stock Whisper pads every input to 30 s (3000 frames). Here the window is sized to the
utterance: :func:`log_mel_spectrogram` computes ``n_frames`` frames (by default
:func:`frames_for_duration`, an even count covering the audio, since the encoder's second
convolution has stride 2) of **the same spectrogram whisper computes on the audio followed by
silence**:

* whisper computes features on ``audio + 30 s of zeros`` (``transcribe``'s ``padding=N_SAMPLES``,
  ``pad_or_trim``, HF's ``padding="max_length"``), so frames near the end of the speech see
  zeros to their right. We do the same: reflect padding by ``n_fft // 2`` on the left
  (``center=True``) and zeros on the right, never a reflection of the speech.
* the ``max - 8`` floor uses the maximum over the frames computed. When the window holds the
  whole utterance, the loudest frame is inside it, so the maximum (and every frame) equals
  the first ``n_frames`` frames of the 30 s padded computation, to float32 rounding. Only a
  window that *trims* loud audio can have a lower maximum and so a higher floor.

Audio longer than ``n_frames * 160`` samples is trimmed first (like HF's truncation), so
the last frame then sees zeros where the trimmed audio was.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from assistant.errors import AudioError, ConfigError
from assistant.pcm import SAMPLE_RATE_HZ

N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms between frames
N_FREQS = N_FFT // 2 + 1  # 201 rfft bins
SUPPORTED_N_MELS = (80, 128)  # whisper tiny..large-v2, large-v3
ENCODER_STRIDE = 2  # frames per encoder position (conv2 has stride 2)
LOG_FLOOR = 1e-10
DYNAMIC_RANGE_LOG10 = 8.0  # features are floored at max - 8 (80 dB)


def _hz_to_mel(freq_hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    mels = freq_hz / f_sp
    log_region = freq_hz >= min_log_hz
    mels[log_region] = min_log_mel + np.log(freq_hz[log_region] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    freqs = f_sp * mels
    log_region = mels >= min_log_mel
    freqs[log_region] = min_log_hz * np.exp(logstep * (mels[log_region] - min_log_mel))
    return freqs


@lru_cache(maxsize=4)
def mel_filters(n_mels: int = 80) -> np.ndarray:
    """Slaney-normalised mel filter bank ``[n_mels, 201]`` (float32, read-only, cached).

    Same as ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)`` (whisper's
    ``mel_filters.npz``): triangles between consecutive Slaney mel frequencies from 0 to
    8 kHz, each scaled by ``2 / bandwidth_hz`` so it has unit area.
    """
    if n_mels not in SUPPORTED_N_MELS:
        raise ConfigError(f"n_mels of {n_mels} is not supported (whisper uses {SUPPORTED_N_MELS})")
    fft_freqs_hz = np.linspace(0.0, SAMPLE_RATE_HZ / 2, N_FREQS)
    mel_edges = np.linspace(
        _hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE_HZ / 2]))[0], n_mels + 2
    )
    edges_hz = _mel_to_hz(mel_edges)
    widths_hz = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_freqs_hz[None, :]
    lower = -ramps[:-2] / widths_hz[:-1, None]
    upper = ramps[2:] / widths_hz[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    out = np.ascontiguousarray(weights, dtype=np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def _hann_window() -> np.ndarray:
    """Periodic Hann window of N_FFT points (``torch.hann_window(400)``)."""
    n = np.arange(N_FFT, dtype=np.float64)
    window = (0.5 - 0.5 * np.cos(2.0 * math.pi * n / N_FFT)).astype(np.float32)
    window.setflags(write=False)
    return window


@lru_cache(maxsize=4)
def _sparse_filters(n_mels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each filter's non-zero bins and weights, concatenated, and where each filter starts."""
    filters = mel_filters(n_mels)
    bins: list[int] = []
    weights: list[float] = []
    starts: list[int] = []
    for row in filters:
        nonzero = np.flatnonzero(row)
        if nonzero.size == 0:  # an empty filter still needs one (zero-weight) entry
            nonzero = np.array([0])
        starts.append(len(bins))
        bins.extend(nonzero.tolist())
        weights.extend(row[nonzero].tolist())
    return (np.array(bins, np.intp), np.array(weights, np.float32), np.array(starts, np.intp))


def _apply_filters(n_mels: int, power: np.ndarray) -> np.ndarray:
    """``mel_filters(n_mels) @ power.T`` ([n_mels, frames]) without BLAS.

    The filters are sparse (about two non-zero weights per frequency bin), and a multi-threaded
    BLAS product here would compete for the cores with onnxruntime's threads right before the
    encoder runs, costing more than the product itself.
    """
    bins, weights, starts = _sparse_filters(n_mels)
    weighted = power[:, bins] * weights
    return np.add.reduceat(weighted, starts, axis=1).T


def frames_for_duration(num_samples: int) -> int:
    """Even number of 10 ms frames covering ``num_samples`` samples at 16 kHz (0 for none)."""
    if num_samples < 0:
        raise ConfigError(f"num_samples must be >= 0, got {num_samples}")
    frames = -(-num_samples // HOP_LENGTH)
    return frames + frames % ENCODER_STRIDE


def log_mel_spectrogram(audio: Any, n_mels: int = 80, n_frames: int | None = None) -> np.ndarray:
    """Whisper log-mel features ``[n_mels, n_frames]`` (float32) of 16 kHz float samples.

    ``n_frames`` defaults to :func:`frames_for_duration` of the audio; the audio is padded
    with zeros or trimmed to ``n_frames * 160`` samples. The result equals the first
    ``n_frames`` frames of whisper's features of the audio padded to 30 s whenever the
    window holds the whole audio (see the module docstring).
    """
    x = np.asarray(audio)
    if x.ndim != 1:
        raise AudioError(f"expected 1-D mono samples, got an array of shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioError(f"expected float samples, got dtype {x.dtype}")
    if n_frames is None:
        n_frames = frames_for_duration(x.size)
    if n_frames < 1:
        raise AudioError(f"need at least one frame of audio, got {x.size} samples, {n_frames=}")
    mel_filters(n_mels)  # checks n_mels

    pad = N_FFT // 2
    num_samples = n_frames * HOP_LENGTH
    # [reflected left edge | audio trimmed or zero-padded to num_samples | zeros]; the last
    # frame ends at num_samples + 240, and the reflection reads padded[1 .. pad].
    padded = np.zeros(pad + max(num_samples + N_FFT - pad, pad + 1), dtype=np.float32)
    used = min(x.size, num_samples)
    padded[pad : pad + used] = x[:used]
    padded[:pad] = padded[2 * pad : pad : -1]

    frames = sliding_window_view(padded, N_FFT)[: n_frames * HOP_LENGTH : HOP_LENGTH]
    spectrum = np.fft.rfft(frames * _hann_window(), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = _apply_filters(n_mels, power.astype(np.float32, copy=False))
    log_spec = np.log10(np.maximum(mel, LOG_FLOOR, dtype=np.float32))
    log_spec = np.maximum(log_spec, log_spec.max() - DYNAMIC_RANGE_LOG10)
    features: np.ndarray = ((log_spec + 4.0) / 4.0).astype(np.float32, copy=False)
    return features
