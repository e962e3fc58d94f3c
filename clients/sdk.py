"""Python SDK for the streaming server: stream a file, a microphone or raw chunks, get events.

    async with AsyncClient("ws://127.0.0.1:8765", api_key=KEY) as client:
        async for event in client.stream_file("order.wav"):
            if isinstance(event, protocol.Result):
                print(event.intent, event.slots)

    with Client("ws://127.0.0.1:8765") as client:          # the same, without asyncio
        for result in client.recognize_file("order.wav"):
            print(result.intent)

Events are the typed dataclasses of :mod:`assistant.protocol`. A fatal ``error`` from the
server raises :class:`ServerError` (with ``code`` and ``close_code``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from assistant import protocol as p
from assistant.errors import AssistantError, MissingDependencyError

logger = logging.getLogger("assistant.clients.sdk")

DEFAULT_URL = "ws://127.0.0.1:8765"
CHUNK_MS = 100  # audio per binary frame
CLOSE_TIMEOUT_S = 15.0  # the blocking client waits this long for a close (websockets: 10 s)
T = TypeVar("T")


class ClientError(AssistantError):
    """The server could not be reached or closed the session."""


class ConnectError(ClientError):
    """No connection: the server is unreachable or refused the handshake."""


class ServerError(ClientError):
    """The server sent a fatal ``error`` or closed the connection abnormally."""

    def __init__(self, message: str, code: str | None = None, close_code: int | None = None,
                 retry_after_s: float | None = None):
        self.code = code
        self.close_code = close_code
        self.retry_after_s = retry_after_s
        super().__init__(message)


def _websockets() -> Any:
    try:
        from websockets.asyncio import client
    except ImportError as e:
        raise MissingDependencyError("websockets", "mic", "the streaming client") from e
    return client


def stream_url(url: str, token: str | None = None) -> str:
    """``url`` pointing at ``/v1/stream`` (a bare ``ws://host:port`` gets the path; the
    browser page's ``http(s)://host:port/`` is taken as the same server's ``ws(s)://``)."""
    base = url.rstrip("/")
    for page, stream in (("http://", "ws://"), ("https://", "wss://")):
        if base.startswith(page):
            base = stream + base[len(page):]
    if base.count("/") == 2:  # scheme://host[:port]
        base += "/v1/stream"
    return f"{base}{'&' if '?' in base else '?'}token={token}" if token else base


def to_pcm16(audio: np.ndarray | bytes) -> bytes:
    """16-bit little-endian bytes for float ([-1, 1]) or int16 samples; bytes pass through."""
    if isinstance(audio, bytes | bytearray | memoryview):
        return bytes(audio)
    samples = np.asarray(audio)
    if np.issubdtype(samples.dtype, np.floating):
        samples = np.round(np.clip(samples, -1.0, 1.0) * 32767.0)
    return samples.astype("<i2").tobytes()


class AsyncClient:
    """One streaming session (see module docs). ``connect()`` or ``async with`` opens it."""

    def __init__(self, url: str = DEFAULT_URL, *, api_key: str | None = None,
                 token: str | None = None, model: str | None = None,
                 sample_rate_hz: int = p.DEFAULT_SAMPLE_RATE_HZ, partials: bool = False,
                 mode: str = "vad", min_silence_ms: int | None = None,
                 open_timeout_s: float = 10.0, client_name: str = "assistant-sdk",
                 endpointing: str | None = None):
        self.url = url
        self.start = p.Start(sample_rate_hz=sample_rate_hz, model=model, partials=partials,
                             mode=mode, min_silence_ms=min_silence_ms, client=client_name,
                             endpointing=endpointing)
        self.api_key = api_key
        self.token = token
        self.open_timeout_s = open_timeout_s
        self.ready: p.Ready | None = None
        self._ws: Any = None
        self._stopped = False  # stop() was sent: the session ends; a new client is needed

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def connect(self) -> p.Ready:
        """Open the connection and the session; returns the server's ``ready``."""
        client = _websockets()
        from websockets.exceptions import InvalidHandshake, InvalidURI

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        try:
            self._ws = await client.connect(
                stream_url(self.url, self.token), additional_headers=headers,
                open_timeout=self.open_timeout_s, max_size=2**22)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as e:
            raise ConnectError(f"cannot connect to {self.url}: {e}") from e
        from websockets.exceptions import ConnectionClosed

        # Refused at once (auth, full, rate): the error frame that came first tells why.
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(self.start.to_json())
        self._stopped = False  # a new session
        first = await self._receive()
        if not isinstance(first, p.Ready):
            raise ServerError(f"expected 'ready', got {first.type!r}")
        self.ready = first
        return first

    async def send_audio(self, chunk: np.ndarray | bytes) -> None:
        """Send samples at the session's rate (float in [-1, 1], int16, or PCM16 bytes)."""
        await self._call(self._ws.send(to_pcm16(chunk)))

    async def finalize(self) -> None:
        await self._call(self._ws.send(p.Finalize().to_json()))

    async def cancel(self) -> None:
        await self._call(self._ws.send(p.Cancel().to_json()))

    async def keepalive(self) -> None:
        """Tell the server the session is still wanted (no audio is flowing); not answered."""
        await self._call(self._ws.send(p.KeepAlive().to_json()))

    async def stop(self) -> None:
        """Ask for the last results; the events then end with ``closed`` and the session with
        them (:meth:`stream_file`, :meth:`recognize_file` and :meth:`stream_chunks` stop it
        when their audio ends): open a new client for more."""
        await self._call(self._ws.send(p.Stop().to_json()))
        self._stopped = True

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _call(self, operation: Awaitable[T]) -> T:
        from websockets.exceptions import ConnectionClosed

        if self._ws is None:
            raise ClientError("not connected: call connect() first")
        if self._stopped:
            if asyncio.iscoroutine(operation):
                operation.close()  # never to be sent
            raise ClientError("this session was stopped (stop(), or a stream or recognize_file "
                              "that ended it): connect a new client for more audio")
        try:
            return await operation
        except ConnectionClosed as e:
            raise self._closed_error(e) from e

    def _closed_error(self, e: Exception) -> ServerError:
        code = getattr(self._ws, "close_code", None)
        reason = getattr(self._ws, "close_reason", None) or str(e)
        return ServerError(f"connection closed ({code}): {reason}", close_code=code)

    async def _receive(self) -> p.Message:
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                frame = await self._ws.recv()
            except ConnectionClosed as e:
                raise self._closed_error(e) from e
            if isinstance(frame, bytes):
                continue  # the protocol sends no binary frames to clients
            try:
                message = p.parse(frame, p.SERVER_MESSAGES)
            except p.UnknownMessageType as e:  # a newer server's: skipped, as the protocol says
                logger.debug("skipped a server message: %s", e)
                continue
            if isinstance(message, p.Error) and message.fatal:
                raise ServerError(f"{message.code}: {message.message}", message.code,
                                  p.close_code(message.code), message.retry_after_s)
            return message

    async def events(self) -> AsyncIterator[p.Message]:
        """Server events until ``closed`` (after :meth:`stop`) or the connection ends."""
        from websockets.exceptions import ConnectionClosedOK

        while True:
            try:
                message = await self._receive()
            except ServerError as e:
                if isinstance(e.__cause__, ConnectionClosedOK):
                    return
                raise
            yield message
            if isinstance(message, p.Closed):
                return

    async def stream_chunks(self, chunks: AsyncIterable[np.ndarray | bytes]
                            | Iterable[np.ndarray | bytes],
                            stop: bool = True) -> AsyncIterator[p.Message]:
        """Send ``chunks`` (an iterable or async iterable) while yielding events."""
        queue: asyncio.Queue[p.Message | BaseException | None] = asyncio.Queue()

        async def send() -> None:
            try:
                if isinstance(chunks, AsyncIterable):
                    async for chunk in chunks:
                        await self.send_audio(chunk)
                else:
                    for chunk in chunks:
                        await self.send_audio(chunk)
                if stop:
                    await self.stop()
            except Exception as e:  # the connection, or the audio source (no mic, unplugged)
                await queue.put(e)

        async def receive() -> None:
            try:
                async for message in self.events():
                    await queue.put(message)
            except Exception as e:  # the connection, or a message this SDK cannot read
                await queue.put(e)
            await queue.put(None)

        tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def stream_file(self, path: str | Path, realtime: bool = True,
                    chunk_ms: int = CHUNK_MS) -> AsyncIterator[p.Message]:
        """Stream an audio file (any format libsndfile reads) and yield the events.

        The file is sent at the session's rate (resampled when it differs); ``realtime``
        paces it like a microphone, otherwise it goes as fast as the server allows.
        """
        from assistant.audio import read_audio
        from assistant.resample import resample

        audio = read_audio(path)
        rate = self.start.sample_rate_hz
        if rate != p.DEFAULT_SAMPLE_RATE_HZ:
            audio = resample(audio, p.DEFAULT_SAMPLE_RATE_HZ, rate)
        return self.stream_chunks(self._paced(audio, rate, realtime, chunk_ms))

    async def _paced(self, audio: np.ndarray, rate: int, realtime: bool, chunk_ms: int
                     ) -> AsyncIterator[np.ndarray]:
        step = max(1, rate * chunk_ms // 1000)
        speed = 1.0
        if not realtime:
            limit = self.ready.limits.max_audio_speed if self.ready else 10.0
            speed = 0.8 * limit
        started = time.perf_counter()
        for i, start in enumerate(range(0, audio.size, step)):
            yield audio[start : start + step]
            due = started + (i + 1) * step / rate / speed
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async def stream_microphone(self, device: int | str | None = None,
                                chunk_ms: int = CHUNK_MS,
                                on_level: Callable[[float], None] | None = None
                                ) -> AsyncIterator[p.Message]:
        """Stream the default (or given) input device until cancelled; yield the events."""
        from .audio_input import microphone_chunks

        chunks = microphone_chunks(self.start.sample_rate_hz, device, chunk_ms, on_level)
        async for event in self.stream_chunks(chunks, stop=False):
            yield event

    async def recognize_file(self, path: str | Path, realtime: bool = False
                             ) -> list[p.Result]:
        """The results of one file, in order."""
        return [e async for e in self.stream_file(path, realtime) if isinstance(e, p.Result)]


def _wait(future: concurrent.futures.Future[T], thread: threading.Thread) -> T:
    """``future.result()``, waited for in short slices, so that the main thread goes back to
    the interpreter (which runs signal handlers, Ctrl-C's among them) at least every 0.1 s
    rather than only when a blocked wait is interrupted; a loop thread that is gone ends the
    wait with a ClientError. (Whatever the coroutine raised, a TimeoutError included, is
    raised as it is.)"""
    while not concurrent.futures.wait([future], timeout=0.1).done:
        if not thread.is_alive():
            future.cancel()
            raise ClientError("the client's event loop has stopped: connect a new client")
    return future.result()


async def _read_in_thread(chunks: Iterable[T]) -> AsyncIterator[T]:
    """``chunks`` as an async iterator whose every ``next`` runs in a worker thread."""
    iterator = iter(chunks)
    done = object()
    while True:
        chunk = await asyncio.to_thread(next, iterator, done)
        if chunk is done:
            return
        yield chunk  # type: ignore[misc]


class Client:
    """:class:`AsyncClient` for code without asyncio: a private event loop in a thread."""

    def __init__(self, url: str = DEFAULT_URL, **options: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="assistant-sdk", daemon=True)
        self._thread.start()
        self.client = AsyncClient(url, **options)

    def _submit(self, awaitable: Awaitable[T]) -> concurrent.futures.Future[T]:
        """``awaitable`` (a coroutine, or an async generator's step) run on the loop."""
        async def wrapped() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop)

    def _run(self, awaitable: Awaitable[T]) -> T:
        return _wait(self._submit(awaitable), self._thread)

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def ready(self) -> p.Ready | None:
        return self.client.ready

    def connect(self) -> p.Ready:
        return self._run(self.client.connect())

    def send_audio(self, chunk: np.ndarray | bytes) -> None:
        self._run(self.client.send_audio(chunk))

    def finalize(self) -> None:
        self._run(self.client.finalize())

    def cancel(self) -> None:
        self._run(self.client.cancel())

    def keepalive(self) -> None:
        self._run(self.client.keepalive())

    def stop(self) -> None:
        self._run(self.client.stop())

    def events(self) -> Iterator[p.Message]:
        """Blocking iteration over :meth:`AsyncClient.events`."""
        return self._iterate(self.client.events())

    def stream_file(self, path: str | Path, realtime: bool = True) -> Iterator[p.Message]:
        return self._iterate(self.client.stream_file(path, realtime))

    def recognize_file(self, path: str | Path, realtime: bool = False) -> list[p.Result]:
        return self._run(self.client.recognize_file(path, realtime))

    def stream_chunks(self, chunks: Iterable[np.ndarray | bytes], stop: bool = True
                      ) -> Iterator[p.Message]:
        """Send ``chunks`` while yielding events. The iterable is read in a thread of its own,
        so one that blocks until it has audio (a capture device) does not hold up the events."""
        return self._iterate(self.client.stream_chunks(_read_in_thread(chunks), stop))

    def stream_microphone(self, device: int | str | None = None, chunk_ms: int = CHUNK_MS,
                          on_level: Callable[[float], None] | None = None
                          ) -> Iterator[p.Message]:
        """Blocking :meth:`AsyncClient.stream_microphone` (until the iteration is closed)."""
        return self._iterate(self.client.stream_microphone(device, chunk_ms, on_level))

    def _iterate(self, events: AsyncIterator[p.Message]) -> Iterator[p.Message]:
        iterator = events.__aiter__()
        pending: concurrent.futures.Future[p.Message] | None = None
        try:
            while True:
                pending = self._submit(iterator.__anext__())
                try:
                    item = _wait(pending, self._thread)
                except StopAsyncIteration:
                    return
                pending = None
                yield item
        finally:  # left early (break, Ctrl-C, an error): the async side stops its tasks too
            if pending is not None:  # interrupted while waiting: stop that wait first
                pending.cancel()
                with contextlib.suppress(BaseException):
                    pending.result(timeout=5)
            close = getattr(iterator, "aclose", None)
            if close is not None and not self._loop.is_closed() \
                    and threading.current_thread() is not self._thread:
                # still running, or slow to stop: it ends with the loop
                with contextlib.suppress(RuntimeError, concurrent.futures.TimeoutError):
                    self._submit(close()).result(CLOSE_TIMEOUT_S)

    def close(self) -> None:
        """Close the connection and stop the private loop (idempotent)."""
        if self._loop.is_closed():
            return
        try:
            self._submit(self.client.close()).result(CLOSE_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            logger.warning("the connection did not close within %g s", CLOSE_TIMEOUT_S)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():  # (a loop still busy is left to end by itself)
                self._loop.close()
