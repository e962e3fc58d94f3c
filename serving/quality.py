"""Quality and drift, from the answers themselves: the server's monitoring result sink.

:class:`QualitySink` is a result sink of the utterance pipeline (:mod:`assistant.utterance`)
that every listener's sessions share. For each final answer it

* times it (end of speech to result, recognition) and counts it by model, intent and
  understood, and when not understood by reason;
* records its confidence, audio level, SNR estimate, length, how it ended, how much of the
  free decode the grammar sentence covers, and whether the last partial named the same
  intent;
* feeds the model's :class:`~assistant.monitor.DriftMonitor` (when the model has a reference
  profile, :mod:`assistant.profile`) and exports its state;
* keeps a per-minute timeline and the latest answers (intent, confidence, the grammar
  sentence; never audio or the free decode) for ``GET /v1/monitor`` and ``/dashboard``.

It runs on the event loop and costs microseconds per answer (benchmarks/monitoring_cost.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from assistant.errors import ConfigError
from assistant.monitor import DriftMonitor, MonitorConfig, Observation
from assistant.profile import ReferenceProfile
from assistant.utterance import Completed

from .metrics import Metrics

logger = logging.getLogger("assistant.serving.quality")

TIMELINE_MINUTES = 60
RECENT_RESULTS = 20
PARTIALS_KEPT = 4096  # utterances whose last partial is remembered (bounded: streams vanish)
ANSWERS_REMEMBERED = 20_000  # recent final answers feedback may name (bounded)
LATENCIES_PER_MINUTE = 2000  # latency samples kept per minute for its p50/p95


@dataclass
class Minute:
    """One minute of traffic, for the dashboard's charts."""

    start_s: float
    answers: int = 0
    understood: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        latencies = np.asarray(self.latencies_ms) if self.latencies_ms else None
        return {"start": self.start_s, "answers": self.answers, "understood": self.understood,
                "latency_p50_ms": None if latencies is None
                else round(float(np.percentile(latencies, 50)), 1),
                "latency_p95_ms": None if latencies is None
                else round(float(np.percentile(latencies, 95)), 1)}


class ModelQuality:
    """What the sink keeps per model: its drift monitor (if it has a profile), its timeline,
    its latest answers."""

    def __init__(self, profile: ReferenceProfile | None, config: MonitorConfig):
        self.profile = profile
        self.drift = DriftMonitor(profile, config) if profile is not None else None
        self.timeline: deque[Minute] = deque(maxlen=TIMELINE_MINUTES)
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_RESULTS)
        self.answers = 0
        self.understood = 0

    def minute(self, now_s: float) -> Minute:
        start = now_s - now_s % 60
        if not self.timeline or self.timeline[-1].start_s != start:
            self.timeline.append(Minute(start))
        return self.timeline[-1]

    def describe(self, now_s: float) -> dict[str, Any]:
        horizon = now_s - 60 * TIMELINE_MINUTES
        return {
            "answers": self.answers,
            "understood": self.understood,
            "profile": self.profile is not None,
            "drift": self.drift.describe() if self.drift is not None else {
                "status": "no_reference",
                "hint": "no reference profile for this model: make one with "
                        "'assistant profile' (see docs/monitoring.md)"},
            "timeline": [m.to_json() for m in self.timeline if m.start_s >= horizon],
            "recent": list(self.recent),
        }


class QualitySink:
    """See module docs. ``profile_of(model)`` gives a model's reference profile (or None);
    a new profile object (a reload) starts a new drift window."""

    name = "quality"

    def __init__(self, metrics: Metrics, profile_of: Callable[[str], ReferenceProfile | None],
                 config: MonitorConfig | None = None,
                 clock: Callable[[], float] = time.time):
        self.metrics = metrics
        self.profile_of = profile_of
        self.config = config or MonitorConfig()
        self.clock = clock
        self.models: dict[str, ModelQuality] = {}
        self._partials: OrderedDict[tuple[str, int], str | None] = OrderedDict()
        # (stream, utterance id) -> model of recent final answers: what feedback may name
        self.answered: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._judged: set[tuple[str, int]] = set()  # of those, the ones feedback counted
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._log: TextIO | None = None
        if self.config.monitor and self.config.monitor_log:
            try:  # line-buffered: a line per answer, readable while the server runs
                self._log = open(self.config.monitor_log, "a", buffering=1,  # noqa: SIM115
                                 encoding="utf-8")
            except OSError as e:
                raise ConfigError(f"cannot open monitor_log {self.config.monitor_log!r}: "
                                  f"{e}") from e

    def first_feedback(self, key: tuple[str, int]) -> bool:
        """Whether feedback on the recent answer ``key`` is the first (then it is counted:
        each answer counts once, so one client repeating itself cannot fill an alert)."""
        if key in self._judged or key not in self.answered:
            return False
        self._judged.add(key)
        return True

    def on_result(self, completed: Completed) -> None:
        key = (completed.stream_id, completed.utterance.utterance_id)
        result = completed.result
        if completed.utterance.partial:
            if self.config.monitor:
                self._partials[key] = result.intent
                self._partials.move_to_end(key)
                while len(self._partials) > PARTIALS_KEPT:
                    self._partials.popitem(last=False)
            return
        partial_intent = self._partials.pop(key, None) if key in self._partials else _NONE
        if not completed.final:
            return  # cancelled: the client never got it
        model = completed.model
        self.answered[key] = model
        while len(self.answered) > ANSWERS_REMEMBERED:
            self._judged.discard(self.answered.popitem(last=False)[0])
        latency_ms = completed.latency_ms
        child = self._child
        if latency_ms is not None:
            child(self.metrics.end_of_speech_to_result, model).observe(latency_ms / 1000)
        child(self.metrics.processing, model).observe(result.timing_ms.get("total", 0.0) / 1000)
        child(self.metrics.results, model, result.intent or "",
              "true" if result.understood else "false").inc()
        if not result.understood:
            child(self.metrics.not_understood, model, str(result.reason or "unknown")).inc()
        if not self.config.monitor:
            return
        self._quality(completed, partial_intent)

    def _quality(self, completed: Completed, partial_intent: Any) -> None:
        m, child = self.metrics, self._child
        result, model, latency_ms = completed.result, completed.model, completed.latency_ms
        quality = self._model(model)
        observation = Observation.of(result, quality.drift.encoder if quality.drift else None)
        child(m.confidence, model).observe(result.confidence)
        if result.audio_dbfs is not None:
            child(m.audio_level, model).observe(result.audio_dbfs)
        if result.snr_db is not None:
            child(m.snr, model).observe(result.snr_db)
        child(m.duration, model).observe(result.audio_ms / 1000)
        ended = completed.utterance.ended
        child(m.endings, model, str(ended) if ended is not None else "unknown").inc()
        if observation.heard_agreement is not None:
            child(m.heard_agreement, model).observe(observation.heard_agreement)
        if observation.out_of_domain_score is not None:
            child(m.out_of_domain, model).observe(observation.out_of_domain_score)
        if partial_intent is not _NONE and partial_intent is not None:
            agreed = result.understood and partial_intent == result.intent
            child(m.partial_agreement, model, "agreed" if agreed else "disagreed").inc()
        now = self.clock()
        quality.answers += 1
        quality.understood += int(result.understood)
        minute = quality.minute(now)
        minute.answers += 1
        minute.understood += int(result.understood)
        if latency_ms is not None and len(minute.latencies_ms) < LATENCIES_PER_MINUTE:
            minute.latencies_ms.append(latency_ms)
        quality.recent.append({
            "at": round(now, 3), "understood": result.understood, "intent": result.intent,
            "slots": dict(result.slots), "confidence": round(result.confidence, 4),
            "transcript": result.transcript,
            "reason": None if result.reason is None else str(result.reason),
            "latency_ms": None if latency_ms is None else round(latency_ms, 1)})
        if self._log is not None:
            self._log.write(json.dumps({"model": model, "at": round(now, 3),
                                        **observation.to_json()}) + "\n")
        if quality.drift is not None:
            for event in quality.drift.observe(observation, now):
                logger.warning("drift %s on model %r: %s (PSI %.3f)",
                               "raised" if event.raised else "cleared", model, event.signal,
                               event.psi)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached (the lookup costs more than the update)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def refresh(self) -> None:
        """Expire old window entries and export the drift state (the server calls this on
        each scrape of ``/metrics`` and each ``/v1/monitor``: nothing per answer)."""
        now = self.clock()
        for model, quality in self.models.items():
            if quality.drift is not None:
                quality.drift.expire(now)
                self._export(model, quality.drift)

    def describe(self) -> dict[str, Any]:
        """Per model: answers, drift state, timeline and latest answers (``/v1/monitor``)."""
        now = self.clock()
        self.refresh()
        return {name: quality.describe(now) for name, quality in self.models.items()}

    def model(self, name: str) -> ModelQuality:
        """The quality state of a model (created, with its current profile, on first use)."""
        return self._model(name)

    def _model(self, name: str) -> ModelQuality:
        profile = self.profile_of(name)
        quality = self.models.get(name)
        if quality is None or quality.profile is not profile:
            quality = ModelQuality(profile, self.config)
            self.models[name] = quality
        return quality

    def _export(self, model: str, drift: DriftMonitor) -> None:
        m, child = self.metrics, self._child
        child(m.drift_samples, model).set(len(drift.window))
        for signal, state in drift.signal_states().items():
            child(m.drift_score, model, signal).set(state.psi)
            child(m.drift_alarm, model, signal).set(1.0 if state.alarm else 0.0)


_NONE: Any = object()  # no partial was seen for the utterance
