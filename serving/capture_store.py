"""Where opt-in capture keeps utterances: SQLite (WAL) for what was said and answered, FLAC
files for the audio, in one directory.

    store = CaptureStore.open(Path("captured"))
    store.add(row, audio)                     # the writer thread of serving.capture does
    store.feedback("9f2c1a0b7d3e", 3, correct=False, intent="lightsOff", slots={...})
    store.delete(session_id="9f2c1a0b7d3e")   # rows and audio files
    store.export(Path("labelled"))            # labels.jsonl + audio, for assistant train

Layout::

    DIR/capture.db              one row per kept utterance (table ``utterances``)
    DIR/audio/<capture_id>.flac 16 kHz mono, 16-bit

The store is the only code that touches those files; the server and ``assistant capture``
both use it. SQLite runs in WAL mode so the CLI can read (and delete) while a server
writes. Everything here is synchronous: the server calls it from its writer thread or via
``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from assistant.errors import ConfigError
from assistant.pcm import SAMPLE_RATE_HZ

DB_FILE = "capture.db"
AUDIO_DIR = "audio"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS utterances (
    capture_id TEXT PRIMARY KEY,
    created_s {real} NOT NULL,          -- unix seconds
    model TEXT NOT NULL,
    session_id TEXT NOT NULL,
    utterance_id INTEGER NOT NULL,
    key_id TEXT NOT NULL,             -- the API key's id ('' without keys), never the key
    kept_for TEXT NOT NULL,           -- the class that kept it: not_understood, ...
    understood INTEGER NOT NULL,
    reason TEXT,                      -- why not understood
    intent TEXT,
    slots TEXT,                       -- JSON
    confidence {real},
    sentence TEXT,                    -- the grammar sentence the model chose
    heard TEXT,                       -- the free decode
    audio_file TEXT NOT NULL,         -- relative to the store's directory
    audio_bytes INTEGER NOT NULL,
    duration_s {real} NOT NULL,
    feedback_correct INTEGER,         -- NULL: no feedback
    feedback_intent TEXT,
    feedback_slots TEXT,              -- JSON
    feedback_text TEXT,               -- the words, when a reviewer typed them
    feedback_s {real}
);
CREATE UNIQUE INDEX IF NOT EXISTS by_utterance ON utterances (session_id, utterance_id);
CREATE INDEX IF NOT EXISTS by_key ON utterances (key_id);
CREATE INDEX IF NOT EXISTS by_created ON utterances (created_s);
"""


@dataclass(frozen=True)
class CapturedRow:
    """What is kept of one utterance besides its audio."""

    model: str
    session_id: str
    utterance_id: int
    key_id: str
    kept_for: str
    understood: bool
    reason: str | None
    intent: str | None
    slots: Mapping[str, Any]
    confidence: float | None
    sentence: str
    heard: str


@dataclass(frozen=True)
class Retention:
    """The oldest rows go first when any bound is passed (0: no bound)."""

    days: float = 30.0
    max_utterances: int = 10_000
    max_bytes: int = 1 << 30


class _Database:
    """One connection to the metadata database; SQL is written with ``?`` placeholders."""

    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SQLite(_Database):
    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                  timeout=10)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA.format(real="REAL"))
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(utterances)")}
        if "feedback_text" not in columns:  # a store made before reviews kept words
            self.db.execute("ALTER TABLE utterances ADD COLUMN feedback_text TEXT")
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql, tuple(args))

    def close(self) -> None:
        self.db.close()


class _Postgres(_Database):
    """PostgreSQL (``psycopg``): several servers share one store (the audio directory on a
    shared filesystem)."""

    def __init__(self, url: str):
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ModuleNotFoundError as e:
            raise ConfigError("a PostgreSQL capture store needs psycopg: pip install "
                              "'voice-assistant[postgres]'") from e
        self.db = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        self.integrity_errors = (psycopg.IntegrityError,)
        for statement in _SCHEMA.format(real="DOUBLE PRECISION").split(";"):
            if statement.strip():
                self.db.execute(statement)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql.replace("?", "%s"), tuple(args))

    def close(self) -> None:
        self.db.close()


class CaptureStore:
    """See module docs. Thread-safe (one lock around one connection). The metadata lives in
    ``DIR/capture.db`` (SQLite), or in PostgreSQL when ``database`` is a
    ``postgresql://`` URL (then ``DIR`` holds the audio only)."""

    def __init__(self, directory: Path, database: _Database):
        self.directory = directory
        self._db = database
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path | str, create: bool = True,
             database: str = "") -> CaptureStore:
        directory = Path(directory).expanduser()
        if not database and not create and not (directory / DB_FILE).is_file():
            raise ConfigError(f"no capture store in {directory} (no {DB_FILE})")
        if database and not database.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"capture_database must be a postgresql:// URL, got "
                              f"{database.split('@')[-1]!r}")
        try:
            (directory / AUDIO_DIR).mkdir(parents=True, exist_ok=True)
            db: _Database = _Postgres(database) if database else _SQLite(directory / DB_FILE)
        except ConfigError:
            raise
        except Exception as e:  # OSError, sqlite3.Error, psycopg.Error
            where = database.split("@")[-1] if database else str(directory)
            raise ConfigError(f"cannot open the capture store ({where}): {e}") from e
        return cls(directory, db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ------------------------------------------------------------------------

    def add(self, row: CapturedRow, audio: np.ndarray, now_s: float | None = None) -> str:
        """Keep one utterance (audio as float32 mono 16 kHz); returns its capture id. An
        utterance kept before (same session and id) is left as it was."""
        now = time.time() if now_s is None else now_s
        capture_id = secrets.token_hex(8)
        relative = f"{AUDIO_DIR}/{capture_id}.flac"
        path = self.directory / relative
        pcm = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
        # The audio goes to a temporary name and becomes the row's file only once the row is
        # in: a failed write or insert (full disk, database down) leaves no recording behind.
        partial = path.with_suffix(".flac.part")
        try:
            sf.write(partial, pcm, SAMPLE_RATE_HZ, format="FLAC", subtype="PCM_16")
            size = partial.stat().st_size
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO utterances (capture_id, created_s, model, session_id, "
                    "utterance_id, key_id, kept_for, understood, reason, intent, slots, "
                    "confidence, sentence, heard, audio_file, audio_bytes, duration_s) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (capture_id, now, row.model, row.session_id, row.utterance_id, row.key_id,
                     row.kept_for, int(row.understood), row.reason, row.intent,
                     json.dumps(dict(row.slots)), row.confidence, row.sentence, row.heard,
                     relative, size, pcm.size / SAMPLE_RATE_HZ))
            os.replace(partial, path)
        except self._db.integrity_errors:
            partial.unlink(missing_ok=True)
            return self._capture_id(row.session_id, row.utterance_id) or ""
        except BaseException:
            partial.unlink(missing_ok=True)
            with contextlib.suppress(Exception), self._lock:  # the row, if it got in
                self._db.execute("DELETE FROM utterances WHERE capture_id = ?", (capture_id,))
            raise
        return capture_id

    def feedback(self, session_id: str, utterance_id: int, *, correct: bool,
                 intent: str | None = None, slots: Mapping[str, Any] | None = None,
                 text: str | None = None, now_s: float | None = None) -> bool:
        """Attach feedback to a kept utterance (``text``: the words said, when known);
        False when none is kept under that id."""
        now = time.time() if now_s is None else now_s
        with self._lock:
            cursor = self._db.execute(
                "UPDATE utterances SET feedback_correct = ?, feedback_intent = ?, "
                "feedback_slots = ?, feedback_text = ?, feedback_s = ? "
                "WHERE session_id = ? AND utterance_id = ?",
                (int(correct), intent, None if slots is None else json.dumps(dict(slots)),
                 text, now, session_id, utterance_id))
        return cursor.rowcount > 0

    def unreviewed(self, owner: str | None = None) -> list[dict[str, Any]]:
        """Kept utterances nobody has said anything about yet, oldest first (``owner``: of
        that API key id only)."""
        return [r for r in reversed(self.rows(owner=owner)) if r["feedback_correct"] is None]

    def delete(self, *, capture_id: str | None = None, session_id: str | None = None,
               utterance_id: int | None = None, key_id: str | None = None,
               owner: str | None = None) -> int:
        """Delete rows and their audio by capture id, by session (and utterance), or by key;
        ``owner``: only rows of that API key id. Returns how many utterances went."""
        args: list[Any]
        if capture_id is not None:
            where, args = "capture_id = ?", [capture_id]
        elif session_id is not None and utterance_id is not None:
            where, args = "session_id = ? AND utterance_id = ?", [session_id, utterance_id]
        elif session_id is not None:
            where, args = "session_id = ?", [session_id]
        elif key_id is not None:
            where, args = "key_id = ?", [key_id]
        else:
            raise ConfigError("say what to delete: a capture id, a session (and utterance) "
                              "or a key id")
        if owner is not None:
            where, args = f"({where}) AND key_id = ?", [*args, owner]
        return self._delete_where(where, args)

    def enforce(self, retention: Retention, now_s: float | None = None) -> int:
        """Delete what the retention bounds leave out (oldest first); returns how many."""
        now = time.time() if now_s is None else now_s
        deleted = 0
        if retention.days > 0:
            deleted += self._delete_where("created_s < ?", [now - retention.days * 86400])
        with self._lock:
            rows = self._db.execute("SELECT capture_id, audio_bytes FROM utterances "
                                    "ORDER BY created_s DESC, capture_id DESC").fetchall()
        total, excess = 0, []
        for i, row in enumerate(rows):
            total += row["audio_bytes"]
            over_count = retention.max_utterances > 0 and i >= retention.max_utterances
            over_bytes = retention.max_bytes > 0 and total > retention.max_bytes
            if over_count or over_bytes:
                excess.append(row["capture_id"])
        for start in range(0, len(excess), 500):
            chunk = excess[start:start + 500]
            deleted += self._delete_where(
                f"capture_id IN ({','.join('?' * len(chunk))})", chunk)
        return deleted

    def _delete_where(self, where: str, args: list[Any]) -> int:
        with self._lock:
            files = [r["audio_file"] for r in self._db.execute(
                f"SELECT audio_file FROM utterances WHERE {where}", args)]
            self._db.execute(f"DELETE FROM utterances WHERE {where}", args)
        for relative in files:
            (self.directory / relative).unlink(missing_ok=True)
        return len(files)

    # -- reading ------------------------------------------------------------------------

    def _capture_id(self, session_id: str, utterance_id: int) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT capture_id FROM utterances WHERE session_id = ? "
                                   "AND utterance_id = ?", (session_id, utterance_id)).fetchone()
        return None if row is None else str(row["capture_id"])

    def get(self, capture_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._db.execute("SELECT * FROM utterances WHERE capture_id = ?",
                                     (capture_id,)).fetchone()
        return None if found is None else _plain(found)

    def rows(self, limit: int | None = None, owner: str | None = None
             ) -> list[dict[str, Any]]:
        """The kept utterances, newest first, as plain dicts (slots decoded); ``owner``: of
        that API key id only."""
        args: list[Any] = [owner] if owner is not None else []
        where = "WHERE key_id = ? " if owner is not None else ""
        sql = f"SELECT * FROM utterances {where}ORDER BY created_s DESC, capture_id DESC"
        if limit:
            sql, args = sql + " LIMIT ?", [*args, limit]
        with self._lock:
            found = self._db.execute(sql, args).fetchall()
        return [_plain(r) for r in found]

    def stats(self, owner: str | None = None) -> dict[str, Any]:
        """Counts and sizes (``owner``: of that API key id's utterances only)."""
        where, args = ("WHERE key_id = ? ", [owner]) if owner is not None else ("", [])
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) AS n, COALESCE(SUM(audio_bytes), 0) AS bytes, "
                "COALESCE(SUM(duration_s), 0) AS seconds, "
                f"COUNT(feedback_correct) AS feedback FROM utterances {where}", args).fetchone()
            kept = self._db.execute(f"SELECT kept_for, COUNT(*) AS n FROM utterances {where}"
                                    "GROUP BY kept_for", args).fetchall()
        return {"directory": str(self.directory), "utterances": int(row["n"]),
                "audio_bytes": int(row["bytes"]), "audio_s": round(float(row["seconds"]), 1),
                "with_feedback": int(row["feedback"]),
                "kept_for": {r["kept_for"]: int(r["n"]) for r in kept}}

    def labelled(self) -> Iterator[tuple[dict[str, Any], str | None, dict[str, Any],
                                          str | None]]:
        """(row, intent, slots, text) of every utterance whose right answer is known:
        feedback that confirms the answer (the text is then the grammar sentence) or that
        corrects it (intent and slots as given, None: no command; the words are unknown)."""
        for row in reversed(self.rows()):
            correct = row["feedback_correct"]
            if correct is None:
                continue
            if correct:
                if not row["understood"]:
                    continue  # "right" about a not-understood answer: nothing to learn
                yield (row, row["intent"], row["slots"],
                       row["feedback_text"] or row["sentence"] or None)
            else:
                yield (row, row["feedback_intent"], row["feedback_slots"] or {},
                       row["feedback_text"] or None)

    def export(self, out: Path) -> dict[str, Any]:
        """The labelled utterances as a recordings folder ``assistant train --recordings``
        reads: ``labels.jsonl`` (one ``{"audio", "intent", "slots", ...}`` a line; intent
        null for speech that is no command) and the FLAC files beside it."""
        out = Path(out)
        (out / AUDIO_DIR).mkdir(parents=True, exist_ok=True)
        count = 0
        with (out / "labels.jsonl").open("w", encoding="utf-8") as labels:
            for row, intent, slots, text in self.labelled():
                source = self.directory / row["audio_file"]
                if not source.is_file():
                    continue
                target = out / row["audio_file"]
                target.write_bytes(source.read_bytes())
                label = {"audio": row["audio_file"], "intent": intent, "slots": slots,
                         "model": row["model"], "captured": row["capture_id"],
                         "kept_for": row["kept_for"]}
                if text:
                    label["text"] = text
                labels.write(json.dumps(label, ensure_ascii=False) + "\n")
                count += 1
        digest = hashlib.sha256((out / "labels.jsonl").read_bytes()).hexdigest()
        dataset = {"version": digest[:12], "labels_sha256": digest, "utterances": count,
                   "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "store": str(self.directory.resolve())}
        (out / "dataset.json").write_text(json.dumps(dataset, indent=1) + "\n")
        return {"exported": count, "labels": str(out / "labels.jsonl"),
                "version": dataset["version"]}


def _plain(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["slots"] = json.loads(data["slots"]) if data["slots"] else {}
    data["feedback_slots"] = json.loads(data["feedback_slots"]) \
        if data["feedback_slots"] else None
    data["understood"] = bool(data["understood"])
    if data["feedback_correct"] is not None:
        data["feedback_correct"] = bool(data["feedback_correct"])
    return data
