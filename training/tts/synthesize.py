"""Speak a sentence with a :class:`Voice`: dispatch to the engine, resample, convert, cache.

Two cache levels under ``cache_dir()/tts`` (16 kHz 16-bit WAV, named by sha256):

* the engine's output, keyed by (:attr:`Voice.engine_id`, respelled text), resampled to 16 kHz;
* the converted voice, keyed by (:attr:`Voice.id`, text), when a pitch/formant shift applies.

So a rerun synthesizes only what is new, and conversions of one engine output share it.
Writes go through a unique temporary file and an atomic rename, so parallel worker processes
can share the cache. Engines are loaded once per process, on first use
(:func:`training.tts.engine.load_engine`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from assistant.artifacts import cache_dir
from assistant.audio import SAMPLE_RATE_HZ
from assistant.resample import resample

from .conversion import convert
from .engine import load_engine
from .lexicon import respell
from .voice import SynthesisError, Voice

CACHE_VERSION = 1
MAX_PEAK = 0.99  # louder engine output is scaled down, never clipped
def speak_raw(text: str, voice: Voice) -> np.ndarray:
    """The engine's audio for ``text`` (respelled for it), float32 mono 16 kHz, uncached."""
    spoken = respell(text, voice.engine)
    audio, rate_hz = load_engine(voice.engine).speak(spoken, voice)
    if audio.size == 0:
        raise SynthesisError(f"{voice.id} produced no audio for {text!r}")
    return np.asarray(resample(audio, rate_hz, SAMPLE_RATE_HZ), np.float32)


def _cache_path(root: Path, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return root / digest[:2] / f"{digest}.wav"


def _load(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    audio, _ = sf.read(path, dtype="float32")
    return np.asarray(audio, np.float32)


def _store(path: Path, audio: np.ndarray) -> np.ndarray:
    """Write 16-bit audio atomically and return exactly what a later read gives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > MAX_PEAK:
        audio = audio * (MAX_PEAK / peak)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".wav.tmp")
    os.close(fd)
    sf.write(tmp, audio, SAMPLE_RATE_HZ, subtype="PCM_16", format="WAV")
    Path(tmp).replace(path)
    stored = _load(path)
    if stored is None:  # pragma: no cover - the file was just written
        raise SynthesisError(f"cache file {path} vanished after writing")
    return stored


def synthesize(text: str, voice: Voice, cache: Path | None = None) -> np.ndarray:
    """Speak ``text`` with ``voice``: float32 mono 16 kHz, cached on disk (see module docs)."""
    root = cache or cache_dir() / "tts"
    raw_voice = Voice(voice.engine, voice.name, voice.rate, voice.pitch, voice.noise_scale,
                      voice.noise_w, voice.seed)
    # The first level keeps the historical key of the command-line engines' cache.
    raw_path = _cache_path(root, f"{raw_voice.id}\n{text}")
    raw = _load(raw_path)
    if raw is None:
        raw = _store(raw_path, speak_raw(text, raw_voice))
    if not voice.converted:
        return raw
    path = _cache_path(root, f"v{CACHE_VERSION}\n{voice.id}\n{text}")
    converted = _load(path)
    if converted is None:
        converted = _store(path, convert(raw, voice.semitones, voice.formant_ratio))
    return converted
