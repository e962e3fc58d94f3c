"""What every listener shares, with no transport in it: the server's services.

    services = Services(settings, vad=vad)
    services.load()                          # models catalogued, workers started (blocking)
    entry = services.catalog.get("home")     # what a session serves
    result = await services.pool.recognize(entry, request)

:class:`Services` holds the model catalogue (:mod:`serving.catalog`), the inference pool, the
metrics, authentication and the connection limiter, the shared VAD, the pipeline's gates
(per stream, :meth:`Services.gates`) and result sinks (shared), the server's state and the
count of open sessions. Each listener (WebSocket v1 today, :mod:`serving.ws`) is handed one
and never reaches for anything else; the :class:`~serving.server.App` builds it and runs the
listeners' lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from assistant.errors import ConfigError
from assistant.sinks import close_sinks
from assistant.utterance import Gate, ResultSink
from assistant.vad import SileroVad

from .auth import Authenticator, Principal, Refusal, host_allowed
from .capture import CaptureSink
from .catalog import ModelCatalog, UnknownModel
from .config import Settings
from .feeder import Feeder, Upcoming
from .inference import InferencePool, glibc_malloc_trim
from .limits import KeyedLimiter
from .metrics import Metrics
from .models import ModelRegistry
from .quality import QualitySink
from .shadow import ShadowSink

logger = logging.getLogger("assistant.serving.services")

SESSIONS_REMEMBERED = 10_000  # sessions whose API key id is kept for feedback


class ServerState(StrEnum):
    LOADING = "loading"  # listening (health checks answer), models not ready yet
    READY = "ready"
    DRAINING = "draining"  # shutting down: no new sessions, in-flight work finishes
    STOPPED = "stopped"


def serving_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """One onnxruntime intra-op thread per recognition unless set: the pool gives parallelism."""
    return {"threads": 1, **overrides}


T = TypeVar("T")


class SessionCalls:
    """Calls into one session, one at a time: at once in the caller's thread (``now``) or
    off the event loop in the services' feeder thread (``off_loop``, :mod:`serving.feeder`).
    Every listener's connection holds one."""

    def __init__(self, feeder: Feeder):
        self._feeder = feeder
        self._lock = threading.Lock()

    def now(self, call: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return call(*args)

    async def off_loop(self, call: Callable[..., T], *args: Any,
                       upcoming: Upcoming | None = None) -> T:
        """``call(*args)`` under the session lock in the feeder thread; ``upcoming`` says
        which VAD frames it will run, so that they run batched with other sessions'."""
        return await self._feeder.call(self._lock, call, *args, upcoming=upcoming)


class Services:
    """See module docs. Listeners call it from the event loop; ``load``, ``reload`` and
    ``stop`` block (call them from a thread)."""

    def __init__(self, settings: Settings, vad: SileroVad | None = None,
                 progress: Callable[[str], None] | None = None):
        self.settings = settings
        self.limits = settings.limits
        server = settings.server
        self.catalog = ModelCatalog(settings.sources, serving_overrides(settings.recognizer),
                                    progress)
        pool = server.pool
        self.registry = ModelRegistry(warm_up=pool.warm_up) if pool.worker_kind == "thread" \
            else None  # process workers keep their own
        self.metrics = Metrics()
        self.pool = InferencePool(pool, self.registry,
                                  on_restart=self.metrics.worker_restarts.inc)
        self.pool.on_batch = self.metrics.recognition_calls.observe
        self.vad = vad or SileroVad()
        # Sessions feed their audio (resampling, VAD, segmentation) in this thread, never on
        # the event loop, their VAD batched across sessions (serving/feeder.py).
        self.feeder = Feeder(self.vad, on_vad_frames=lambda how, n: self.metrics.vad_frames
                             .labels(how).inc(n))
        secret = server.token_secret.encode() if server.token_secret else None
        self.auth = Authenticator(server.keys(), secret, server.token_ttl_s)
        per_s = self.limits.connections_per_min / 60
        self.connect_limiter = KeyedLimiter(per_s, max(1.0, self.limits.connections_per_min / 4))
        failures = self.limits.auth_failures_per_min
        self.auth_failures = KeyedLimiter(failures / 60, max(1.0, failures))
        self.allowed_hosts = server.hosts()
        self.quality = QualitySink(self.metrics, self.catalog.profile, settings.monitor)
        # The API key id each recent session authenticated with (feedback and capture
        # deletion are scoped to it); bounded, oldest first out.
        self._session_keys: OrderedDict[str, str] = OrderedDict()
        self.capture = CaptureSink(
            settings.capture, key_of=self.session_key,
            on_kept=lambda model, kept: self.metrics.captured.labels(model, kept).inc(),
        ) if settings.capture.enabled else None
        self.shadow = ShadowSink(settings.shadow, self.metrics) \
            if settings.shadow.enabled else None
        self.sinks: list[ResultSink] = [self.quality,
                                        *([self.capture] if self.capture else []),
                                        *([self.shadow] if self.shadow else []),
                                        *settings.pipeline.make_sinks()]
        self.state = ServerState.LOADING
        self.open_sessions = 0
        self._trim = glibc_malloc_trim()
        self.memory_trims = 0  # times this process handed freed memory back (no session open)
        self._slots_lock = threading.Lock()  # one slot change (and file write) at a time

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Ready, and its worker processes running (not after they died and could not be
        restarted: :attr:`serving.inference.InferencePool.broken`)."""
        return self.state is ServerState.READY and self.pool.broken is None

    @property
    def not_ready_reason(self) -> str:
        """Why new sessions are refused while not :attr:`ready` (and not draining)."""
        if self.state is ServerState.READY and self.pool.broken is not None:
            return f"the recognition workers are down: {self.pool.broken}"
        return "models are still loading"

    @property
    def draining(self) -> bool:
        return self.state in (ServerState.DRAINING, ServerState.STOPPED)

    def load(self) -> None:
        """Catalogue the models (building speech models on first use), start the workers."""
        self.catalog.reload(None, self._read_slots_file())
        for entry in self.catalog.entries():
            self.metrics.add_model(entry.name, entry.intents)
        self.pool.start(self.catalog.entries())
        self.state = ServerState.READY
        self.metrics.ready.set(1)
        logger.info("ready: %s", ", ".join(self.catalog.names()))

    def begin_drain(self) -> None:
        self.state = ServerState.DRAINING
        self.metrics.ready.set(0)

    def stop(self) -> None:
        """After the listeners drained: stop the workers and close the sinks (blocking)."""
        self.feeder.shutdown()
        self.pool.shutdown()
        close_sinks(self.sinks)
        self.state = ServerState.STOPPED

    def reload(self, name: str | None = None) -> list[str]:
        """Re-read the models' files (blocking); the next utterance uses them. A name that
        is not served is the caller's mistake (UnknownModel), not a failed reload."""
        if name is not None and name not in self.catalog.names():
            raise UnknownModel(name, self.catalog.names())
        try:
            reloaded = self.catalog.reload(name, self._read_slots_file())
        except Exception as e:
            self.metrics.reloads.labels("failed").inc()
            if self.settings.server.slots_file:
                logger.warning("nothing reloaded, the slot values served are kept (%s); the "
                               "next slot update rewrites the slots file with them", e)
            raise
        self.metrics.reloads.labels("ok").inc()
        logger.info("reloaded %s", ", ".join(reloaded))
        return reloaded

    # -- slot values at run time ----------------------------------------------------------

    def set_slot_values(self, name: str, slot_type: str, values: list[Any]) -> dict[str, Any]:
        """Replace one slot type's values of one model now (blocking: call from a thread);
        written to the slots file when there is one. GrammarError: nothing changed."""
        started = time.perf_counter()
        with self._slots_lock:
            entry = self.catalog.set_slot_values(name, {slot_type: values})
            if self.settings.server.slots_file:
                write_slots_file(Path(self.settings.server.slots_file),
                                 self.catalog.overridden_slots())
        applied_ms = 1000 * (time.perf_counter() - started)
        logger.info("slot type %r of %r: %d values (generation %d, %.0f ms)", slot_type,
                    entry.name, len(values), entry.generation, applied_ms)
        return {"model": entry.name, "slot_type": slot_type, "values": len(values),
                "generation": entry.generation, "grammar_sha256": entry.grammar_sha256,
                "applied_ms": round(applied_ms, 1),
                "persisted": bool(self.settings.server.slots_file)}

    def moved_models(self) -> list[str]:
        """Model directories whose path now names another directory than the one being
        served (a registry promotion or rollback flipped a symlink)."""
        moved = []
        for entry in self.catalog.entries():
            if entry.resolved is None:
                continue
            try:
                now = entry.source.path.resolve(strict=True)
            except OSError:
                continue  # a half-made link: look again next time
            if now != entry.resolved:
                moved.append(entry.name)
        return moved

    def _read_slots_file(self) -> tuple[str, dict[str, dict[str, list[Any]]]] | None:
        """The slots file's values, named by the file (None: no file yet)."""
        path = self.settings.server.slots_file
        if path and Path(path).is_file():
            return f"slots file {path}", read_slots_file(Path(path))
        return None

    # -- callers --------------------------------------------------------------------------

    def check_caller(self, authorization: str | None, token: str | None, peer: str
                     ) -> Principal | Refusal:
        """Who calls, or why not: an address with too many failed attempts is refused
        before its credentials are even looked at (and each failure counts)."""
        now = time.monotonic()
        if self.auth.required and self.auth_failures.exhausted(peer, now):
            return Refusal(True, self.auth_failures.retry_after_s(peer, now))
        principal = self.auth.authenticate(authorization, token, time.time())
        if principal is None:
            self.auth_failures.take(peer, now)
            return Refusal(False)
        return principal

    def check_key(self, key: str | None, peer: str) -> Principal | Refusal:
        """Like :meth:`check_caller` for an API key alone (``POST /v1/token``)."""
        now = time.monotonic()
        if self.auth_failures.exhausted(peer, now):
            return Refusal(True, self.auth_failures.retry_after_s(peer, now))
        principal = self.auth.check_key(key)
        if principal is None:
            self.auth_failures.take(peer, now)
            return Refusal(False)
        return principal

    def host_allowed(self, host: str | None) -> bool:
        """Whether to answer a request for ``Host: host`` (keyless servers: DNS rebinding)."""
        return self.auth.required or host_allowed(host, self.allowed_hosts)

    # -- per session ----------------------------------------------------------------------

    def gates(self) -> list[Gate]:
        """A new set of the configured gates for one stream."""
        return self.settings.pipeline.make_gates()

    def session_opened(self, session_id: str = "", key_id: str = "") -> None:
        """A connection was admitted (``sessions_total`` counts it once it starts)."""
        self.open_sessions += 1
        if session_id:
            self._session_keys[session_id] = key_id
            while len(self._session_keys) > SESSIONS_REMEMBERED:
                self._session_keys.popitem(last=False)
        self.refresh_gauges()

    def session_key(self, session_id: str) -> str:
        """The API key id a recent session authenticated with ("" if none or unknown)."""
        return self._session_keys.get(session_id, "")

    def knows_session(self, session_id: str) -> bool:
        return session_id in self._session_keys

    def session_started(self) -> None:
        self.metrics.sessions.inc()

    def session_closed(self) -> None:
        self.open_sessions -= 1
        self.refresh_gauges()
        if self.open_sessions == 0:
            self._trim_when_quiet()

    def _trim_when_quiet(self) -> None:
        """Once no session has been open for ``trim_memory_s``, hand the C heap's free pages
        back to the system, as idle workers do (the sessions' audio buffers, freed, would
        otherwise stay with this process: about 40 MiB after 100 sessions)."""
        delay_s = self.settings.server.trim_memory_s
        if delay_s < 0 or self._trim is None:
            return

        def trim() -> None:
            if self.open_sessions == 0 and not self.draining and self._trim is not None:
                self._trim(0)
                self.memory_trims += 1

        asyncio.get_running_loop().call_later(delay_s, trim)

    def refresh_gauges(self) -> None:
        self.metrics.active_sessions.set(self.open_sessions)
        self.metrics.queue_depth.set(self.pool.depth)
        if self.state is ServerState.READY:
            self.metrics.ready.set(1 if self.pool.broken is None else 0)

    def refresh_capture_gauges(self) -> None:
        """The capture store's size (a query: at scrape time, not per answer)."""
        if self.capture is not None:
            stats = self.capture.store.stats()
            self.metrics.capture_utterances.set(stats["utterances"])
            self.metrics.capture_bytes.set(stats["audio_bytes"])

    def monitor(self) -> dict[str, Any]:
        """What ``GET /v1/monitor`` reports: per served model, its quality and drift state."""
        self.refresh_gauges()
        seen = self.quality.describe()
        models = {}
        for entry in self.catalog.entries():
            state = seen.get(entry.name) or self.quality.model(entry.name).describe(time.time())
            models[entry.name] = {"model": entry.describe(), **state}
        if self.shadow is not None and self.shadow.config.model in models:
            models[self.shadow.config.model]["shadow"] = self.shadow.describe()
        return {"state": str(self.state), "default": self.catalog.default_name,
                "queue_depth": self.pool.depth, "active_sessions": self.open_sessions,
                "worker_restarts": int(self.metrics.value("assistant_worker_restarts_total")),
                # false with --no-monitor: no answers are counted or compared then
                "monitoring": self.settings.monitor.monitor,
                "models": models}


def read_slots_file(path: Path) -> dict[str, dict[str, list[Any]]]:
    """``{model: {slot type: [values]}}`` from YAML; every scalar is text (``on`` stays a
    word), a value a string or a mapping with ``value`` and ``synonyms`` or ``spoken``."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read slots_file {str(path)!r}: {e}") from e
    if not isinstance(data, dict) or not all(
            isinstance(types, dict) and all(isinstance(v, list) for v in types.values())
            for types in data.values()):
        raise ConfigError(f"slots_file {str(path)!r} must map model names to slot types to "
                          f"lists of values")
    return {str(model): {str(t): list(v) for t, v in types.items()}
            for model, types in data.items()}


def write_slots_file(path: Path, slots: Mapping[str, Mapping[str, list[Any]]]) -> None:
    """Write the slots file atomically (a crash leaves the old one or the new one)."""
    text = ("# Slot values set at run time (PUT /v1/models/NAME/slots/TYPE); edit and reload.\n"
            + yaml.safe_dump({m: dict(t) for m, t in slots.items()}, allow_unicode=True,
                             sort_keys=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
