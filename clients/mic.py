"""``assistant mic``: talk to a server from a terminal (hands-free or push-to-talk), or stream
a file at real-time speed (``--file``, no audio device needed); ``--json`` for scripts.

Hands-free: the server's endpointer decides when each command ends. Push-to-talk
(``--push-to-talk``): press Enter to start talking and Enter again to stop (``finalize``);
while nobody talks the client sends ``keepalive`` so the session stays open.

A session that was up and is lost (server restart, network) is reconnected with exponential
backoff for as long as the server's answer says it may help (retryable close codes), and
the backoff starts over after each successful reconnect; ``--file`` then goes on from where
it got to, not from the start. What can never work (no server at that address, a wrong key,
a missing file) is one clear line and exit code 1 at once, no retries, no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

import numpy as np

from assistant import protocol as p
from assistant.errors import AssistantError

from .audio_input import AudioInputError, input_devices, microphone_chunks
from .sdk import DEFAULT_URL, AsyncClient, ClientError, ConnectError, ServerError, stream_url

RETRYABLE_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 4030, 4031})
BAR_WIDTH = 30


class View:
    """What the user sees: a live line (level, partial) and one line per result. Every other
    line (results, notes, errors) first clears the live line, so nothing lands on the bar."""

    def __init__(self, out: TextIO, as_json: bool):
        self.out = out
        self.as_json = as_json
        self.level_dbfs = -100.0
        self.status = ""
        self.partial = ""
        self.live = out.isatty() and not as_json

    def event(self, message: p.Message) -> None:
        if self.as_json:
            print(message.to_json(), file=self.out, flush=True)
            return
        if isinstance(message, p.Ready):
            self.line(f"connected: model {message.model!r}, intents: "
                      f"{', '.join(message.intents)}")
        elif isinstance(message, p.SpeechStarted):
            self.status, self.partial = "speech", ""
        elif isinstance(message, p.Partial):
            self.partial = message.transcript
        elif isinstance(message, p.SpeechEnded):
            self.status = "thinking"
        elif isinstance(message, p.Result):
            self.status, self.partial = "", ""
            if message.understood:
                slots = " ".join(f"{k}={v}" for k, v in message.slots.items())
                text = f"{message.intent} {slots}".strip()
            else:
                text = "(not understood)"
            self.line(f"{text}  [{message.confidence:.2f}] \"{message.transcript or message.heard}"
                      f"\" {message.timing.end_of_speech_to_result_ms:.0f} ms")
        elif isinstance(message, p.Error):
            self.line(f"server: {message.code}: {message.message}")
        self.redraw()

    def level(self, dbfs: float) -> None:
        self.level_dbfs = dbfs
        self.redraw()

    def note(self, text: str) -> None:
        if self.as_json:
            print(json.dumps({"type": "client_status", "message": text}), file=self.out,
                  flush=True)
        else:
            self.line(text)

    def line(self, text: str) -> None:
        if self.live:
            self.out.write("\r\x1b[2K")
        print(text, file=self.out, flush=True)

    def close(self) -> None:
        """Clear the live line (before the program prints its last words and exits)."""
        if self.live:
            self.out.write("\r\x1b[2K")
            self.out.flush()
            self.live = False

    def redraw(self) -> None:
        if not self.live:
            return
        filled = int(BAR_WIDTH * min(1.0, max(0.0, (self.level_dbfs + 60) / 60)))
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        text = f"[{bar}] {self.status:8s} {self.partial}"[:200]
        self.out.write("\r\x1b[2K" + text)
        self.out.flush()


async def _enter_presses() -> AsyncIterator[None]:
    """One item per Enter on stdin."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[None] = asyncio.Queue()

    def on_line() -> None:
        sys.stdin.readline()
        queue.put_nowait(None)

    loop.add_reader(sys.stdin.fileno(), on_line)
    try:
        while True:
            await queue.get()
            yield None
    finally:
        loop.remove_reader(sys.stdin.fileno())


async def _push_to_talk(client: AsyncClient, args: argparse.Namespace, view: View) -> None:
    talking = asyncio.Event()

    async def keys() -> None:
        view.note("push-to-talk: press Enter to talk, Enter again to send")
        async for _ in _enter_presses():
            if talking.is_set():
                talking.clear()
                await client.finalize()
                view.status = "thinking"
            else:
                talking.set()
                view.status = "talking"
            view.redraw()

    async def keep_alive() -> None:
        assert client.ready is not None
        every_s = max(0.2, client.ready.limits.idle_timeout_s / 3)
        while True:
            await asyncio.sleep(every_s)
            if not talking.is_set():
                await client.keepalive()

    async def gated() -> AsyncIterator[np.ndarray]:
        async for chunk in microphone_chunks(client.start.sample_rate_hz, args.device,
                                             on_level=view.level):
            if talking.is_set():
                yield chunk

    tasks = [asyncio.create_task(keys()), asyncio.create_task(keep_alive())]
    try:
        async for event in client.stream_chunks(gated(), stop=False):
            view.event(event)
    finally:
        for task in tasks:
            task.cancel()


class FileSource:
    """A file streamed at real-time speed (or faster) that remembers how far it got, so a
    reconnected session goes on from there instead of sending it all again."""

    def __init__(self, path: str, rate_hz: int, realtime: bool, chunk_ms: int = 100):
        from assistant.audio import read_audio
        from assistant.resample import resample

        audio = read_audio(path)  # a missing or unreadable file fails here, before connecting
        if rate_hz != p.DEFAULT_SAMPLE_RATE_HZ:
            audio = resample(audio, p.DEFAULT_SAMPLE_RATE_HZ, rate_hz)
        self.audio = audio
        self.rate_hz = rate_hz
        self.step = max(1, rate_hz * chunk_ms // 1000)
        self.realtime = realtime
        self.sent = 0  # samples already sent

    async def chunks(self, view: View, speed: float) -> AsyncIterator[np.ndarray]:
        import time

        started, first = time.perf_counter(), self.sent
        while self.sent < self.audio.size:
            chunk = self.audio[self.sent : self.sent + self.step]
            rms = float(np.sqrt(np.mean(np.square(chunk)))) if chunk.size else 0.0
            view.level(20 * np.log10(rms + 1e-10))
            yield chunk
            self.sent += chunk.size
            due = started + (self.sent - first) / self.rate_hz / speed
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        view.level(-100.0)


async def _session(args: argparse.Namespace, view: View, source: FileSource | None,
                   on_ready: Callable[[], None]) -> None:
    if source is None and not input_devices():
        raise AudioInputError("no audio input device found (is a microphone connected? "
                              "'assistant mic --list-devices' lists them; --file FILE.wav "
                              "streams a file instead)")
    client = AsyncClient(args.url, api_key=args.api_key, model=args.model,
                         sample_rate_hz=args.sample_rate_hz, partials=args.partials,
                         mode="push_to_talk" if args.push_to_talk else "vad",
                         client_name="assistant-mic", endpointing=args.endpointing)
    async with client:
        assert client.ready is not None
        on_ready()
        view.event(client.ready)
        if source is not None:
            speed = 1.0 if source.realtime else 0.8 * client.ready.limits.max_audio_speed
            async for event in client.stream_chunks(source.chunks(view, speed)):
                view.event(event)
        elif args.push_to_talk:
            await _push_to_talk(client, args, view)
        else:
            async for event in client.stream_microphone(args.device, on_level=view.level):
                view.event(event)


async def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    view = View(out or sys.stdout, args.json)
    source = FileSource(args.file, args.sample_rate_hz, args.realtime) if args.file else None
    if args.url.startswith(("http://", "https://")):
        view.note(f"{args.url} is the browser page's address; streaming to "
                  f"{stream_url(args.url)}")
    attempt = 0
    connected_once = False

    def ready() -> None:
        nonlocal attempt, connected_once
        attempt, connected_once = 0, True  # a good connection starts the backoff over

    try:
        while True:
            try:
                await _session(args, view, source, ready)
                return 0
            except (ConnectError, ServerError) as e:
                if not _worth_retrying(e, connected_once):
                    raise
                if args.retries is not None and attempt >= args.retries:
                    raise
                delay = min(args.max_backoff_s, 0.5 * 2**attempt)
                if isinstance(e, ServerError) and e.retry_after_s:
                    delay = max(delay, e.retry_after_s)
                attempt += 1
                where = (f" (going on from {source.sent / source.rate_hz:.1f} s of the file)"
                         if source is not None else "")
                view.note(f"{e}; reconnecting in {delay:.1f} s{where}")
                await asyncio.sleep(delay)
    finally:
        view.close()


def _worth_retrying(error: ClientError, connected_once: bool) -> bool:
    """Retry what a later try can fix: a server that was there and went away, or one that
    asked to be retried; never an address with no server behind it from the start."""
    if isinstance(error, ServerError):
        return error.close_code in RETRYABLE_CLOSE_CODES
    return connected_once


def cmd_mic(args: argparse.Namespace) -> int:
    try:
        if args.list_devices:
            devices = input_devices()
            if not devices:
                print("no audio input devices found", file=sys.stderr)
                return 1
            for d in devices:
                mark = "*" if d["default"] else " "
                print(f"{mark} {d['index']:3d}  {d['name']}  ({d['channels']} ch, "
                      f"{d['default_rate_hz']} Hz)")
            return 0
        if args.file and args.push_to_talk:
            print("assistant mic: error: --push-to-talk needs a microphone, not --file",
                  file=sys.stderr)
            return 2
        return asyncio.run(run(args))
    except ConnectError as e:
        print(f"assistant mic: error: server unreachable: {e} (is 'assistant serve' "
              f"running there? its address is ws://HOST:PORT, e.g. {DEFAULT_URL})",
              file=sys.stderr)
        return 1
    except AssistantError as e:
        print(f"assistant mic: error: {e}", file=sys.stderr)
        return 1


def _device(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mic", help="talk to a server from the terminal (or stream a file)",
        description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("ASSISTANT_URL", DEFAULT_URL),
                        help=f"server address (default {DEFAULT_URL}; env ASSISTANT_URL)")
    parser.add_argument("--api-key", default=os.environ.get("ASSISTANT_API_KEY"),
                        help="API key (env ASSISTANT_API_KEY)")
    parser.add_argument("--model", help="model name on the server (default: its default)")
    parser.add_argument("--file", metavar="FILE.wav", help="stream a file instead of a mic")
    parser.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=True,
                        help="pace --file at real-time speed (default on)")
    parser.add_argument("--push-to-talk", action="store_true",
                        help="press Enter to start and stop talking")
    parser.add_argument("--endpointing", choices=p.ENDPOINTING,
                        help="how the server ends an utterance: after a fixed silence, or "
                             "sooner once the grammar says the command is complete "
                             "(default: the server's setting)")
    parser.add_argument("--partials", action=argparse.BooleanOptionalAction, default=True,
                        help="show partial results while speaking (default on)")
    parser.add_argument("--json", action="store_true", help="print events as JSON lines")
    parser.add_argument("--device", type=_device, help="input device index or name")
    parser.add_argument("--list-devices", action="store_true", help="list input devices")
    parser.add_argument("--sample-rate-hz", type=int, default=16000,
                        help="rate to capture and send (default 16000)")
    parser.add_argument("--retries", type=int, default=None,
                        help="reconnect attempts in a row after a lost connection "
                             "(default: no limit while the server says it may help)")
    parser.add_argument("--max-backoff-s", type=float, default=10.0,
                        help="longest wait between reconnects (default 10)")
    parser.set_defaults(func=cmd_mic)
