"""Fixtures of the component benchmarks (``python -m pytest benchmarks/ --benchmark-only``).

Kept out of the default test run (``testpaths = ["tests"]``). ``--bench-quick`` runs the
quick subset; ``--bench-model DIR`` times that fine-tuned model's intent classifier instead
of a random one of the same shape; ``--bench-threads N`` sets the intra-op threads of both
runtimes (default ``min(4, cores)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.components import Workbench, cases, command_recording, torch_available
from benchmarks.datasets import DATA


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bench", "voice-assistant component benchmarks")
    group.addoption("--bench-quick", action="store_true", help="the quick subset of cases")
    group.addoption("--bench-model", type=Path, help="a fine-tuned model directory")
    group.addoption("--bench-threads", type=int, help="intra-op threads of both runtimes")


@pytest.fixture(scope="session")
def workbench(request: pytest.FixtureRequest) -> Iterator[Workbench]:
    bench = Workbench(command_recording(DATA), threads=request.config.getoption("bench_threads"),
                      model_dir=request.config.getoption("bench_model"))
    yield bench
    bench.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        chosen = cases(quick=metafunc.config.getoption("bench_quick"), torch=torch_available())
        metafunc.parametrize("case", chosen, ids=[c.id for c in chosen])
