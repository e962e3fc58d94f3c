"""The model registry: versions with lineage, promotion (gated), rollback, diff, and a real
server that switches to a promoted version without dropping its sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from websockets.sync.client import connect

from assistant import model_registry as registry
from assistant.errors import ConfigError
from assistant.recognizer import Recognizer, RecognizerConfig

HOME = Path(__file__).resolve().parents[1] / "assistant" / "contexts" / "home.yaml"


@pytest.fixture(scope="module")
def model_dirs(home_recognizer, tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Two versions of the home model: the shipped settings, and a strict threshold."""
    from assistant.model_dir import export_model_dir

    root = tmp_path_factory.mktemp("models")
    out = {}
    for name, threshold in (("loose", 0.5), ("strict", 0.9999)):
        recognizer = Recognizer(home_recognizer.context, home_recognizer.model,
                                RecognizerConfig(threshold=threshold))
        export_model_dir(recognizer, root / name, HOME)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def labelled(speak, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A labelled set as 'assistant capture export' writes one: real TTS commands."""
    folder = tmp_path_factory.mktemp("labelled")
    rows = [("turn off the bedroom lights", "lightsOff", {"room": "bedroom"}),
            ("turn on the kitchen lights", "lightsOn", {"room": "kitchen"}),
            ("set a timer for five minutes", "setTimer", {}),
            ("what time is it", "getTime", {}),
            ("pause the music", "mediaPause", {}),
            ("turn the volume up", "volumeUp", {}),
            ("what's the weather like", "getWeather", {}),
            ("skip this song", "mediaNext", {}),
            ("the quarterly report is due on friday", None, {})]
    with (folder / "labels.jsonl").open("w") as labels:
        for i, (text, intent, slots) in enumerate(rows):
            sf.write(folder / f"{i}.wav", speak(text), 16000, subtype="PCM_16")
            labels.write(json.dumps({"audio": f"{i}.wav", "intent": intent,
                                     "slots": slots}) + "\n")
    return folder


def test_versions_lineage_promotion_rollback_and_diff(model_dirs: dict[str, Path],
                                                      tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    assert registry.add(reg, "home", model_dirs["loose"]) == "v1"
    with pytest.raises(ConfigError, match="no version"):
        registry.add(reg, "home", model_dirs["strict"], parent="v7")
    registry.promote(reg, "home", "v1")
    assert registry.add(reg, "home", model_dirs["strict"]) == "v2"
    listed = registry.listing(reg)["home"]
    assert listed["promoted"] == "v1" and list(listed["versions"]) == ["v1", "v2"]
    v1, v2 = listed["versions"]["v1"], listed["versions"]["v2"]
    assert v2["parent"] == "v1" and v1["parent"] is None  # made from the promoted one
    assert v1["grammar_sha256"] == v2["grammar_sha256"] and len(v1["grammar_sha256"]) == 64
    assert (v1["threshold"], v2["threshold"]) == (0.5, 0.9999)
    assert (v1["speech_model"], v1["precision"]) == ("tiny.en", "int8")

    entry = registry.promote(reg, "home", "v2")
    assert (entry["from"], entry["to"], entry["action"]) == ("v1", "v2", "promote")
    assert os.readlink(reg / "home" / "current") == "v2"
    assert (reg / "home" / "current" / "metadata.json").is_file()
    assert registry.diff(reg, "home", "v1", "v2")["recognizer"]["threshold"] == [0.5, 0.9999]

    back = registry.rollback(reg, "home")
    assert (back["from"], back["to"], back["action"]) == ("v2", "v1", "rollback")
    assert registry.promoted(reg, "home") == "v1"
    history = registry.listing(reg, "home")["home"]["history"]
    assert [(h["action"], h["to"]) for h in history] == [
        ("promote", "v1"), ("promote", "v2"), ("rollback", "v1")]
    with pytest.raises(ConfigError, match="no version"):
        registry.promote(reg, "home", "v3")
    with pytest.raises(ConfigError, match="not a model directory"):
        registry.add(reg, "home", tmp_path)
    with pytest.raises(ConfigError, match="must be letters"):
        registry.add(reg, "..", model_dirs["loose"])
    # Rolling back twice goes back two promotions (a stack), not forth again.
    registry.add(reg, "home", model_dirs["loose"])  # v3
    for version in ("v2", "v3"):
        registry.promote(reg, "home", version)
    assert registry.rollback(reg, "home")["to"] == "v2"
    assert registry.rollback(reg, "home")["to"] == "v1"
    with pytest.raises(ConfigError, match="nothing to roll back"):
        registry.rollback(reg, "home")


def test_a_worse_candidate_is_refused_unless_forced(model_dirs: dict[str, Path],
                                                    labelled: Path, tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    registry.add(reg, "home", model_dirs["loose"])
    registry.promote(reg, "home", "v1")
    registry.add(reg, "home", model_dirs["strict"])
    cli = [sys.executable, "-m", "assistant.cli", "models", "promote", "home", "v2",
           "--registry", str(reg), "--gate-data", str(labelled)]
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "worse than the promoted version" in refused.stderr
    gate = json.loads(refused.stdout)["gate"]
    # The strict threshold understands none of the commands; both reject the non-command.
    assert gate["overall"]["promoted"] > gate["overall"]["candidate"]
    assert gate["slices"]["(none)"] == {"promoted": 1.0, "candidate": 1.0, "utterances": 1}
    assert "overall" in gate["worse"] and registry.promoted(reg, "home") == "v1"
    forced = subprocess.run([*cli, "--force"], capture_output=True, text=True, timeout=600)
    assert forced.returncode == 0, forced.stderr
    assert registry.promoted(reg, "home") == "v2"
    last = registry.listing(reg, "home")["home"]["history"][-1]
    assert last["forced"] is True and last["gate"]["passed"] is False


def _models(http: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{http}/v1/models", timeout=10) as r:
        (model,) = json.load(r)["models"]
    return dict(model)


def _utterance(ws: Any, audio: np.ndarray) -> dict[str, Any]:
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    for i in range(0, len(pcm), 3200):
        ws.send(pcm[i : i + 3200])
    while True:
        event = json.loads(ws.recv(timeout=60))
        if event["type"] == "result":
            return dict(event)


def test_the_server_switches_on_promotion_without_dropping_a_session(
        model_dirs: dict[str, Path], speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from serving.config import ModelSource
    from tests.serving.conftest import ServerThread, make_settings

    reg = tmp_path / "registry"
    registry.add(reg, "home", model_dirs["loose"])
    registry.add(reg, "home", model_dirs["strict"])
    registry.promote(reg, "home", "v1")
    settings = make_settings((ModelSource("home", "model", reg / "home" / "current"),))
    settings = dataclasses.replace(settings, server=dataclasses.replace(
        settings.server, model_watch_s=0.1))
    command = np.concatenate([speak("turn off the bedroom lights"),
                              np.zeros(16000, np.float32)])

    def served(version: str, deadline_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            model = _models(server.http)
            if model["resolved_path"] == str((reg / "home" / version).resolve()):
                return model
            time.sleep(0.05)
        raise TimeoutError(f"the server never served {version}: {model}")

    with ServerThread(settings, vad) as server, connect(server.url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "protocol_version": 1}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        assert served("v1")["threshold"] == 0.5
        first = _utterance(ws, command)
        registry.promote(reg, "home", "v2")
        # A slot change right after the promotion keeps what is served (v1) and does not
        # hide the promotion from the watcher.
        request = urllib.request.Request(f"{server.http}/v1/models/home/slots/room",
                                         data=json.dumps(["kitchen", "bedroom", "hall"]).encode(),
                                         method="PUT")
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.status == 200
        assert served("v2")["threshold"] == 0.9999
        second = _utterance(ws, command)  # the same session, now on v2
        registry.rollback(reg, "home")
        assert served("v1")["threshold"] == 0.5
        third = _utterance(ws, command)
    assert first["understood"] and first["intent"] == "lightsOff"
    assert not second["understood"] and second["transcript"]  # v2's strict threshold
    assert third["understood"] and third["intent"] == "lightsOff"


def test_a_slower_candidate_fails_the_latency_bar(model_dirs: dict[str, Path],
                                                  labelled: Path) -> None:
    served = registry.answers_of(model_dirs["loose"])
    same = registry.answers_of(model_dirs["loose"])

    def slower(path: Path) -> Any:  # the same answers, three times as long (whatever the load)
        started = time.perf_counter()
        answer = same(path)
        time.sleep(2 * (time.perf_counter() - started))
        return answer

    labels = labelled / "labels.jsonl"
    report = registry.gate(labels, served, slower, max_latency_ratio=1.5)
    assert report.worse == ("latency",) and not report.passed
    assert report.p95_ms[1] > 1.5 * report.p95_ms[0] and report.overall[0] == report.overall[1]
    assert registry.gate(labels, served, same, max_latency_ratio=0).passed  # not judged


def test_the_sign_test_tells_a_lost_command_from_a_pattern() -> None:
    assert registry.sign_test_p(1, 0) == 0.5  # one lost command: no evidence
    assert registry.sign_test_p(0, 3) == 1.0
    assert registry.sign_test_p(5, 0) == 1 / 32
    assert abs(registry.sign_test_p(8, 2) - 56 / 1024) < 1e-12
