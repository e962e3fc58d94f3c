"""The ``assistant`` command as a user runs it: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant.errors import ConfigError
from tests.conftest import HOME_CONTEXT


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory: pytest.TempPathFactory, speak) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("wavs")
    silence = np.zeros(16000 * 3, np.float32)
    files = {
        # Long leading and trailing silence, at 44.1 kHz stereo 24-bit: read, mixed, resampled.
        "lights": (np.concatenate([silence, speak("turn on the kitchen lights"), silence]),
                   44100, 2, "PCM_24"),
        "timer": (speak("set a timer for fifteen minutes"), 16000, 1, "PCM_16"),
        "other": (speak("what a lovely day for a picnic"), 8000, 1, "PCM_16"),
        "quiet": (silence, 16000, 1, "PCM_16"),
    }
    out = {}
    for name, (audio, rate, channels, subtype) in files.items():
        from assistant.resample import resample

        data = resample(audio, 16000, rate) if rate != 16000 else audio
        if channels == 2:
            data = np.stack([data, data], axis=1)
        out[name] = folder / f"{name}.wav"
        sf.write(out[name], data, rate, subtype=subtype)
    (folder / "notaudio.wav").write_text("this is not a wav file")
    out["notaudio"] = folder / "notaudio.wav"
    return out


def test_recognize_prints_one_json_line_per_file_and_survives_bad_ones(wavs) -> None:  # type: ignore[no-untyped-def]
    args = [str(wavs[k]) for k in ("lights", "notaudio", "timer", "other", "quiet")]
    missing = str(wavs["lights"].parent / "missing.wav")
    proc = _run("recognize", "--context", str(HOME_CONTEXT), *args[:2], missing, *args[2:])
    assert proc.returncode == 1, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [Path(r["file"]).name for r in rows] == ["lights.wav", "notaudio.wav", "missing.wav",
                                                    "timer.wav", "other.wav", "quiet.wav"]
    lights, notaudio, missing_row, timer, other, quiet = rows
    assert lights["understood"] and lights["intent"] == "lightsOn"
    assert lights["slots"] == {"room": "kitchen"}
    assert lights["speech_ms"][0] > 2500  # the leading silence was cut off
    assert set(lights) >= {"file", "understood", "intent", "slots", "confidence",
                           "transcript", "timing_ms"}
    assert timer["intent"] == "setTimer" and timer["slots"] == {"duration": 15,
                                                                "unit": "minutes"}
    assert not other["understood"] and other["intent"] is None
    assert not quiet["understood"]
    assert "not in a readable audio format" in notaudio["error"]
    assert "does not exist" in missing_row["error"]
    assert "notaudio.wav" in proc.stderr and "missing.wav" in proc.stderr


def test_bad_grammar_names_file_and_line(tmp_path: Path, wavs) -> None:  # type: ignore[no-untyped-def]
    grammar = tmp_path / "broken.yaml"
    grammar.write_text("context:\n  expressions:\n    go:\n      - \"go to the $place:place\"\n")
    proc = _run("recognize", "--context", str(grammar), str(wavs["timer"]))
    assert proc.returncode == 2
    assert "broken.yaml:4" in proc.stderr and "place" in proc.stderr


def test_bad_setting_from_environment_is_reported(wavs) -> None:  # type: ignore[no-untyped-def]
    import os

    env = {**os.environ, "ASSISTANT_BEAM_SIZE": "many"}
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", "recognize", str(wavs["timer"])],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    assert "ASSISTANT_BEAM_SIZE='many' is not a valid int" in proc.stderr


def test_export_then_recognize_with_the_model_directory(tmp_path: Path, wavs) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "home-model"
    proc = _run("export", "--context", str(HOME_CONTEXT), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["grammar"]["file"] == "context.yaml"
    assert "setTimer" in metadata["grammar"]["intents"]
    assert set(metadata["files"]) >= {"encoder.onnx", "decoder.onnx", "tokenizer.json",
                                      "context.yaml", "MODEL_CARD.md"}
    assert metadata["features"]["n_mels"] == 80 and metadata["precision"] == "int8"
    verify = _run("models", "verify", str(out))
    assert verify.returncode == 0, verify.stderr
    proc = _run("recognize", "--model", str(out), str(wavs["timer"]))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["intent"] == "setTimer"
    # A grammar edited after export no longer matches its recorded hash.
    (out / "context.yaml").write_text((out / "context.yaml").read_text() + "\n# edited\n")
    tampered = _run("recognize", "--model", str(out), str(wavs["timer"]))
    assert tampered.returncode == 2
    assert "context.yaml" in tampered.stderr


def test_grammar_subcommands() -> None:
    proc = _run("grammar", "check", str(HOME_CONTEXT))
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    assert report["valid"] and report["sentences"] > 1000
    proc = _run("grammar", "parse", str(HOME_CONTEXT), "Set a timer for 25 minutes.")
    assert json.loads(proc.stdout)["parse"]["slots"] == {"duration": 25, "unit": "minutes"}
    proc = _run("grammar", "sample", str(HOME_CONTEXT), "-n", "5")
    assert len(proc.stdout.splitlines()) == 5
    refused = _run("grammar", "sample", str(HOME_CONTEXT), "-n", "-3")
    assert refused.returncode == 2 and "-3 is not 1 or more" in refused.stderr
    assert "Traceback" not in refused.stderr
    piped = subprocess.run([sys.executable, "-m", "assistant.cli", "grammar", "parse",
                            str(HOME_CONTEXT)], input="what time is it\n\nturn on the lamp\n",
                           capture_output=True, text=True, timeout=300)
    rows = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["what time is it", "turn on the lamp"]
    assert rows[0]["parse"]["intent"] == "getTime" and rows[1]["parse"] is None


def test_missing_optional_extra_is_named_not_a_traceback(tmp_path: Path) -> None:
    code = (  # as if the train extra were not installed: importing torch fails
        "import sys, importlib.abc\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from assistant.cli import main\n"
        f"sys.exit(main(['train', {str(HOME_CONTEXT)!r}, '--out', {str(tmp_path / 'm')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert "needs the 'torch' package: pip install 'voice-assistant[train]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_model_directory_runs_with_its_stored_settings(tmp_path: Path, wavs) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "strict-model"
    proc = _run("export", "--context", str(HOME_CONTEXT), "--out", str(out),
                "--threshold", "0.9999", "--beam-size", "2")
    assert proc.returncode == 0, proc.stderr
    stored = json.loads((out / "metadata.json").read_text())["recognizer"]
    assert (stored["threshold"], stored["beam_size"]) == (0.9999, 2)
    # Nothing given: the stored threshold runs (a good command stays under 0.9999).
    strict = json.loads(_run("recognize", "--model", str(out), str(wavs["timer"])).stdout)
    assert not strict["understood"] and strict["reason"] == "below_threshold"
    assert strict["transcript"] and strict["confidence"] < 0.9999
    # A flag overrides that one setting, and nothing else.
    given = _run("recognize", "--model", str(out), "--threshold", "0.5", str(wavs["timer"]))
    assert json.loads(given.stdout)["intent"] == "setTimer"
    from assistant.recognizer import Recognizer

    assert Recognizer.from_model_dir(out, {"threshold": 0.5}).config.beam_size == 2
    # The same through the environment; unknown names are refused.
    env = subprocess.run([sys.executable, "-m", "assistant.cli", "recognize", "--model",
                          str(out), str(wavs["timer"])], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "ASSISTANT_THRESHOLD": "0.5"})
    assert json.loads(env.stdout)["understood"]
    with pytest.raises(ConfigError, match=r"unknown recognizer settings \['beam'\]"):
        Recognizer.from_model_dir(out, {"beam": 3})
    assert _run("export", "--model", str(out), "--out", str(tmp_path / "x")).returncode == 2


def test_gates_and_sinks_from_the_command_line(tmp_path: Path, wavs) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "results.jsonl"
    proc = _run("recognize", "--context", str(HOME_CONTEXT), "--gate",
                "min_duration,min_ms=9000", "--sink", f"jsonl,path={log}",
                str(wavs["timer"]), str(wavs["quiet"]))
    assert proc.returncode == 0, proc.stderr
    timer, quiet = (json.loads(line) for line in proc.stdout.splitlines())
    assert (timer["understood"], timer["reason"]) == (False, "gated")
    assert quiet["reason"] == "no_speech"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(Path(r["stream"]).name, r["gate"], r["ended"]) for r in rows] == [
        ("timer.wav", "min_duration", "file"), ("quiet.wav", None, "file")]
    for spec, message in (("wake_word", "unknown gate 'wake_word'"),
                          ("min_duration,min_ms=20000", "min_ms must be in [0, 10000]")):
        bad = _run("recognize", "--gate", spec, str(wavs["timer"]), str(wavs["quiet"]))
        assert bad.returncode == 2 and not bad.stdout  # refused before any file
        assert bad.stderr.count(message) == 1, bad.stderr
