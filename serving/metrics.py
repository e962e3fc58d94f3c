"""Every metric the server exports, with ``prometheus-client`` (one registry per server).

Operational metrics (sessions, latency, errors, queue) are updated where things happen;
quality metrics (what was understood, why not, confidence, audio level, SNR, length, how
utterances ended, agreement of the free decode and of partials with the final answer) by the
:class:`serving.quality.QualitySink`; drift state by :mod:`serving.monitor`. ``/metrics``
serves :meth:`Metrics.render`. Every per-utterance metric carries the ``model`` label.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from assistant.recognizer import Reason
from assistant.segmenter import EndReason

LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
LEVEL_BUCKETS_DBFS = (-70.0, -60.0, -50.0, -40.0, -35.0, -30.0, -25.0, -20.0, -15.0, -10.0,
                      -5.0, 0.0)
SNR_BUCKETS_DB = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0)
DURATION_BUCKETS_S = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
AGREEMENT_BUCKETS = (0.2, 0.4, 0.6, 0.8, 0.9, 0.99, 1.0)
SCORE_BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# The classic text format: every Prometheus since 2.0 and other scrapers read it (our names
# are plain ASCII, so nothing of format 1.0.0 is needed).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class Metrics:
    """See module docs. Each instance has its own registry (several servers in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # -- operations ------------------------------------------------------------------
        self.end_of_speech_to_result = Histogram(
            "assistant_end_of_speech_to_result_seconds",
            "From receiving the audio frame that ended an utterance to its result.",
            ["model"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.processing = Histogram(
            "assistant_recognition_seconds", "Time spent recognizing one utterance.",
            ["model"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.active_sessions = Gauge("assistant_active_sessions", "Open sessions.",
                                     registry=r)
        self.sessions = Counter("assistant_sessions", "Sessions started.", registry=r)
        self.partials = Counter("assistant_partials", "Partial results, by outcome.",
                                ["outcome"], registry=r)
        self.speculations = Counter(
            "assistant_speculations", "Recognitions run in a pause ahead of an utterance's end "
            "(grammar endpointing); those that ended it count in assistant_utterance_endings "
            "as ended=\"complete\".", ["model"], registry=r)
        self.errors = Counter("assistant_errors", "Errors sent to clients, by code.",
                              ["code"], registry=r)
        self.vad_frames = Counter(
            "assistant_vad_frames", "Voice-activity frames the server ran, by how: in one "
            "batch with other sessions' (batched) or one at a time (alone); batching costs "
            "about a quarter as much per frame (serving/feeder.py).", ["how"], registry=r)
        for how in ("batched", "alone"):
            self.vad_frames.labels(how)
        self.recognition_calls = Histogram(
            "assistant_recognition_call_utterances", "Final recognitions per worker call: "
            "utterances that waited together are recognized together, their decoder runs "
            "shared (batch_utterances; serving/inference.py).",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64), registry=r)
        self.queue_depth = Gauge("assistant_inference_queue_depth",
                                 "Utterances waiting for or in recognition.", registry=r)
        self.ready = Gauge("assistant_ready", "1 when models are loaded and not draining.",
                           registry=r)
        self.loop_tasks = Gauge("assistant_event_loop_tasks",
                                "asyncio tasks alive in the server's event loop.", registry=r)
        self.reloads = Counter("assistant_model_reloads", "Model reloads, by outcome.",
                               ["outcome"], registry=r)
        self.worker_restarts = Counter(
            "assistant_worker_restarts", "Times the recognition worker pool was restarted "
            "after a worker process died.", registry=r)
        # -- quality ---------------------------------------------------------------------
        self.results = Counter("assistant_results", "Final answers, by intent and whether "
                               "understood.", ["model", "intent", "understood"], registry=r)
        self.not_understood = Counter(
            "assistant_not_understood", "Answers not understood, by reason (no_speech, "
            "out_of_domain, below_threshold, no_grammar_path, number_not_in_grammar, gated; "
            "cancelled answers never reach a client and are not counted).",
            ["model", "reason"], registry=r)
        self.confidence = Histogram("assistant_confidence", "Calibrated confidence of "
                                    "final answers.", ["model"], buckets=CONFIDENCE_BUCKETS,
                                    registry=r)
        self.audio_level = Histogram("assistant_audio_level_dbfs", "RMS level of each "
                                     "utterance's audio.", ["model"],
                                     buckets=LEVEL_BUCKETS_DBFS, registry=r)
        self.snr = Histogram("assistant_snr_db", "Estimated signal-to-noise ratio of each "
                             "utterance.", ["model"], buckets=SNR_BUCKETS_DB, registry=r)
        self.duration = Histogram("assistant_utterance_seconds", "Length of each utterance.",
                                  ["model"], buckets=DURATION_BUCKETS_S, registry=r)
        self.endings = Counter("assistant_utterance_endings", "How utterances ended (silence, "
                               "complete, max_length, finalize, file).", ["model", "ended"],
                               registry=r)
        self.heard_agreement = Histogram(
            "assistant_heard_agreement", "Word similarity of the free decode and the grammar "
            "sentence (1: the model wrote the sentence without the grammar too).", ["model"],
            buckets=AGREEMENT_BUCKETS, registry=r)
        self.out_of_domain = Histogram(
            "assistant_out_of_domain_score", "The intent classifier's out-of-domain score of "
            "each utterance (models with a classifier: 1 = speech that is no command).",
            ["model"], buckets=SCORE_BUCKETS, registry=r)
        self.partial_agreement = Counter(
            "assistant_partial_agreement", "Whether the last partial named the final "
            "intent (agreed, disagreed).", ["model", "outcome"], registry=r)
        # -- drift (serving.monitor) -----------------------------------------------------
        self.drift_score = Gauge("assistant_drift_score", "Population stability index of a "
                                 "signal's live window against the model's reference.",
                                 ["model", "signal"], registry=r)
        self.drift_alarm = Gauge("assistant_drift_alarm", "1 while a signal has drifted "
                                 "from the reference (enough samples and PSI over the "
                                 "threshold).", ["model", "signal"], registry=r)
        self.drift_samples = Gauge("assistant_drift_window_utterances", "Utterances in the "
                                   "drift window.", ["model"], registry=r)

        # -- feedback and capture ---------------------------------------------------------
        self.feedback = Counter("assistant_feedback", "Feedback on answers (POST "
                                "/v1/feedback), by model and whether the answer was right.",
                                ["model", "correct"], registry=r)
        self.captured = Counter("assistant_captured", "Answers kept by opt-in capture, by "
                                "model and the class that kept them.", ["model", "kept_for"],
                                registry=r)
        self.capture_utterances = Gauge("assistant_capture_utterances", "Utterances in the "
                                        "capture store (0 when capture is off).", registry=r)
        self.capture_bytes = Gauge("assistant_capture_audio_bytes", "Bytes of audio in the "
                                   "capture store.", registry=r)

        # -- shadow evaluation (serving.shadow) ------------------------------------------
        self.shadow = Counter("assistant_shadow", "Answers a shadow candidate also "
                              "recognized, by how its answer compared with the served one.",
                              ["model", "outcome"], registry=r)
        self.shadow_dropped = Counter("assistant_shadow_dropped", "Shadow samples dropped "
                                      "because the candidate was busy.", ["model"], registry=r)
        self.shadow_seconds = Histogram("assistant_shadow_seconds", "Recognition time of "
                                        "the shadow candidate and of the served model on the "
                                        "same utterances.", ["model", "which"],
                                        buckets=LATENCY_BUCKETS_S, registry=r)

    def add_model(self, model: str, intents: Sequence[str]) -> None:
        """Create a model's series at zero (before its first answer), so that rates and
        alert rules see a series from the start instead of none."""
        for histogram in (self.end_of_speech_to_result, self.processing, self.confidence,
                          self.audio_level, self.snr, self.duration, self.heard_agreement):
            histogram.labels(model)
        for intent in intents:
            self.results.labels(model, intent, "true")
        self.results.labels(model, "", "false")
        for reason in Reason:
            if reason is not Reason.CANCELLED:  # never counted (the client never got it)
                self.not_understood.labels(model, str(reason))
        for ended in EndReason:
            if ended is not EndReason.FILE:  # whole recordings: assistant recognize, not here
                self.endings.labels(model, str(ended))
        for correct in ("true", "false"):
            self.feedback.labels(model, correct)
        for outcome in ("agreed", "disagreed"):
            self.partial_agreement.labels(model, outcome)

    def track(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """``gauge`` reads ``read()`` whenever metrics are scraped."""
        gauge.set_function(read)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when it was never set): for tests and reports."""
        found = self.registry.get_sample_value(name, labels or None)
        return float(found) if found is not None else 0.0

    def render(self) -> bytes:
        return generate_latest(self.registry)
