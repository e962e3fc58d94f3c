"""CI trains a tiny configuration of the shipped home context end to end, then uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import HOME_CONTEXT

pytest.importorskip("torch")
pytest.importorskip("tensorboard")


def _assistant(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_train_tiny_home_model_end_to_end(tmp_path: Path, speak) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "home-model"
    proc = _assistant("train", str(HOME_CONTEXT), "--out", str(out), "--size", "tiny",
                      "--epochs", "1", "--max-steps", "3", "--batch-size", "8",
                      "--profile-clips", "40")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["kind"] == "fine-tuned"
    assert metadata["classifier"]["labels"][-1] == "<out-of-domain>"
    assert "setTimer" in metadata["classifier"]["labels"]
    assert metadata["parity"]["encoder_max_abs_error"] < 2e-3
    assert {"encoder.onnx", "decoder.onnx", "classifier.onnx", "context.yaml",
            "MODEL_CARD.md"} <= set(metadata["files"])
    assert (out / "evaluation" / "REPORT.md").is_file()
    # The drift reference: synthesized clips of held-out voices, listed in the metadata (so
    # the directory verifies below) and with the classifier's out-of-domain score in it.
    from assistant.profile import ReferenceProfile

    profile = ReferenceProfile.load(out / "profile.json")
    assert profile.utterances == 40 and profile.source["command"] == "assistant train"
    assert profile.source["voices"] == "held-out voices of the catalogue"
    assert "out_of_domain_score" in profile.signals
    assert "profile.json" in metadata["files"]
    assert (out / "evaluation" / "reliability.png").stat().st_size > 1000
    work = out.with_name(out.name + ".work")
    experiment = json.loads((work / "run" / "experiment.json").read_text())
    assert experiment["early_stopping_on"] == "holdout_a.jsonl"
    assert list((work / "run" / "tensorboard").iterdir())
    assert _assistant("models", "verify", str(out)).returncode == 0
    wav = tmp_path / "timer.wav"
    sf.write(wav, speak("set a timer for ten minutes").astype(np.float32), 16000)
    proc = _assistant("recognize", "--model", str(out), str(wav))
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["intent"] == "setTimer" and row["slots"] == {"duration": 10, "unit": "minutes"}
    # The classifier's out-of-domain score is in the result, for 'assistant monitor'.
    from assistant.monitor import Observation

    assert 0.0 <= row["out_of_domain_score"] <= 1.0
    assert Observation.from_json(row).out_of_domain_score == row["out_of_domain_score"]
    # The classifier's out-of-domain gate is off by default: every utterance is decoded, and
    # only a gate the user sets skips decoding (and then says why).
    assert row["timing_ms"]["decoder"] > 0
    gated = json.loads(_assistant("recognize", "--model", str(out), "--ood-gate", "0.000001",
                                  str(wav)).stdout)
    assert gated["timing_ms"]["decoder"] == 0 and gated["reason"] == "out_of_domain"
