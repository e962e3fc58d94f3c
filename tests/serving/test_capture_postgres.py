"""The capture store on PostgreSQL (several servers, one store): a real PostgreSQL started
on loopback by the test (Debian's postgresql package), the same behaviour as SQLite."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from serving.capture import CaptureConfig
from serving.capture_store import CaptureStore, Retention
from tests.serving.conftest import ServerThread, make_settings
from tests.serving.test_capture import _http, _session, row, tone

pytest.importorskip("psycopg")


def _binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; its URL."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    data = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as its own user
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*prefix, initdb, "-D", str(data / "db"), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*prefix, pg_ctl, "-D", str(data / "db"), "-w", "-l", str(data / "log"),
                    "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def fresh(postgres: str) -> str:
    """The database with no captured utterances."""
    import psycopg

    with psycopg.connect(postgres, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS utterances")
    return postgres


def test_two_servers_share_one_postgres_store(fresh: str, tmp_path: Path) -> None:
    audio_dir = tmp_path / "shared-audio"  # a shared filesystem in a real deployment
    one = CaptureStore.open(audio_dir, database=fresh)
    two = CaptureStore.open(audio_dir, database=fresh)
    first = one.add(row("s1", 0), tone(seed=0), now_s=1_700_000_000.5)
    two.add(row("s2", 0, key="k2"), tone(seed=1), now_s=1_700_000_001.25)
    assert one.add(row("s1", 0), tone(seed=0)) == first  # kept once per utterance
    assert {r["session_id"] for r in two.rows()} == {"s1", "s2"}  # each sees the other's
    assert one.rows()[0]["created_s"] == 1_700_000_001.25  # full precision timestamps
    assert two.feedback("s1", 0, correct=False, intent="lightsOn", slots={"room": "hall"})
    stats = one.stats()
    assert (stats["utterances"], stats["with_feedback"]) == (2, 1)
    assert isinstance(stats["audio_bytes"], int) and json.dumps(stats)
    report = one.export(tmp_path / "out")
    assert report["exported"] == 1
    assert two.delete(key_id="k2") == 1 and len(list((audio_dir / "audio").iterdir())) == 1
    assert one.enforce(Retention(days=1, max_utterances=0, max_bytes=0),
                       now_s=1_700_000_000.5 + 2 * 86400) == 1
    assert one.rows() == [] and list((audio_dir / "audio").iterdir()) == []
    one.close()
    two.close()


def test_a_server_keeps_its_metadata_in_postgres(fresh: str, vad, speak,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    settings = dataclasses.replace(make_settings(), capture=CaptureConfig(
        capture_dir=str(tmp_path / "audio"), capture_database=fresh))
    silence = np.zeros(16000, np.float32)
    traffic = np.concatenate([speak("the quarterly report is due on friday"), silence])
    with ServerThread(settings, vad) as server:
        session, results = _session(server, traffic)
        assert results and not results[0]["understood"]
        status, body = _http(server, "POST", "/v1/feedback", {
            "session_id": session, "utterance_id": results[0]["utterance_id"],
            "correct": True})
        assert (status, body) == (200, {"counted": True, "stored": True, "capture": True})
        listing = _http(server, "GET", "/v1/capture")[1]
        metrics = urllib.request.urlopen(server.http + "/metrics", timeout=10).read().decode()
    assert [r["kept_for"] for r in listing["recent"]] == ["not_understood"]
    assert "assistant_capture_utterances 1.0" in metrics
    assert not (tmp_path / "audio" / "capture.db").exists()  # the metadata is in PostgreSQL
    store = CaptureStore.open(tmp_path / "audio", database=fresh)
    assert [r["session_id"] for r in store.rows()] == [session]
    store.close()
