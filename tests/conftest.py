"""Shared fixtures: real models (built once per machine into the user cache), real TTS, real
recordings from ../shared/data when present (tests that need them skip cleanly otherwise)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
HOME_CONTEXT = REPO / "assistant" / "contexts" / "home.yaml"


def shared_data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"evaluation data not present at {path}")
    return path


@pytest.fixture(scope="session")
def barista_grammar() -> Path:
    return shared_data("barista-dev", "coffee_maker.yaml")


@pytest.fixture(scope="session")
def tiny_int8_dir() -> Path:
    from assistant.artifacts import SpeechModelSpec, ensure_speech_model

    return ensure_speech_model(SpeechModelSpec("tiny.en", "int8"))


@pytest.fixture(scope="session")
def tiny_int8(tiny_int8_dir: Path):  # type: ignore[no-untyped-def]
    from assistant.speech_model import SpeechModel

    return SpeechModel(tiny_int8_dir, threads=2)


@pytest.fixture(scope="session")
def vad():  # type: ignore[no-untyped-def]
    from assistant.vad import SileroVad

    return SileroVad()


@pytest.fixture(scope="session")
def home_recognizer(tiny_int8):  # type: ignore[no-untyped-def]
    from assistant.grammar import load_context
    from assistant.recognizer import Recognizer

    return Recognizer(load_context(HOME_CONTEXT), tiny_int8)


@pytest.fixture(scope="session")
def speak() -> Callable[..., np.ndarray]:
    """Synthesize speech with espeak-ng (real TTS): ``speak(text, voice="en-us", pad_s=0.5)``."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from training.tts import Voice, synthesize

    def _speak(text: str, voice: str = "en-us+m3", pad_s: float = 0.5,
               engine: str = "espeak") -> np.ndarray:
        audio = synthesize(text, Voice(engine, voice))
        pad = np.zeros(int(pad_s * 16000), np.float32)
        return np.concatenate([pad, audio, pad])

    return _speak
