"""What a prepared dataset contains: one frozen config, with size presets.

``python -m training.prepare --size`` takes a preset name or a number of command clips; the
negatives scale with it. Presets (commands; about 1.5x as many clips in all):

* ``tiny``: 48 commands, a CI smoke test (well under a minute on 2 cores);
* ``default``: 1000 commands, 1500 clips in all, about 4 (home) to 6 (barista) minutes on 2
  cores from a cold cache;
* ``large``: 6000 commands, for a real fine-tuning run (cache the TTS once, reuse it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from assistant.errors import ConfigError

from .augment import AugmentConfig
from .noises import NoiseBankConfig
from .rooms import RoomBankConfig
from .tts import ENGINES, TTS_ENGINES, Variation

PRESETS = {"tiny": 48, "default": 1000, "large": 6000}

# Engines' share of clips, traded against their cost (seconds per 3 s clip on one core:
# espeak 0.02, flite 0.05, festival 0.4, piper 0.3, kokoro 1.5-2; Kokoro is still about half
# of the synthesis time at 12 %).
DEFAULT_ENGINE_WEIGHTS = (("espeak", 0.33), ("flite", 0.15), ("festival", 0.15),
                          ("piper", 0.25), ("kokoro", 0.12))


@dataclass(frozen=True)
class DatasetConfig:
    commands: int = PRESETS["default"]
    out_of_domain_ratio: float = 0.25  # out-of-domain clips per command clip
    near_miss_ratio: float = 0.15
    non_speech_ratio: float = 0.1
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    engines: tuple[str, ...] = ENGINES
    engine_weights: tuple[tuple[str, float], ...] = DEFAULT_ENGINE_WEIGHTS
    variation: Variation = field(default_factory=Variation)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    rooms: RoomBankConfig = field(default_factory=RoomBankConfig)
    noises: NoiseBankConfig = field(default_factory=NoiseBankConfig)
    min_non_speech_s: float = 1.0
    max_non_speech_s: float = 4.0
    max_duration_s: float = 20.0  # longer clips are dropped (Whisper's window is 30 s)
    min_speech_level_dbfs: float = -50.0  # quieter speech clips are dropped as silent
    max_full_scale_fraction: float = 0.001  # more samples at full scale: dropped as clipped
    seed: int = 0

    def __post_init__(self) -> None:
        if self.commands < 1:
            raise ConfigError(f"commands must be >= 1, got {self.commands}")
        for name in ("out_of_domain_ratio", "near_miss_ratio", "non_speech_ratio"):
            if not 0.0 <= getattr(self, name) <= 5.0:
                raise ConfigError(f"{name} must be in [0, 5], got {getattr(self, name)}")
        if not (self.val_fraction >= 0 and self.test_fraction > 0
                and self.val_fraction + self.test_fraction < 1):
            raise ConfigError(f"val_fraction {self.val_fraction} + test_fraction "
                              f"{self.test_fraction} must leave a training split")
        unknown = [e for e in self.engines if e not in TTS_ENGINES]
        if unknown or not self.engines:
            raise ConfigError(f"engines {sorted(self.engines)} must be a non-empty subset of "
                              f"{TTS_ENGINES.names()}")
        if not 0 < self.min_non_speech_s <= self.max_non_speech_s <= self.max_duration_s:
            raise ConfigError("non-speech durations must be positive, ordered and below "
                              "max_duration_s")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


def config_for_size(size: str | int, **changes: Any) -> DatasetConfig:
    """The config for a preset name or a number of command clips, with ``changes`` applied."""
    if isinstance(size, str) and not size.isdigit():
        if size not in PRESETS:
            raise ConfigError(f"unknown size {size!r}: a number of command clips or one of "
                              f"{sorted(PRESETS)}")
        commands = PRESETS[size]
    else:
        commands = int(size)
    return replace(DatasetConfig(commands=commands), **changes)
