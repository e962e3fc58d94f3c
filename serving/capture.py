"""Opt-in capture: keep the audio and answer of chosen utterances, for review and retraining.

Off unless ``capture_dir`` is set: then nothing of anyone's voice is written anywhere (the
quality metrics keep numbers only). When on, a result sink of the utterance pipeline keeps a
final answer when its class is among ``capture_classes``:

* ``not_understood``: the answer was not understood (any reason);
* ``low_confidence``: understood, with confidence under ``capture_confidence_below``;
* ``sample``: a random ``capture_sample_percent`` of all answers;
* ``corrected``: feedback (``POST /v1/feedback``) said the answer was wrong. The audio of
  answers not kept otherwise waits in memory for ``capture_feedback_window_s`` (at most
  :data:`HELD_FOR_FEEDBACK` of them) so a correction can still keep it; then it is dropped.

``capture_keys`` limits capture to sessions of those API key ids (empty: every session).
Kept utterances go to a :class:`~serving.capture_store.CaptureStore` (SQLite + FLAC) from one
writer thread, never from the event loop; retention (days, count, bytes) is applied as
rows are written and once a minute. Feedback is counted in the metrics whether or not
capture is on (``assistant_feedback_total``), and stored only when it is.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ConfigError
from assistant.utterance import Completed

from .capture_store import CapturedRow, CaptureStore, Retention

logger = logging.getLogger("assistant.serving.capture")

CLASSES = ("not_understood", "low_confidence", "sample", "corrected")
HELD_FOR_FEEDBACK = 500  # answers whose audio waits in memory for a correction
QUEUE_LIMIT = 1000  # writes waiting for the writer thread; more are dropped (a stalled disk
# or database must not fill the memory with audio)


@dataclass(frozen=True)
class CaptureConfig:
    """Opt-in capture (see module docs). Off unless ``capture_dir`` is set."""

    capture_dir: str = field(default="", metadata={
        "help": "keep chosen utterances' audio and answers in this directory (SQLite + FLAC); "
                "empty: capture is off and no audio is ever written"})
    capture_database: str = field(default="", metadata={
        "help": "keep the metadata in this PostgreSQL database (postgresql://...) instead of "
                "SQLite in capture_dir, which then holds the audio only (several servers: a "
                "shared directory)"})
    capture_classes: tuple[str, ...] = field(
        default=("not_understood", "low_confidence", "corrected"), metadata={
            "flag": "--capture-class",
            "help": "what to keep (repeatable): not_understood, low_confidence, sample, "
                    "corrected"})
    capture_confidence_below: float = field(default=0.6, metadata={
        "help": "low_confidence: understood answers under this confidence"})
    capture_sample_percent: float = field(default=0.0, metadata={
        "help": "sample: keep this percentage of all answers at random"})
    capture_keys: tuple[str, ...] = field(default=(), metadata={
        "flag": "--capture-key",
        "help": "capture only sessions of these API key ids (repeatable; none: all)"})
    capture_retention_days: float = field(default=30.0, metadata={
        "help": "delete captured utterances older than this (0: keep)"})
    capture_max_utterances: int = field(default=10_000, metadata={
        "help": "keep at most this many captured utterances, the newest (0: no bound)"})
    capture_max_mb: float = field(default=1024.0, metadata={
        "help": "keep at most this many MB of captured audio, the newest (0: no bound)"})
    capture_feedback_window_s: float = field(default=600.0, metadata={
        "help": "how long the audio of an answer not kept waits in memory for a correction"})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.capture_classes) - set(CLASSES))
        if unknown:
            raise ConfigError(f"capture_classes: unknown {unknown}; known: {list(CLASSES)}")
        if not 0 <= self.capture_confidence_below <= 1:
            raise ConfigError("capture_confidence_below must be in [0, 1]")
        if not 0 <= self.capture_sample_percent <= 100:
            raise ConfigError("capture_sample_percent must be in [0, 100]")
        if min(self.capture_retention_days, self.capture_max_utterances, self.capture_max_mb,
               self.capture_feedback_window_s) < 0:
            raise ConfigError("capture retention bounds must not be negative")

    @property
    def enabled(self) -> bool:
        return bool(self.capture_dir)

    @property
    def retention(self) -> Retention:
        return Retention(self.capture_retention_days, self.capture_max_utterances,
                         int(self.capture_max_mb * (1 << 20)))


@dataclass
class _Held:
    completed: Completed
    key_id: str
    until_s: float


class CaptureSink:
    """See module docs. ``on_result`` runs in the server's feeder thread, ``feedback`` and
    ``delete`` on its event loop; the store is written from this sink's own thread, in
    order."""

    name = "capture"

    def __init__(self, config: CaptureConfig, key_of: Callable[[str], str] = lambda _: "",
                 on_kept: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None):
        if not config.enabled:
            raise ConfigError("capture is off (no capture_dir)")
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.store = CaptureStore.open(Path(config.capture_dir),
                                       database=config.capture_database)
        self.key_of = key_of  # session id -> the API key id it authenticated with
        self.on_kept = on_kept  # (model, class) of each answer kept: the metrics count it
        # Answers arrive from the server's feeder thread, feedback and deletions from the
        # event loop: the held audio is guarded.
        self._held: OrderedDict[tuple[str, int], _Held] = OrderedDict()
        self._held_lock = threading.Lock()
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = \
            queue.Queue(QUEUE_LIMIT)
        self._closed = False
        self.dropped = 0
        self._last_enforced = 0.0
        self._thread = threading.Thread(target=self._write, name="assistant-capture",
                                        daemon=True)
        self._thread.start()
        self.kept = 0

    # -- the pipeline's side ------------------------------------------------------------

    def on_result(self, completed: Completed) -> None:
        if completed.utterance.partial or not completed.final:
            return
        key_id = self.key_of(completed.stream_id)
        if self.config.capture_keys and key_id not in self.config.capture_keys:
            return
        kept_for = self.kept_for(completed)
        now = self.clock()
        if kept_for is not None:
            self._keep(completed, key_id, kept_for)
        elif "corrected" in self.config.capture_classes:
            key = (completed.stream_id, completed.utterance.utterance_id)
            with self._held_lock:
                self._expire(now)
                self._held[key] = _Held(completed, key_id,
                                        now + self.config.capture_feedback_window_s)
                while len(self._held) > HELD_FOR_FEEDBACK:
                    self._held.popitem(last=False)

    def kept_for(self, completed: Completed) -> str | None:
        """The class an answer is kept for, or None."""
        classes, result = self.config.capture_classes, completed.result
        if not result.understood and "not_understood" in classes:
            return "not_understood"
        if (result.understood and "low_confidence" in classes
                and result.confidence < self.config.capture_confidence_below):
            return "low_confidence"
        if "sample" in classes and self.rng.random() * 100 < self.config.capture_sample_percent:
            return "sample"
        return None

    def feedback(self, session_id: str, utterance_id: int, correct: bool,
                 intent: str | None, slots: dict[str, Any] | None
                 ) -> concurrent.futures.Future[bool]:
        """Store feedback on an answer. The future says, once written, whether the answer is
        kept (it was, or it is now because this feedback corrected it)."""
        key = (session_id, utterance_id)
        with self._held_lock:
            self._expire(self.clock())
            held = self._held.pop(key, None)
        if held is not None and not correct:
            self._keep(held.completed, held.key_id, "corrected")
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._submit(self._feedback, session_id, utterance_id, correct, intent, slots, done,
                     future=done)
        return done

    def delete(self, *, capture_id: str | None = None, session_id: str | None = None,
               utterance_id: int | None = None, key_id: str | None = None,
               owner: str | None = None) -> concurrent.futures.Future[int]:
        """Delete kept utterances (as :meth:`CaptureStore.delete`) after every write already
        queued, and forget held audio of the same answers, so nothing deleted comes back."""
        with self._held_lock:
            for key in [k for k, h in self._held.items()
                        if (session_id is not None and k[0] == session_id
                            and utterance_id in (None, k[1]))
                        or (key_id is not None and h.key_id == key_id)]:
                if owner is None or self._held[key].key_id == owner:
                    del self._held[key]
        done: concurrent.futures.Future[int] = concurrent.futures.Future()

        def run() -> None:
            try:
                deleted = self.store.delete(capture_id=capture_id, session_id=session_id,
                                            utterance_id=utterance_id, key_id=key_id,
                                            owner=owner)
            except Exception as e:
                _settle(done, exception=e)
                return
            _settle(done, result=deleted)

        self._submit(run, future=done)
        return done

    def _keep(self, completed: Completed, key_id: str, kept_for: str) -> None:
        result = completed.result
        data = result.to_dict()
        row = CapturedRow(model=completed.model, session_id=completed.stream_id,
                          utterance_id=completed.utterance.utterance_id, key_id=key_id,
                          kept_for=kept_for, understood=result.understood,
                          reason=None if result.reason is None else str(result.reason),
                          intent=result.intent, slots=data.get("slots") or {},
                          confidence=float(result.confidence), sentence=result.transcript,
                          heard=result.heard)
        self.kept += 1
        if self.on_kept is not None:
            self.on_kept(completed.model, kept_for)
        self._submit(self._add, row, np.array(completed.utterance.audio, np.float32))

    def _expire(self, now: float) -> None:
        while self._held:
            first = next(iter(self._held.values()))
            if first.until_s > now:
                break
            self._held.popitem(last=False)

    # -- the writer thread --------------------------------------------------------------

    def _submit(self, call: Callable[..., Any], *args: Any,
                future: concurrent.futures.Future[Any] | None = None) -> None:
        if self._closed:
            if future is not None:
                _settle(future, exception=ConfigError("capture is closed (shutting down)"))
            return
        try:
            self._queue.put_nowait((call, args))
        except queue.Full:
            self.dropped += 1
            logger.warning("capture: the writer is %d writes behind; dropped %s",
                           QUEUE_LIMIT, getattr(call, "__name__", "a write"))
            if future is not None:
                _settle(future, exception=ConfigError("capture store is not keeping up"))

    def _add(self, row: CapturedRow, audio: np.ndarray) -> None:
        self.store.add(row, audio, self.clock())
        self._enforce(force=True)

    def _feedback(self, session_id: str, utterance_id: int, correct: bool,
                  intent: str | None, slots: dict[str, Any] | None,
                  done: concurrent.futures.Future[bool]) -> None:
        try:
            stored = self.store.feedback(session_id, utterance_id, correct=correct,
                                         intent=intent, slots=slots, now_s=self.clock())
        except Exception as e:
            _settle(done, exception=e)
            raise
        _settle(done, result=stored)

    def _enforce(self, force: bool = False) -> None:
        now = self.clock()
        if force or now - self._last_enforced >= 60:
            self._last_enforced = now
            deleted = self.store.enforce(self.config.retention, now)
            if deleted:
                logger.info("capture retention deleted %d utterances", deleted)

    def _write(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=60)
            except queue.Empty:
                self._guarded(self._enforce)
                continue
            try:
                if item is None:
                    return
                call, args = item
                self._guarded(call, *args)
            finally:
                self._queue.task_done()

    def _guarded(self, call: Callable[..., Any], *args: Any) -> None:
        try:
            call(*args)
        except Exception:  # a full disk must not stop the server: log, go on
            logger.exception("capture: %s failed", getattr(call, "__name__", call))

    def flush(self) -> None:
        """Wait until everything submitted so far is written."""
        self._queue.join()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=30)
        self._thread.join(timeout=30)
        self.store.close()


def _settle(future: concurrent.futures.Future[Any], result: Any = None,
            exception: BaseException | None = None) -> None:
    """Resolve a future unless its waiter gave up (cancelled) already."""
    if future.done():
        return
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
