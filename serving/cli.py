"""``assistant serve``: the entry point that configures logging, handles signals and runs."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import sys
from typing import Any

from assistant.errors import AssistantError

from . import logs
from .config import Settings, add_arguments, load

logger = logging.getLogger("assistant.serving.cli")


def _say(message: str) -> None:
    print(f"[assistant] {message}", file=sys.stderr, flush=True)


async def serve(settings: Settings) -> int:
    from .server import App

    app = App(settings, progress=_say)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloading: set[asyncio.Task[Any]] = set()

    def reload() -> None:
        task = loop.create_task(asyncio.to_thread(app.reload))
        reloading.add(task)
        task.add_done_callback(_reload_done)
        task.add_done_callback(reloading.discard)

    def _reload_done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("reload failed: %s", task.exception())

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    models = ", ".join(f"{s.name} ({s.kind} {s.path})" for s in settings.sources)
    _say(f"loading {models}")
    await app.start()
    http = "https" if app.tls else "http"
    page = app.url.replace("wss://", f"{http}://").replace("ws://", f"{http}://")
    _say(f"ready: listening on {app.url}/v1/stream (browser page {page}/, metrics "
         f"{page}/metrics){'; API keys required' if app.services.auth.required else ''}")
    for listener in app.listeners[1:]:
        _say(f"ready: {listener.name} on {listener.url}")
    await app.serve_until(stop)
    _say("stopped")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = load(args)
    except AssistantError as e:
        print(f"assistant serve: error: {e}", file=sys.stderr)
        return 2
    logs.configure(settings.server.log_json, "DEBUG" if args.verbose
                   else settings.server.log_level)
    try:
        return asyncio.run(serve(settings))
    except AssistantError as e:
        print(f"assistant serve: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        print(f"assistant serve: error: cannot listen on {settings.server.host}:"
              f"{settings.server.port}: {e.strerror or e}", file=sys.stderr)
        return 2


DEFAULT_WYOMING_URI = "tcp://127.0.0.1:10300"


def cmd_wyoming(args: argparse.Namespace) -> int:
    if not args.wyoming_uri:
        args.wyoming_uri = DEFAULT_WYOMING_URI
    return cmd_serve(args)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="stream audio over WebSocket: results, partials, a browser page",
        description="Serve the recognizer over WebSocket (docs/serving.md, docs/protocol.md).")
    add_arguments(parser)
    parser.set_defaults(func=cmd_serve)
    parser = subparsers.add_parser(
        "wyoming", help="serve Home Assistant over Wyoming (speech to text, intents)",
        description="Serve the recognizer to Home Assistant over the Wyoming protocol, beside "
                    "the usual HTTP and WebSocket port (docs/home-assistant.md).")
    add_arguments(parser)
    parser.add_argument("--uri", dest="wyoming_uri", metavar="URI",
                        help=f"where to listen (default {DEFAULT_WYOMING_URI}; also "
                             f"unix://PATH)")
    parser.set_defaults(func=cmd_wyoming)
