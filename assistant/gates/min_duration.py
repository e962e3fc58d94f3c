"""Drop utterances shorter than ``min_ms``: clicks, coughs and door slams that the VAD took
for speech. Off by default: one-word commands ("stop", "pause") run about 500-700 ms with the
VAD's padding, so keep ``min_ms`` well under that."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from assistant.errors import ConfigError
from assistant.utterance import Utterance


@dataclass
class MinDurationGate:
    name: ClassVar[str] = "min_duration"
    min_ms: float = 300.0  # of audio, the VAD's padding included

    def __post_init__(self) -> None:
        if not 0 <= self.min_ms <= 10_000:
            raise ConfigError(f"min_duration: min_ms must be in [0, 10000], got {self.min_ms}")

    def admit(self, utterance: Utterance) -> Utterance | None:
        return utterance if utterance.duration_ms >= self.min_ms else None
