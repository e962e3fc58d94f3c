"""Offline text-to-speech with the engines installed on this machine, cached on disk.

Engines (Debian packages): ``espeak-ng`` (English accents x voice variants, rate and pitch),
``flite`` (slt, awb, rms, kal16) and ``festival`` (kal, ked, slt-hts). Every engine returns
float32 mono 16 kHz audio. Words an engine mispronounces are respelled for it
(:data:`RESPELLINGS`: flite and festival say "latte" as "lat").

Audio is cached by (engine, voice, settings, text) under the user cache directory, so a
rerun of a pipeline synthesizes only what is new.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from assistant.artifacts import cache_dir
from assistant.audio import SAMPLE_RATE_HZ
from assistant.errors import AssistantError, ConfigError
from assistant.resample import resample

ENGINES = ("espeak", "flite", "festival")

# Words each engine gets wrong, respelled so it says them right.
RESPELLINGS: dict[str, dict[str, str]] = {
    "flite": {"latte": "lah tay", "lattes": "lah tays", "cafe": "ca fay"},
    "festival": {"latte": "lah tay", "lattes": "lah tays", "cafe": "ca fay"},
    "espeak": {},
}

FESTIVAL_VOICES = {
    "kal": "voice_kal_diphone",
    "ked": "voice_ked_diphone",
    "slt-hts": "voice_cmu_us_slt_arctic_hts",
}
FLITE_VOICES = ("slt", "awb", "rms", "kal16")
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
ESPEAK_VARIANTS = ("m1", "m3", "f1", "f3", "f4", "klatt")


class SynthesisError(AssistantError):
    """A TTS engine failed or is not installed."""


@dataclass(frozen=True)
class Voice:
    """One engine voice with its speaking rate (1.0 = engine default) and pitch (espeak)."""

    engine: str
    name: str
    rate: float = 1.0
    pitch: int | None = None  # espeak only: 0..99

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown TTS engine {self.engine!r} (known: {ENGINES})")
        if not 0.5 <= self.rate <= 2.0:
            raise ConfigError(f"speaking rate must be in [0.5, 2], got {self.rate}")

    @property
    def id(self) -> str:
        pitch = f",p{self.pitch}" if self.pitch is not None else ""
        return f"{self.engine}:{self.name}@r{self.rate:.2f}{pitch}"


def engine_available(engine: str) -> bool:
    binary = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}[engine]
    return shutil.which(binary) is not None


def default_voices() -> list[Voice]:
    """One voice per accent/variant/speaker the installed engines offer."""
    voices: list[Voice] = []
    if engine_available("espeak"):
        for i, accent in enumerate(ESPEAK_ACCENTS):
            for j, variant in enumerate(ESPEAK_VARIANTS):
                if (i + j) % 2 == 0:  # a spread of accent x variant pairs, not the full grid
                    voices.append(Voice("espeak", f"{accent}+{variant}"))
    if engine_available("flite"):
        voices += [Voice("flite", name) for name in FLITE_VOICES]
    if engine_available("festival"):
        voices += [Voice("festival", name) for name in FESTIVAL_VOICES]
    return voices


def respell(text: str, engine: str) -> str:
    table = RESPELLINGS.get(engine, {})
    if not table:
        return text
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, table)) + r")\b", re.IGNORECASE)
    return pattern.sub(lambda m: table[m.group(1).lower()], text)


def _run(command: list[str], stdin: str | None = None) -> None:
    try:
        subprocess.run(command, input=stdin, capture_output=True, text=True, check=True,
                       timeout=60)
    except FileNotFoundError as e:
        raise SynthesisError(f"{command[0]} is not installed (apt-get install it)") from e
    except subprocess.CalledProcessError as e:
        raise SynthesisError(f"{command[0]} failed: {e.stderr.strip()[:300]}") from e
    except subprocess.TimeoutExpired as e:
        raise SynthesisError(f"{command[0]} timed out") from e


def _synthesize_uncached(text: str, voice: Voice, wav: Path) -> None:
    spoken = respell(text, voice.engine)
    if voice.engine == "espeak":
        words_per_minute = round(165 * voice.rate)
        command = ["espeak-ng", "-v", voice.name, "-s", str(words_per_minute), "-w", str(wav)]
        if voice.pitch is not None:
            command += ["-p", str(voice.pitch)]
        _run([*command, spoken])
    elif voice.engine == "flite":
        stretch = f"{1.0 / voice.rate:.3f}"
        _run(["flite", "-voice", voice.name, "--setf", f"duration_stretch={stretch}",
              "-t", spoken, "-o", str(wav)])
    else:
        if voice.name not in FESTIVAL_VOICES:
            raise ConfigError(f"unknown festival voice {voice.name!r}")
        stretch = 1.0 / voice.rate
        _run(["text2wave", "-eval", f"({FESTIVAL_VOICES[voice.name]})", "-eval",
              f"(Parameter.set 'Duration_Stretch {stretch:.3f})", "-o", str(wav)], spoken)


def synthesize(text: str, voice: Voice, cache: Path | None = None) -> np.ndarray:
    """Speak ``text`` with ``voice``: float32 mono 16 kHz, cached on disk."""
    root = cache or cache_dir() / "tts"
    key = hashlib.sha256(f"{voice.id}\n{text}".encode()).hexdigest()
    path = root / key[:2] / f"{key}.wav"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            raw = Path(scratch) / "out.wav"
            _synthesize_uncached(text, voice, raw)
            audio, rate = sf.read(raw, dtype="float32", always_2d=True)
            audio = resample(audio.mean(axis=1), rate, SAMPLE_RATE_HZ)
            tmp = path.with_suffix(".tmp.wav")
            sf.write(tmp, audio, SAMPLE_RATE_HZ, subtype="PCM_16")
            tmp.replace(path)
    audio, _ = sf.read(path, dtype="float32")
    return np.asarray(audio, dtype=np.float32)
