"""``assistant serve``: the entry point that configures logging, handles signals and runs."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, ConfigError

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
    parser = subparsers.add_parser(
        "capture", help="the opt-in capture store: stats, list, delete, export",
        description="Read, delete from or export the store 'assistant serve --capture-dir' "
                    "writes (docs/capture.md). Works beside a running server.")
    parser.add_argument("action", choices=("stats", "list", "delete", "export"))
    parser.add_argument("--dir", required=True, type=Path, help="the capture directory")
    parser.add_argument("--limit", type=int, default=50, help="list: how many, newest first")
    parser.add_argument("--capture-id", help="delete: this utterance")
    parser.add_argument("--session", help="delete: this session's utterances")
    parser.add_argument("--utterance", type=int, help="delete: with --session, this one")
    parser.add_argument("--key-id", help="delete: everything of this API key id")
    parser.add_argument("--out", type=Path, help="export: a folder for labels.jsonl + audio "
                        "(what 'assistant train --recordings' reads)")
    parser.set_defaults(func=cmd_capture)


def cmd_capture(args: argparse.Namespace) -> int:
    from .capture_store import CaptureStore

    store = CaptureStore.open(args.dir, create=False)
    try:
        if args.action == "stats":
            print(json.dumps(store.stats(), indent=1))
        elif args.action == "list":
            for row in store.rows(args.limit):
                print(json.dumps(row, ensure_ascii=False))
        elif args.action == "delete":
            deleted = store.delete(capture_id=args.capture_id, session_id=args.session,
                                   utterance_id=args.utterance, key_id=args.key_id)
            print(json.dumps({"deleted": deleted}))
        else:
            if args.out is None:
                raise ConfigError("export needs --out FOLDER")
            print(json.dumps(store.export(args.out)))
    finally:
        store.close()
    return 0
