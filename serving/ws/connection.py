"""The asyncio shell around one :class:`~serving.ws.session.Session`: reader, processor, sender.

* The **reader** only takes frames off the WebSocket (with the idle timeout) and stamps each
  with its arrival time, so a frame that waits to be processed still counts from when it came
  (``end_of_speech_to_result_ms`` includes that wait).
* The **processor** hands the frames received so far to the session in one batch, in a
  worker thread (the VAD and the segmenter never run on the event loop, which stays free for
  other connections and health checks), and carries out the session's actions: messages and
  recognitions go into an ordered outbox. At most ``INBOX_FRAMES`` wait for it; beyond that the
  reader stops reading (TCP backpressure).
* The **sender** sends the outbox in order, awaiting each recognition (run by the shared
  :class:`~serving.inference.InferencePool`) when it comes up and handing its result back to
  the session, so results keep their order.

Every call into the session holds its lock: the session is a plain state machine that the
processor's thread and the loop take turns to drive.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from assistant import protocol as p
from assistant.recognizer import Result

from ..feeder import Upcoming
from ..logs import ConnectionLogger
from ..services import Services, SessionCalls
from .session import Action, Cancelled, Close, Finish, Recognize, Send, Session, SessionState

logger = logging.getLogger("assistant.serving.connection")

MAX_PENDING_FINALS = 4  # per connection; the processor waits beyond this (backpressure)
INBOX_FRAMES = 32  # frames received and not yet processed; the reader waits beyond this


@dataclass
class _Pending:
    work: Recognize
    task: asyncio.Task[Result | None]


@dataclass(frozen=True)
class _Finish:
    closed: bool  # send "closed" first (the session ended on "stop")


@dataclass(frozen=True)
class _Idle:
    """Nothing was received for the idle timeout (queued after the frames before it)."""


FATAL_SEND_TIMEOUT_S = 2.0  # to send the error that precedes a fatal close
OutboxItem = p.Message | _Pending | _Finish
InboxItem = tuple[str | bytes | _Idle, float]  # a frame (or the idle timeout) and when it came


class Connection:
    """One WebSocket client from the opening of the session to the last frame."""

    def __init__(self, services: Services, ws: ServerConnection, session: Session,
                 log: ConnectionLogger):
        self.services = services
        self.ws = ws
        self.session = session
        self.log = log
        self.outbox: asyncio.Queue[OutboxItem] = asyncio.Queue()
        self.results_sent = 0
        self.draining = False
        self._timeout: asyncio.Timeout | None = None
        self._finals: list[_Pending] = []
        self._closing: Close | None = None
        self._gone = False  # the client closed or dropped the connection
        self._slow = False  # closing a slow consumer: nothing more is sent
        self._inbox: collections.deque[InboxItem] = collections.deque()
        self._inbox_changed = asyncio.Event()  # frames came, or reading ended
        self._inbox_room = asyncio.Event()  # the processor took frames: the reader may go on
        self._reading = True  # the reader goes on (False: drain, fatal error, slow consumer)
        self._received_all = False  # the reader has stopped
        self._last_frame_s = time.perf_counter()
        self._calls = SessionCalls(services.feeder)  # one call into the session at a time

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_loop(), name=f"send-{self.session.session_id}")
        processor = asyncio.create_task(self._process_loop(),
                                        name=f"process-{self.session.session_id}")
        try:
            await self._read_loop()
            if not self._gone:
                await processor
                await self._finish_sending(sender)
        finally:
            for task in (processor, sender):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for item in self._drain_outbox():
                if isinstance(item, _Pending):
                    item.task.cancel()
            for pending in self._finals:
                pending.task.cancel()
            self._calls.now(self.session.end)
            if self._closing is not None and not self._gone:
                # Frames the client still sends would fill the receive queue and hide its
                # close frame from us: throw them away while the closing handshake runs.
                discard = asyncio.create_task(self._discard_incoming())
                await self.ws.close(self._closing.code, self._closing.reason)
                discard.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await discard

    async def _discard_incoming(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in self.ws:
                pass

    # -- reader -----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        """Receive and stamp frames until the client goes, the session ends or drains."""
        loop = asyncio.get_running_loop()
        try:
            while self._reading:
                if len(self._inbox) >= INBOX_FRAMES:
                    self._inbox_room.clear()
                    await self._inbox_room.wait()
                    continue
                try:
                    async with asyncio.timeout_at(self._deadline(loop)) as timeout:
                        self._timeout = timeout
                        frame: str | bytes | _Idle = await self.ws.recv()
                except TimeoutError:
                    if not self._reading:
                        break
                    frame = _Idle()
                    self._reading = False
                except ConnectionClosed as e:
                    self._went_away(e)
                    return
                finally:
                    self._timeout = None
                self._last_frame_s = time.perf_counter()
                self._inbox.append((frame, self._last_frame_s))
                self._inbox_changed.set()
        finally:
            self._received_all = True
            self._inbox_changed.set()

    def _went_away(self, closed: ConnectionClosed) -> None:
        if closed.sent is not None and closed.sent.code == p.CloseCode.MESSAGE_TOO_BIG:
            self.services.metrics.errors.labels(p.ErrorCode.FRAME_TOO_LARGE.value).inc()
            self.log.info("closed 1009: a frame over %d bytes",
                          self.session.limits.max_frame_bytes)
        elif closed.sent is not None and closed.sent.code == p.CloseCode.INVALID_DATA:
            self.services.metrics.errors.labels(p.ErrorCode.BAD_MESSAGE.value).inc()
            self.log.info("closed 1007: %s", closed.sent.reason or "a frame that is not UTF-8")
        else:
            self.log.info("client went away (close code %s)", self.ws.close_code)
        self._gone = True

    def _deadline(self, loop: asyncio.AbstractEventLoop) -> float:
        idle_s = self.session.limits.idle_timeout_s
        remaining = self._last_frame_s + idle_s - time.perf_counter()
        return loop.time() + max(0.0, remaining)

    def _stop_reading(self) -> None:
        self._reading = False
        self._inbox_room.set()
        if self._timeout is not None:
            self._timeout.reschedule(asyncio.get_running_loop().time())

    def begin_drain(self) -> None:
        """Shutting down: stop reading (now), finish what is in flight, then close 1001."""
        self.draining = True
        self._stop_reading()

    # -- processor ------------------------------------------------------------------------

    async def _process_loop(self) -> None:
        """Feed what the reader received to the session (off the loop) and act on it."""
        while True:
            await self._inbox_changed.wait()
            self._inbox_changed.clear()
            batch = list(self._inbox)
            self._inbox.clear()
            self._inbox_room.set()
            if batch and self.session.open:
                await self._apply(await self._calls.off_loop(
                    self._feed, batch, upcoming=self._upcoming(batch)))
                if not self.session.open:
                    self._stop_reading()
                if self.outbox.qsize() > self.session.limits.outbox_size:
                    self._close_slow_consumer()
                    return
            if self._received_all and not self._inbox:
                break
        if self.draining and self._closing is None:
            await self._apply(await self._calls.off_loop(self.session.drain, time.perf_counter()))

    def _upcoming(self, batch: list[InboxItem]) -> Upcoming | None:
        """The VAD frames of the audio that opens ``batch`` (see :mod:`serving.feeder`)."""
        audio: list[bytes] = []
        for frame, _ in batch:
            if not isinstance(frame, bytes):
                break
            audio.append(frame)
        return functools.partial(self.session.upcoming_frames, audio) if audio else None

    def _feed(self, batch: list[InboxItem]) -> list[Action]:
        """The session's actions for ``batch`` (runs in the feeder thread, lock held)."""
        actions: list[Action] = []
        for frame, arrived_s in batch:
            if not self.session.open:
                break
            if isinstance(frame, _Idle):
                actions += self.session.fatal(
                    p.ErrorCode.IDLE_TIMEOUT,
                    f"nothing received for {self.session.limits.idle_timeout_s:g} s")
            elif isinstance(frame, str):
                actions += self.session.on_text(frame, arrived_s)
            else:
                actions += self.session.on_audio(frame, arrived_s)
        return actions

    def _close_slow_consumer(self) -> None:
        self.services.metrics.errors.labels(p.ErrorCode.SLOW_CONSUMER.value).inc()
        self.log.warning("client does not read its events: %d waiting", self.outbox.qsize())
        self._closing = self._calls.now(self.session.close_slow_consumer)
        self._slow = True
        self._stop_reading()

    async def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                if isinstance(action.message, p.Ready):
                    self._started(action.message)
                elif isinstance(action.message, p.Error):
                    self.services.metrics.errors.labels(action.message.code).inc()
                    self.log.info("error %s: %s", action.message.code, action.message.message)
                self.outbox.put_nowait(action.message)
            elif isinstance(action, Recognize):
                await self._recognize(action)
            elif isinstance(action, Cancelled):
                self.log.info("cancel: dropping work before epoch %d", action.epoch)
                for item in self._drain_outbox(keep_messages=True):
                    self.outbox.put_nowait(item)
            elif isinstance(action, Finish):
                self.outbox.put_nowait(_Finish(closed=True))
            elif isinstance(action, Close):
                self._closing = action

    def _started(self, ready: p.Ready) -> None:
        self.services.session_started()
        start = self.session.start
        self.log.bind(model=ready.model)
        self.log.info("started: model %s, %d Hz, mode %s, partials %s, client %r", ready.model,
                      ready.sample_rate_hz, start.mode if start else "?",
                      start.partials if start else "?", (start.client if start else "")[:80])

    async def _recognize(self, work: Recognize) -> None:
        pool = self.services.pool
        entry = self.services.catalog.get(work.model)  # the newest: a reload applies now
        if work.partial:
            task = asyncio.create_task(pool.try_recognize(entry, work.request))
        else:
            self._finals = [f for f in self._finals if not f.task.done()]
            while len(self._finals) >= MAX_PENDING_FINALS:  # backpressure on this reader
                await asyncio.wait([self._finals[0].task])
                self._finals = [f for f in self._finals if not f.task.done()]
            task = asyncio.create_task(pool.recognize(entry, work.request))
        pending = _Pending(work, task)
        if not work.partial:
            self._finals.append(pending)
        self.outbox.put_nowait(pending)

    def _drain_outbox(self, keep_messages: bool = False) -> list[OutboxItem]:
        """Take everything out of the outbox; cancelled recognitions are not returned."""
        items: list[OutboxItem] = []
        while not self.outbox.empty():
            item = self.outbox.get_nowait()
            if isinstance(item, _Pending) and not self.session.is_current(item.work):
                item.task.cancel()
                continue
            if keep_messages or not isinstance(item, p.Message):
                items.append(item)
        return items

    async def _finish_sending(self, sender: asyncio.Task[None]) -> None:
        """Let the sender send what is queued, within a time limit, then choose the close."""
        limits = self.session.limits
        if self._slow:
            return
        if self._closing is not None:  # a fatal error: send it (and what precedes it) only
            for item in self._drain_outbox(keep_messages=True):
                if isinstance(item, _Pending):
                    item.task.cancel()
                else:
                    self.outbox.put_nowait(item)
            self.outbox.put_nowait(_Finish(closed=False))
            await self._wait_sender(sender, FATAL_SEND_TIMEOUT_S)
        elif self.draining:
            farewell = p.error(p.ErrorCode.SHUTTING_DOWN, "the server is shutting down", True)
            self.outbox.put_nowait(farewell)
            self.outbox.put_nowait(_Finish(closed=False))
            if not await self._wait_sender(sender, limits.drain_timeout_s):
                # Results still being computed are given up; the client is still told why.
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                with contextlib.suppress(ConnectionClosed, TimeoutError):
                    async with asyncio.timeout(FATAL_SEND_TIMEOUT_S):
                        await self._send(farewell)
            self._closing = Close(int(p.CloseCode.GOING_AWAY), "server shutting down")
        elif self.session.state is SessionState.STOPPED:
            await self._wait_sender(sender, limits.drain_timeout_s + limits.idle_timeout_s)
            self._closing = Close(int(p.CloseCode.NORMAL), "session stopped")

    async def _wait_sender(self, sender: asyncio.Task[None], timeout_s: float) -> bool:
        """Whether the sender sent everything queued within ``timeout_s``."""
        try:
            await asyncio.wait_for(asyncio.shield(sender), timeout_s)
        except TimeoutError:
            self.log.warning("gave up sending after %.1f s (%d events left)", timeout_s,
                             self.outbox.qsize())
            return False
        return True

    # -- sender ---------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        try:
            while True:
                item = await self.outbox.get()
                if isinstance(item, _Finish):
                    if item.closed and not self.draining:
                        await self._send(p.Closed(self.session.session_id, self.results_sent))
                    return
                if isinstance(item, _Pending):
                    messages = await self._resolve(item)
                else:
                    messages = [item]
                for message in messages:
                    await self._send(message)
        except ConnectionClosed:
            return

    async def _resolve(self, item: _Pending) -> list[p.Message]:
        """The messages a recognition's outcome becomes (none if cancelled or stale)."""
        work = item.work
        metrics = self.services.metrics
        if work.partial and not item.task.done() and not self.outbox.empty():
            item.task.cancel()  # something newer is waiting: a late partial is useless
            metrics.partials.labels("stale").inc()
            return []
        await asyncio.wait([item.task])
        if item.task.cancelled() or not self.session.is_current(work):
            return []
        error = item.task.exception()
        if error is not None:
            self.log.error("recognition failed: %s", error, exc_info=error)
            return [p.error(p.ErrorCode.INTERNAL, f"recognition failed: {error}", False)]
        result = item.task.result()
        if result is None:  # a partial skipped because the pool was busy
            metrics.partials.labels("busy").inc()
            return []
        if work.partial:
            metrics.partials.labels("sent").inc()
        elif work.request.utterance.speculative:
            metrics.speculations.labels(work.model).inc()
        actions = await self._calls.off_loop(self.session.complete, work, result,
                                             time.perf_counter())
        return [a.message for a in actions if isinstance(a, Send)]

    async def _send(self, message: p.Message) -> None:
        await self.ws.send(message.to_json())
        if isinstance(message, p.Result):
            self.results_sent += 1
