"""The browser page end to end: headless Chromium, a fake microphone fed from a WAV file."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from websockets.sync.client import connect

from benchmarks.devtools import DevTools
from tests.serving.conftest import ServerThread, make_settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _page_target(port: int, deadline: float) -> str:
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("Chromium did not expose a page target")


@contextlib.contextmanager
def chromium_page(url: str, microphone: Path, allow_microphone: bool = True
                  ) -> Iterator[DevTools]:
    """Headless Chromium on ``url`` with ``microphone`` (a WAV file, looped) as its microphone;
    ``allow_microphone=False``: the permission prompt is refused."""
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        browser = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             *(["--use-fake-ui-for-media-stream"] if allow_microphone else
               ["--deny-permission-prompts"]), "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={microphone}",
             "--autoplay-policy=no-user-gesture-required", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            port_file = Path(profile) / "DevToolsActivePort"
            # Chromium creates the file, then writes the port: wait for the whole first line.
            while time.monotonic() < deadline and not (
                    port_file.exists() and "\n" in port_file.read_text()):
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with connect(_page_target(port, deadline), max_size=2**24) as ws:
                yield DevTools(ws)
        finally:
            _stop(browser)
    finally:
        # Chromium's helper processes may still be writing the profile for a moment.
        for _ in range(50):
            shutil.rmtree(profile, ignore_errors=True)
            if not os.path.exists(profile):
                break
            time.sleep(0.1)
    assert not os.path.exists(profile)


def _stop(browser: subprocess.Popen[bytes]) -> None:
    """Terminate Chromium and every helper process it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(browser.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        browser.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # helpers that outlived the browser
        os.killpg(browser.pid, signal.SIGKILL)
    browser.wait()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_page_recognizes_the_fake_microphone(speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    silence = np.zeros(16000, np.float32)
    audio = np.concatenate([silence, speak("turn off the bedroom lights"), silence, silence])
    wav = tmp_path / "mic.wav"
    soundfile.write(wav, audio, 16000, subtype="PCM_16")
    with ServerThread(make_settings(), vad) as server, \
            chromium_page(f"{server.http}/?autostart=1", wav) as devtools:
        intent, events, status, slots = _read_result(devtools, time.monotonic() + 60)
    assert intent == "lightsOff", f"status {status!r}, events {events}"
    assert json.loads(slots) == {"room": "bedroom"}
    kinds = [e["type"] for e in json.loads(events)]
    assert kinds[0] == "ready" and "speech_started" in kinds


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_push_to_talk_with_the_space_bar(speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Hold space across one spoken command: nothing is recognized until the key goes up."""
    audio = np.concatenate([speak("set a timer for five minutes"), np.zeros(5 * 16000, np.float32)])
    wav = tmp_path / "mic.wav"
    soundfile.write(wav, audio, 16000, subtype="PCM_16")
    with ServerThread(make_settings(), vad) as server, \
            chromium_page(f"{server.http}/?autostart=1&mode=push_to_talk", wav) as devtools:
        deadline = time.monotonic() + 60
        _wait_for(devtools, "window.assistantEvents.some(e => e.type === 'ready')", deadline)
        # The fake microphone loops the file: press at the start of its silence, hold across
        # the next command and a second of the silence after it, so exactly one command is sent.
        _wait_for(devtools, _LOUD, deadline)
        _wait_for(devtools, _QUIET, deadline)
        _key(devtools, "keyDown")
        _wait_for(devtools, _LOUD, deadline)
        _wait_for(devtools, _QUIET, deadline)
        time.sleep(1.0)
        before = json.loads(devtools.evaluate("JSON.stringify(window.assistantEvents)"))
        _key(devtools, "keyUp")
        intent, events, status, slots = _read_result(devtools, deadline)
    assert "result" not in [e["type"] for e in before], "recognized before the key went up"
    assert intent == "setTimer", f"status {status!r}, events {events}"
    assert json.loads(slots) == {"duration": 5, "unit": "minutes"}
    ended = [e for e in json.loads(events) if e["type"] == "speech_ended"]
    assert len(ended) == 1 and ended[0]["forced"] is True


_LEVEL = "parseFloat(document.getElementById('level').style.width || '0')"
_LOUD = f"{_LEVEL} > 0"
_QUIET = f"{_LEVEL} === 0"


def _wait_for(devtools: DevTools, condition: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if devtools.evaluate(condition):
            return
        time.sleep(0.03)
    raise TimeoutError(f"the page never showed {condition}")


def _key(devtools: DevTools, kind: str) -> None:
    devtools.call("Input.dispatchKeyEvent", type=kind, key=" ", code="Space",
                  windowsVirtualKeyCode=32, nativeVirtualKeyCode=32)


def _read_result(devtools: DevTools, deadline: float) -> tuple[str, str, str, str]:
    """The page's recognized intent once it shows one (or "" at the deadline)."""
    intent = ""
    while time.monotonic() < deadline:
        intent = devtools.evaluate("document.getElementById('result').dataset.intent") or ""
        if intent:
            break
        time.sleep(0.25)
    events = devtools.evaluate("JSON.stringify(window.assistantEvents || [])")
    status = devtools.evaluate("document.getElementById('status').textContent")
    slots = devtools.evaluate("document.getElementById('result').dataset.slots || 'null'")
    return intent, events, status, slots


def _mic(tmp_path: Path, speech: np.ndarray, silence_s: float = 1.0) -> Path:
    silence = np.zeros(int(silence_s * 16000), np.float32)
    wav = tmp_path / "mic.wav"
    soundfile.write(wav, np.concatenate([silence, speech, silence]), 16000, subtype="PCM_16")
    return wav


def _events(devtools: DevTools) -> list[dict[str, Any]]:
    return list(json.loads(devtools.evaluate("JSON.stringify(window.assistantEvents)")))


def _sent(devtools: DevTools) -> list[str]:
    return list(json.loads(devtools.evaluate("JSON.stringify(window.assistantSent)")))


def _text(devtools: DevTools, element: str) -> str:
    return str(devtools.evaluate(f"document.getElementById('{element}').textContent"))


_READY = "window.assistantEvents.filter(e => e.type === 'ready').length"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_stop_drops_the_command_in_progress_and_says_so(speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wav = _mic(tmp_path, speak("set a timer for twenty five minutes please"))
    with ServerThread(make_settings(), vad) as server, \
            chromium_page(f"{server.http}/?autostart=1", wav) as devtools:
        deadline = time.monotonic() + 60
        _wait_for(devtools, "window.assistantEvents.some(e => e.type === 'speech_started')",
                  deadline)
        devtools.evaluate("document.getElementById('start').click()")  # mid-command
        time.sleep(2.0)
        status = _text(devtools, "status")
        talk_disabled = devtools.evaluate("document.getElementById('talk').disabled")
        events, sent = _events(devtools), _sent(devtools)
    assert status.startswith("Stopped"), status
    assert talk_disabled is True
    assert sent[-2:] == ["cancel", "stop"], sent
    assert "result" not in [e["type"] for e in events], events  # the half command is dropped


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_no_hot_mic_after_a_dropped_connection(speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Hold to talk, lose the connection, let go while it is down: after the page reconnects
    it must not stream the microphone with nobody holding the button."""
    wav = _mic(tmp_path, speak("turn off the bedroom lights"), silence_s=0.3)
    with ServerThread(make_settings(), vad) as server, \
            chromium_page(f"{server.http}/?autostart=1&mode=push_to_talk", wav) as devtools:
        deadline = time.monotonic() + 60
        _wait_for(devtools, f"{_READY} === 1", deadline)
        devtools.evaluate("document.activeElement.blur()")
        _key(devtools, "keyDown")
        time.sleep(0.5)
        server.run(lambda: [c.ws.transport.abort() for c in server.app.connections])  # 1006
        time.sleep(0.3)
        _key(devtools, "keyUp")  # let go while disconnected
        _wait_for(devtools, f"{_READY} === 2", deadline)  # reconnected (after ~2 s)
        time.sleep(3.0)  # the looped microphone keeps speaking
        events = _events(devtools)
    after = events[[i for i, e in enumerate(events) if e["type"] == "ready"][1]:]
    assert not [e for e in after if e["type"] in ("speech_started", "result")], after


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_idle_push_to_talk_stays_connected_and_settings_apply_at_once(speak, vad,  # type: ignore[no-untyped-def]
                                                                      tmp_path: Path) -> None:
    wav = _mic(tmp_path, speak("turn off the bedroom lights"))
    with ServerThread(make_settings(idle_timeout_s=2.0), vad) as server, \
            chromium_page(f"{server.http}/?autostart=1&mode=push_to_talk", wav) as devtools:
        deadline = time.monotonic() + 60
        _wait_for(devtools, f"{_READY} === 1", deadline)
        time.sleep(5.0)  # two and a half idle timeouts without a press
        idle_events, idle_sent = _events(devtools), _sent(devtools)
        devtools.evaluate("document.getElementById('partials').click()")  # while running
        _wait_for(devtools, f"{_READY} === 2", deadline)
        sent = _sent(devtools)
    assert [e["type"] for e in idle_events] == ["ready"], idle_events  # never timed out
    assert idle_sent.count("keepalive") >= 2
    assert sent[-3:] == ["cancel", "stop", "start"], sent


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_rejected_speech_shows_what_was_heard(speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wav = _mic(tmp_path, speak("what is the capital of france"), silence_s=1.5)
    with ServerThread(make_settings(), vad) as server, \
            chromium_page(f"{server.http}/?autostart=1", wav) as devtools:
        deadline = time.monotonic() + 60
        _wait_for(devtools, "window.assistantEvents.some(e => e.type === 'result')", deadline)
        result = next(e for e in _events(devtools) if e["type"] == "result")
        shown = {k: _text(devtools, k) for k in ("intent", "transcript-label", "transcript")}
        rejected = devtools.evaluate(
            "document.getElementById('result').classList.contains('rejected')")
    assert not result["understood"], result
    assert shown == {"intent": "Not understood", "transcript-label": "Heard",
                     "transcript": result["heard"] or "(nothing)"}
    assert rejected is True


_CONTRAST = """(() => {
  const lum = (c) => { const [r, g, b] = c.match(/\\d+/g).slice(0, 3).map(Number).map((v) => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = (el) => { while (el) { const c = getComputedStyle(el).backgroundColor;
    if (c !== 'rgba(0, 0, 0, 0)') return c; el = el.parentElement; } return 'rgb(255,255,255)'; };
  const ratio = (el) => { const a = lum(getComputedStyle(el).color), b = lum(background(el));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); };
  const texts = [...document.querySelectorAll('#status, .label, #partial, .hint, #examples li, '
    + 'button, label, #history li, h2')];
  return Math.min(...texts.map(ratio));
})()"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_keyboard_accessibility_and_what_to_say(speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import urllib.request

    wav = _mic(tmp_path, np.zeros(16000, np.float32))
    with ServerThread(make_settings(), vad) as server, \
            chromium_page(f"{server.http}/?autostart=1&mode=push_to_talk", wav) as devtools:
        deadline = time.monotonic() + 60
        _wait_for(devtools, f"{_READY} === 1", deadline)
        # Space on a focused button presses that button (here: Stop), it is not swallowed.
        devtools.evaluate("document.getElementById('start').focus()")
        _key(devtools, "keyDown")
        _key(devtools, "keyUp")
        _wait_for(devtools, "document.getElementById('status').textContent"
                            ".startsWith('Stopped')", deadline)
        devtools.evaluate("document.getElementById('start').click()")
        _wait_for(devtools, f"{_READY} === 2", deadline)
        # Enter on the focused talk button holds it; letting go finalizes.
        devtools.evaluate("document.getElementById('talk').focus()")
        devtools.call("Input.dispatchKeyEvent", type="keyDown", key="Enter", code="Enter",
                      windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)
        pressed = devtools.evaluate("document.getElementById('talk').getAttribute('aria-pressed')")
        devtools.call("Input.dispatchKeyEvent", type="keyUp", key="Enter", code="Enter",
                      windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)
        _wait_for(devtools, "window.assistantSent.includes('finalize')", deadline)
        contrast = devtools.evaluate(_CONTRAST)
        smallest_button = devtools.evaluate(
            "Math.min(...[...document.querySelectorAll('button, select')]"
            ".filter((b) => b.offsetParent).map((b) => b.getBoundingClientRect().height))")
        live = devtools.evaluate("document.getElementById('status').getAttribute('aria-live')")
        examples = devtools.evaluate(
            "[...document.querySelectorAll('#examples li')].map((li) => li.textContent)")
        with urllib.request.urlopen(f"{server.http}/favicon.ico") as r:
            favicon = (r.status, r.headers["Content-Type"])
    assert pressed == "true"
    assert contrast >= 4.5, contrast
    assert smallest_button >= 44, smallest_button
    assert live == "polite"
    assert len(examples) >= 5 and all(e.startswith("“") for e in examples), examples
    assert favicon == (200, "image/svg+xml")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_a_refused_microphone_is_explained(vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wav = _mic(tmp_path, np.zeros(16000, np.float32))
    with ServerThread(make_settings(), vad) as server, \
            chromium_page(f"{server.http}/?autostart=1", wav, allow_microphone=False) as devtools:
        _wait_for(devtools, "document.getElementById('status').dataset.state === 'error'",
                  time.monotonic() + 60)
        status = _text(devtools, "status")
    assert status.startswith("Microphone access was denied"), status


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_that_was_wrong_sends_a_correction_that_capture_keeps(speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from serving.capture import CaptureConfig
    from serving.capture_store import CaptureStore

    wav = _mic(tmp_path, speak("turn off the bedroom lights"), silence_s=3.0)
    store = tmp_path / "captured"
    settings = dataclasses.replace(make_settings(),
                                   capture=CaptureConfig(capture_dir=str(store)))
    with ServerThread(settings, vad) as server, \
            chromium_page(f"{server.http}/?autostart=1", wav) as devtools:
        deadline = time.monotonic() + 60
        _wait_for(devtools, "!document.getElementById('feedback').hidden", deadline)
        options = devtools.evaluate(
            "[...document.getElementById('fb-intent').options].map(o => o.value).join(',')")
        devtools.evaluate("document.getElementById('fb-wrong').click()")
        devtools.evaluate("document.getElementById('fb-intent').value = 'lightsOn'")
        devtools.evaluate("document.getElementById('fb-send').click()")
        _wait_for(devtools, "document.getElementById('fb-status').textContent.length > 0",
                  deadline)
        status = _text(devtools, "fb-status")
        ready = next(e for e in _events(devtools) if e["type"] == "ready")
        session = ready["session_id"]
        rows = CaptureStore.open(store, create=False).rows()
    assert status == "Thanks: kept for review.", status
    assert options.split(",") == ["", *ready["intents"]]  # "" is "(not a command)"
    corrected = [r for r in rows if r["feedback_intent"] == "lightsOn"]
    assert len(corrected) == 1 and corrected[0]["session_id"] == session
    assert corrected[0]["kept_for"] == "corrected" and corrected[0]["intent"] == "lightsOff"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_the_review_page_labels_captured_utterances(speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from serving.capture import CaptureConfig
    from serving.capture_store import CapturedRow

    wav = _mic(tmp_path, np.zeros(1600, np.float32))
    settings = dataclasses.replace(make_settings(), capture=CaptureConfig(
        capture_dir=str(tmp_path / "captured")))
    with ServerThread(settings, vad) as server:
        store = server.app.services.capture.store
        for i, (understood, intent) in enumerate([(True, "lightsOff"), (False, None),
                                                  (False, None)]):
            store.add(CapturedRow("home", "s", i, "", "not_understood", understood, None,
                                  intent, {"room": "bedroom"} if understood else {}, 0.4,
                                  "", "turn of the lights"), speak("turn off the lights"),
                      now_s=1000.0 + i)
        with chromium_page(f"{server.http}/review", wav) as devtools:
            deadline = time.monotonic() + 60
            _wait_for(devtools, "document.querySelectorAll('#items li').length === 3", deadline)
            audio = devtools.call(
                "Runtime.evaluate", awaitPromise=True, returnByValue=True,
                expression="fetch(document.querySelector('#items audio').src).then(r => "
                           "r.headers.get('content-type') + ' ' + r.status)")["result"]["value"]
            devtools.evaluate("document.querySelector('#items li button').click()")  # Right
            _wait_for(devtools, "document.querySelectorAll('#items li').length === 2", deadline)
            devtools.evaluate("""(() => { const li = document.querySelector('#items li');
                li.querySelector('input').value = 'turn on the kitchen lights';
                [...li.querySelectorAll('button')].find(b => b.textContent === 'It was this')
                  .click(); })()""")
            _wait_for(devtools, "document.querySelectorAll('#items li').length === 1", deadline)
            devtools.evaluate("""[...document.querySelectorAll('#items li button')]
                .find(b => b.textContent === 'Discard').click()""")
            _wait_for(devtools, "document.querySelectorAll('#items li').length === 0", deadline)
            status = _text(devtools, "status")
        rows = {r["utterance_id"]: r for r in store.rows()}
    assert audio == "audio/flac 200", audio
    assert status == "0 left to review."
    assert rows[0]["feedback_correct"] is True
    assert (rows[1]["feedback_intent"], rows[1]["feedback_slots"], rows[1]["feedback_text"]) \
        == ("lightsOn", {"room": "kitchen"}, "turn on the kitchen lights")
    assert 2 not in rows
