"""The server: the shared services and the listeners over them, and their lifecycle.

    app = App(settings)
    await app.start()          # listen, load and warm up the models, then report ready
    await app.serve_until(stop_event)   # SIGTERM/SIGINT set it in `assistant serve`
    # -> stop accepting, drain in-flight utterances (drain_timeout_s), close 1001, stop

The :class:`App` is where things are put together and nothing else: it builds the
transport-free :class:`~serving.services.Services` (models, workers, metrics, auth, limits,
the pipeline's gates and sinks) and hands them to each listener named in :data:`LISTENERS`
(the WebSocket v1 protocol, :mod:`serving.ws`). Listeners never reach back into the app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from assistant.errors import ConfigError
from assistant.recognizer import RecognizerConfig, differing_fields
from assistant.registry import Registry
from assistant.vad import SileroVad

from .config import LOCAL_HOSTS, Settings
from .services import Services

logger = logging.getLogger("assistant.serving.server")


class Listener(Protocol):
    """A wire protocol over the services: listens, serves sessions, drains on shutdown.
    Made as ``Listener(services)``."""

    name: str

    @property
    def port(self) -> int: ...

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    def begin_drain(self) -> None: ...

    async def wait_closed(self, timeout_s: float) -> None: ...


LISTENERS: Registry[Listener] = Registry("listener", {
    "ws": "serving.ws:WebSocketListener",
    "wyoming": "serving.wyoming:WyomingListener",
})


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond localhost without API keys unless ``insecure`` is set; and
    Wyoming, which has no authentication at all, beyond localhost without ``insecure``."""
    server = settings.server
    if not server.is_local and not server.keys() and not server.insecure:
        raise ConfigError(
            f"refusing to listen on {server.host} without API keys: set ASSISTANT_API_KEYS "
            f"or --api-keys-file, or pass --insecure to allow anyone on the network")
    if server.wyoming_uri and not server.insecure:
        from .wyoming.listener import parse_uri

        kind, host, _ = parse_uri(server.wyoming_uri)
        if kind == "tcp" and host not in LOCAL_HOSTS:
            raise ConfigError(
                f"refusing to serve Wyoming on {host}: the protocol has no authentication, so "
                f"anyone who reaches the port can use it; pass --insecure to allow that (e.g. "
                f"on the Docker network Home Assistant runs on)")


class App:
    """One server process (see module docs)."""

    def __init__(self, settings: Settings, recognizer_config: RecognizerConfig | None = None,
                 vad: SileroVad | None = None, progress: Callable[[str], None] | None = None,
                 listeners: Sequence[str] | None = None):
        if recognizer_config is not None:
            warnings.warn("App(settings, RecognizerConfig(...)) is deprecated: give the "
                          "settings to override as Settings.recognizer (a mapping, e.g. "
                          "{'threshold': 0.8}); fields equal to the defaults are ignored",
                          DeprecationWarning, stacklevel=2)
            settings = dataclasses.replace(settings, recognizer={
                **differing_fields(recognizer_config), **settings.recognizer})
        check_exposure(settings)
        self.settings = settings
        self.services = Services(settings, vad, progress)
        self._watcher: asyncio.Task[None] | None = None
        if listeners is None:
            listeners = ("ws", "wyoming") if settings.server.wyoming_uri else ("ws",)
        self.listeners: list[Listener] = [LISTENERS.get(name)(self.services)  # type: ignore[call-arg]
                                          for name in listeners]

    # -- what tests and the CLI look at ----------------------------------------------------

    @property
    def metrics(self) -> Any:
        return self.services.metrics

    @property
    def pool(self) -> Any:
        return self.services.pool

    @property
    def ready(self) -> bool:
        return self.services.ready

    @property
    def connections(self) -> set[Any]:
        """Open WebSocket connections (all listeners')."""
        return {c for listener in self.listeners for c in getattr(listener, "connections", ())}

    @property
    def port(self) -> int:
        return self.listeners[0].port

    @property
    def url(self) -> str:
        return self.listeners[0].url

    @property
    def tls(self) -> bool:
        return getattr(self.listeners[0], "ssl", None) is not None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (health checks answer at once), then load and warm the models up."""
        for listener in self.listeners:
            await listener.start()
        await asyncio.to_thread(self.services.load)  # builds the ONNX files on first use
        logger.info("ready on %s", self.url)
        if self.settings.server.model_watch_s > 0:
            self._watcher = asyncio.create_task(self._watch_models(
                self.settings.server.model_watch_s), name="assistant-model-watch")

    async def _watch_models(self, every_s: float) -> None:
        """Reload a model whose directory path was pointed elsewhere (a registry promotion):
        sessions keep running; their next utterance uses the new version."""
        failed: dict[str, Path] = {}  # a target that failed to load, until the link moves
        while not self.services.draining:
            await asyncio.sleep(every_s)
            for name in await asyncio.to_thread(self.services.moved_models):
                target = self.services.catalog.get(name).source.path.resolve()
                if failed.get(name) == target:
                    continue
                logger.info("model %r: its directory now names %s; reloading", name, target)
                try:
                    await asyncio.to_thread(self.services.reload, name)
                    failed.pop(name, None)
                except Exception:  # a broken version: keep serving the old one, say so once
                    failed[name] = target
                    logger.exception("reloading %r from %s failed; still serving the "
                                     "previous version", name, target)

    async def serve_until(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop accepting, drain sessions (bounded by drain_timeout_s), stop the workers."""
        if self.services.draining:
            return
        self.services.begin_drain()
        if self._watcher is not None:
            self._watcher.cancel()
        logger.info("shutting down: draining %d sessions", self.services.open_sessions)
        for listener in self.listeners:
            listener.begin_drain()
        for listener in self.listeners:
            await listener.wait_closed(self.settings.limits.drain_timeout_s + 10)
        await asyncio.to_thread(self.services.stop)
        logger.info("stopped")

    def reload(self, name: str | None = None) -> list[str]:
        """Re-read the models' files (blocking; call from a thread)."""
        return self.services.reload(name)
