"""Accept WebSocket v1 connections over the shared services and run each one's session.

    listener = WebSocketListener(services)
    await listener.start()            # listening: health checks answer at once
    listener.begin_drain()            # shutting down: stop accepting, drain sessions
    await listener.wait_closed(timeout_s)
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from assistant import protocol as p
from assistant.errors import ConfigError

from ..auth import Principal, Refusal
from ..config import ServerConfig
from ..logs import ConnectionLogger, ResultLog
from ..services import Services
from .body import BodyReadingConnection
from .connection import Connection
from .http import Router, query
from .session import Session

logger = logging.getLogger("assistant.serving.ws")

# A frame over max_frame_bytes is read and answered with frame_too_large (then 1009); one
# over this many times that is never read: websockets closes 1009 "frame exceeds limit of N
# bytes" itself (docs/protocol.md says so; the reader counts it as frame_too_large).
MAX_FRAME_FACTOR = 4



def tls_context(server: ServerConfig) -> ssl.SSLContext | None:
    if server.tls_cert is None or server.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(server.tls_cert, server.tls_key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot load TLS certificate {server.tls_cert!r} and key "
                          f"{server.tls_key!r}: {e}") from e
    return context


class WebSocketListener:
    """The v1 protocol on ``server.host:server.port`` (see module docs)."""

    name = "ws"

    def __init__(self, services: Services):
        self.services = services
        self.config = services.settings.server
        self.limits = services.limits
        self.ssl = tls_context(self.config)
        self.connections: set[Connection] = set()
        self.server: Server | None = None

    async def start(self) -> None:
        self.server = await serve(
            self._handle, self.config.host, self.config.port,
            process_request=Router(self.services), ssl=self.ssl,
            max_size=MAX_FRAME_FACTOR * self.limits.max_frame_bytes, max_queue=16,
            close_timeout=5, ping_interval=20, ping_timeout=20,
            create_connection=BodyReadingConnection,
            logger=logging.getLogger("assistant.serving.websockets"))

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{'wss' if self.ssl else 'ws'}://{host}:{self.port}"

    def begin_drain(self) -> None:
        """Shutting down: every session finishes what is in flight, then closes 1001. The
        port stays open meanwhile, so probes see ``/readyz`` 503 (not a refused connection)
        and new streams get ``shutting_down``."""
        for connection in list(self.connections):
            connection.begin_drain()

    async def wait_closed(self, timeout_s: float) -> None:
        """Wait for the sessions to end (each bounds its own drain), then stop listening."""
        if self.server is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self.connections:
            logger.warning("%d connections still open after %.0f s: closing them",
                           len(self.connections), timeout_s)
        self.server.close(close_connections=True)
        try:
            await asyncio.wait_for(self.server.wait_closed(), 10)
        except TimeoutError:
            logger.warning("the listener did not close within 10 s")

    # -- connections ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        services = self.services
        session_id = secrets.token_hex(6)
        peer = ws.remote_address[0] if ws.remote_address else "unknown"
        log = ConnectionLogger(logger, {"session_id": session_id,
                                        "peer": f"{peer}:{ws.remote_address[1]}"
                                        if ws.remote_address else peer})
        admitted = self._admission(ws, peer, log)
        if not isinstance(admitted, Principal):
            await self._refuse(ws, log, *admitted)
            return
        session = Session(session_id, services.catalog.get, services.vad, self.limits,
                          time.perf_counter(), services.gates,
                          (*services.sinks, ResultLog(log)), self.config.endpointing)
        connection = Connection(services, ws, session, log)
        self.connections.add(connection)
        services.session_opened(session_id, admitted.key_id)
        log.info("session opened (%d active)", services.open_sessions)
        try:
            await connection.run()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("session failed")
            services.metrics.errors.labels(p.ErrorCode.INTERNAL.value).inc()
            await ws.close(int(p.CloseCode.INTERNAL_ERROR), "internal error")
        finally:
            self.connections.discard(connection)
            services.session_closed()
            log.info("session closed after %d results (%d active)", connection.results_sent,
                     services.open_sessions)

    def _admission(self, ws: ServerConnection, peer: str, log: ConnectionLogger
                   ) -> tuple[p.ErrorCode, str, float | None] | Principal:
        """Why this connection is refused (code, message, retry hint), or who it is."""
        services = self.services
        request = ws.request
        assert request is not None
        principal = services.check_caller(request.headers.get("Authorization"),
                                          query(request).get("token"), peer)
        if isinstance(principal, Refusal):
            if principal.rate_limited:
                return (p.ErrorCode.RATE_LIMITED, f"more than "
                        f"{self.limits.auth_failures_per_min:g} failed authentications a "
                        f"minute from {peer}", principal.retry_after_s)
            return p.ErrorCode.UNAUTHORIZED, "missing or invalid API key or token", None
        log.bind(key_id=principal.key_id)
        rate_key = principal.key_id if principal.via != "anonymous" else peer
        now = time.monotonic()
        if not services.connect_limiter.take(rate_key, now):
            return (p.ErrorCode.RATE_LIMITED, f"more than {self.limits.connections_per_min:g} "
                    f"connections a minute",
                    services.connect_limiter.retry_after_s(rate_key, now))
        if services.draining:
            return p.ErrorCode.SHUTTING_DOWN, "the server is shutting down", None
        if not services.ready:
            return p.ErrorCode.NOT_READY, services.not_ready_reason, self.limits.retry_after_s
        if services.open_sessions >= self.limits.max_sessions:
            return (p.ErrorCode.SERVER_FULL, f"server full ({self.limits.max_sessions} "
                    f"sessions), retry after {self.limits.retry_after_s:g} s",
                    self.limits.retry_after_s)
        return principal

    async def _refuse(self, ws: ServerConnection, log: ConnectionLogger, code: p.ErrorCode,
                      message: str, retry_after_s: float | None = None) -> None:
        self.services.metrics.errors.labels(code.value).inc()
        log.info("refused: %s (%s)", message, code.value, extra={"code": code.value})
        try:
            await ws.send(p.error(code, message, True, retry_after_s).to_json())
            await ws.close(p.close_code(code), message[:120])
        except ConnectionClosed:
            pass
