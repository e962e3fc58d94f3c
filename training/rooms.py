"""Simulated rooms: a bank of impulse responses, computed once and cached.

Shoebox rooms from pyroomacoustics' image-source method: sizes from a closet to a living
room, reverberation times (RT60) 0.15-0.9 s through Sabine's absorption, and a talker at
0.3-4 m from the microphone, both at least 0.3 m from every wall. The reflection order is
capped at :attr:`RoomBankConfig.max_order` (the tail of the slowest rooms is a little short).
Each response is trimmed to start just before its direct path (so reverberation adds no
leading delay) and to :attr:`RoomBankConfig.max_ir_s`, and normalized to a unit direct path.

The bank is an ``.npz`` (``irs`` [n, samples] float32, ``lengths``, ``rt60_s``,
``distance_m``, ``room_m`` [n, 3]) under ``cache_dir()/rooms``, keyed by the config and the
pyroomacoustics version. Deterministic: a fixed seed places every room.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from assistant.artifacts import cache_dir
from assistant.audio import SAMPLE_RATE_HZ
from assistant.errors import ConfigError, MissingDependencyError

PRE_DELAY_SAMPLES = 16  # kept before the direct path (1 ms)


@dataclass(frozen=True)
class RoomBankConfig:
    rooms: int = 120
    min_room_m: tuple[float, float, float] = (2.0, 2.0, 2.2)
    max_room_m: tuple[float, float, float] = (9.0, 7.0, 3.5)
    min_rt60_s: float = 0.15
    max_rt60_s: float = 0.9
    min_distance_m: float = 0.3
    max_distance_m: float = 4.0
    wall_margin_m: float = 0.3
    max_order: int = 40
    max_ir_s: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rooms < 1:
            raise ConfigError(f"room bank needs at least 1 room, got {self.rooms}")
        if not 0.05 <= self.min_rt60_s <= self.max_rt60_s <= 3.0:
            raise ConfigError(f"RT60 range [{self.min_rt60_s}, {self.max_rt60_s}] s is invalid")
        if not 0.0 < self.min_distance_m <= self.max_distance_m:
            raise ConfigError(f"distance range [{self.min_distance_m}, "
                              f"{self.max_distance_m}] m is invalid")

    def key(self, version: str) -> str:
        text = json.dumps({**asdict(self), "pyroomacoustics": version}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RoomBank:
    irs: np.ndarray  # [n, samples] float32, zero-padded
    lengths: np.ndarray  # [n] int
    rt60_s: np.ndarray  # [n] target RT60
    distance_m: np.ndarray  # [n]
    room_m: np.ndarray  # [n, 3]
    path: Path

    def __len__(self) -> int:
        return int(self.lengths.size)

    def ir(self, index: int) -> np.ndarray:
        return self.irs[index, : self.lengths[index]]


def _pyroomacoustics():  # type: ignore[no-untyped-def]
    try:
        import pyroomacoustics
    except ImportError as e:
        raise MissingDependencyError("pyroomacoustics", "train", "room simulation") from e
    return pyroomacoustics


def _place(rng: np.random.Generator, room: np.ndarray, config: RoomBankConfig
           ) -> tuple[np.ndarray, np.ndarray]:
    low = np.full(3, config.wall_margin_m)
    high = room - config.wall_margin_m
    for _ in range(1000):
        source = rng.uniform(low, high)
        source[2] = rng.uniform(1.0, min(1.9, high[2]))  # a standing or sitting talker
        distance = rng.uniform(config.min_distance_m, config.max_distance_m)
        angle = rng.uniform(0, 2 * np.pi)
        mic = source + distance * np.array([np.cos(angle), np.sin(angle), 0.0])
        mic[2] = rng.uniform(0.7, min(1.5, high[2]))
        if np.all(mic >= low) and np.all(mic <= high):
            return source, mic
    raise ConfigError(f"cannot place a talker and a microphone in a {room} m room")


def build_room_bank(config: RoomBankConfig) -> dict[str, np.ndarray]:
    """Compute every impulse response of the bank (a few seconds)."""
    pra = _pyroomacoustics()
    rng = np.random.default_rng(config.seed)
    max_samples = int(config.max_ir_s * SAMPLE_RATE_HZ)
    irs = np.zeros((config.rooms, max_samples), np.float32)
    lengths = np.zeros(config.rooms, np.int64)
    rt60s = np.zeros(config.rooms)
    distances = np.zeros(config.rooms)
    rooms = np.zeros((config.rooms, 3))
    for i in range(config.rooms):
        room = rng.uniform(config.min_room_m, config.max_room_m)
        rt60 = rng.uniform(config.min_rt60_s, config.max_rt60_s)
        source, mic = _place(rng, room, config)
        try:
            absorption, order = pra.inverse_sabine(rt60, room)
        except ValueError:  # too reverberant for the room's size: use the least absorption
            absorption, order = 0.01, config.max_order
        shoebox = pra.ShoeBox(room, fs=SAMPLE_RATE_HZ, materials=pra.Material(absorption),
                              max_order=min(order, config.max_order))
        shoebox.add_source(source)
        shoebox.add_microphone(mic)
        shoebox.compute_rir()
        ir = np.asarray(shoebox.rir[0][0], np.float64)
        direct = int(np.argmax(np.abs(ir)))
        ir = ir[max(0, direct - PRE_DELAY_SAMPLES) :][:max_samples]
        ir /= np.abs(ir).max()
        irs[i, : ir.size] = ir
        lengths[i] = ir.size
        rt60s[i] = rt60
        distances[i] = float(np.linalg.norm(mic - source))
        rooms[i] = room
    return {"irs": irs, "lengths": lengths, "rt60_s": rt60s, "distance_m": distances,
            "room_m": rooms}


def ensure_room_bank(config: RoomBankConfig = RoomBankConfig()) -> Path:
    """The cached bank file for ``config``, built on first use."""
    version = getattr(_pyroomacoustics(), "__version__", "unknown")
    path = cache_dir() / "rooms" / f"bank-{config.key(version)}.npz"
    if not path.is_file():
        save_npz_atomically(path, build_room_bank(config))
    return path


def save_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a cache file so that a reader never sees it half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    Path(tmp).replace(path)


@lru_cache(maxsize=4)
def load_room_bank(path: Path) -> RoomBank:
    with np.load(path) as data:
        return RoomBank(data["irs"], data["lengths"], data["rt60_s"], data["distance_m"],
                        data["room_m"], path)


def reverberate(speech: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """``speech`` heard through ``ir``, with the reverberant tail kept (longer output)."""
    wet = fftconvolve(np.asarray(speech, np.float64), np.asarray(ir, np.float64))
    return wet.astype(np.float32)
