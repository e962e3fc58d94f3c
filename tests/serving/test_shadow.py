"""Shadow evaluation: a candidate beside the served model on live traffic (serving.shadow),
on a real server with real models and real TTS."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from websockets.sync.client import connect

from assistant.errors import ConfigError
from assistant.recognizer import Reason, Recognizer, RecognizerConfig, Result
from serving import config as serving_config
from serving.shadow import ShadowConfig, compare
from tests.serving.conftest import HOME, ServerThread, make_settings


def _result(understood: bool, intent: str | None = None, slots: dict | None = None) -> Result:
    return Result(understood, intent if understood else None, slots or {}, 0.9, "", "", 1.0,
                  {"total": 1.0}, reason=None if understood else Reason.BELOW_THRESHOLD)


def test_answers_compare_by_understanding_intent_and_slots() -> None:
    lights = _result(True, "lightsOff", {})
    assert compare(lights, _result(True, "lightsOff", {})) == "agree"
    assert compare(lights, _result(True, "lightsOn", {})) == "disagree"
    assert compare(lights, _result(False)) == "candidate_rejects"
    assert compare(_result(False), lights) == "candidate_accepts"
    assert compare(_result(False), _result(False)) == "agree"


def test_shadow_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NAME=MODEL_DIR"):
        ShadowConfig(shadow="just-a-path")
    with pytest.raises(ConfigError, match="no served model"):
        serving_config.load({"shadow": f"kitchen={tmp_path}"}, env={})
    with pytest.raises(ConfigError, match="shadow_percent"):
        ShadowConfig(shadow="home=x", shadow_percent=0)


def test_a_candidate_runs_beside_the_served_model_and_never_changes_an_answer(
        vad, speak, home_recognizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from assistant.model_dir import export_model_dir

    strict = Recognizer(home_recognizer.context, home_recognizer.model,
                        RecognizerConfig(threshold=0.9999))
    export_model_dir(strict, tmp_path / "strict", HOME)
    settings = dataclasses.replace(make_settings(), shadow=ShadowConfig(
        shadow=f"home={tmp_path / 'strict'}", shadow_percent=100))
    silence = np.zeros(16000, np.float32)
    audio = np.concatenate([speak("turn off the bedroom lights"), silence,
                            speak("set a timer for five minutes"), silence])
    with ServerThread(settings, vad) as server:
        with connect(server.url, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "start", "protocol_version": 1}))
            ws.recv(timeout=30)
            pcm = np.round(audio * 32767).astype("<i2").tobytes()
            for i in range(0, len(pcm), 3200):
                ws.send(pcm[i : i + 3200])
            ws.send(json.dumps({"type": "stop"}))
            results = []
            while (event := json.loads(ws.recv(timeout=60)))["type"] != "closed":
                if event["type"] == "result":
                    results.append(event)
        assert [r["intent"] for r in results] == ["lightsOff", "setTimer"]  # served as usual
        shadow = server.app.services.shadow
        assert shadow is not None
        deadline = time.monotonic() + 60
        while shadow.describe()["compared"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        with urllib.request.urlopen(f"{server.http}/v1/monitor", timeout=10) as r:
            state = json.load(r)["models"]["home"]["shadow"]
        metrics = urllib.request.urlopen(f"{server.http}/metrics", timeout=10).read().decode()
    # The strict candidate understands neither: the operator sees it before promoting it.
    assert state["outcomes"] == {"agree": 0, "disagree": 0, "candidate_rejects": 2,
                                 "candidate_accepts": 0}
    assert state["agreement"] == 0.0 and state["dropped"] == 0 and state["errors"] == 0
    assert state["p95_ms"]["candidate"] > 0 and state["p95_ms"]["served"] > 0
    assert 'assistant_shadow_total{model="home",outcome="candidate_rejects"} 2.0' in metrics
    assert 'assistant_shadow_seconds_count{model="home",which="candidate"} 2.0' in metrics
