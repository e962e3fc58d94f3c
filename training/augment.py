"""Make clean TTS sound like a real recording: speed, room, silence, noise, clipping, level, codec.

Two steps, so that every clip records exactly what was done to it:

* :func:`sample_settings` draws an :class:`AugmentSettings` from a seeded generator and an
  :class:`AugmentConfig` (probabilities and ranges);
* :func:`apply` is a pure function of (audio, settings, banks): the same inputs give the same
  samples, bit for bit. ``settings.to_json()`` goes into the manifest.

Order (as sound travels): speed perturbation (resampling, 0.9-1.1) -> room impulse response
-> leading/trailing silence (0.1-1.5 s) -> background noise at 0-30 dB peak-frame SNR over the
whole clip -> clipping -> level (-35..-5 dBFS loudest-frame RMS, peak kept below full scale)
-> channel (telephone band, Opus or MP3 round trip).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from assistant.audio import SAMPLE_RATE_HZ
from assistant.errors import ConfigError
from assistant.resample import resample

from .codecs import clip, codec_round_trip, telephone
from .levels import mix_at_snr, set_level_dbfs
from .noises import NoiseBank, noise_clip
from .rooms import RoomBank, reverberate

CHANNELS = ("none", "telephone", "opus", "mp3")


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (``p_*``) and ranges of each augmentation; see the module docs."""

    p_speed: float = 0.5
    min_speed: float = 0.9
    max_speed: float = 1.1
    p_room: float = 0.6
    min_lead_s: float = 0.1
    max_lead_s: float = 1.5
    p_noise: float = 0.8
    min_snr_db: float = 0.0
    max_snr_db: float = 30.0
    noise_weights: tuple[tuple[str, float], ...] = (
        ("white", 0.5), ("pink", 1.0), ("brown", 0.7), ("blue", 0.2), ("hum", 0.4),
        ("fan", 0.8), ("music", 1.2), ("babble", 1.2),
    )
    p_clip: float = 0.05
    min_clip_fraction: float = 0.3
    max_clip_fraction: float = 0.8
    min_level_dbfs: float = -35.0
    max_level_dbfs: float = -5.0
    channel_weights: tuple[tuple[str, float], ...] = (
        ("none", 0.7), ("telephone", 0.1), ("opus", 0.1), ("mp3", 0.1),
    )

    def __post_init__(self) -> None:
        for name in ("p_speed", "p_room", "p_noise", "p_clip"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for low, high in (("min_speed", "max_speed"), ("min_lead_s", "max_lead_s"),
                          ("min_snr_db", "max_snr_db"), ("min_level_dbfs", "max_level_dbfs"),
                          ("min_clip_fraction", "max_clip_fraction")):
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(f"{low} {getattr(self, low)} > {high} {getattr(self, high)}")
        if not (self.min_speed >= 0.5 and self.max_speed <= 2.0):
            raise ConfigError(f"speed range [{self.min_speed}, {self.max_speed}] not in [0.5, 2]")
        if self.max_level_dbfs > 0.0:
            raise ConfigError(f"max_level_dbfs must be <= 0, got {self.max_level_dbfs}")
        unknown = {c for c, _ in self.channel_weights} - set(CHANNELS)
        if unknown:
            raise ConfigError(f"unknown channels {sorted(unknown)} (known: {CHANNELS})")


@dataclass(frozen=True)
class AugmentSettings:
    """What was done to one clip (``None`` / 1.0 / "none": that step was skipped)."""

    speed: float = 1.0
    room: int | None = None  # index in the room bank
    rt60_s: float | None = None  # the room's, for reports
    lead_s: float = 0.0
    trail_s: float = 0.0
    noise: str | None = None  # noise kind
    noise_seed: int = 0
    snr_db: float | None = None
    clip_fraction: float | None = None
    level_dbfs: float = -20.0  # target; the peak limit may lower it
    channel: str = "none"
    codec_quality: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AugmentSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _weighted(rng: np.random.Generator, weights: tuple[tuple[str, float], ...],
              allowed: tuple[str, ...]) -> str:
    names = [n for n, w in weights if n in allowed and w > 0]
    if not names:
        raise ConfigError(f"no allowed choice among {weights} (available: {allowed})")
    p = np.array([w for n, w in weights if n in allowed and w > 0])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_settings(rng: np.random.Generator, config: AugmentConfig,
                    rooms: RoomBank | None, noises: NoiseBank | None,
                    speech: bool = True) -> AugmentSettings:
    """Draw one clip's settings. ``speech=False`` (non-speech clips): level and channel only."""
    level = round(float(rng.uniform(config.min_level_dbfs, config.max_level_dbfs)), 2)
    channel = _weighted(rng, config.channel_weights, CHANNELS)
    quality = round(float(rng.uniform(0.0, 0.6)), 2) if channel in ("opus", "mp3") else None
    if not speech:
        return AugmentSettings(level_dbfs=level, channel=channel, codec_quality=quality)
    speed = 1.0
    if rng.random() < config.p_speed:
        speed = round(float(rng.uniform(config.min_speed, config.max_speed)), 2)
    room = rt60 = None
    if rooms is not None and len(rooms) and rng.random() < config.p_room:
        room = int(rng.integers(len(rooms)))
        rt60 = round(float(rooms.rt60_s[room]), 3)
    lead = round(float(rng.uniform(config.min_lead_s, config.max_lead_s)), 3)
    trail = round(float(rng.uniform(config.min_lead_s, config.max_lead_s)), 3)
    noise = snr = None
    noise_seed = int(rng.integers(1 << 31))
    if rng.random() < config.p_noise:
        kinds = noises.kinds() if noises is not None else ("white", "pink", "brown", "blue",
                                                           "hum", "fan")
        noise = _weighted(rng, config.noise_weights, kinds)
        snr = round(float(rng.uniform(config.min_snr_db, config.max_snr_db)), 2)
    clip_fraction = None
    if rng.random() < config.p_clip:
        clip_fraction = round(float(rng.uniform(config.min_clip_fraction,
                                                config.max_clip_fraction)), 2)
    return AugmentSettings(speed, room, rt60, lead, trail, noise, noise_seed, snr,
                           clip_fraction, level, channel, quality)


def change_speed(x: np.ndarray, speed: float) -> np.ndarray:
    """Play ``speed`` times faster (pitch moves too, like tape), by resampling."""
    if speed == 1.0:
        return x
    return resample(x, round(SAMPLE_RATE_HZ * speed), SAMPLE_RATE_HZ)


def apply(audio: np.ndarray, settings: AugmentSettings, rooms: RoomBank | None,
          noises: NoiseBank | None) -> tuple[np.ndarray, str | None]:
    """``audio`` (float32 mono 16 kHz) with ``settings`` applied, and the noise source's name
    (``"music:macroform-cold_day"``, ``"pink"``; ``None`` without noise). Deterministic."""
    x = change_speed(np.asarray(audio, np.float32), settings.speed)
    if settings.room is not None:
        if rooms is None:
            raise ConfigError("settings use a room but no room bank was given")
        x = reverberate(x, rooms.ir(settings.room))
    lead = np.zeros(int(settings.lead_s * SAMPLE_RATE_HZ), np.float32)
    trail = np.zeros(int(settings.trail_s * SAMPLE_RATE_HZ), np.float32)
    x = np.concatenate([lead, x, trail])
    source = None
    if settings.noise is not None and settings.snr_db is not None:
        noise, source = noise_clip(settings.noise, x.size, settings.noise_seed, noises)
        x = mix_at_snr(x, noise, settings.snr_db, np.random.default_rng(settings.noise_seed))
    if settings.clip_fraction is not None:
        x = clip(x, settings.clip_fraction)
    x, _ = set_level_dbfs(x, settings.level_dbfs)
    if settings.channel == "telephone":
        x = telephone(x)
    elif settings.channel in ("opus", "mp3"):
        x = codec_round_trip(x, settings.channel, settings.codec_quality or 0.0)
    return np.clip(x, -1.0, 1.0).astype(np.float32), source
