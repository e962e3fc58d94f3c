"""The manifest schema accepts good lines and names the problem in bad ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training.manifest import ClipRecord, ManifestError, check_row, read_manifest, write_manifest

GOOD: dict[str, Any] = {
    "id": "train-000001", "audio": "audio/train/train-000001.wav",
    "text": "can i get a large latte", "intent": "orderDrink",
    "slots": {"size": "large", "coffeeDrink": "latte"}, "kind": "command", "split": "train",
    "engine": "piper", "voice": "piper:joe@r1.00,n0.667,w0.800,s0", "speaker": "piper:joe",
    "augmentation": {"speed": 1.0, "snr_db": 12.0}, "duration_s": 2.5,
    "sample_rate_hz": 16000, "sha256": "0" * 64,
}
NOISE: dict[str, Any] = {**GOOD, "id": "val-000002", "audio": "audio/val/val-000002.wav",
                         "text": "", "intent": None, "slots": {}, "kind": "non_speech",
                         "split": "val", "engine": None, "voice": None, "speaker": None}


@pytest.mark.parametrize("row", [GOOD, NOISE,
                                 {**GOOD, "kind": "near_miss", "intent": None, "slots": {}}])
def test_good_rows_pass(row: dict[str, Any]) -> None:
    check_row(row)
    assert ClipRecord.from_json(row).to_json() == row


@pytest.mark.parametrize(("change", "message"), [
    ({"kind": "command?"}, "kind"),
    ({"split": "dev"}, "split"),
    ({"intent": None}, "intent"),
    ({"kind": "out_of_domain"}, "intent"),
    ({"audio": "/abs/path.wav"}, "relative"),
    ({"audio": "../x.wav"}, "relative"),
    ({"audio": "audio/x.flac"}, ".wav"),
    ({"duration_s": 0.0}, "duration_s"),
    ({"duration_s": "2.5"}, "duration_s"),
    ({"sample_rate_hz": 8000}, "sample_rate_hz"),
    ({"sha256": "abc"}, "sha256"),
    ({"slots": []}, "slots"),
    ({"voice": None}, "voice"),
    ({"extra": 1}, "unknown fields"),
])
def test_bad_rows_are_rejected(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        check_row({**GOOD, **change})


def test_missing_field_and_non_speech_with_text() -> None:
    row = dict(GOOD)
    del row["sha256"]
    with pytest.raises(ManifestError, match="missing fields"):
        check_row(row)
    with pytest.raises(ManifestError, match="non_speech"):
        check_row({**NOISE, "text": "hello"})


def test_round_trip_and_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    assert write_manifest(path, [ClipRecord.from_json(GOOD)]) == 1
    assert read_manifest(path) == [ClipRecord.from_json(GOOD)]
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "kind": "x"}) + "\n")
    with pytest.raises(ManifestError, match=r"train.jsonl:2: .*kind"):
        read_manifest(path)
    path.write_text("{not json\n")
    with pytest.raises(ManifestError, match=r":1: not JSON"):
        read_manifest(path)
