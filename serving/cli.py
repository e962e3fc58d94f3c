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


def _sayer(log_json: bool) -> Any:
    """How the server tells the person at the terminal how it goes: a plain line, or with
    JSON logs a log record (so that every line of stderr is JSON)."""
    if log_json:
        return logging.getLogger("assistant.serving").info

    def say(message: str) -> None:
        print(f"[assistant] {message}", file=sys.stderr, flush=True)

    return say


async def serve(settings: Settings) -> int:
    from .server import App

    _say = _sayer(settings.server.log_json)
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


def cmd_serve(args: argparse.Namespace, command: str = "serve") -> int:
    try:
        settings = load(args)
    except AssistantError as e:
        print(f"assistant {command}: error: {e}", file=sys.stderr)
        return 2
    logs.configure(settings.server.log_json, "DEBUG" if args.verbose
                   else settings.server.log_level)
    try:
        return asyncio.run(serve(settings))
    except AssistantError as e:
        print(f"assistant {command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        print(f"assistant {command}: error: cannot listen on {settings.server.host}:"
              f"{settings.server.port}: {e.strerror or e}", file=sys.stderr)
        return 2


DEFAULT_WYOMING_URI = "tcp://127.0.0.1:10300"


def cmd_wyoming(args: argparse.Namespace) -> int:
    if not args.wyoming_uri:
        args.wyoming_uri = DEFAULT_WYOMING_URI
    return cmd_serve(args, "wyoming")


SETTINGS_EPILOG = ("Every setting is also an ASSISTANT_* variable and a config-file key; "
                   "what each one does is in docs/serving.md (the table of settings) and, for "
                   "the monitor's, docs/monitoring.md.")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="stream audio over WebSocket: results, partials, a browser page",
        description="Serve the recognizer over WebSocket (docs/serving.md, docs/protocol.md).",
        epilog=SETTINGS_EPILOG)
    add_arguments(parser)
    parser.set_defaults(func=cmd_serve)
    parser = subparsers.add_parser(
        "wyoming", help="serve Home Assistant over Wyoming (speech to text, intents)",
        description="Serve the recognizer to Home Assistant over the Wyoming protocol, beside "
                    "the usual HTTP and WebSocket port (docs/home-assistant.md).",
        epilog=SETTINGS_EPILOG)
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
    parser.add_argument("--database", default="", help="the PostgreSQL URL, when the server "
                        "keeps the metadata there (capture_database)")
    parser.add_argument("--limit", type=int, default=50, help="list: how many, newest first")
    parser.add_argument("--capture-id", help="delete: this utterance")
    parser.add_argument("--session", help="delete: this session's utterances")
    parser.add_argument("--utterance", type=int, help="delete: with --session, this one")
    parser.add_argument("--key-id", help="delete: everything of this API key id")
    parser.add_argument("--out", type=Path, help="export: a folder for labels.jsonl + audio "
                        "(what 'assistant train --recordings' reads)")
    parser.set_defaults(func=cmd_capture)
    parser = subparsers.add_parser(
        "review", help="label captured utterances: accept, type what was said, pick the "
        "intent, not a command, or discard",
        description="Go through the captured utterances nobody has said anything about yet "
                    "(docs/capture.md). Answers are read from standard input, one a line, "
                    "so a review can also be scripted.")
    parser.add_argument("--dir", required=True, type=Path, help="the capture directory")
    parser.add_argument("--database", default="", help="the PostgreSQL URL, when the server "
                        "keeps the metadata there (capture_database)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--context", type=Path, help="the grammar the utterances were for")
    where.add_argument("--model", type=Path, help="or the model directory (its grammar)")
    parser.add_argument("--play", action="store_true", help="play each utterance (needs an "
                        "audio device: sounddevice, or aplay)")
    parser.add_argument("--limit", type=int, default=0, help="stop after this many (0: all)")
    parser.set_defaults(func=cmd_review)


REVIEW_HELP = ("[a]ccept the answer, [t]ype what was said, pick the [i]ntent, [n]ot a "
               "command, [d]iscard (delete), [s]kip, [q]uit")


def cmd_review(args: argparse.Namespace) -> int:
    from assistant.grammar import load_context, parse
    from assistant.recognizer import model_dir_context

    from .capture_store import CaptureStore

    if args.context is not None:
        context = load_context(args.context)
    else:
        from assistant.artifacts import read_metadata

        context = model_dir_context(args.model, read_metadata(args.model))
    store = CaptureStore.open(args.dir, create=False, database=args.database)
    intents = context.intent_names
    counts = {"accepted": 0, "corrected": 0, "no_command": 0, "discarded": 0, "skipped": 0}

    def ask(prompt: str) -> str:
        print(prompt, end=" ", flush=True)
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.strip()

    try:
        for number, row in enumerate(store.unreviewed(), 1):
            if args.limit and number > args.limit:
                break
            answer = (f"{row['intent']} {json.dumps(row['slots'])} ({row['confidence']:.2f})"
                      if row["understood"] else f"not understood ({row['reason']})")
            print(f"\n#{number} {row['capture_id']} [{row['kept_for']}] "
                  f"{store.directory / row['audio_file']}\n  answer: {answer}\n"
                  f"  heard:  {row['heard'] or '-'}\n  {REVIEW_HELP}")
            if args.play:
                _play(store.directory / row["audio_file"])
            key = (row["session_id"], row["utterance_id"])
            while True:
                choice = ask(">")[:1].lower()
                if choice == "a" and row["understood"]:
                    store.feedback(*key, correct=True)
                    counts["accepted"] += 1
                elif choice == "t":
                    said = ask("said:")
                    parsed = parse(context, said)
                    if parsed is None:
                        print("  not a sentence of the grammar: try again, or pick the intent")
                        continue
                    slots = dict(parsed.to_json()["slots"])
                    same = (row["understood"] and parsed.intent == row["intent"]
                            and slots == row["slots"])
                    store.feedback(*key, correct=same, intent=parsed.intent, slots=slots,
                                   text=parsed.text)
                    counts["accepted" if same else "corrected"] += 1
                elif choice == "i":
                    for i, name in enumerate(intents, 1):
                        print(f"  {i}. {name} {list(context.intent(name).slot_names)}")
                    picked = ask("intent number:")
                    if not picked.isdigit() or not 1 <= int(picked) <= len(intents):
                        print("  no such intent")
                        continue
                    intent = intents[int(picked) - 1]
                    allowed = context.intent(intent).slot_names
                    slots_line = ask("slots (name=value, space-separated; empty: none):")
                    pairs = dict(p.split("=", 1) for p in slots_line.split() if "=" in p)
                    unknown = sorted(set(pairs) - set(allowed))
                    if unknown:
                        print(f"  {intent} has no slots {unknown} (has {list(allowed)})")
                        continue
                    store.feedback(*key, correct=False, intent=intent, slots=pairs)
                    counts["corrected"] += 1
                elif choice == "n":
                    store.feedback(*key, correct=not row["understood"], intent=None)
                    counts["no_command"] += 1
                elif choice == "d":
                    store.delete(capture_id=row["capture_id"])
                    counts["discarded"] += 1
                elif choice == "s":
                    counts["skipped"] += 1
                elif choice == "q":
                    raise EOFError
                else:
                    print(f"  {REVIEW_HELP}" + ("" if row["understood"] or choice != "a"
                                                else " (nothing was understood to accept)"))
                    continue
                break
    except EOFError:
        pass
    finally:
        store.close()
    print("\n" + json.dumps({"reviewed": counts}))
    return 0


def _play(path: Path) -> None:
    """Play a recording on the default device, if there is one; say so when not."""
    import shutil
    import subprocess

    try:
        import sounddevice
        import soundfile

        audio, rate = soundfile.read(path, dtype="float32")
        sounddevice.play(audio, rate, blocking=True)
        return
    except Exception:  # no module, no device: try a command-line player
        pass
    if shutil.which("aplay"):
        subprocess.run(["aplay", "-q", str(path)], check=False)
    else:
        print("  (no audio device or player here: open the file above)")


def cmd_capture(args: argparse.Namespace) -> int:
    from .capture_store import CaptureStore

    store = CaptureStore.open(args.dir, create=False, database=args.database)
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
