"""Microphone input through sounddevice (PortAudio), as an async iterator of int16 chunks.

Failures come out as :class:`AudioInputError` with a message for people: sounddevice not
installed (the ``mic`` extra), the PortAudio library missing, no input device, a bad device.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from assistant.errors import AudioError, MissingDependencyError

logger = logging.getLogger("assistant.clients.audio_input")


class AudioInputError(AudioError):
    """The microphone cannot be opened (no device, no PortAudio, bad device)."""


def sounddevice_module() -> Any:
    """The ``sounddevice`` module, or a clear error when it or PortAudio is missing."""
    try:
        import sounddevice
    except ImportError as e:
        raise MissingDependencyError("sounddevice", "mic", "microphone input") from e
    except OSError as e:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise AudioInputError(
            f"the PortAudio library is missing ({e}); install it, e.g. "
            f"'sudo apt-get install libportaudio2' or 'brew install portaudio'") from e
    return sounddevice


def input_devices() -> list[dict[str, Any]]:
    """The input devices: ``{"index", "name", "channels", "default_rate_hz", "default"}``."""
    sd = sounddevice_module()
    try:
        devices = sd.query_devices()
        default = sd.default.device[0] if sd.default.device else None
    except sd.PortAudioError as e:
        raise AudioInputError(f"cannot list audio devices: {e}") from e
    return [{"index": i, "name": d["name"], "channels": d["max_input_channels"],
             "default_rate_hz": int(d["default_samplerate"]), "default": i == default}
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def level_dbfs(chunk: np.ndarray) -> float:
    """RMS level of int16 samples in dBFS (-100 for silence)."""
    if chunk.size == 0:
        return -100.0
    rms = float(np.sqrt(np.mean((chunk.astype(np.float32) / 32768.0) ** 2)))
    return max(-100.0, 20 * float(np.log10(rms + 1e-10)))


async def microphone_chunks(sample_rate_hz: int, device: int | str | None = None,
                            chunk_ms: int = 100,
                            on_level: Callable[[float], None] | None = None
                            ) -> AsyncIterator[np.ndarray]:
    """int16 mono chunks from an input device at ``sample_rate_hz`` until cancelled."""
    sd = sounddevice_module()
    if not input_devices():
        raise AudioInputError("no audio input device found (is a microphone connected? "
                              "'assistant mic --list-devices' lists them; use --file to "
                              "stream a WAV instead)")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=50)

    def callback(data: np.ndarray, frames: int, when: Any, status: Any) -> None:
        if status:
            logger.debug("input status: %s", status)
        chunk = data[:, 0].copy()
        loop.call_soon_threadsafe(_offer, queue, chunk)

    try:
        stream = sd.InputStream(samplerate=sample_rate_hz, channels=1, dtype="int16",
                                blocksize=sample_rate_hz * chunk_ms // 1000, device=device,
                                callback=callback)
    except (sd.PortAudioError, ValueError) as e:
        raise AudioInputError(f"cannot open input device {device!r} at {sample_rate_hz} Hz: "
                              f"{e}") from e
    with stream:
        while True:
            chunk = await queue.get()
            if on_level is not None:
                on_level(level_dbfs(chunk))
            yield chunk


def _offer(queue: asyncio.Queue[np.ndarray], chunk: np.ndarray) -> None:
    if queue.full():  # the network is slower than the microphone: drop the oldest
        queue.get_nowait()
    queue.put_nowait(chunk)
