"""The Debian command-line engines: ``espeak-ng``, ``flite`` and ``festival``.

Each writes a WAV file at its own rate; :func:`speak` returns it as float32 mono with its rate.

* espeak-ng: accents (``en-us``, ``en-gb-scotland``, ...) times voice variants (``+m3``,
  ``+f2``, ``+klatt``, ...), rate in words per minute and pitch 0..99.
* flite: ``slt`` (female), ``awb`` (Scottish male), ``rms``, ``kal16`` (US males).
* festival: ``kal``, ``ked`` (diphone US males) and ``slt-hts`` (an HTS statistical voice,
  female), with Debian's ``festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from assistant.errors import ConfigError

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

BINARIES = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}
TIMEOUT_S = 60


def available(engine: str) -> bool:
    return shutil.which(BINARIES[engine]) is not None


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


def _command(text: str, voice: Voice, wav: Path) -> tuple[list[str], str | None]:
    if voice.engine == "espeak":
        words_per_minute = round(ESPEAK_WORDS_PER_MINUTE * voice.rate)
        command = ["espeak-ng", "-v", voice.name, "-s", str(words_per_minute), "-w", str(wav)]
        if voice.pitch is not None:
            command += ["-p", str(voice.pitch)]
        return [*command, "--", text], None
    if voice.engine == "flite":
        stretch = f"{1.0 / voice.rate:.3f}"
        return ["flite", "-voice", voice.name, "--setf", f"duration_stretch={stretch}",
                "-t", text, "-o", str(wav)], None
    if voice.engine == "festival":
        if voice.name not in FESTIVAL_VOICES:
            raise ConfigError(f"unknown festival voice {voice.name!r} "
                              f"(known: {sorted(FESTIVAL_VOICES)})")
        duration_stretch = 1.0 / voice.rate
        return ["text2wave", "-eval", f"({FESTIVAL_VOICES[voice.name]})", "-eval",
                f"(Parameter.set 'Duration_Stretch {duration_stretch:.3f})", "-o", str(wav)], text
    raise ConfigError(f"{voice.engine} is not a command-line engine")


def speak(text: str, voice: Voice) -> tuple[np.ndarray, int]:
    """Run the engine: float32 mono samples and their sample rate in Hz."""
    with tempfile.TemporaryDirectory() as scratch:
        wav = Path(scratch) / "out.wav"
        command, stdin = _command(text, voice, wav)
        _run(command, stdin)
        try:
            audio, rate_hz = sf.read(wav, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise SynthesisError(f"{voice.engine} wrote no readable audio for {text!r}") from e
    return audio.mean(axis=1), int(rate_hz)
