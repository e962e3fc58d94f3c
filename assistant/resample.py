"""Streaming rational resampling with a polyphase Kaiser-windowed sinc filter, in numpy.

A rate change ``in_rate_hz -> out_rate_hz`` is the rational factor ``up / down`` (reduced by
their gcd). Conceptually the input is upsampled by ``up`` (zeros inserted), low-pass filtered
at the high rate ``L = up * in_rate_hz`` and decimated by ``down``; the polyphase form only
computes the outputs that are kept. Output sample ``n`` sits at time ``n / out_rate_hz`` and is

    y[n] = sum_i x[i] * h(n * down - i * up)

with ``h`` a zero-phase (centred) low-pass, so there is no group delay: the output is aligned
with the input like ``scipy.signal.resample_poly`` and ``torchaudio.functional.resample``.
Samples before the start and after the end of the signal count as zeros.

Filter: passband up to ``PASSBAND_EDGE`` x the lower Nyquist frequency (6.8 kHz for 16 kHz
output), stopband from the lower Nyquist frequency on, attenuated by at least
``STOPBAND_DB`` (Kaiser design formulas). So nothing above 8 kHz aliases into a 16 kHz output
above -80 dB, and nothing is imaged above the input's Nyquist when upsampling.

Streaming: :class:`Resampler` emits each output as soon as every input it depends on has
arrived (a latency of about 33 samples of the lower rate, ~2 ms at 16 kHz), and computes it
from exactly the same inputs and taps whatever the chunking, so any chunking gives the same
samples (to float32 rounding). :meth:`Resampler.flush` ends the stream: it pads zeros and
emits the tail so that a whole signal of ``n`` samples gives ``round(n * out / in)`` outputs
(halves round up), exactly what the one-shot :func:`resample` returns.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from assistant.errors import AudioFormatError
from assistant.pcm import SAMPLE_RATE_HZ

MIN_RATE_HZ = 1000
MAX_RATE_HZ = 192000

PASSBAND_EDGE = 0.85  # fraction of the lower Nyquist frequency kept flat (6.8 kHz at 16 kHz)
STOPBAND_EDGE = 1.0  # fraction of the lower Nyquist frequency where the stopband starts
STOPBAND_DB = 80.0  # minimum stopband attenuation of the design

_BLOCK_OUTPUTS = 4096  # outputs computed per vectorised block (bounds temporary memory)


def check_rate(rate_hz: Any, name: str = "sample rate") -> int:
    """Return ``rate_hz`` as an int, or raise :class:`AudioFormatError` naming the bad value."""
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, int | float | np.integer):
        raise AudioFormatError(f"{name} must be an integer number of Hz, got {rate_hz!r}")
    if isinstance(rate_hz, float) and (not math.isfinite(rate_hz) or not rate_hz.is_integer()):
        raise AudioFormatError(f"{name} must be a whole number of Hz, got {rate_hz!r}")
    rate = int(rate_hz)
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        shown = rate if abs(rate) < 10**12 else f"a {rate.bit_length()}-bit number of"
        raise AudioFormatError(
            f"{name} of {shown} Hz is out of range ({MIN_RATE_HZ}..{MAX_RATE_HZ} Hz)"
        )
    return rate


def output_length(num_samples: int, in_rate_hz: int, out_rate_hz: int) -> int:
    """Number of output samples for a whole signal: ``round(num_samples * out / in)``, halves up."""
    return (2 * num_samples * out_rate_hz + in_rate_hz) // (2 * in_rate_hz)


@lru_cache(maxsize=32)
def _filter_bank(up: int, down: int) -> tuple[np.ndarray, int]:
    """Polyphase filter bank for ``up / down``: ``(bank[up, taps], radius)``.

    Output ``n`` with ``pos = n * down`` uses inputs ``pos // up - radius + t`` for
    ``t in range(taps)`` with weights ``bank[pos % up, t]``.
    """
    ratio = max(up, down)  # high rate / lower of the two rates
    # Kaiser design: transition width in cycles per high-rate sample.
    transition = (STOPBAND_EDGE - PASSBAND_EDGE) * 0.5 / ratio
    order = (STOPBAND_DB - 7.95) / (2.285 * 2.0 * math.pi * transition)
    half = math.ceil(order / 2.0)
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    cutoff = 0.5 * (PASSBAND_EDGE + STOPBAND_EDGE) * 0.5 / ratio  # cycles per high-rate sample
    m = np.arange(-half, half + 1, dtype=np.float64)
    proto = 2.0 * cutoff * np.sinc(2.0 * cutoff * m) * np.kaiser(2 * half + 1, beta)
    proto *= up / proto.sum()  # unit DC gain after inserting up - 1 zeros per input sample

    radius = half // up + 1
    taps = 2 * radius + 1
    phase = np.arange(up)[:, None]
    offset = phase + (radius - np.arange(taps))[None, :] * up  # m = pos - i * up
    inside = np.abs(offset) <= half
    bank = np.where(inside, proto[np.clip(offset + half, 0, 2 * half)], 0.0)
    out = np.ascontiguousarray(bank, dtype=np.float32)
    out.setflags(write=False)
    return out, radius


def _as_samples(chunk: Any) -> np.ndarray:
    x = np.asarray(chunk)
    if x.ndim != 1:
        raise AudioFormatError(f"expected 1-D mono samples, got an array of shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioFormatError(
            f"expected float samples in [-1, 1], got dtype {x.dtype} "
            "(convert int16 PCM with assistant.audio.as_float32)"
        )
    return x.astype(np.float32, copy=False)


class Resampler:
    """Streaming resampler from ``in_rate_hz`` to ``out_rate_hz`` for one stream.

    ``process(chunk)`` takes 1-D float samples and returns the outputs that are complete;
    ``flush()`` returns the tail and makes the resampler ready for a new stream.
    Equal rates pass samples through unchanged (as float32).
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int = SAMPLE_RATE_HZ):
        self.in_rate_hz = check_rate(in_rate_hz, "input sample rate")
        self.out_rate_hz = check_rate(out_rate_hz, "output sample rate")
        g = math.gcd(self.in_rate_hz, self.out_rate_hz)
        self.up = self.out_rate_hz // g
        self.down = self.in_rate_hz // g
        self._passthrough = self.up == self.down
        if self._passthrough:
            self._bank = np.ones((1, 1), dtype=np.float32)
            self._radius = 0
        else:
            self._bank, self._radius = _filter_bank(self.up, self.down)
        self.reset()

    @property
    def taps_per_output(self) -> int:
        """Input samples weighted for each output sample."""
        return int(self._bank.shape[1])

    def reset(self) -> None:
        """Forget the stream so far."""
        self._buffer = np.zeros(self._radius, dtype=np.float32)
        self._buffer_start = -self._radius  # absolute input index of _buffer[0]
        self._in_count = 0
        self._next_out = 0

    def process(self, chunk: Any) -> np.ndarray:
        """Feed 1-D float samples; return the output samples completed by them (float32)."""
        x = _as_samples(chunk)
        if self._passthrough:
            self._in_count += x.size
            return x.copy()
        if x.size:
            self._buffer = np.concatenate([self._buffer, x])
            self._in_count += x.size
        # Output n needs inputs up to (n * down) // up + radius <= in_count - 1.
        last = (self._in_count - self._radius) * self.up - 1
        n_end = last // self.down + 1 if last >= 0 else 0
        return self._emit(n_end)

    def flush(self) -> np.ndarray:
        """End the stream: return the remaining outputs, then reset for a new stream."""
        if self._passthrough:
            self.reset()
            return np.zeros(0, dtype=np.float32)
        total = output_length(self._in_count, self.down, self.up)
        if total > self._next_out:
            need_end = ((total - 1) * self.down) // self.up + self._radius + 1
            have_end = self._buffer_start + self._buffer.size
            if need_end > have_end:
                pad = np.zeros(need_end - have_end, dtype=np.float32)
                self._buffer = np.concatenate([self._buffer, pad])
        tail = self._emit(max(total, self._next_out))
        self.reset()
        return tail

    def _emit(self, n_end: int) -> np.ndarray:
        if n_end <= self._next_out:
            return np.zeros(0, dtype=np.float32)
        taps = self._bank.shape[1]
        windows = sliding_window_view(self._buffer, taps)
        out = np.empty(n_end - self._next_out, dtype=np.float32)
        for block_start in range(self._next_out, n_end, _BLOCK_OUTPUTS):
            n = np.arange(block_start, min(block_start + _BLOCK_OUTPUTS, n_end), dtype=np.int64)
            pos = n * self.down
            rows = pos // self.up - self._radius - self._buffer_start
            # Multiply then sum each row: the same arithmetic for an output sample however the
            # stream was chunked (a BLAS product may block rows differently per call size).
            weights = self._bank[0] if self.up == 1 else self._bank[pos % self.up]
            y = np.sum(windows[rows] * weights, axis=1)
            out[block_start - self._next_out : block_start - self._next_out + n.size] = y
        self._next_out = n_end
        keep_from = (n_end * self.down) // self.up - self._radius - self._buffer_start
        if keep_from > 0:
            self._buffer = self._buffer[keep_from:].copy()
            self._buffer_start += keep_from
        return out


def resample(x: Any, in_rate_hz: int, out_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Resample a whole 1-D float signal; ``round(len(x) * out / in)`` samples (halves up)."""
    resampler = Resampler(in_rate_hz, out_rate_hz)
    head = resampler.process(x)
    return np.concatenate([head, resampler.flush()])
