"""A real Prometheus scrapes a real server and evaluates deploy/prometheus/rules.yml: quality
series arrive, the rules evaluate without errors on real data, and drifted traffic over the
WebSocket puts the drift alert in `pending`.

The server serves a copy of the home grammar with a reference profile built beside it from
30 clean espeak-ng commands, cut by the server's own segmenter and recognized by the real
tiny.en model. (Under 40 clips a profile has no encoder reference. With 40, the encoder
signals' reference values, measured out of fold on fits of 20, sit systematically above
what the full fit gives live utterances, and clean traffic alarmed on encoder_residual.)
Traffic: 20 other clean commands (no drift alarm may come of them), then 25 commands
drowned in noise at 0 dB SNR. The alert rule is the file's own (`for: 10m`); `pending`
starts at the first evaluation where the condition holds, and the test's Prometheus
evaluates every second.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.deploy.promql import exported_series
from tests.serving.conftest import HOME, ServerThread, make_settings
from tests.serving.test_server import DocClient, _get, doc_client

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="Prometheus is not installed (apt-get install prometheus; .ci/run installs it)")

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules.yml"
VOICES = ("en-us+m3", "en-us+f3", "en-gb+m1")
SILENCE = np.zeros(16000, np.float32)  # 1 s between commands: the utterance ends in it
WINDOW, MIN_UTTERANCES = 30, 15


def _commands(context: Any, n: int, seed: int, speak: Callable[..., np.ndarray]
              ) -> list[np.ndarray]:
    from assistant.grammar import sample_sentences

    return [speak(a.text, VOICES[i % len(VOICES)])
            for i, a in enumerate(sample_sentences(context, n, seed=seed))]


def _as_the_server_cuts(vad: Any, clip: np.ndarray) -> list[np.ndarray]:
    """The utterances the server's segmenter cuts from ``clip`` sent as 16-bit PCM."""
    from assistant.segmenter import Segmenter, UtteranceAudio

    pcm = np.round(np.clip(np.concatenate([clip, SILENCE]), -1, 1) * 32767).astype(np.int16)
    return [e.audio for e in Segmenter(vad).feed(pcm)
            if isinstance(e, UtteranceAudio) and not e.partial]


@pytest.fixture(scope="module")
def grammar(tmp_path_factory: pytest.TempPathFactory, home_recognizer: Any, vad: Any,
            speak: Callable[..., np.ndarray]) -> Path:
    """A copy of the home grammar with its reference profile beside it."""
    from assistant.monitor import profile_from_audio

    folder = tmp_path_factory.mktemp("served")
    shutil.copy(HOME, folder / "home.yaml")
    clips = _commands(home_recognizer.context, 30, 0, speak)
    cuts = [cut for clip in clips for cut in _as_the_server_cuts(vad, clip)]
    profile = profile_from_audio(home_recognizer, cuts, {
        "data": "clean espeak-ng commands of the grammar", "voices": list(VOICES),
        "command": "tests/deploy/test_prometheus_integration.py"})
    profile.save(folder / "home.profile.json")
    return folder / "home.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Prometheus:
    """The HTTP API of a running Prometheus."""

    def __init__(self, url: str):
        self.url = url

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The value of a query that gives one series (None: none yet)."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait(self, what: str, check: Callable[[], Any], timeout_s: float = 30) -> Any:
        deadline = time.monotonic() + timeout_s
        while not (found := check()):
            assert time.monotonic() < deadline, f"Prometheus never showed {what}"
            time.sleep(0.25)
        return found


@contextlib.contextmanager
def prometheus(folder: Path, target_port: int) -> Iterator[Prometheus]:
    """Prometheus on loopback scraping ``target_port`` every second with the real rules;
    killed on the way out whatever happened."""
    port = _free_port()
    config = folder / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "assistant",
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
    }))
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"Prometheus did not start:\n{(folder / 'prometheus.log').read_text()}")
            time.sleep(0.2)
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(url: str) -> bool:
    try:
        return _get(f"{url}/-/ready")[0] == 200
    except OSError:  # not listening yet
        return False


def _stream(server: ServerThread, clips: list[np.ndarray]) -> list[dict[str, Any]]:
    """Send the clips, 1 s of silence after each, over one session; its results."""
    with doc_client(server) as ws:
        client = DocClient(ws)
        assert client.start()["type"] == "ready"
        client.audio(np.concatenate([x for clip in clips for x in (clip, SILENCE)]),
                     chunk_ms=500)
        client.command("stop")
        events = client.rest()
    assert events[-1]["type"] == "closed", events[-1]
    return [e for e in events if e["type"] == "result"]


def _drift_alerts(prom: Prometheus) -> list[dict[str, Any]]:
    return [a for a in prom.api("alerts")["alerts"]
            if a["labels"]["alertname"] == "AssistantDriftDetected"]


def test_prometheus_scrapes_quality_and_the_drift_alert_goes_pending(
        grammar: Path, home_recognizer: Any, vad: Any, speak: Callable[..., np.ndarray],
        tmp_path: Path) -> None:
    from assistant.monitor import MonitorConfig
    from serving.config import ModelSource

    clean = _commands(home_recognizer.context, 20, 1, speak)
    rng = np.random.default_rng(0)
    noisy = [clip + rng.normal(0, np.sqrt(np.mean(clip[clip != 0] ** 2)), clip.size)
             .astype(np.float32) for clip in _commands(home_recognizer.context, 25, 2, speak)]
    # The limits on speed are not under test here: the audio goes as fast as it can.
    settings = replace(
        make_settings((ModelSource("home", "context", grammar),), max_audio_speed=1000.0,
                      max_messages_per_s=1000.0),
        monitor=MonitorConfig(drift_window_utterances=WINDOW,
                              drift_min_utterances=MIN_UTTERANCES))
    with ServerThread(settings, vad) as server, prometheus(tmp_path, server.app.port) as prom:
        prom.wait("the server up", lambda: prom.value('up{job="assistant"}') == 1)
        # -- in distribution: answers counted, no drift ------------------------------------
        results = _stream(server, clean)
        assert len(results) == len(clean)
        assert sum(r["understood"] for r in results) >= len(clean) - 2
        prom.wait("the clean answers", lambda: prom.value(
            'assistant_drift_window_utterances{model="home"}') == len(clean))
        assert prom.value('sum(assistant_results_total{model="home"})') == len(clean)
        assert prom.value('assistant_confidence_count{model="home"}') == len(clean)
        signals = {s["metric"]["signal"] for s in prom.query(
            'assistant_drift_score{job="assistant",model="home"}')}
        assert {"snr_db", "confidence", "audio_dbfs", "heard_agreement"} <= signals
        assert prom.value('max(assistant_drift_alarm{model="home"})') == 0
        assert not _drift_alerts(prom)
        # -- drifted: commands in loud noise -------------------------------------------------
        noisy_results = _stream(server, noisy)
        assert len(noisy_results) >= len(noisy) - 2
        prom.wait("the noisy answers", lambda: prom.value(
            'sum(assistant_results_total{model="home"})') == len(clean) + len(noisy_results))
        # Noise at 0 dB must move the SNR (other signals may alarm as well).
        alert = prom.wait("the drift alert on snr_db", lambda: next(
            (a for a in _drift_alerts(prom) if a["labels"]["signal"] == "snr_db"), None))
        assert alert["state"] in ("pending", "firing")
        assert alert["labels"]["model"] == "home" and alert["labels"]["severity"] == "warning"
        assert "live snr_db has drifted" in alert["annotations"]["summary"]
        assert "noisier" in alert["annotations"]["description"]
        monitor = json.loads(_get(f"{server.http}/v1/monitor")[2])["models"]["home"]["drift"]
        assert monitor["status"] == "drift" and "snr_db" in monitor["drifting"]
        score = prom.value('assistant_drift_score{model="home",signal="snr_db"}')
        assert score is not None and score > MonitorConfig().drift_psi_floor
        assert score == pytest.approx(monitor["signals"]["snr_db"]["psi"], abs=1e-3)
        # -- the recording rules evaluate on the real series, without errors ---------------
        understood = prom.value('model:assistant_results_understood:ratio_rate5m{model="home"}')
        assert understood is not None and 0 <= understood <= 1
        p95 = prom.value('model:assistant_end_of_speech_to_result_seconds:p95_5m{model="home"}')
        assert p95 is not None and p95 > 0
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        expected = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
        assert len(rules) == expected and all(r["health"] != "err" for r in rules), [
            (r["name"], r.get("lastError")) for r in rules if r["health"] == "err"]
        # -- what Prometheus got is what the tests' name check believes is exported --------
        names = prom.api("label/__name__/values")
        assert {n for n in names if n.startswith("assistant_")} <= set(exported_series())
