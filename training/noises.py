"""Background noise for augmentation and non-speech negatives: what, from where, how made.

Sources (every one listed in the dataset card; none is the benchmark's held-out noise file):

* ``white``, ``pink``, ``brown``, ``blue``: coloured Gaussian noise, generated per clip;
* ``hum``: mains hum, 50 or 60 Hz with random harmonics and a little hiss, generated;
* ``fan``: low-passed rumble with a blade-pass tone and slow wobble, generated;
* ``music``: Debian's ``asterisk-moh-opsound-wav`` music-on-hold tracks (CC BY-SA 3.0,
  opsound.org; 8 kHz, so band-limited to 4 kHz), excerpts resampled to 16 kHz;
* ``babble``: several TTS talkers (training voices only, out-of-domain sentences, never
  grammar sentences) summed into tracks of crowd chatter.

Music excerpts and babble tracks are built once into ``cache_dir()/noises/bank-<key>.npz``
(``music`` and ``babble`` [tracks, samples] int16 plus their names); the generated kinds cost
nothing to make per clip. :func:`noise_clip` returns any kind, reproducibly from a seed.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt

from assistant.artifacts import cache_dir
from assistant.audio import SAMPLE_RATE_HZ
from assistant.errors import ConfigError
from assistant.resample import resample

from .negatives import OUT_OF_DOMAIN
from .rooms import save_npz_atomically
from .tts import Voice, synthesize, voice_catalog

GENERATED_KINDS = ("white", "pink", "brown", "blue", "hum", "fan")
BANK_KINDS = ("music", "babble")
NOISE_KINDS = GENERATED_KINDS + BANK_KINDS
MUSIC_DIR = Path("/usr/share/asterisk/moh")
# The noisy benchmark's held-out babble is built from these recordings (benchmarks/noise.py):
# training must never hear them.
HELD_OUT_NOISE_DIRS = (Path("/usr/share/asterisk/sounds"),)
MUSIC_PACKAGE = "asterisk-moh-opsound-wav"
BABBLE_ENGINES = ("espeak", "flite", "piper")  # fast engines: babble is built at every new key
BANK_VERSION = 1


@dataclass(frozen=True)
class NoiseBankConfig:
    music_dir: str = str(MUSIC_DIR)
    music_excerpt_s: float = 60.0
    babble_tracks: int = 4
    babble_track_s: float = 12.0
    min_talkers: int = 3
    max_talkers: int = 6
    seed: int = 0

    def __post_init__(self) -> None:
        music = Path(self.music_dir).resolve()
        for held_out in HELD_OUT_NOISE_DIRS:
            if music == held_out or held_out in music.parents or music in held_out.parents:
                raise ConfigError(f"music_dir {music} overlaps {held_out}, the benchmark's "
                                  f"held-out noise: training must not use it")
        if not 1 <= self.min_talkers <= self.max_talkers:
            raise ConfigError(f"talkers range [{self.min_talkers}, {self.max_talkers}] is invalid")
        if self.babble_tracks < 1 or self.babble_track_s <= 0:
            raise ConfigError("babble needs at least one track of positive length")

    def key(self) -> str:
        text = json.dumps({**asdict(self), "version": BANK_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class NoiseBank:
    music: tuple[np.ndarray, ...]  # float32 16 kHz excerpts
    music_names: tuple[str, ...]
    babble: tuple[np.ndarray, ...]
    babble_names: tuple[str, ...]
    path: Path

    def kinds(self) -> tuple[str, ...]:
        return GENERATED_KINDS + tuple(k for k in BANK_KINDS if getattr(self, k))


def music_files(config: NoiseBankConfig) -> list[Path]:
    return sorted(Path(config.music_dir).glob("*.wav"))


def _music(config: NoiseBankConfig) -> tuple[list[np.ndarray], list[str]]:
    tracks, names = [], []
    for path in music_files(config):
        info = sf.info(path)
        frames = min(info.frames, int(config.music_excerpt_s * info.samplerate))
        start = (info.frames - frames) // 3  # past any intro
        audio, rate = sf.read(path, start=start, frames=frames, dtype="float32", always_2d=True)
        tracks.append(resample(audio.mean(axis=1), rate, SAMPLE_RATE_HZ))
        names.append(path.stem)
    return tracks, names


def _babble(config: NoiseBankConfig) -> tuple[list[np.ndarray], list[str]]:
    rng = random.Random(config.seed)
    voices = [v for v in voice_catalog(BABBLE_ENGINES).train]
    if not voices:
        return [], []
    samples = int(config.babble_track_s * SAMPLE_RATE_HZ)
    tracks, names = [], []
    for t in range(config.babble_tracks):
        talkers = rng.randint(config.min_talkers, config.max_talkers)
        track = np.zeros(samples)
        for _ in range(talkers):
            voice = rng.choice(voices)
            stream: list[np.ndarray] = [np.zeros(int(rng.uniform(0, 1.0) * SAMPLE_RATE_HZ))]
            while sum(s.size for s in stream) < samples:
                speech = synthesize(rng.choice(OUT_OF_DOMAIN), Voice(voice.engine, voice.name))
                rms = float(np.sqrt(np.mean(speech**2))) or 1.0
                stream += [speech / rms, np.zeros(int(rng.uniform(0.05, 0.4) * SAMPLE_RATE_HZ))]
            track += np.concatenate(stream)[:samples]
        tracks.append((track / np.abs(track).max()).astype(np.float32))
        names.append(f"babble{t}x{talkers}")
    return tracks, names


def ensure_noise_bank(config: NoiseBankConfig = NoiseBankConfig()) -> Path:
    """The cached bank file for ``config``, built on first use (music read, babble spoken)."""
    path = cache_dir() / "noises" / f"bank-{config.key()}.npz"
    if path.is_file():
        return path
    music, music_names = _music(config)
    babble, babble_names = _babble(config)
    arrays: dict[str, np.ndarray] = {
        "music_names": np.array(music_names, dtype=str),
        "babble_names": np.array(babble_names, dtype=str),
    }
    for kind, tracks in (("music", music), ("babble", babble)):
        for i, track in enumerate(tracks):
            arrays[f"{kind}_{i}"] = np.round(np.clip(track, -1, 1) * 32767).astype(np.int16)
    save_npz_atomically(path, arrays)
    return path


@lru_cache(maxsize=4)
def load_noise_bank(path: Path) -> NoiseBank:
    with np.load(path) as data:
        def tracks(kind: str, count: int) -> tuple[np.ndarray, ...]:
            return tuple(data[f"{kind}_{i}"].astype(np.float32) / 32767 for i in range(count))

        music_names = tuple(str(n) for n in data["music_names"])
        babble_names = tuple(str(n) for n in data["babble_names"])
        return NoiseBank(tracks("music", len(music_names)), music_names,
                         tracks("babble", len(babble_names)), babble_names, path)


def coloured_noise(kind: str, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f^a power spectrum: white 0, pink 1, brown 2, blue -1."""
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0}[kind]
    white = rng.standard_normal(samples)
    if exponent == 0.0:
        return white.astype(np.float32)
    spectrum = np.fft.rfft(white)
    freqs = np.maximum(np.fft.rfftfreq(samples, 1 / SAMPLE_RATE_HZ), 20.0)
    shaped = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=samples)
    return (shaped / (np.std(shaped) or 1.0)).astype(np.float32)


def hum(samples: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(samples) / SAMPLE_RATE_HZ
    base = float(rng.choice([50.0, 60.0]))
    harmonics = rng.uniform(0.0, 1.0, 8) / np.arange(1, 9)
    phases = rng.uniform(0, 2 * np.pi, 8)
    tone = sum(a * np.sin(2 * np.pi * base * (k + 1) * t + p)
               for k, (a, p) in enumerate(zip(harmonics, phases, strict=True)))
    return (tone + 0.02 * rng.standard_normal(samples)).astype(np.float32)


def fan(samples: int, rng: np.random.Generator) -> np.ndarray:
    cutoff_hz = rng.uniform(300, 2000)
    rumble = sosfilt(butter(2, cutoff_hz, fs=SAMPLE_RATE_HZ, output="sos"),
                     rng.standard_normal(samples))
    t = np.arange(samples) / SAMPLE_RATE_HZ
    blade_hz = rng.uniform(40, 160)
    tone = 0.3 * np.sin(2 * np.pi * blade_hz * t) + 0.1 * np.sin(4 * np.pi * blade_hz * t)
    wobble = 1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t)
    x = (rumble / (np.std(rumble) or 1.0) + tone) * wobble
    return x.astype(np.float32)


def noise_clip(kind: str, samples: int, seed: int, bank: NoiseBank | None
               ) -> tuple[np.ndarray, str]:
    """``samples`` of noise of ``kind``, and the name of its source, from ``seed``."""
    rng = np.random.default_rng(seed)
    if kind in ("white", "pink", "brown", "blue"):
        return coloured_noise(kind, samples, rng), kind
    if kind == "hum":
        return hum(samples, rng), kind
    if kind == "fan":
        return fan(samples, rng), kind
    if kind not in BANK_KINDS:
        raise ConfigError(f"unknown noise kind {kind!r} (known: {NOISE_KINDS})")
    tracks = getattr(bank, kind) if bank is not None else ()
    if not tracks:
        raise ConfigError(f"no {kind} noise in the bank (music needs apt-get install "
                          f"{MUSIC_PACKAGE}; babble needs a TTS engine)")
    names = bank.music_names if kind == "music" else bank.babble_names  # type: ignore[union-attr]
    index = int(rng.integers(len(tracks)))
    track = tracks[index]
    if track.size <= samples:
        return np.tile(track, samples // track.size + 1)[:samples], f"{kind}:{names[index]}"
    start = int(rng.integers(track.size - samples))
    return track[start : start + samples], f"{kind}:{names[index]}"
