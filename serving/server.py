"""The server: shared models, the inference pool, sessions per connection, and its lifecycle.

    app = App(settings, recognizer_config)
    await app.start()          # listen, load and warm up the models, then report ready
    await app.serve_until(stop_event)   # SIGTERM/SIGINT set it in `assistant serve`
    # -> stop accepting, drain in-flight utterances (drain_timeout_s), close 1001, stop

Nothing here recognizes or segments audio itself: connections are
:class:`~serving.connection.Connection` shells over pure :class:`~serving.session.Session`
state machines; recognition runs in :class:`~serving.inference.InferencePool` threads.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from collections.abc import Callable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from assistant import protocol as p
from assistant.errors import ConfigError
from assistant.recognizer import RecognizerConfig
from assistant.vad import SileroVad

from .auth import Authenticator
from .config import Settings
from .connection import Connection
from .http import Router, query
from .inference import InferencePool
from .limits import KeyedLimiter
from .logs import ConnectionLogger
from .metrics import Metrics
from .models import ModelRegistry, serving_config
from .session import Session

logger = logging.getLogger("assistant.serving.server")

MAX_FRAME_FACTOR = 4  # websockets drops frames over this x max_frame_bytes by itself (1009)


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond localhost without API keys unless ``insecure`` is set."""
    server = settings.server
    if not server.is_local and not server.keys() and not server.insecure:
        raise ConfigError(
            f"refusing to listen on {server.host} without API keys: set ASSISTANT_API_KEYS "
            f"or --api-keys-file, or pass --insecure to allow anyone on the network")


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    server = settings.server
    if server.tls_cert is None or server.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(server.tls_cert, server.tls_key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot load TLS certificate {server.tls_cert!r} and key "
                          f"{server.tls_key!r}: {e}") from e
    return context


class App:
    """One server process (see module docs)."""

    def __init__(self, settings: Settings, recognizer_config: RecognizerConfig | None = None,
                 vad: SileroVad | None = None, progress: Callable[[str], None] | None = None):
        check_exposure(settings)
        self.settings = settings
        self.limits = settings.limits
        server = settings.server
        config = serving_config(recognizer_config or RecognizerConfig())
        self.registry = ModelRegistry(settings.sources, config, warm_up=server.warm_up,
                                      progress=progress)
        self.pool = InferencePool(server.workers, server.queue_size, server.worker_kind,
                                  settings.sources, config, server.warm_up, self.registry.get)
        self.vad = vad or SileroVad()
        self.metrics = Metrics()
        secret = server.token_secret.encode() if server.token_secret else None
        self.auth = Authenticator(server.keys(), secret, server.token_ttl_s)
        per_s = self.limits.connections_per_min / 60
        self.connect_limiter = KeyedLimiter(per_s, max(1.0, self.limits.connections_per_min / 4))
        self.connections: set[Connection] = set()
        self.ready = False
        self.draining = False
        self.server: Server | None = None
        self.ssl = tls_context(settings)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (health checks answer at once), then load and warm the models up."""
        server = self.settings.server
        self.server = await serve(
            self._handle, server.host, server.port, process_request=Router(self),
            ssl=self.ssl, max_size=MAX_FRAME_FACTOR * self.limits.max_frame_bytes,
            max_queue=16, close_timeout=5, ping_interval=20, ping_timeout=20,
            logger=logging.getLogger("assistant.serving.websockets"))
        await asyncio.to_thread(self.registry.load)  # builds the ONNX files on first use
        await asyncio.to_thread(self.pool.start)
        self.ready = True
        self.metrics.ready.set(1)
        logger.info("ready: %s on %s", ", ".join(self.registry.names()), self.url)

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        host = self.settings.server.host
        host = f"[{host}]" if ":" in host else host
        return f"{'wss' if self.ssl else 'ws'}://{host}:{self.port}"

    async def serve_until(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop accepting, drain sessions (bounded by drain_timeout_s), stop the pool."""
        if self.draining:
            return
        self.draining = True
        self.metrics.ready.set(0)
        logger.info("shutting down: draining %d sessions", len(self.connections))
        if self.server is not None:
            self.server.close(close_connections=False)
        for connection in list(self.connections):
            connection.begin_drain()
        if self.server is not None:
            try:
                await asyncio.wait_for(self.server.wait_closed(),
                                       self.limits.drain_timeout_s + 10)
            except TimeoutError:
                logger.warning("connections still open after the drain timeout")
        await asyncio.to_thread(self.pool.shutdown)
        logger.info("stopped")

    def reload(self, name: str | None = None) -> list[str]:
        """Rebuild models from their files (blocking; call from a thread)."""
        try:
            reloaded = self.registry.reload(name)
            self.pool.reloaded()
        except Exception:
            self.metrics.reloads.inc("failed")
            raise
        self.metrics.reloads.inc("ok")
        logger.info("reloaded %s", ", ".join(reloaded))
        return reloaded

    def refresh_gauges(self) -> None:
        self.metrics.active_sessions.set(len(self.connections))
        self.metrics.queue_depth.set(self.pool.depth)

    # -- connections ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        session_id = secrets.token_hex(6)
        peer = ws.remote_address[0] if ws.remote_address else "unknown"
        log = ConnectionLogger(logger, {"session_id": session_id,
                                        "peer": f"{peer}:{ws.remote_address[1]}"
                                        if ws.remote_address else peer})
        request = ws.request
        assert request is not None
        principal = self.auth.authenticate(request.headers.get("Authorization"),
                                           query(request).get("token"), time.time())
        if principal is None:
            await self._refuse(ws, log, p.ErrorCode.UNAUTHORIZED,
                               "missing or invalid API key or token")
            return
        log.bind(key_id=principal.key_id)
        rate_key = principal.key_id if principal.via != "anonymous" else peer
        now = time.monotonic()
        if not self.connect_limiter.take(rate_key, now):
            await self._refuse(ws, log, p.ErrorCode.RATE_LIMITED,
                               f"more than {self.limits.connections_per_min:g} connections a "
                               f"minute", self.connect_limiter.retry_after_s(rate_key, now))
            return
        if self.draining:
            await self._refuse(ws, log, p.ErrorCode.SHUTTING_DOWN, "the server is shutting down")
            return
        if not self.ready:
            await self._refuse(ws, log, p.ErrorCode.NOT_READY, "models are still loading",
                               self.limits.retry_after_s)
            return
        if len(self.connections) >= self.limits.max_sessions:
            await self._refuse(ws, log, p.ErrorCode.SERVER_FULL,
                               f"server full ({self.limits.max_sessions} sessions), retry "
                               f"after {self.limits.retry_after_s:g} s",
                               self.limits.retry_after_s)
            return
        session = Session(session_id, self.registry.get, self.vad, self.limits,
                          time.perf_counter())
        connection = Connection(self, ws, session, log)
        self.connections.add(connection)
        self.metrics.sessions.inc()
        self.refresh_gauges()
        log.info("session opened (%d active)", len(self.connections))
        try:
            await connection.run()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("session failed")
            self.metrics.errors.inc(p.ErrorCode.INTERNAL.value)
            await ws.close(int(p.CloseCode.INTERNAL_ERROR), "internal error")
        finally:
            self.connections.discard(connection)
            self.refresh_gauges()
            log.info("session closed after %d results (%d active)", connection.results_sent,
                     len(self.connections))

    async def _refuse(self, ws: ServerConnection, log: ConnectionLogger, code: p.ErrorCode,
                      message: str, retry_after_s: float | None = None) -> None:
        self.metrics.errors.inc(code.value)
        log.info("refused: %s (%s)", message, code.value, extra={"code": code.value})
        retry = round(retry_after_s, 2) if retry_after_s is not None else None
        try:
            await ws.send(p.error(code, message, True, retry).to_json())
            await ws.close(p.close_code(code), message[:120])
        except ConnectionClosed:
            pass
