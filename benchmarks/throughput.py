"""Throughput through the real server: the most concurrent real-time streams within a p95 budget.

One ``assistant serve`` subprocess (:func:`benchmarks.load.start_server`) serves the grammar
(or a model directory); for each N in ``steps`` (increasing), N clients each stream
``files_per_client`` recordings at real-time speed in 100 ms frames, starting within
``stagger_s`` of each other (:func:`benchmarks.load.measure`). Stepping stops after the first
N whose end-of-speech-to-result p95 exceeds ``budget_p95_ms`` or that loses an utterance;
the answer is the largest N before it. Server CPU (its worker processes included) is
measured per step, peak RSS (VmHWM) over the whole run. The server loads and warms its
worker processes before it reports listening, so no step pays for model loading.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError

from .load import measure, start_server


@dataclass(frozen=True)
class ThroughputConfig:
    steps: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)  # concurrent streams, increasing
    budget_p95_ms: float = 300.0  # end of speech to result
    files_per_client: int = 2
    stagger_s: float = 2.0  # clients start within this many seconds of each other
    workers: int = 0  # recognition worker processes; 0: one per usable core
    worker_kind: str = "process"

    def __post_init__(self) -> None:
        if not self.steps or list(self.steps) != sorted(set(self.steps)) or self.steps[0] < 1:
            raise ConfigError(f"steps must be increasing positive counts, got {self.steps}")
        if self.budget_p95_ms <= 0:
            raise ConfigError(f"budget_p95_ms must be > 0, got {self.budget_p95_ms}")

    @property
    def worker_count(self) -> int:
        return self.workers or len(os.sched_getaffinity(0))


def step_streams(config: ThroughputConfig, files: list[Path], grammar: Path,
                 model_dir: Path | None = None, progress: Any = print) -> dict[str, Any]:
    """Step N up to the budget (see module docs); one row per step, and the answer."""
    server, url = start_server(grammar, max(config.steps), config.worker_count,
                               config.worker_kind, model_dir)
    rows: list[dict[str, Any]] = []
    try:
        for streams in config.steps:
            report = measure(url, server.pid, files, streams, config.files_per_client,
                             config.stagger_s)
            latency = report["end_of_speech_to_result_ms"]
            lost = (report["lost_utterances"] + report["failed_sessions"]
                    + report["sessions_without_result"])
            within = bool(latency) and latency["p95"] <= config.budget_p95_ms and not lost
            rows.append({
                "streams": streams, "within_budget": within, "lost": lost,
                "results": report["results"],
                "utterances_per_s": round(report["results"] / report["wall_s"], 2),
                **{k: latency.get(k) for k in ("p50", "p95", "p99", "max", "mean")},
                "samples_ms": latency.get("samples", []),
                "server_cpu_cores": report["server_cpu_cores"],
                "client_cpu_cores": report["client_cpu_cores"],
                "wall_s": report["wall_s"],
            })
            progress(f"server: {streams:3d} streams  p50 {latency.get('p50')} ms  "
                     f"p95 {latency.get('p95')} ms  lost {lost}  "
                     f"cpu {report['server_cpu_cores']} cores")
            peak_rss = report["server_peak_rss_mib"]
            processes = report["server_processes"]
            if not within:
                break
    finally:
        server.terminate()
        server.wait(timeout=60)
    passing = [row["streams"] for row in rows if row["within_budget"]]
    return {
        "budget_p95_ms": config.budget_p95_ms, "workers": config.worker_count,
        "worker_kind": config.worker_kind, "files_per_client": config.files_per_client,
        "stagger_s": config.stagger_s, "steps": rows,
        "max_streams_within_budget": max(passing) if passing else 0,
        "reached_last_step": len(rows) == len(config.steps) and rows[-1]["within_budget"],
        "server_peak_rss_mib": peak_rss, "server_processes": processes,
    }
