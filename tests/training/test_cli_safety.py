"""``assistant train`` keeps what it did not make: the data stage's manifest stays as written
however often recordings are mixed in, and ``--out`` never deletes a folder that is not a
model directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant.errors import ConfigError
from training.cli import check_out_dir, replace_dir
from training.recordings import MIXED, SYNTHESIZED, mix_recordings, recordings_digest

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "assistant" / "contexts" / "home.yaml"


@pytest.fixture
def recordings(tmp_path: Path, speak) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mine"
    (folder / "audio").mkdir(parents=True)
    rows = [("stop the music", "mediaStop", {}), ("what time is it", "getTime", {})]
    with (folder / "labels.jsonl").open("w") as f:
        for i, (text, intent, slots) in enumerate(rows):
            sf.write(folder / "audio" / f"{i}.wav", speak(text), 16000, subtype="PCM_16")
            f.write(json.dumps({"audio": f"audio/{i}.wav", "intent": intent, "slots": slots,
                                "text": text}) + "\n")
    return folder


def _data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"audio": f"clips/{i}.wav", "text": f"sentence {i}", "intent": "getTime",
             "slots": {}, "kind": "command", "engine": "espeak", "voice": "en-us+m3"}
            for i in range(20)]
    (data / SYNTHESIZED).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def test_recordings_are_mixed_into_their_own_manifest_once_per_run(tmp_path: Path,
                                                                    recordings: Path) -> None:
    data = _data_dir(tmp_path)
    synthesized = (data / SYNTHESIZED).read_bytes()
    for _ in range(3):  # a resumed or repeated run
        mixed, count = mix_recordings(recordings, data, copies=3)
        assert count == 2 and mixed == data / MIXED
        rows = [json.loads(line) for line in mixed.read_text().splitlines()]
        assert len(rows) == 20 + 2 * 3
        assert sum(r["kind"] == "recording" for r in rows) == 6
        assert (data / SYNTHESIZED).read_bytes() == synthesized
    digest = recordings_digest(recordings)
    assert len(digest) == 64 and digest == recordings_digest(recordings)
    sf.write(recordings / "audio" / "0.wav", np.zeros(1600, np.float32), 16000)
    assert recordings_digest(recordings) != digest  # the audio is part of the version


def test_a_missing_recording_is_named(tmp_path: Path, recordings: Path) -> None:
    data = _data_dir(tmp_path)
    (recordings / "audio" / "1.wav").unlink()
    with pytest.raises(ConfigError, match=r"recording .*1\.wav does not exist"):
        mix_recordings(recordings, data)
    assert not (data / MIXED).exists()


def test_out_must_be_new_empty_or_a_model_directory(tmp_path: Path) -> None:
    check_out_dir(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty")
    model = tmp_path / "model"
    model.mkdir()
    (model / "metadata.json").write_text("{}")
    check_out_dir(model)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_out_dir(tmp_path / "file")
    (tmp_path / "home" / "docs").mkdir(parents=True)
    with pytest.raises(ConfigError, match="not a model directory"):
        check_out_dir(tmp_path / "home")

    new = tmp_path / "staged"
    new.mkdir()
    (new / "metadata.json").write_text('{"new": true}')
    replace_dir(new, model)
    assert json.loads((model / "metadata.json").read_text()) == {"new": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "home", "model"]


def test_train_refuses_an_out_folder_it_did_not_make(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", "train", str(HOME), "--out",
                           str(precious), "--size", "tiny"], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not a model directory" in proc.stderr
    assert (precious / "thesis.txt").read_text() == "years of work"
    assert not (tmp_path / "precious.work").exists()  # refused before any work
