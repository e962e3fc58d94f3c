"""The dashboard (``GET /dashboard``) end to end: headless Chromium on a real server on
loopback, real WebSocket traffic of synthesized speech, a reference profile made here."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from assistant.monitor import MonitorConfig, chi2_quantile, profile_from_audio
from assistant.recording import RECORDING_ENDPOINT
from assistant.vad import command_span
from serving.config import ModelSource
from tests.serving.conftest import HOME, ServerThread, make_settings
from tests.serving.test_browser import CHROMIUM, DevTools, chromium_page
from tests.serving.test_server import DocClient, doc_client

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

COMMANDS = ("turn off the bedroom lights", "set a timer for five minutes",
            "turn on the kitchen lights", "what's the weather like tomorrow",
            "set the thermostat to seventy degrees", "what time is it",
            "dim the living room lights to thirty percent", "set an alarm for seven thirty am",
            "turn the volume up", "stop", "pause the music", "cancel the timer")
INTENTS = ("lightsOff", "setTimer", "lightsOn", "getWeather", "setThermostat", "getTime")
OTHER = ("the quarterly report is due on friday", "my cat likes to sleep in the sun",
         "please book a flight to paris", "how tall is the eiffel tower",
         "i would like a cheeseburger with fries", "the train leaves at noon",
         "what is the capital of australia", "send an email to my manager")
COFFEE = Path(__file__).resolve().parents[2] / "examples" / "coffee.yaml"


class Recorder(DevTools):
    """DevTools that reads the problems out of the events it kept (console messages,
    exceptions, log entries)."""

    def problems(self, allow: Callable[[str], bool] = lambda text: False) -> list[str]:
        """Exceptions, console errors and warnings, and error log entries (failed loads),
        but those whose text ``allow`` accepts."""
        out = []
        for event in self.events:
            method, params = event["method"], event["params"]
            if method == "Runtime.exceptionThrown":
                out.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning",
                                                                              "assert"):
                out.append(" ".join(str(a.get("value", a.get("description")))
                                    for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                out.append(params["entry"]["text"])
        return [p for p in out if not allow(p)]


def open_dashboard(devtools: DevTools, url: str) -> Recorder:
    recorder = Recorder(devtools.ws)
    recorder.call("Runtime.enable")
    recorder.call("Log.enable")
    recorder.call("Page.navigate", url=url)
    return recorder


def wait_for(devtools: DevTools, condition: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if devtools.evaluate(f"(() => {{ try {{ return !!({condition}); }} "
                             f"catch (e) {{ return false; }} }})()"):
            return
        time.sleep(0.1)
    status = devtools.evaluate("document.getElementById('status').textContent")
    raise TimeoutError(f"the dashboard never showed {condition} (status {status!r})")


def text(devtools: DevTools, selector: str) -> str:
    return str(devtools.evaluate(f"document.querySelector({json.dumps(selector)}).innerText"))


def silent_wav(tmp_path: Path) -> Path:
    """The harness's fake microphone (the dashboard never opens it)."""
    wav = tmp_path / "silence.wav"
    soundfile.write(wav, np.zeros(1600, np.float32), 16000, subtype="PCM_16")
    return wav


@pytest.fixture(scope="module")
def clips(speak) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    return [speak(t, voice) for voice in ("en-us+m3", "en-us+f2") for t in COMMANDS]


@pytest.fixture(scope="module")
def profiled_home(tmp_path_factory: pytest.TempPathFactory, clips: list[np.ndarray],
                  home_recognizer, vad) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the home grammar with a reference profile beside it (``home.profile.json``)
    from 24 espeak-ng commands, cut to the speech as ``assistant recognize`` cuts them."""
    folder = tmp_path_factory.mktemp("profiled")
    grammar = folder / "home.yaml"
    shutil.copy(HOME, grammar)
    cut = []
    for clip in clips:
        span, _ = command_span(clip, vad, RECORDING_ENDPOINT)
        assert span is not None
        cut.append(clip[span[0] : span[1]])
    source = {"data": "espeak-ng commands of the grammar, two voices", "clips": len(cut),
              "command": "tests/serving/test_dashboard.py"}
    profile_from_audio(home_recognizer, cut, source).save(folder / "home.profile.json")
    return grammar


def send(server: ServerThread, audios: list[np.ndarray]) -> list[dict[str, Any]]:
    """One WebSocket session streaming ``audios`` (a second of silence after each)."""
    silence = np.zeros(16000, np.float32)
    with doc_client(server) as ws:
        client = DocClient(ws)
        client.start()
        client.audio(np.concatenate([x for a in audios for x in (a, silence)]), chunk_ms=500)
        client.command("stop")
        return [e for e in client.rest() if e["type"] == "result"]


_CONTRAST = """(() => {
  const lum = (c) => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = (el) => { while (el) { const c = getComputedStyle(el).backgroundColor;
    if (c !== 'rgba(0, 0, 0, 0)') return c; el = el.parentElement; } return 'rgb(255,255,255)'; };
  const ratio = (el) => { const a = lum(getComputedStyle(el).color), b = lum(background(el));
    return [(Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), el.outerHTML.slice(0, 80)]; };
  const texts = [...document.querySelectorAll('h1, h2, h3, p, a, label, summary, figcaption, '
    + 'dt, dd, th, td, td span, li, .keys li')]
    .filter((el) => el.offsetParent && el.innerText.trim());
  return texts.map(ratio).sort((x, y) => x[0] - y[0])[0];
})()"""


def test_traffic_results_and_drift_show_on_the_dashboard(profiled_home: Path, clips, speak,  # type: ignore[no-untyped-def]
                                                         vad, tmp_path: Path) -> None:
    settings = dataclasses.replace(
        make_settings((ModelSource("home", "context", profiled_home),),
                      max_messages_per_s=1000.0, max_audio_speed=1000.0),
        monitor=MonitorConfig(drift_window_utterances=20, drift_min_utterances=10))
    with ServerThread(settings, vad) as server, \
            chromium_page("about:blank", silent_wav(tmp_path)) as browser:
        page = open_dashboard(browser, f"{server.http}/dashboard?refresh=1")
        wait_for(page, "window.dashboard.updates > 0")
        assert text(page, "#status").startswith("Connected: 1 model served")
        assert text(page, "#answers") == "0"
        assert page.evaluate("document.getElementById('drift-status').dataset.status") \
            == "warming_up"
        assert page.evaluate("document.getElementById('model-picker').hidden") is True
        card = text(page, "#card")
        assert "home (default)" in card and "tiny.en" in card and "int8" in card
        profile = text(page, "#profile")
        assert "24" in profile and "espeak-ng commands of the grammar, two voices" in profile
        assert text(page, "#alerts") == "No alerts."
        # The significance bar shown beside each signal is the server's.
        for dof in (1, 7, 20):
            shown = page.evaluate(f"chi2Critical(1e-5, {dof})")
            assert shown == pytest.approx(chi2_quantile(1 - 1e-5, dof), rel=1e-6)

        # In-distribution traffic: counted, listed, no drift.
        results = send(server, clips[:10])
        assert [r["intent"] for r in results[:6]] == list(INTENTS)
        wait_for(page, "document.getElementById('answers').textContent === '10'")
        wait_for(page, "document.getElementById('drift-status').dataset.status === 'ok'")
        shown_intents = page.evaluate(
            "[...document.querySelectorAll('#recent [data-intent]')].map(e => e.dataset.intent)")
        assert shown_intents[::-1][:6] == list(INTENTS)  # newest first
        assert text(page, "#understood") == "100 %"
        traffic = page.evaluate("[...document.querySelectorAll('#chart-traffic .data tbody tr')]"
                                ".map(r => Number(r.cells[1].textContent))")
        assert sum(traffic) == 10
        states = page.evaluate("Object.fromEntries([...document.querySelectorAll("
                               "'#drift-table tbody tr')].map(r => [r.cells[0].textContent, "
                               "r.cells[1].textContent]))")
        assert states["Outcome (understood, or why not)"] == "OK", states
        assert "Alarm" not in states.values(), states
        charts = page.evaluate("[...document.querySelectorAll('figure svg.chart')]"
                               ".map(s => s.getAttribute('aria-label'))")
        assert len(charts) == 5 and all(charts), charts
        confidence = page.evaluate("document.querySelectorAll('#chart-confidence rect').length")
        assert confidence >= 2 * 8  # live and reference bars per bin

        # Sentences the grammar does not have: not understood, and the outcome drifts.
        results = send(server, [speak(t) for t in OTHER])
        assert not any(r["understood"] for r in results)
        wait_for(page, "document.getElementById('drift-status').dataset.status === 'drift'")
        # The drift may show before the page's next refresh counts the last answers.
        wait_for(page, "document.getElementById('answers').textContent === '18'")
        alerts = text(page, "#alerts")
        assert "Drift on home" in alerts and "outcome" in alerts, alerts
        assert "not understood" in text(page, "#recent")
        states = page.evaluate("Object.fromEntries([...document.querySelectorAll("
                               "'#drift-table tbody tr')].map(r => [r.cells[0].textContent, "
                               "r.cells[1].textContent]))")
        assert states["Outcome (understood, or why not)"] == "Alarm", states
        assert "raised" in text(page, "#events")
        contrast = page.evaluate(_CONTRAST)
        assert contrast[0] >= 4.5, contrast

        # Phone width: nothing wider than the screen (wide tables turn into cards).
        page.call("Emulation.setDeviceMetricsOverride", width=390, height=844,
                  deviceScaleFactor=2, mobile=True)
        time.sleep(0.3)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        problems = page.problems()

        # The server goes away: the page says so and keeps the last figures.
        server.stop()
        wait_for(page, "document.getElementById('status').textContent"
                       ".startsWith('Cannot reach the server')")
        assert "Cannot reach the server" in text(page, "#alerts")
        assert text(page, "#answers") == "18"
    assert problems == []


def test_with_api_keys_it_asks_for_one_and_says_when_it_is_wrong(vad, tmp_path: Path  # type: ignore[no-untyped-def]
                                                                 ) -> None:
    sources = (ModelSource("home", "context", HOME), ModelSource("coffee", "context", COFFEE))
    with ServerThread(make_settings(sources, api_keys="dash-key"), vad) as server, \
            chromium_page("about:blank", silent_wav(tmp_path)) as browser:
        # The page needs no key (its data does), like the microphone page.
        with urllib.request.urlopen(f"{server.http}/dashboard") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "/static/dashboard.js" in response.read().decode()
        page = open_dashboard(browser, f"{server.http}/dashboard?refresh=1")
        wait_for(page, "!document.getElementById('auth').hidden")
        assert text(page, "#status") == "This server needs an API key."
        assert page.evaluate("document.getElementById('content').hidden") is True
        assert page.evaluate("document.activeElement.id") == "key"  # typed into at once

        def type_key(key: str) -> None:
            page.evaluate("document.getElementById('key').focus()")
            page.call("Input.insertText", text=key)
            page.call("Input.dispatchKeyEvent", type="keyDown", key="Enter", code="Enter",
                      text="\r", windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)
            page.call("Input.dispatchKeyEvent", type="keyUp", key="Enter", code="Enter",
                      windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)

        type_key("not-the-key")
        wait_for(page, "document.getElementById('status').textContent"
                       ".startsWith('The API key was not accepted')")
        assert page.evaluate("document.getElementById('auth').hidden") is False
        assert page.evaluate("sessionStorage.getItem('assistant-key')") is None

        type_key("dash-key")
        wait_for(page, "window.dashboard.updates > 0")
        assert text(page, "#status").startswith("Connected: 2 models served")
        assert page.evaluate("document.getElementById('auth').hidden") is True
        assert page.evaluate("typeof window.dashboard.token") == "string"  # traded for a token
        assert "dash-key" not in page.evaluate("location.href")
        # Two models: a picker; the card follows it.
        assert page.evaluate("document.getElementById('model-picker').hidden") is False
        assert page.evaluate("[...document.getElementById('model').options]"
                             ".map(o => o.value)") == ["home", "coffee"]
        assert "home (default)" in text(page, "#card")
        page.evaluate("const s = document.getElementById('model'); s.value = 'coffee';"
                      "s.dispatchEvent(new Event('change'))")
        wait_for(page, "document.getElementById('card').innerText.includes('coffee')")
        assert "orderDrink" in page.evaluate("document.getElementById('intents').textContent")
        assert page.evaluate("new URLSearchParams(location.search).get('model')") == "coffee"
        time.sleep(1.5)  # another refresh or two, with the token
        updates = page.evaluate("window.dashboard.updates")
        # The only errors: the refused requests (before the key, and the wrong key).
        problems = page.problems(lambda t: "status of 401" in t)
    assert updates >= 2
    assert problems == []


def test_with_monitoring_off_it_says_so(vad, clips, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(make_settings(), monitor=MonitorConfig(monitor=False))
    with ServerThread(settings, vad) as server, \
            chromium_page("about:blank", silent_wav(tmp_path)) as browser:
        assert [r["intent"] for r in send(server, clips[:2])] == list(INTENTS[:2])
        with urllib.request.urlopen(f"{server.http}/v1/monitor") as response:
            report = json.load(response)
        assert report["monitoring"] is False and report["worker_restarts"] == 0
        page = open_dashboard(browser, f"{server.http}/dashboard?refresh=1")
        wait_for(page, "window.dashboard.updates > 0")
        # Not "0 answers" and "warming up": nothing is counted when monitoring is off.
        assert text(page, "#answers") == "off" and text(page, "#understood") == "off"
        assert text(page, "#drift-status") == "Monitoring off"
        assert page.problems() == []
