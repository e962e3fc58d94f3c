"""The browser page end to end: headless Chromium, a fake microphone fed from a WAV file."""

from __future__ import annotations

import contextlib
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

from tests.serving.conftest import ServerThread, make_settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """The Chrome DevTools protocol over its WebSocket (websockets' sync client)."""

    def __init__(self, ws: Any):
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=30))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                result: dict[str, Any] = reply["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return reply["result"].get("value")



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
def chromium_page(url: str, microphone: Path) -> Iterator[DevTools]:
    """Headless Chromium on ``url`` with ``microphone`` (a WAV file, looped) as its microphone."""
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        browser = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
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
