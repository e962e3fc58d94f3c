"""Which voices exist here, which are held out for testing, and how a clip varies one.

:func:`voice_catalog` lists every base voice of the installed engines in two disjoint sets:

* ``train``: voices the model may learn from (training and validation);
* ``held_out``: voices only the ``test_unseen_voices`` split hears, with an engine *variant*
  never used in training (festival's HTS voice ``slt-hts``; training has only its diphone
  voices), espeak-ng voice variants training never uses (``f5``, ``m7``, ``steph``), flite's
  Scottish ``awb`` and Kokoro's ``jf_tebukuro`` (never part of a training blend).

Each engine says which of its voices are which (``Engine.voices()``, :mod:`training.tts.engine`).

:func:`vary` turns a base voice into the voice of one clip: speaking rate, espeak pitch, Piper
sampling noise and, for a share of clips, a pitch/formant conversion (female-, child-like or
deeper speakers from any base voice but espeak-ng's, which varies pitch and variant instead).
Speakers are told apart by :attr:`Voice.components`,
which a conversion does not change, so held-out voices stay held out.

:func:`default_voices` is the older, smaller set (the command-line engines only) that
``training/calibrate.py`` and the benchmarks use; it is unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from assistant.errors import ConfigError

from . import command_line
from .engine import ENGINES, engine_available, engine_class
from .voice import Voice

__all__ = ["Variation", "VoiceCatalog", "default_voices", "engine_available", "vary",
           "voice_catalog"]


def default_voices() -> list[Voice]:
    """One voice per accent/variant/speaker the command-line engines offer."""
    voices: list[Voice] = []
    if engine_available("espeak"):
        for i, accent in enumerate(command_line.ESPEAK_ACCENTS):
            for j, variant in enumerate(command_line.ESPEAK_VARIANTS):
                if (i + j) % 2 == 0:  # a spread of accent x variant pairs, not the full grid
                    voices.append(Voice("espeak", f"{accent}+{variant}"))
    if engine_available("flite"):
        voices += [Voice("flite", name) for name in command_line.FLITE_VOICES]
    if engine_available("festival"):
        voices += [Voice("festival", name) for name in command_line.FESTIVAL_VOICES]
    return voices


@dataclass(frozen=True)
class VoiceCatalog:
    """Base voices (rate 1, no conversion) of the installed engines, split for evaluation."""

    train: tuple[Voice, ...]
    held_out: tuple[Voice, ...]

    def __post_init__(self) -> None:
        seen = {c for v in self.train for c in v.components}
        overlap = sorted(seen & {c for v in self.held_out for c in v.components})
        if overlap:
            raise ConfigError(f"held-out voices also in training: {overlap}")

    def by_engine(self, held_out: bool) -> dict[str, tuple[Voice, ...]]:
        voices = self.held_out if held_out else self.train
        engines = dict.fromkeys(v.engine for v in voices)  # in catalogue order
        return {e: tuple(v for v in voices if v.engine == e) for e in engines}


def voice_catalog(engines: tuple[str, ...] = ENGINES) -> VoiceCatalog:
    """Every base voice of ``engines`` that is installed here."""
    train: list[Voice] = []
    held: list[Voice] = []
    for name in engines:
        engine = engine_class(name)
        if engine.available():
            train_names, held_names = engine.voices()
            train += [Voice(name, voice) for voice in train_names]
            held += [Voice(name, voice) for voice in held_names]
    return VoiceCatalog(tuple(train), tuple(held))


@dataclass(frozen=True)
class Variation:
    """How much one clip's voice varies from its base voice."""

    min_rate: float = 0.85
    max_rate: float = 1.2
    conversion_probability: float = 0.35  # share of clips with a pitch/formant shift
    # (semitones, formant ratio) centres of the shifts; each gets +-1 st and +-0.03 jitter.
    conversions: tuple[tuple[float, float], ...] = ((4.0, 1.12), (7.0, 1.2), (-3.0, 0.92))

    def __post_init__(self) -> None:
        if not 0.5 <= self.min_rate <= self.max_rate <= 2.0:
            raise ConfigError(f"rate range [{self.min_rate}, {self.max_rate}] not in [0.5, 2]")
        if not 0.0 <= self.conversion_probability <= 1.0:
            raise ConfigError(f"conversion_probability must be in [0, 1], "
                              f"got {self.conversion_probability}")


def vary(base: Voice, rng: random.Random, variation: Variation = Variation()) -> Voice:
    """The voice of one clip: ``base`` at a random rate, its engine's own settings drawn by
    the engine (espeak pitch, Piper sampling noise), and maybe a pitch/formant conversion."""
    engine = engine_class(base.engine)
    rate = round(rng.uniform(variation.min_rate, variation.max_rate), 2)
    settings = engine.vary(rng)
    semitones, formant_ratio = 0.0, 1.0
    if (engine.convertible and variation.conversions
            and rng.random() < variation.conversion_probability):
        centre_st, centre_ratio = rng.choice(variation.conversions)
        semitones = round(centre_st + rng.uniform(-1.0, 1.0), 1)
        formant_ratio = round(centre_ratio + rng.uniform(-0.03, 0.03), 2)
    return Voice(base.engine, base.name, rate, semitones=semitones,
                 formant_ratio=formant_ratio, **settings)
