"""The held-out noise for the noisy benchmark, and the benchmark's way of mixing it in.

Noise: café-like babble of six overlapping talkers built from real human recordings that
training never uses — the French, Spanish and Italian prompts of Debian's
``asterisk-core-sounds-{fr,es,it}-wav`` packages (three professional voices, 8 kHz). The
training data pipeline (``training/``) draws its noise from other sources (coloured noise,
TTS babble, music on hold); keep it that way.

Two more real noises for the development bench (:mod:`benchmarks.devbench`), also never used
in training: game music and sound effects (engines, machines, ambience) from Debian's
``colobot-common-sounds``: :func:`music` and :func:`effects`.

Mixing follows the public Picovoice speech-to-intent benchmark: the noise covers the whole
recording, its level is set so that the loudest 2048-sample frame of speech is ``snr_db``
above the loudest 2048-sample frame of the noise segment, and the mix is scaled to half of
full scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from assistant.artifacts import cache_dir
from assistant.audio import SAMPLE_RATE_HZ, read_audio

SOUNDS = Path("/usr/share/asterisk/sounds")
VOICES = ("fr_CA_f_June", "es_MX_f_Allison", "it_IT_m_Carlo")
TALKERS = 6
DURATION_S = 120.0
FRAME = 2048


def babble(seed: int = 2026) -> np.ndarray:
    """Two minutes of six-talker babble (float32, 16 kHz), built once and cached."""
    path = cache_dir() / "benchmarks" / f"babble-{seed}.wav"
    if path.is_file():
        return read_audio(path)
    files = {v: sorted((SOUNDS / v).rglob("*.wav")) for v in VOICES}
    if not all(files.values()):
        raise SystemExit("the held-out babble needs Debian's asterisk-core-sounds-fr-wav, "
                         "-es-wav and -it-wav packages (apt-get install them)")
    rng = np.random.default_rng(seed)
    size = int(DURATION_S * SAMPLE_RATE_HZ)
    mix = np.zeros(size, np.float32)
    for talker in range(TALKERS):
        voice = files[VOICES[talker % len(VOICES)]]
        stream: list[np.ndarray] = []
        length = 0
        while length < size:
            clip = read_audio(voice[int(rng.integers(len(voice)))])
            clip = clip / (np.abs(clip).max() + 1e-9)
            gap = np.zeros(int(rng.uniform(0.05, 0.4) * SAMPLE_RATE_HZ), np.float32)
            stream += [clip, gap]
            length += clip.size + gap.size
        talk = np.concatenate(stream)[:size]
        mix += talk * float(rng.uniform(0.5, 1.0))
    mix = (0.5 * mix / np.abs(mix).max()).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, mix, SAMPLE_RATE_HZ, subtype="PCM_16")
    return read_audio(path)


COLOBOT = Path("/usr/share/games/colobot")


def _colobot(kind: str, pattern: str, seed: int) -> np.ndarray:
    """Two minutes of colobot ``pattern`` files laid end to end in a shuffled order (cached)."""
    path = cache_dir() / "benchmarks" / f"colobot-{kind}-{seed}.wav"
    if path.is_file():
        return read_audio(path)
    files = sorted(COLOBOT.rglob(pattern))
    if not files:
        raise FileNotFoundError(f"no {pattern} under {COLOBOT}: apt-get install "
                                f"colobot-common-sounds for the {kind} noise")
    rng = np.random.default_rng(seed)
    size = int(DURATION_S * SAMPLE_RATE_HZ)
    pieces: list[np.ndarray] = []
    length = 0
    while length < size:
        clip = read_audio(files[int(rng.integers(len(files)))])
        clip = clip / (np.abs(clip).max() + 1e-9)
        if kind == "music":  # a stretch of a track, not always its intro
            start = int(rng.integers(0, max(1, clip.size - 20 * SAMPLE_RATE_HZ)))
            clip = clip[start : start + 20 * SAMPLE_RATE_HZ]
        pieces.append(clip)
        length += clip.size
    mix = np.concatenate(pieces)[:size]
    mix = (0.5 * mix / (np.abs(mix).max() + 1e-9)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, mix, SAMPLE_RATE_HZ, subtype="PCM_16")
    return read_audio(path)


def music(seed: int = 2026) -> np.ndarray:
    """Two minutes of game music (colobot's soundtrack), never used in training."""
    return _colobot("music", "*.ogg", seed)


def effects(seed: int = 2026) -> np.ndarray:
    """Two minutes of game sound effects (engines, machines, ambience), never in training."""
    return _colobot("effects", "sound*.wav", seed)


def peak_frame_energy(x: np.ndarray, frame: int = FRAME) -> float:
    frames = x[: x.size // frame * frame].reshape(-1, frame)
    return float((frames.astype(np.float64) ** 2).sum(axis=1).max())


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float,
               rng: np.random.Generator) -> np.ndarray:
    """``speech`` plus a random stretch of ``noise`` at ``snr_db`` (loudest-frame SNR)."""
    if noise.size <= speech.size:
        raise ValueError(f"noise of {noise.size} samples is shorter than speech ({speech.size})")
    for _ in range(20):  # a stretch that is not silent (music has pauses)
        start = int(rng.integers(0, noise.size - speech.size))
        segment = noise[start : start + speech.size].astype(np.float64)
        if peak_frame_energy(segment) > 1e-8:
            break
    else:
        raise ValueError("the noise is silent wherever it was tried")
    scale = np.sqrt(peak_frame_energy(speech) / (peak_frame_energy(segment) * 10 ** (snr_db / 10)))
    mixed = speech + scale * segment
    return (mixed / (2 * np.abs(mixed).max())).astype(np.float32)
