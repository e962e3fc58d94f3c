"""The Debian command-line engines: ``espeak-ng``, ``flite`` and ``festival``.

Each writes a WAV file at its own rate; :func:`speak` returns it as float32 mono with its rate.

* espeak-ng: accents (``en-us``, ``en-gb-scotland``, ...) times voice variants (``+m3``,
  ``+f2``, ``+klatt``, ...), rate in words per minute and pitch 0..99.
* flite: ``slt`` (female), ``awb`` (Scottish male), ``rms``, ``kal16`` (US males).
* festival: ``kal``, ``ked`` (diphone US males) and ``slt-hts`` (an HTS statistical voice,
  female), with Debian's ``festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts``.

:class:`EspeakEngine`, :class:`FliteEngine` and :class:`FestivalEngine` are their
:class:`~training.tts.engine.Engine` classes, with the voices training may use and those held
out for unseen-voice tests (an engine variant or speaker training never hears: espeak-ng
variants ``f5``, ``m7``, ``steph``, flite's Scottish ``awb``, festival's HTS ``slt-hts``).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import soundfile as sf

from assistant.errors import ConfigError

from .engine import EngineDefaults
from .voice import SynthesisError, Voice

FESTIVAL_VOICES = {
    "kal": "voice_kal_diphone",
    "ked": "voice_ked_diphone",
    "slt-hts": "voice_cmu_us_slt_arctic_hts",
}
FLITE_VOICES = ("slt", "awb", "rms", "kal16")
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
ESPEAK_VARIANTS = ("m1", "m3", "f1", "f3", "f4", "klatt")
ESPEAK_WORDS_PER_MINUTE = 165  # rate 1.0

TIMEOUT_S = 60

TRAIN_ESPEAK_VARIANTS = ("m1", "m2", "m3", "m5", "f1", "f2", "f3", "f4", "klatt", "klatt3")
HELD_OUT_ESPEAK_VARIANTS = ("f5", "m7", "steph")
HELD_OUT_ESPEAK_ACCENTS = ("en-us", "en-gb-x-rp", "en-029")
TRAIN_FLITE = ("slt", "rms", "kal16")
HELD_OUT_FLITE = ("awb",)
TRAIN_FESTIVAL = ("kal", "ked")
HELD_OUT_FESTIVAL = ("slt-hts",)


def _run(command: list[str], stdin: str | None = None) -> None:
    try:
        subprocess.run(command, input=stdin, capture_output=True, text=True, check=True,
                       timeout=TIMEOUT_S)
    except FileNotFoundError as e:
        raise SynthesisError(f"{command[0]} is not installed (apt-get install it)") from e
    except subprocess.CalledProcessError as e:
        raise SynthesisError(f"{command[0]} failed: {e.stderr.strip()[:300]}") from e
    except subprocess.TimeoutExpired as e:
        raise SynthesisError(f"{command[0]} timed out after {TIMEOUT_S} s") from e


class _CommandLineEngine(EngineDefaults):
    """What the three command-line engines share (see :class:`~training.tts.engine.Engine`)."""

    name: ClassVar[str]
    binary: ClassVar[str]
    known_voices: ClassVar[tuple[str, ...]] = ()  # empty: any name the binary takes

    @classmethod
    def available(cls) -> bool:
        return shutil.which(cls.binary) is not None

    @classmethod
    def check(cls, voice: Voice) -> None:
        if cls.known_voices and voice.name not in cls.known_voices:
            raise ConfigError(f"unknown {cls.name} voice {voice.name!r} "
                              f"(known: {list(cls.known_voices)})")

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {cls.name: "Debian package"}

    def command(self, text: str, voice: Voice, wav: Path) -> tuple[list[str], str | None]:
        """The command line that writes ``wav``, and its standard input (if any)."""
        raise NotImplementedError

    def speak(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        """Run the engine: float32 mono samples and their sample rate in Hz."""
        with tempfile.TemporaryDirectory() as scratch:
            wav = Path(scratch) / "out.wav"
            _run(*self.command(text, voice, wav))
            try:
                audio, rate_hz = sf.read(wav, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise SynthesisError(f"{voice.engine} wrote no readable audio for "
                                     f"{text!r}") from e
        return audio.mean(axis=1), int(rate_hz)


class EspeakEngine(_CommandLineEngine):
    name = "espeak"
    binary = "espeak-ng"
    settings = frozenset({"pitch"})
    # espeak-ng has its own female and child-like variants and pitch; a conversion on top of
    # its buzzy source costs intelligibility (Whisper: 11/18 right converted, 46/50 plain).
    convertible = False

    @classmethod
    def voices(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
        train = tuple(f"{accent}+{variant}" for i, accent in enumerate(ESPEAK_ACCENTS)
                      for j, variant in enumerate(TRAIN_ESPEAK_VARIANTS) if (i + j) % 3 == 0)
        held = tuple(f"{accent}+{variant}" for accent, variant
                     in zip(HELD_OUT_ESPEAK_ACCENTS, HELD_OUT_ESPEAK_VARIANTS, strict=True))
        return train, held

    @classmethod
    def vary(cls, rng: random.Random) -> dict[str, Any]:
        return {"pitch": rng.randrange(25, 80)}

    def command(self, text: str, voice: Voice, wav: Path) -> tuple[list[str], str | None]:
        words_per_minute = round(ESPEAK_WORDS_PER_MINUTE * voice.rate)
        command = ["espeak-ng", "-v", voice.name, "-s", str(words_per_minute), "-w", str(wav)]
        if voice.pitch is not None:
            command += ["-p", str(voice.pitch)]
        return [*command, "--", text], None

    @classmethod
    def settings_id(cls, voice: Voice) -> str:
        return f",p{voice.pitch}" if voice.pitch is not None else ""

    @classmethod
    def versions(cls) -> dict[str, str]:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True)
        version = out.stdout.split(":")[1].split()[0] if ":" in out.stdout else out.stdout
        return {"espeak-ng": version.strip()}


class FliteEngine(_CommandLineEngine):
    name = "flite"
    binary = "flite"
    known_voices = FLITE_VOICES

    @classmethod
    def voices(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return TRAIN_FLITE, HELD_OUT_FLITE

    def command(self, text: str, voice: Voice, wav: Path) -> tuple[list[str], str | None]:
        stretch = f"{1.0 / voice.rate:.3f}"
        return ["flite", "-voice", voice.name, "--setf", f"duration_stretch={stretch}",
                "-t", text, "-o", str(wav)], None


class FestivalEngine(_CommandLineEngine):
    name = "festival"
    binary = "text2wave"
    known_voices = tuple(FESTIVAL_VOICES)

    @classmethod
    def voices(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return TRAIN_FESTIVAL, HELD_OUT_FESTIVAL

    def command(self, text: str, voice: Voice, wav: Path) -> tuple[list[str], str | None]:
        stretch = 1.0 / voice.rate
        return ["text2wave", "-eval", f"({FESTIVAL_VOICES[voice.name]})", "-eval",
                f"(Parameter.set 'Duration_Stretch {stretch:.3f})", "-o", str(wav)], text
