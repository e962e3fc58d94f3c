"""Shadow evaluation: a candidate model beside the served one, on a sample of live traffic.

    assistant serve --model home=models/home/current --shadow home=models/home/v3 \
        --shadow-percent 10

A result sink of the utterance pipeline hands a sample of the served model's final answers
(the utterance's audio and the answer) to one background thread, which recognizes the same
audio with the candidate and records how the two answers compare:

=====================  ===========================================================
``agree``              both understood, same intent and slots; or both not
``disagree``           both understood, different intent or slots
``candidate_rejects``  served understood, the candidate did not
``candidate_accepts``  the candidate understood, served did not
=====================  ===========================================================

It never touches the answer the client gets and stays off the latency path: one thread with
one onnxruntime thread, a bounded queue (``shadow_queue``; a full queue drops the sample and
counts it), ``shadow_percent`` of the answers. The candidate is loaded in that thread on the
first sample. Counts, the candidate's recognition time and the served model's own are in
``/metrics`` (``assistant_shadow_total{model,outcome}``, ``assistant_shadow_dropped_total``,
``assistant_shadow_seconds{model,which}``) and ``GET /v1/monitor`` (``shadow``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ConfigError
from assistant.recognizer import Result
from assistant.utterance import Completed

from .metrics import Metrics

logger = logging.getLogger("assistant.serving.shadow")

OUTCOMES = ("agree", "disagree", "candidate_rejects", "candidate_accepts")


@dataclass(frozen=True)
class ShadowConfig:
    """See module docs. Off unless ``shadow`` names a candidate."""

    shadow: str = field(default="", metadata={
        "help": "NAME=MODEL_DIR: run this candidate beside served model NAME on a sample of "
                "its traffic (empty: off)"})
    shadow_percent: float = field(default=10.0, metadata={
        "help": "the share of the served model's answers the candidate also recognizes"})
    shadow_queue: int = field(default=8, metadata={
        "help": "samples waiting for the candidate at most; more are dropped (counted)"})

    def __post_init__(self) -> None:
        if self.shadow and "=" not in self.shadow:
            raise ConfigError(f"shadow must be NAME=MODEL_DIR, got {self.shadow!r}")
        if not 0 < self.shadow_percent <= 100:
            raise ConfigError("shadow_percent must be in (0, 100]")
        if self.shadow_queue < 1:
            raise ConfigError("shadow_queue must be at least 1")

    @property
    def enabled(self) -> bool:
        return bool(self.shadow)

    @property
    def model(self) -> str:
        return self.shadow.partition("=")[0].strip()

    @property
    def candidate(self) -> Path:
        return Path(self.shadow.partition("=")[2].strip()).expanduser()


def compare(served: Result, candidate: Result) -> str:
    """How two answers to the same audio compare (see module docs)."""
    if served.understood and candidate.understood:
        same = (served.intent == candidate.intent
                and served.to_dict()["slots"] == candidate.to_dict()["slots"])
        return "agree" if same else "disagree"
    if served.understood:
        return "candidate_rejects"
    if candidate.understood:
        return "candidate_accepts"
    return "agree"


class ShadowSink:
    """See module docs."""

    name = "shadow"

    def __init__(self, config: ShadowConfig, metrics: Metrics,
                 rng: random.Random | None = None):
        if not config.enabled:
            raise ConfigError("shadow evaluation is off (no shadow candidate)")
        if not (config.candidate / "metadata.json").is_file():
            raise ConfigError(f"shadow candidate {config.candidate} is not a model directory")
        self.config = config
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.dropped = 0
        self.errors = 0
        self.candidate_ms: list[float] = []  # the latest 1,000 recognition times
        self.served_ms: list[float] = []
        self._queue: queue.Queue[tuple[np.ndarray, Result] | None] = queue.Queue(
            config.shadow_queue)
        self._recognizer: Any = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="assistant-shadow",
                                        daemon=True)
        self._thread.start()
        for outcome in OUTCOMES:
            metrics.shadow.labels(config.model, outcome)

    def on_result(self, completed: Completed) -> None:
        if (completed.utterance.partial or not completed.final
                or completed.model != self.config.model
                or completed.utterance.audio.size == 0):
            return
        if self.rng.random() * 100 >= self.config.shadow_percent:
            return
        try:
            self._queue.put_nowait((np.array(completed.utterance.audio, np.float32),
                                    completed.result))
        except queue.Full:
            self.dropped += 1
            self.metrics.shadow_dropped.labels(self.config.model).inc()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._shadow(*item)
            except Exception:  # a broken candidate must not take the server down
                self.errors += 1
                logger.exception("shadow recognition failed")
            finally:
                self._queue.task_done()

    def _shadow(self, audio: np.ndarray, served: Result) -> None:
        if self._recognizer is None:
            from assistant.recognizer import Recognizer

            self._recognizer = Recognizer.from_model_dir(self.config.candidate,
                                                         {"threads": 1})
            logger.info("shadow candidate %s loaded beside model %r", self.config.candidate,
                        self.config.model)
        started = time.perf_counter()
        candidate = self._recognizer.recognize(audio)
        elapsed_ms = 1000 * (time.perf_counter() - started)
        outcome = compare(served, candidate)
        served_ms = float(served.timing_ms.get("total", 0.0))
        with self._lock:
            self.counts[outcome] += 1
            for series, value in ((self.candidate_ms, elapsed_ms), (self.served_ms, served_ms)):
                series.append(value)
                del series[:-1000]
        model = self.config.model
        self.metrics.shadow.labels(model, outcome).inc()
        self.metrics.shadow_seconds.labels(model, "candidate").observe(elapsed_ms / 1000)
        self.metrics.shadow_seconds.labels(model, "served").observe(served_ms / 1000)

    def flush(self) -> None:
        self._queue.join()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
            candidate, served = list(self.candidate_ms), list(self.served_ms)
        total = sum(counts.values())

        def p95(values: list[float]) -> float | None:
            return round(float(np.percentile(values, 95)), 1) if values else None

        return {"model": self.config.model, "candidate": str(self.config.candidate),
                "percent": self.config.shadow_percent, "compared": total,
                "outcomes": counts, "agreement": round(counts["agree"] / total, 4)
                if total else None, "dropped": self.dropped, "errors": self.errors,
                "p95_ms": {"candidate": p95(candidate), "served": p95(served)}}

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=5)
        self._thread.join(timeout=30)
