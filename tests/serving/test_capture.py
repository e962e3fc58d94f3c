"""Opt-in capture and feedback: the store (SQLite + FLAC), the sink's policy, and a real server
on loopback with real models and real TTS (serving.capture, serving.capture_store)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sqlite3
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from websockets.sync.client import connect

from assistant.artifacts import cache_dir
from assistant.errors import ConfigError
from serving.capture import CaptureConfig, CaptureSink
from serving.capture_store import CapturedRow, CaptureStore, Retention
from tests.serving.conftest import ServerThread, make_settings
from tests.serving.test_quality import Clock, answer, completed


def row(session: str = "s1", utterance: int = 0, key: str = "k1",
        understood: bool = False) -> CapturedRow:
    return CapturedRow(model="home", session_id=session, utterance_id=utterance, key_id=key,
                       kept_for="not_understood", understood=understood,
                       reason=None if understood else "below_threshold",
                       intent="lightsOff" if understood else None,
                       slots={"room": "bedroom"} if understood else {}, confidence=0.3,
                       sentence="turn off the bedroom lights", heard="turn off the bed room")


def tone(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)


def files_under(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``roots`` with its size and modification time."""
    out = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                stat = path.stat()
                out[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return out


# -- the store ---------------------------------------------------------------------------

def test_the_store_keeps_audio_and_rows_and_deletes_both(tmp_path: Path) -> None:
    store = CaptureStore.open(tmp_path / "cap")
    audio = tone()
    first = store.add(row("s1", 0), audio, now_s=100.0)
    store.add(row("s1", 1, understood=True), tone(seed=1), now_s=101.0)
    store.add(row("s2", 0, key="k2"), tone(seed=2), now_s=102.0)
    assert store.add(row("s1", 0), audio) == first  # kept once per utterance
    with sqlite3.connect(tmp_path / "cap" / "capture.db") as db:  # WAL: readable while written
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    saved, rate = sf.read(tmp_path / "cap" / "audio" / f"{first}.flac", dtype="float32")
    assert rate == 16000 and np.allclose(saved, audio, atol=1 / 32767)
    stats = store.stats()
    assert stats["utterances"] == 3 and stats["audio_bytes"] > 0
    assert len(list((tmp_path / "cap" / "audio").iterdir())) == 3

    assert store.feedback("s1", 1, correct=False, intent="lightsOn", slots={"room": "hall"})
    assert not store.feedback("s9", 0, correct=True)  # nothing kept there
    kept = {(r["session_id"], r["utterance_id"]): r for r in store.rows()}
    assert kept[("s1", 1)]["feedback_correct"] is False
    assert kept[("s1", 1)]["feedback_slots"] == {"room": "hall"}

    assert store.delete(session_id="s2", owner="k1") == 0  # not this key's
    assert store.delete(session_id="s1", utterance_id=1) == 1
    assert store.delete(key_id="k2") == 1
    assert store.delete(capture_id=first) == 1
    assert store.rows() == [] and list((tmp_path / "cap" / "audio").iterdir()) == []
    with pytest.raises(ConfigError, match="say what to delete"):
        store.delete()
    store.close()
    with pytest.raises(ConfigError, match="no capture store"):
        CaptureStore.open(tmp_path / "elsewhere", create=False)


def test_retention_deletes_the_oldest_by_age_count_and_bytes(tmp_path: Path) -> None:
    store = CaptureStore.open(tmp_path)
    for i in range(6):
        store.add(row("s", i), tone(seed=i), now_s=1000.0 + 86400 * i)
    now = 1000.0 + 86400 * 5
    assert store.enforce(Retention(days=3.5, max_utterances=0, max_bytes=0), now) == 2
    assert store.enforce(Retention(days=0, max_utterances=3, max_bytes=0), now) == 1
    left = sorted(r["utterance_id"] for r in store.rows())
    assert left == [3, 4, 5]
    one = store.rows()[0]["audio_bytes"]
    assert store.enforce(Retention(days=0, max_utterances=0, max_bytes=one + 1), now) == 2
    assert [r["utterance_id"] for r in store.rows()] == [5]  # the newest stays
    assert len(list((tmp_path / "audio").iterdir())) == 1


def test_export_is_a_recordings_folder_training_reads(tmp_path: Path) -> None:
    from training.recordings import recording_rows

    store = CaptureStore.open(tmp_path / "cap")
    store.add(row("s", 0, understood=True), tone(seed=0))  # confirmed: its sentence is known
    store.add(row("s", 1), tone(seed=1))  # corrected to an intent
    store.add(row("s", 2), tone(seed=2))  # corrected: not a command
    store.add(row("s", 3), tone(seed=3))  # no feedback: not exported
    store.feedback("s", 0, correct=True)
    store.feedback("s", 1, correct=False, intent="lightsOn", slots={"room": "kitchen"})
    store.feedback("s", 2, correct=False, intent=None)
    report = store.export(tmp_path / "out")
    assert report["exported"] == 3
    labels = [json.loads(line) for line in
              (tmp_path / "out" / "labels.jsonl").read_text().splitlines()]
    assert [(x["intent"], x["slots"], x.get("text")) for x in labels] == [
        ("lightsOff", {"room": "bedroom"}, "turn off the bedroom lights"),
        ("lightsOn", {"room": "kitchen"}, None), (None, {}, None)]
    rows = recording_rows(tmp_path / "out", copies=1)  # what assistant train --recordings reads
    assert [r["intent"] for r in rows] == ["lightsOff", "lightsOn", None]
    assert all(Path(r["audio"]).is_file() for r in rows)


# -- the sink's policy -------------------------------------------------------------------

def test_the_policy_keeps_what_it_was_told_and_holds_the_rest_for_corrections(
        tmp_path: Path) -> None:
    clock = Clock()
    kept: list[tuple[str, str]] = []
    config = CaptureConfig(capture_dir=str(tmp_path), capture_confidence_below=0.7,
                           capture_keys=("k1",))
    sink = CaptureSink(config, key_of=lambda s: {"s1": "k1", "s2": "k2"}.get(s, ""),
                       on_kept=lambda model, why: kept.append((model, why)), clock=clock)
    sink.on_result(completed(answer(False), 0))  # not understood: kept
    sink.on_result(completed(answer(True, confidence=0.6), 1))  # low confidence: kept
    sink.on_result(completed(answer(True, confidence=0.95), 2))  # held for feedback
    sink.on_result(completed(answer(False), 0, stream="s2"))  # another key: never
    sink.on_result(completed(answer(True), 3, partial=True))  # partials: never
    assert kept == [("home", "not_understood"), ("home", "low_confidence")]
    assert sink.feedback("s1", 2, False, "lightsOff", None).result(10) is True  # kept now
    assert sink.feedback("s1", 1, True, None, None).result(10) is True
    assert sink.feedback("s2", 0, False, None, None).result(10) is False
    sink.flush()
    rows = {r["utterance_id"]: r for r in sink.store.rows()}
    assert {k: r["kept_for"] for k, r in rows.items()} == {
        0: "not_understood", 1: "low_confidence", 2: "corrected"}
    assert rows[2]["feedback_intent"] == "lightsOff" and rows[1]["feedback_correct"] is True
    # An answer held for feedback is dropped after the window.
    sink.on_result(completed(answer(True), 4))
    clock.now_s += config.capture_feedback_window_s + 1
    sink.on_result(completed(answer(True), 5))
    assert sink.feedback("s1", 4, False, None, None).result(10) is False
    sink.close()
    assert sorted(r["utterance_id"] for r in CaptureStore.open(tmp_path).rows()) == [0, 1, 2]


def test_sampling_keeps_about_the_share_asked_for(tmp_path: Path) -> None:
    config = CaptureConfig(capture_dir=str(tmp_path), capture_classes=("sample",),
                           capture_sample_percent=20)
    sink = CaptureSink(config, rng=random.Random(3))
    decided = [sink.kept_for(completed(answer(True), i)) for i in range(2000)]
    assert 300 < decided.count("sample") < 500 and set(decided) == {"sample", None}
    sink.close()


def test_capture_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        CaptureConfig(capture_classes=("everything",))
    with pytest.raises(ConfigError):
        CaptureConfig(capture_sample_percent=150)
    with pytest.raises(ConfigError, match="capture is off"):
        CaptureSink(CaptureConfig())


# -- a real server -----------------------------------------------------------------------

def _session(server: ServerThread, audio: np.ndarray) -> tuple[str, list[dict[str, Any]]]:
    with connect(server.url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "protocol_version": 1}))
        ready = json.loads(ws.recv(timeout=30))
        pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
        for i in range(0, len(pcm), 3200):
            ws.send(pcm[i : i + 3200])
        ws.send(json.dumps({"type": "stop"}))
        results = []
        while True:
            event = json.loads(ws.recv(timeout=60))
            if event["type"] == "result":
                results.append(event)
            if event["type"] == "closed":
                return ready["session_id"], results


def _http(server: ServerThread, method: str, path: str, body: Any = None
          ) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.http + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def traffic(speak) -> np.ndarray:  # type: ignore[no-untyped-def]
    silence = np.zeros(16000, np.float32)
    return np.concatenate([speak("turn off the bedroom lights"), silence,
                           speak("the quarterly report is due on friday"), silence])


def test_a_server_captures_corrects_lists_and_deletes(vad, traffic: np.ndarray,  # type: ignore[no-untyped-def]
                                                      tmp_path: Path) -> None:
    store_dir = tmp_path / "captured"
    settings = dataclasses.replace(make_settings(),
                                   capture=CaptureConfig(capture_dir=str(store_dir)))
    with ServerThread(settings, vad) as server:
        session, results = _session(server, traffic)
        understood = [r for r in results if r["understood"]]
        missed = [r for r in results if not r["understood"]]
        assert understood and missed, results
        right = understood[0]
        # The understood answer was not kept; a correction keeps it now, with the feedback.
        status, body = _http(server, "POST", "/v1/feedback", {
            "session_id": session, "utterance_id": right["utterance_id"], "correct": False,
            "intent": "lightsOn", "slots": {"room": "bedroom"}})
        assert (status, body) == (200, {"counted": True, "stored": True, "capture": True})
        # Bad feedback gets a clear error and changes nothing.
        for bad, status_wanted, says in (
                ({"session_id": session, "utterance_id": 0}, 400, "correct"),
                ({"session_id": session, "utterance_id": 99, "correct": True}, 404, "no recent"),
                ({"session_id": session, "utterance_id": right["utterance_id"],
                  "correct": False, "intent": "orderPizza"}, 400, "no intent"),
                ([1, 2], 400, "JSON object")):
            status, body = _http(server, "POST", "/v1/feedback", bad)
            assert status == status_wanted and says in body["error"], (bad, body)
        status, listing = _http(server, "GET", "/v1/capture")
        assert status == 200 and listing["capture"] is True
        assert not {"capture_database", "capture_dir", "capture_keys"} & set(listing["config"])
        kept = {r["utterance_id"]: r for r in listing["recent"]}
        assert kept[right["utterance_id"]]["kept_for"] == "corrected"
        assert kept[right["utterance_id"]]["feedback_intent"] == "lightsOn"
        assert kept[missed[0]["utterance_id"]]["kept_for"] == "not_understood"
        assert len(list((store_dir / "audio").glob("*.flac"))) == len(kept)
        metrics = urllib.request.urlopen(server.http + "/metrics", timeout=10).read().decode()
        assert 'assistant_feedback_total{correct="false",model="home"} 1.0' in metrics
        assert 'assistant_captured_total{kept_for="corrected",model="home"} 1.0' in metrics
        assert f"assistant_capture_utterances {float(len(kept))}" in metrics
        # Deletion by session removes the rows and the audio.
        status, body = _http(server, "DELETE", f"/v1/capture?session_id={session}")
        assert (status, body["deleted"]) == (200, len(kept))
        assert _http(server, "GET", "/v1/capture")[1]["recent"] == []
        assert list((store_dir / "audio").iterdir()) == []
        assert _http(server, "DELETE", "/v1/capture")[0] == 400  # nothing named


def test_with_capture_off_the_server_writes_nothing(vad, traffic: np.ndarray,  # type: ignore[no-untyped-def]
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cache = cache_dir()
    work, home, temp = tmp_path / "work", tmp_path / "home", tmp_path / "tmp"
    for folder in (work, home, temp):
        folder.mkdir()
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(cache))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(work)
    with ServerThread(make_settings(), vad) as server:
        before = files_under(tmp_path, cache)
        session, results = _session(server, traffic)
        assert any(not r["understood"] for r in results)
        right = next(r for r in results if r["understood"])
        status, body = _http(server, "POST", "/v1/feedback", {
            "session_id": session, "utterance_id": right["utterance_id"], "correct": False})
        assert (status, body) == (200, {"counted": True, "stored": False, "capture": False})
        # Each answer counts once: repeating (or changing) the feedback is taken, not counted.
        for correct in (False, False, True):
            status, body = _http(server, "POST", "/v1/feedback", {
                "session_id": session, "utterance_id": right["utterance_id"],
                "correct": correct})
            assert (status, body["counted"]) == (200, False)
        assert _http(server, "GET", "/v1/capture") == (200, {"capture": False})
        metrics = urllib.request.urlopen(server.http + "/metrics", timeout=10).read().decode()
        assert 'assistant_feedback_total{correct="false",model="home"} 1.0' in metrics
        assert 'assistant_feedback_total{correct="true",model="home"} 0.0' in metrics
    assert files_under(tmp_path, cache) == before
    assert os.listdir(temp) == []


def test_a_scripted_review_labels_what_was_kept(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.serving.conftest import HOME

    store = CaptureStore.open(tmp_path / "cap")
    for i in range(6):
        store.add(row("s", i, understood=i == 0), tone(seed=i), now_s=100.0 + i)
    store.feedback("s", 5, correct=False, intent=None)  # already reviewed: not asked again
    store.close()
    answers = "\n".join([
        "a",                                            # 0: the answer was right
        "x", "t", "turn on the kitchen lights",         # 1: a bad key, then the words said
        "t", "make me a sandwich", "i", "99",            # 2: not the grammar; no such intent
        "i", "1", "room=hall",                          #    ... then intent 1 with a slot
        "n",                                            # 3: not a command
        "d",                                            # 4: discarded
    ]) + "\n"
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", "review", "--dir",
                           str(tmp_path / "cap"), "--context", str(HOME)], input=answers,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout.strip().splitlines()[-1])["reviewed"]
    assert counts == {"accepted": 1, "corrected": 2, "no_command": 1, "discarded": 1,
                      "skipped": 0}
    assert "not a sentence of the grammar" in proc.stdout and "no such intent" in proc.stdout
    rows = {r["utterance_id"]: r for r in CaptureStore.open(tmp_path / "cap").rows()}
    assert 4 not in rows and not (tmp_path / "cap" / "audio" / "4.flac").exists()
    assert rows[0]["feedback_correct"] is True
    assert (rows[1]["feedback_intent"], rows[1]["feedback_slots"], rows[1]["feedback_text"]) \
        == ("lightsOn", {"room": "kitchen"}, "turn on the kitchen lights")
    from assistant.grammar import load_context
    first_intent = load_context(HOME).intent_names[0]
    assert (rows[2]["feedback_intent"], rows[2]["feedback_slots"]) == (first_intent,
                                                                       {"room": "hall"})
    assert rows[3]["feedback_correct"] is True and rows[3]["feedback_intent"] is None
    # The export is versioned and carries the typed words for the decoder.
    report = CaptureStore.open(tmp_path / "cap").export(tmp_path / "out")
    dataset = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert dataset["version"] == report["version"] and dataset["utterances"] == 4
    texts = [json.loads(x).get("text") for x in
             (tmp_path / "out" / "labels.jsonl").read_text().splitlines()]
    assert "turn on the kitchen lights" in texts


def test_review_endpoints_refuse_what_they_cannot_do(vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(make_settings(), capture=CaptureConfig(
        capture_dir=str(tmp_path / "cap")))
    with ServerThread(settings, vad) as server:
        store = server.app.services.capture.store
        kept = store.add(row("s", 0), tone())
        for body, status, says in (
                ({"capture_id": "nope", "action": "accept"}, 404, "no captured"),
                ({"capture_id": kept, "action": "accept"}, 400, "nothing was understood"),
                ({"capture_id": kept, "action": "said", "text": "make me a sandwich"}, 400,
                 "not a sentence"),
                ({"capture_id": kept, "action": "intent", "intent": "orderPizza"}, 400,
                 "no intent"),
                ({"capture_id": kept, "action": "dance"}, 400, "action must be"),
                ({"action": "accept"}, 400, "capture_id")):
            got = _http(server, "POST", "/v1/capture/review", body)
            assert got[0] == status and says in got[1]["error"], (body, got)
        assert store.get(kept)["feedback_correct"] is None  # nothing changed
        unreviewed = _http(server, "GET", "/v1/capture?unreviewed=1")[1]["recent"]
        assert [r["capture_id"] for r in unreviewed] == [kept]
        assert _http(server, "POST", "/v1/capture/review",
                     {"capture_id": kept, "action": "no_command"})[0] == 200
        assert _http(server, "GET", "/v1/capture?unreviewed=1")[1]["recent"] == []
        assert _http(server, "GET", "/v1/capture/audio/nope")[0] == 404
    with ServerThread(make_settings(), vad) as server:  # capture off
        assert _http(server, "GET", f"/v1/capture/audio/{kept}")[0] == 404


def test_a_failed_write_leaves_no_recording_behind(tmp_path: Path) -> None:
    store = CaptureStore.open(tmp_path / "cap")
    store.add(row("s", 0), tone())
    store._db.close()  # the database goes away under it (a full disk, a dropped server)
    with pytest.raises(sqlite3.ProgrammingError):
        store.add(row("s", 1), tone(seed=1))
    assert len(list((tmp_path / "cap" / "audio").iterdir())) == 1  # only the row's file


def test_confirmed_answers_export_the_words_a_reviewer_typed(tmp_path: Path) -> None:
    store = CaptureStore.open(tmp_path / "cap")
    store.add(row("s", 0, understood=True), tone())
    store.feedback("s", 0, correct=True, intent="lightsOff", slots={"room": "bedroom"},
                   text="switch the bedroom light off")
    store.export(tmp_path / "out")
    (label,) = [json.loads(x) for x in (tmp_path / "out" / "labels.jsonl").read_text()
                .splitlines()]
    assert label["text"] == "switch the bedroom light off"


def test_a_delete_also_removes_writes_still_queued_and_held_audio(tmp_path: Path) -> None:
    sink = CaptureSink(CaptureConfig(capture_dir=str(tmp_path)))
    sink.on_result(completed(answer(False), 0))  # queued for the writer
    sink.on_result(completed(answer(True), 1))  # held for a correction
    assert sink.delete(session_id="s1").result(10) == 1
    assert sink.feedback("s1", 1, False, "lightsOn", None).result(10) is False  # forgotten
    sink.flush()
    assert sink.store.rows() == [] and list((tmp_path / "audio").iterdir()) == []
    sink.close()
    with pytest.raises(ConfigError, match="closed"):
        sink.feedback("s1", 0, True, None, None).result(10)  # answered, never left hanging
