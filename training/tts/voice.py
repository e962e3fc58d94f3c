"""A TTS voice: engine, speaker and the settings that change how it sounds.

A :class:`Voice` names everything that determines the audio of a sentence, so it is also the
cache key of synthesized audio (:attr:`Voice.id`). Settings per engine:

* every engine: ``rate`` (1.0 = the engine's default speaking rate, > 1 faster);
* ``espeak``: ``pitch`` 0..99 (espeak-ng's ``-p``);
* ``piper``: ``noise_scale`` (VITS sampling temperature of the voice, 0 = flat) and
  ``noise_w`` (of the durations); the noise itself is drawn from ``seed``, so a voice is
  deterministic;
* ``kokoro``: ``name`` is one style vector (``jf_alpha``) or a blend of two,
  ``"jf_alpha+jm_kumo@0.30"`` (30 % of the second);
* voice conversion after any engine: ``semitones`` (pitch shift) and ``formant_ratio``
  (spectral-envelope warp, > 1 = shorter vocal tract), see :mod:`training.tts.conversion`.

Which engine takes which setting, and which names it knows, the engine itself says
(:mod:`training.tts.engine`): a setting an engine does not take is refused.

:attr:`Voice.speaker` is who is heard (engine, speaker and conversion, rounded): two voices
that differ only in rate or sampling noise are the same speaker. Dataset splits hold out
speakers by their :attr:`Voice.base` (engine and speaker before conversion).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.errors import AssistantError, ConfigError

from .engine import ENGINES, engine_class

__all__ = ["ENGINES", "SynthesisError", "Voice"]

ENGINE_SETTINGS = ("pitch", "noise_scale", "noise_w")  # None unless the engine takes them
_BLEND = re.compile(r"^(?P<a>[a-z_]+)\+(?P<b>[a-z_]+)@(?P<w>0\.\d+)$")


class SynthesisError(AssistantError):
    """A TTS engine failed or is not installed."""


@dataclass(frozen=True)
class Voice:
    """One engine voice with its settings (see the module docs for which engine uses what)."""

    engine: str
    name: str
    rate: float = 1.0
    pitch: int | None = None  # espeak only: 0..99
    noise_scale: float | None = None  # piper only: 0..1.5
    noise_w: float | None = None  # piper only: 0..1.5
    seed: int = 0  # piper only: the sampling noise
    semitones: float = 0.0  # voice conversion: pitch shift, -12..12
    formant_ratio: float = 1.0  # voice conversion: envelope warp, 0.75..1.35

    def __post_init__(self) -> None:
        engine = engine_class(self.engine)  # unknown: ConfigError naming the known ones
        if not 0.5 <= self.rate <= 2.0:
            raise ConfigError(f"speaking rate must be in [0.5, 2], got {self.rate}")
        for name in ENGINE_SETTINGS:
            value = getattr(self, name)
            if value is not None and name not in engine.settings:
                raise ConfigError(f"{name} {value} is not a setting of engine {self.engine} "
                                  f"(voice {self.engine}:{self.name}; it takes "
                                  f"{sorted(engine.settings) or 'none'})")
        if self.pitch is not None and not 0 <= self.pitch <= 99:
            raise ConfigError(f"pitch must be in 0..99, got {self.pitch}")
        for name in ("noise_scale", "noise_w"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.5:
                raise ConfigError(f"{name} must be in [0, 1.5], got {value}")
        if not -12.0 <= self.semitones <= 12.0:
            raise ConfigError(f"pitch shift must be in [-12, 12] semitones, got {self.semitones}")
        if not 0.75 <= self.formant_ratio <= 1.35:
            raise ConfigError(f"formant ratio must be in [0.75, 1.35], got {self.formant_ratio}")
        engine.check(self)

    @property
    def converted(self) -> bool:
        return self.semitones != 0.0 or self.formant_ratio != 1.0

    @property
    def engine_id(self) -> str:
        """The engine's own settings: the key of the raw (unconverted) audio cache."""
        settings = engine_class(self.engine).settings_id(self)
        return f"{self.engine}:{self.name}@r{self.rate:.2f}{settings}"

    @property
    def id(self) -> str:
        """Everything that determines the audio (stable across releases for cached audio)."""
        if not self.converted:
            return self.engine_id
        return f"{self.engine_id},vc{self.semitones:+.2f}st/{self.formant_ratio:.3f}"

    @property
    def base(self) -> str:
        """Engine and speaker before conversion: ``"flite:slt"``."""
        return f"{self.engine}:{self.name}"

    @property
    def components(self) -> tuple[str, ...]:
        """The base speakers heard in this voice (two for a Kokoro blend)."""
        match = blend(self.name) if self.engine == "kokoro" else None
        if match:
            return (f"kokoro:{match[0]}", f"kokoro:{match[1]}")
        return (self.base,)

    @property
    def speaker(self) -> str:
        """Who is heard: the base voice plus its conversion, rounded to audible steps."""
        if not self.converted:
            return self.base
        return f"{self.base}~{self.semitones:+.1f}st/{self.formant_ratio:.2f}"


def blend(name: str) -> tuple[str, str, float] | None:
    """``"a+b@0.30"`` as ("a", "b", 0.3); None for a plain name."""
    match = _BLEND.match(name)
    return (match["a"], match["b"], float(match["w"])) if match else None
