from __future__ import annotations

from pathlib import Path

import pytest

from assistant.grammar import Context, load_context

REPO = Path(__file__).resolve().parents[2]
BARISTA = REPO.parent / "shared" / "data" / "barista-dev" / "coffee_maker.yaml"
HOME = REPO / "assistant" / "contexts" / "home.yaml"


@pytest.fixture(scope="session")
def barista_path() -> Path:
    if not BARISTA.is_file():
        pytest.skip(f"barista dev data not present at {BARISTA}")
    return BARISTA


@pytest.fixture(scope="session")
def barista(barista_path: Path) -> Context:
    return load_context(barista_path)


@pytest.fixture(scope="session")
def home() -> Context:
    return load_context(HOME)
