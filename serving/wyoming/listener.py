"""The Wyoming listener: Home Assistant's speech protocol over the server's services.

    listener = WyomingListener(services)      # services.settings.server.wyoming_uri
    await listener.start()                    # tcp://HOST:PORT or unix://PATH
    listener.begin_drain(); await listener.wait_closed(timeout_s)

Each connection gets a :class:`WyomingHandler`: the ``wyoming`` package's event handler
(:class:`wyoming.server.AsyncEventHandler`, its writer; its reader with the server's size and
idle limits, :func:`_read_event`) around a pure
:class:`~serving.wyoming.session.WyomingSession`; the session's audio work runs in the
services' feeder thread (their VAD batched with other sessions') and recognitions in the
inference pool, never on the event loop.
The listening socket is opened here rather than with ``wyoming.server.AsyncServer`` so that
the bound port is known (``port 0`` in tests) and shutdown can drain connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlparse

from wyoming.audio import AudioChunk
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Info, IntentModel, IntentProgram
from wyoming.server import AsyncEventHandler

from assistant.errors import ConfigError

from ..config import LimitsConfig
from ..logs import ConnectionLogger, ResultLog
from ..services import Services, SessionCalls
from .session import LANGUAGES, Action, Recognition, Send, WyomingSession

logger = logging.getLogger("assistant.serving.wyoming")
# The service has no public home page yet (an empty link rather than a made-up one); its
# models' speech model is OpenAI's Whisper.
ATTRIBUTION = Attribution(name="voice-assistant (self-hosted)", url="")
MODEL_ATTRIBUTION = Attribution(name="OpenAI Whisper, constrained by your grammar",
                                url="https://github.com/openai/whisper")


def parse_uri(uri: str) -> tuple[str, str, int]:
    """``("tcp", host, port)`` or ``("unix", path, 0)``; ConfigError otherwise."""
    parts = urlparse(uri)
    if parts.scheme == "tcp":
        if not parts.hostname or parts.port is None:
            raise ConfigError(f"wyoming_uri {uri!r} needs a host and a port: tcp://HOST:PORT")
        return "tcp", parts.hostname, parts.port
    if parts.scheme == "unix" and parts.path:
        return "unix", parts.path, 0
    raise ConfigError(f"wyoming_uri {uri!r} must be tcp://HOST:PORT or unix://PATH")


def _package_version() -> str:
    try:
        return version("voice-assistant")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def info_event(services: Services) -> Event:
    """What ``describe`` is answered with: every served model, for speech and for text."""
    entries = services.catalog.entries()
    described = [(e.name, f"{e.source.kind} {e.source.path.name}: {len(e.intents)} intents, "
                  f"grammar {e.grammar_sha256[:12]}") for e in entries]
    asr = AsrProgram(
        name="voice-assistant", attribution=ATTRIBUTION, installed=True,
        description="Speech to intent from a command grammar (Whisper, constrained decoding)",
        version=_package_version(),
        models=[AsrModel(name=n, attribution=MODEL_ATTRIBUTION, installed=True, description=d,
                         version=_package_version(), languages=list(LANGUAGES))
                for n, d in described],
        supports_transcript_streaming=False, requires_external_vad=True)
    intent = IntentProgram(
        name="voice-assistant", attribution=ATTRIBUTION, installed=True,
        description="Text to intent with the same grammars", version=_package_version(),
        models=[IntentModel(name=n, attribution=ATTRIBUTION, installed=True, description=d,
                            version=_package_version(), languages=list(LANGUAGES))
                for n, d in described])
    return Info(asr=[asr], intent=[intent]).event()


class WyomingHandler(AsyncEventHandler):
    """One Wyoming connection (see module docs)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 listener: WyomingListener):
        super().__init__(reader, writer)
        services = listener.services
        self.services = services
        self.listener = listener
        self.session_id = secrets.token_hex(6)
        peer = writer.get_extra_info("peername")
        self.log = ConnectionLogger(logger, {"session_id": self.session_id,
                                             "peer": f"{peer[0]}:{peer[1]}" if peer else "?"})
        self.session = WyomingSession(
            self.session_id, services.catalog.get, services.catalog.context,
            lambda: info_event(services), services.vad, services.limits, services.gates,
            (*services.sinks, ResultLog(self.log)), services.settings.server.wyoming_fallback)
        self._calls = SessionCalls(services.feeder)  # one call into the session at a time

    async def run(self) -> None:
        """The library's loop (:meth:`AsyncEventHandler.run`) with the server's limits: a
        connection that sends nothing for ``idle_timeout_s`` is closed, and an event too
        large to be a command's audio is refused before it is read (the library's reader
        would read any length it is told)."""
        self._is_running = True
        limits = self.services.limits
        try:
            while self._is_running:
                try:
                    rate, width, channels = self.session.format
                    event = await asyncio.wait_for(
                        _read_event(self.reader, limits, rate * width * channels),
                        limits.idle_timeout_s)
                except TimeoutError:
                    await self._refuse("idle_timeout", f"nothing received for "
                                                       f"{limits.idle_timeout_s:g} s")
                    break
                except _TooLarge as e:
                    await self._refuse("frame_too_large", str(e))
                    break
                if event is None or not await self.handle_event(event):
                    break
        finally:
            await self.disconnect()
            self.writer.close()

    async def _refuse(self, code: str, text: str) -> None:
        self.services.metrics.errors.labels(code).inc()
        self.log.info("closed: %s (%s)", text, code)
        with contextlib.suppress(ConnectionError):
            await self.write_event(Error(text=text, code=code).event())

    async def handle_event(self, event: Event) -> bool:
        if self.listener.draining and self.session.pipeline is None:  # nothing in progress
            await self.write_event(Error(text="the server is shutting down",
                                         code="shutting_down").event())
            return False
        audio = AudioChunk.is_type(event.type)  # its VAD can run batched with others'
        await self._apply(await self._calls.off_loop(
            self.session.on_event, event, time.perf_counter(),
            upcoming=functools.partial(self.session.upcoming_frames, event) if audio else None))
        return True

    async def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if Error.is_type(action.event.type):
                    code = action.event.data.get("code") or "error"
                    self.services.metrics.errors.labels(code).inc()
                    self.log.info("error %s: %s", code, action.event.data.get("text"))
                await self.write_event(action.event)
            elif isinstance(action, Recognition):
                await self._apply(await self._recognize(action))

    async def _recognize(self, work: Recognition) -> list[Action]:
        entry = self.services.catalog.get(work.model)  # the newest: updates apply at once
        try:
            result = await self.services.pool.recognize(entry, work.request)
        except Exception as e:  # one utterance failed; the connection goes on
            self.log.error("recognition failed: %s", e, exc_info=e)
            return self._calls.now(self.session.failed, work, str(e))
        return await self._calls.off_loop(self.session.complete, work, result, time.perf_counter())

    async def disconnect(self) -> None:
        self._calls.now(self.session.end)


class _TooLarge(Exception):
    """An event whose announced size is over the limits."""


async def _read_event(reader: asyncio.StreamReader, limits: LimitsConfig,
                      stream_bytes_per_s: int = 0) -> Event | None:
    """``wyoming.event.async_read_event`` with sizes checked before they are read: the data
    block within ``max_frame_bytes``, an audio chunk's payload within ``max_utterance_s`` of
    the stream's audio (``stream_bytes_per_s``, from its audio-start; the chunk's own
    format is not trusted for this) and any other payload within ``max_frame_bytes``. None
    at the end of the stream or for a header that is not JSON (as the library's reader)."""
    try:
        line = await reader.readline()  # ValueError past the reader's line limit
        if not line:
            return None
        header = json.loads(line)
        data: dict[str, Any] = dict(header.get("data") or {})
        data_length = int(header.get("data_length") or 0)
        payload_length = int(header.get("payload_length") or 0)
        if data_length > limits.max_frame_bytes:
            raise _TooLarge(f"an event's data of {data_length} bytes is over "
                            f"{limits.max_frame_bytes} bytes")
        if data_length > 0:
            data.update(json.loads(await reader.readexactly(data_length)))
        allowed = limits.max_frame_bytes
        if AudioChunk.is_type(str(header.get("type"))):  # up to an utterance of the stream
            allowed = max(allowed, int(limits.max_utterance_s * stream_bytes_per_s))
        if payload_length > allowed:
            raise _TooLarge(f"an event's payload of {payload_length} bytes is over "
                            f"{allowed} bytes")
        payload = await reader.readexactly(payload_length) if payload_length > 0 else None
        return Event(type=header["type"], data=data, payload=payload)
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError,
            asyncio.IncompleteReadError):
        return None


class WyomingListener:
    """Wyoming on ``server.wyoming_uri`` (see module docs)."""

    name = "wyoming"

    def __init__(self, services: Services):
        uri = services.settings.server.wyoming_uri
        if not uri:
            raise ConfigError("the Wyoming listener needs wyoming_uri (tcp://HOST:PORT)")
        self.services = services
        self.uri = uri
        self.kind, self.where, _ = parse_uri(uri)
        self.server: asyncio.Server | None = None
        self.handlers: dict[asyncio.Task[None], WyomingHandler] = {}
        self.draining = False

    async def start(self) -> None:
        if self.kind == "tcp":
            _, host, port = parse_uri(self.uri)
            self.server = await asyncio.start_server(self._accept, host, port)
        else:
            self.server = await asyncio.start_unix_server(self._accept, self.where)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        services = self.services
        if self.draining or not services.ready or (
                services.open_sessions >= services.limits.max_sessions):
            code, text = (("shutting_down", "the server is shutting down") if self.draining
                          else ("not_ready", services.not_ready_reason) if not services.ready
                          else ("server_full", "too many sessions"))
            services.metrics.errors.labels(code).inc()
            with contextlib.suppress(ConnectionError):
                from wyoming.event import async_write_event

                await async_write_event(Error(text=text, code=code).event(), writer)
            writer.close()
            return
        handler = WyomingHandler(reader, writer, self)
        task = asyncio.current_task()
        assert task is not None
        self.handlers[task] = handler
        services.session_opened()
        services.session_started()
        handler.log.info("wyoming connection opened (%d active)", services.open_sessions)
        try:
            await handler.run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            handler.log.exception("wyoming connection failed")
        finally:
            self.handlers.pop(task, None)
            services.session_closed()
            handler.log.info("wyoming connection closed (%d active)", services.open_sessions)

    @property
    def port(self) -> int:
        assert self.server is not None
        if self.kind != "tcp":
            return 0
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        if self.kind == "unix":
            return f"unix://{self.where}"
        host = self.where
        return f"tcp://{f'[{host}]' if ':' in host else host}:{self.port}"

    def begin_drain(self) -> None:
        """Stop accepting; connections finish the transcription in progress."""
        self.draining = True
        if self.server is not None:
            self.server.close()

    async def wait_closed(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.handlers and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for handler in list(self.handlers.values()):
            await handler.stop()
        if self.server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 5)
