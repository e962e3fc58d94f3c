"""Results on disk: JSON round trip, results.md with CPU and GPU side by side, plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import latest_by_device, load_reports, markdown, write_json, write_results


def _report(device: str, started: str, median_ms: float) -> dict[str, Any]:
    engines = {
        "ours (zero-shot)": {"acceptance": {"clean": 1.0, "18 dB": 0.95, "mean_noisy": 0.95},
                             "recognize_ms": {"median": 90.0, "p95": 120.0},
                             "digits_rejection": 1.0, "out_of_grammar_rejection": 0.97},
        "pocketsphinx (JSGF)": {"acceptance": {"clean": 0.5, "18 dB": 0.25, "mean_noisy": 0.25},
                                "recognize_ms": {"median": 900.0, "p95": 1500.0},
                                "digits_rejection": 0.1, "out_of_grammar_rejection": 0.0},
    }
    return {
        "format": "voice-assistant-bench", "version": 1, "device": device, "quick": True,
        "started": started, "wall_s": 12.5,
        "machine": {"cpu": "Test CPU", "usable_cores": 2, "memory_gib": 4.0, "os": "Linux",
                    "python": "3.11", "versions": {"onnxruntime": "1.0"},
                    "git": {"commit": "0123456789abcdef", "dirty": True},
                    "gpus": [{"name": "Test GPU"}] if device == "cuda" else []},
        "components": [{"id": "encoder-tiny.en-fp32-x-5s", "component": "encoder",
                        "model": "tiny.en", "precision": "fp32", "runtime": "x",
                        "audio_s": 5.0, "median_ms": median_ms, "p95_ms": median_ms,
                        "mean_ms": median_ms, "runs": 5}],
        "streaming": {"zero-shot": {"utterances": 3, "streamed_acceptance": 1.0,
                                    "end_of_speech_to_result_ms": {
                                        "median": 80.0, "p95": 110.0, "p99": 120.0,
                                        "samples": [70.0, 80.0, 120.0]}}},
        "server": {"budget_p95_ms": 300.0, "workers": 2, "worker_kind": "process",
                   "steps": [{"streams": 1, "p50": 90.0, "p95": 100.0, "p99": 110.0,
                              "utterances_per_s": 0.2, "server_cpu_cores": 0.1, "lost": 0,
                              "within_budget": True, "samples_ms": [90.0, 100.0]},
                             {"streams": 4, "p50": 200.0, "p95": 400.0, "p99": 450.0,
                              "utterances_per_s": 0.8, "server_cpu_cores": 0.5, "lost": 0,
                              "within_budget": False, "samples_ms": [150.0, 400.0]}],
                   "max_streams_within_budget": 1, "reached_last_step": False,
                   "server_peak_rss_mib": 700.0, "server_processes": 3},
        "accuracy": {"snrs_db": [18], "utterances": 3, "digits": 2, "out_of_grammar": 2,
                     "engines": engines},
        "comparison": {"pocketsphinx (JSGF)": {
            "acceptance_clean_ratio": 2.0, "acceptance_noisy_ratio": 3.8,
            "digits_rejection_points": 90.0, "out_of_grammar_rejection_points": 97.0,
            "speedup_median": 10.0}},
        "batching": [{"streams": 4, "model": "tiny.en", "precision": "fp16",
                      "runtime": "pytorch-cuda", "encoder_ms": 3.0, "decoder_step_ms": 1.0,
                      "utterances_per_s": 210.5},
                     {"streams": 4, "model": "tiny.en", "precision": "fp16",
                      "runtime": "pytorch-cuda-graphs", "encoder_ms": 1.0,
                      "decoder_step_ms": 0.25, "utterances_per_s": 800.0,
                      "matches_eager": False},
                     {"streams": 256, "model": "tiny.en", "precision": "fp16",
                      "runtime": "pytorch-cuda-graphs", "error": "RuntimeError: capture"}]
        if device == "cuda" else None,
        "model_sizes_mib": {"tiny.en int8": 59.6},
        "sections_s": {"components": 1.0},
        "method": {"components": "how components were timed"},
    }


def test_json_round_trip_keeps_the_latest_run_of_each_device(tmp_path: Path) -> None:
    write_json(_report("cpu", "2026-01-01T00:00:00+00:00", 50.0), tmp_path)
    newer = write_json(_report("cpu", "2026-01-02T00:00:00+00:00", 40.0), tmp_path)
    write_json(_report("cuda", "2026-01-01T12:00:00+00:00", 2.0), tmp_path)
    (tmp_path / "bench-other.json").write_text(json.dumps({"format": "something else"}))
    assert newer.name == "bench-cpu-quick-20260102T000000Z.json"
    reports = load_reports(tmp_path)
    assert len(reports) == 3
    latest = latest_by_device(reports)
    assert list(latest) == ["cpu", "cuda"]
    assert latest["cpu"]["components"][0]["median_ms"] == 40.0


def test_markdown_puts_cpu_and_gpu_side_by_side_and_says_how(tmp_path: Path) -> None:
    text = markdown({"cpu": _report("cpu", "2026-01-01T00:00:00+00:00", 50.0),
                     "cuda": _report("cuda", "2026-01-01T00:00:00+00:00", 2.5)})
    assert "| component | model | audio s | cpu x fp32 | cuda x fp32 |" in text
    assert "| encoder | tiny.en | 5 | 50 | 2.50 |" in text
    assert "| ours (zero-shot) | 100.0 % | 95.0 % | 100.0 % | 97.0 % | 90 / 120 |" in text
    assert "| pocketsphinx (JSGF) | 2.0x | 3.8x | +90.0 pts | +97.0 pts | 10.0x |" in text
    assert "Most concurrent real-time streams within the budget: **1**" in text
    assert "| 4 | tiny.en | pytorch-cuda | fp16 | 3.00 | 1.00 | 210 |" in text
    assert "| 4 | tiny.en | pytorch-cuda-graphs | fp16 | 1.00 | 0.25 | 800 |" in text
    assert "- pytorch-cuda-graphs, 256 streams: RuntimeError: capture" in text
    assert "- pytorch-cuda-graphs, 4 streams: replay differs from eager" in text
    assert "commit 0123456789 (dirty)" in text
    assert "- **components**: how components were timed" in text
    for line in text.splitlines():  # every table row has as many cells as its header
        if line.startswith("|"):
            assert line.endswith("|")


def test_write_results_draws_the_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    write_json(_report("cpu", "2026-01-01T00:00:00+00:00", 50.0), tmp_path)
    write_json(_report("cuda", "2026-01-01T00:00:00+00:00", 2.5), tmp_path)
    path = write_results(tmp_path)
    text = path.read_text()
    for name in ("latency.png", "accuracy_vs_snr.png", "throughput.png"):
        assert (tmp_path / name).stat().st_size > 1000
        assert f"({name})" in text
