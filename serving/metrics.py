"""Prometheus metrics written by hand in the text exposition format (version 0.0.4).

Updated from the event loop only (no locks). :meth:`Metrics.render` is what ``/metrics`` serves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from assistant.utterance import Completed

LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values,
                                                                 strict=True)) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()):
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self, kind: str = "counter") -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {kind}"]
        if not self.values and not self.label_names:
            lines.append(f"{self.name} 0")
        for labels, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_labels(self.label_names, labels)} {_number(value)}")
        return lines


class Gauge(Counter):
    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def render(self, kind: str = "gauge") -> list[str]:
        return super().render(kind)


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float] = LATENCY_BUCKETS_S):
        self.name, self.help = name, help_text
        self.buckets = (*sorted(buckets), math.inf)
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts, strict=True):
            cumulative += count
            lines.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {cumulative}')
        lines += [f"{self.name}_sum {_number(self.sum)}", f"{self.name}_count {self.count}"]
        return lines


class Metrics:
    """Every metric the server exports."""

    def __init__(self) -> None:
        self.end_of_speech_to_result = Histogram(
            "assistant_end_of_speech_to_result_seconds",
            "From receiving the audio frame that ended an utterance to sending its result.")
        self.processing = Histogram(
            "assistant_recognition_seconds", "Time spent recognizing one utterance.")
        self.active_sessions = Gauge("assistant_active_sessions", "Open streaming sessions.")
        self.sessions = Counter("assistant_sessions_total", "Sessions started.")
        self.results = Counter("assistant_results_total", "Final results sent.",
                               ("intent", "understood"))
        self.partials = Counter("assistant_partials_total", "Partial results, by outcome.",
                                ("outcome",))
        self.errors = Counter("assistant_errors_total", "Errors sent to clients, by code.",
                              ("code",))
        self.queue_depth = Gauge("assistant_inference_queue_depth",
                                 "Utterances waiting for or in recognition.")
        self.ready = Gauge("assistant_ready", "1 when models are loaded and not draining.")
        self.loop_tasks = Gauge("assistant_event_loop_tasks",
                                "asyncio tasks alive in the server's event loop.")
        self.reloads = Counter("assistant_model_reloads_total", "Model reloads, by outcome.",
                               ("outcome",))

    def render(self) -> str:
        lines: list[str] = []
        lines += self.end_of_speech_to_result.render()
        lines += self.processing.render()
        for metric in (self.active_sessions, self.queue_depth, self.ready, self.loop_tasks):
            lines += metric.render()
        for counter in (self.sessions, self.results, self.partials, self.errors, self.reloads):
            lines += counter.render()
        return "\n".join(lines) + "\n"


class MetricsSink:
    """A result sink (:mod:`assistant.utterance`) that counts and times the final answers."""

    name = "metrics"

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def on_result(self, completed: Completed) -> None:
        result = completed.result
        if not completed.final:
            return  # partials are counted where they are sent; cancelled ones never are
        if completed.latency_ms is not None:
            self.metrics.end_of_speech_to_result.observe(completed.latency_ms / 1000)
        self.metrics.processing.observe(result.timing_ms.get("total", 0.0) / 1000)
        self.metrics.results.inc(result.intent or "", str(result.understood).lower())
