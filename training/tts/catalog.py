"""Which voices exist here, which are held out for testing, and how a clip varies one.

:func:`voice_catalog` lists every base voice of the installed engines in two disjoint sets:

* ``train``: voices the model may learn from (training and validation);
* ``held_out``: voices only the ``test_unseen_voices`` split hears, with an engine *variant*
  never used in training (festival's HTS voice ``slt-hts``; training has only its diphone
  voices), espeak-ng voice variants training never uses (``f5``, ``m7``, ``steph``), flite's
  Scottish ``awb`` and Kokoro's ``jf_tebukuro`` (never part of a training blend).

:func:`vary` turns a base voice into the voice of one clip: speaking rate, espeak pitch, Piper
sampling noise and, for a share of clips, a pitch/formant conversion (female-, child-like or
deeper speakers from any base voice but espeak-ng's, which varies pitch and variant instead).
Speakers are told apart by :attr:`Voice.components`,
which a conversion does not change, so held-out voices stay held out.

:func:`default_voices` is the older, smaller set (the command-line engines only) that
``training/calibrate.py`` and the benchmarks use; it is unchanged.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from assistant.errors import ConfigError

from . import command_line, kokoro, piper
from .voice import ENGINES, Voice

TRAIN_ESPEAK_VARIANTS = ("m1", "m2", "m3", "m5", "f1", "f2", "f3", "f4", "klatt", "klatt3")
HELD_OUT_ESPEAK_VARIANTS = ("f5", "m7", "steph")
HELD_OUT_ESPEAK_ACCENTS = ("en-us", "en-gb-x-rp", "en-029")
TRAIN_FLITE = ("slt", "rms", "kal16")
HELD_OUT_FLITE = ("awb",)
TRAIN_FESTIVAL = ("kal", "ked")
HELD_OUT_FESTIVAL = ("slt-hts",)
TRAIN_KOKORO = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jm_kumo")
HELD_OUT_KOKORO = ("jf_tebukuro",)
KOKORO_BLEND_WEIGHTS = (0.3, 0.5)


def engine_available(engine: str) -> bool:
    if engine in command_line.BINARIES:
        return command_line.available(engine)
    if engine == "piper":
        return piper.available()
    if engine == "kokoro":
        return kokoro.available()
    raise ConfigError(f"unknown TTS engine {engine!r} (known: {ENGINES})")


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
        return {e: tuple(v for v in voices if v.engine == e) for e in ENGINES
                if any(v.engine == e for v in voices)}


def voice_catalog(engines: tuple[str, ...] = ENGINES) -> VoiceCatalog:
    """Every base voice of ``engines`` that is installed here."""
    train: list[Voice] = []
    held: list[Voice] = []
    usable = [e for e in engines if engine_available(e)]
    if "espeak" in usable:
        for i, accent in enumerate(command_line.ESPEAK_ACCENTS):
            for j, variant in enumerate(TRAIN_ESPEAK_VARIANTS):
                if (i + j) % 3 == 0:
                    train.append(Voice("espeak", f"{accent}+{variant}"))
        held += [Voice("espeak", f"{accent}+{variant}") for accent, variant
                 in zip(HELD_OUT_ESPEAK_ACCENTS, HELD_OUT_ESPEAK_VARIANTS, strict=True)]
    if "flite" in usable:
        train += [Voice("flite", name) for name in TRAIN_FLITE]
        held += [Voice("flite", name) for name in HELD_OUT_FLITE]
    if "festival" in usable:
        train += [Voice("festival", name) for name in TRAIN_FESTIVAL]
        held += [Voice("festival", name) for name in HELD_OUT_FESTIVAL]
    if "piper" in usable:
        train += [Voice("piper", name) for name in piper.VOICES]
    if "kokoro" in usable:
        train += [Voice("kokoro", name) for name in TRAIN_KOKORO]
        for (a, b), w in itertools.product(itertools.combinations(TRAIN_KOKORO, 2),
                                           KOKORO_BLEND_WEIGHTS):
            train.append(Voice("kokoro", f"{a}+{b}@{w:.2f}"))
        held += [Voice("kokoro", name) for name in HELD_OUT_KOKORO]
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
    """The voice of one clip: ``base`` at a random rate, pitch, noise and conversion."""
    rate = round(rng.uniform(variation.min_rate, variation.max_rate), 2)
    pitch = rng.randrange(25, 80) if base.engine == "espeak" else None
    noise_scale = noise_w = None
    seed = 0
    if base.engine == "piper":
        noise_scale = round(rng.uniform(0.4, 0.9), 2)
        noise_w = round(rng.uniform(0.5, 1.0), 2)
        seed = rng.randrange(1 << 16)
    semitones, formant_ratio = 0.0, 1.0
    # espeak-ng has its own female and child-like variants and pitch; a conversion on top of
    # its buzzy source costs intelligibility (Whisper: 11/18 right converted, 46/50 plain).
    convertible = base.engine != "espeak"
    if convertible and variation.conversions and rng.random() < variation.conversion_probability:
        centre_st, centre_ratio = rng.choice(variation.conversions)
        semitones = round(centre_st + rng.uniform(-1.0, 1.0), 1)
        formant_ratio = round(centre_ratio + rng.uniform(-0.03, 0.03), 2)
    return Voice(base.engine, base.name, rate, pitch, noise_scale, noise_w, seed,
                 semitones, formant_ratio)
