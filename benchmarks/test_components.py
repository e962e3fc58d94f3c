"""Component benchmarks with pytest-benchmark: features, VAD, encoder, decoder step, intent
classifier, whole-utterance recognition; INT8 vs FP32, ONNX Runtime vs PyTorch, tiny.en vs
base, 1-10 s of audio (the cases and what each times: :mod:`benchmarks.components`).

    python -m pytest benchmarks/test_components.py --benchmark-only [--bench-quick]
        [--bench-model DIR] [--benchmark-json out.json]
"""

from __future__ import annotations

import pytest

from benchmarks.components import Case, Workbench

# Transformers and torch warn about APIs they deprecate; that is not ours to fix here.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


def test_component(benchmark, workbench: Workbench, case: Case) -> None:  # type: ignore[no-untyped-def]
    fn = workbench.build(case)
    benchmark.group = case.component
    benchmark.extra_info.update(model=case.model, precision=case.precision,
                                runtime=case.runtime, audio_s=case.audio_s)
    # "case" is parametrized in conftest.py (pytest_generate_tests), by --bench-quick.
    result = benchmark.pedantic(fn, rounds=_rounds(case), warmup_rounds=1, iterations=1)
    assert result is not None


def _rounds(case: Case) -> int:
    if case.component in ("features", "vad_frame", "classifier", "decoder_step"):
        return 50
    return 5 if case.model == "base" or case.runtime == "pytorch" else 10
