"""The browser page end to end: headless Chromium, a fake microphone fed from a WAV file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
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


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_page_recognizes_the_fake_microphone(speak, vad, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    silence = np.zeros(16000, np.float32)
    audio = np.concatenate([silence, speak("turn off the bedroom lights"), silence, silence])
    wav = tmp_path / "mic.wav"
    soundfile.write(wav, audio, 16000, subtype="PCM_16")
    with ServerThread(make_settings(), vad) as server, \
            tempfile.TemporaryDirectory() as profile:
        assert CHROMIUM is not None
        browser = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={wav}",
             "--autoplay-policy=no-user-gesture-required",
             f"{server.http}/?autostart=1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            port_file = Path(profile) / "DevToolsActivePort"
            while not port_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with connect(_page_target(port, deadline), max_size=2**24) as ws:
                devtools = DevTools(ws)
                intent, events, status, slots = _read_result(devtools, deadline)
            assert intent == "lightsOff", f"status {status!r}, events {events}"
            assert json.loads(slots) == {"room": "bedroom"}
            kinds = [e["type"] for e in json.loads(events)]
            assert kinds[0] == "ready" and "speech_started" in kinds
        finally:
            browser.terminate()
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()
    assert not os.path.exists(profile)


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
