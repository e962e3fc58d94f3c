"""Fixtures of the data-pipeline tests: real TTS engines, real banks, a tiny real dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "assistant" / "contexts" / "home.yaml"


def need_engine(engine: str) -> None:
    from training.tts import engine_available

    if not engine_available(engine):
        pytest.skip(f"TTS engine {engine} is not installed (see .ci/run)")


@pytest.fixture(scope="session")
def espeak_speech() -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from training.tts import Voice, synthesize

    return synthesize("turn on the kitchen lights please", Voice("espeak", "en-us+m3"))


@pytest.fixture(scope="session")
def room_bank():  # type: ignore[no-untyped-def]
    from training.rooms import ensure_room_bank, load_room_bank

    return load_room_bank(ensure_room_bank())


@pytest.fixture(scope="session")
def noise_bank():  # type: ignore[no-untyped-def]
    from training.noises import ensure_noise_bank, load_noise_bank

    return load_noise_bank(ensure_noise_bank())


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m training.prepare home.yaml --size tiny`` into a temporary directory."""
    need_engine("espeak")
    from training.prepare import main

    out = tmp_path_factory.mktemp("tiny") / "dataset"
    assert main([str(HOME), "--out", str(out), "--size", "tiny", "--seed", "3",
                 "--workers", "2"]) == 0
    return out
