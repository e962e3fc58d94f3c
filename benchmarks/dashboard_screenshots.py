"""Screenshots of the dashboard (docs/dashboard.md) on a real server with real traffic.

    python benchmarks/dashboard_screenshots.py [--out docs/images] [--batches 3]

1. Makes a reference profile for the shipped home grammar (a copy in a temporary folder,
   ``home.profile.json`` beside it) from 200 espeak-ng commands in four voices and 25
   sentences that are no command (so that it has the other-speech reference), cut to the
   speech as ``assistant recognize`` cuts a recording
   (:func:`assistant.monitor.profile_from_results`).
2. Starts ``assistant serve`` on it with a small drift window (40 utterances, alarms from 20)
   so that a few minutes of traffic show every state.
3. Sends in-distribution traffic over WebSocket (other sentences of the grammar, the same
   voices), in batches a while apart so the per-minute charts have several minutes, and
   screenshots ``/dashboard`` at desktop width: ``dashboard-ok.png``.
4. Sends drifted traffic: commands in loud noise and sentences that are not in the grammar,
   then screenshots it again at desktop and phone width: ``dashboard-drift.png`` and
   ``dashboard-phone.png`` (full pages, headless Chromium over the DevTools protocol).

About 3 minutes on 2 cores. Needs espeak-ng and chromium (Debian packages).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.devtools import DevTools  # noqa: E402

HOME = REPO / "assistant" / "contexts" / "home.yaml"
VOICES = ("en-us+m3", "en-us+f2", "en-gb+m1", "en-us+f4")
RATE_HZ = 16000
OUT_OF_GRAMMAR = (
    "the quarterly report is due on friday", "my cat likes to sleep in the sun",
    "please book a flight to paris", "how tall is the eiffel tower",
    "i would like a cheeseburger with fries", "the train leaves at noon",
    "what is the capital of australia", "send an email to my manager",
    "add milk to the shopping list", "who won the football game last night",
    "read me the news headlines", "call my sister on her mobile",
)
DESKTOP = (1280, 900)
PHONE = (390, 844)


def speak(text: str, voice: str) -> np.ndarray:
    """espeak-ng speech of ``text``, 16 kHz float32, with half a second of silence around."""
    from training.tts import Voice, synthesize

    pad = np.zeros(RATE_HZ // 2, np.float32)
    return np.concatenate([pad, synthesize(text, Voice("espeak", voice)), pad])


def commands(n: int, seed: int) -> list[np.ndarray]:
    """``n`` sentences sampled from the home grammar, spoken by the voices in turn."""
    from assistant.grammar import load_context, sample_sentences

    sentences = sample_sentences(load_context(HOME), n, seed=seed)
    return [speak(s.text, VOICES[i % len(VOICES)]) for i, s in enumerate(sentences)]


def others(n: int, seed: int) -> list[np.ndarray]:
    """``n`` sentences the home grammar does not have (not those of the drifted traffic),
    spoken by the voices in turn."""
    from assistant.grammar import load_context
    from training.negatives import out_of_domain_for

    texts = [t for t in out_of_domain_for(load_context(HOME), 4 * n, seed)
             if t.lower() not in OUT_OF_GRAMMAR][:n]
    return [speak(t, VOICES[i % len(VOICES)]) for i, t in enumerate(texts)]


def make_profile(folder: Path, clips: Sequence[tuple[str, np.ndarray]]) -> Path:
    """A copy of the home grammar in ``folder`` with a reference profile beside it, from
    ``clips`` (kind: "command" or "other", audio)."""
    from assistant.artifacts import SpeechModelSpec, ensure_speech_model
    from assistant.grammar import load_context
    from assistant.monitor import profile_from_results
    from assistant.recognizer import Recognizer
    from assistant.recording import RECORDING_ENDPOINT
    from assistant.speech_model import SpeechModel
    from assistant.vad import SileroVad, command_span

    grammar = folder / "home.yaml"
    shutil.copy(HOME, grammar)
    vad = SileroVad()
    cut = []
    for kind, clip in clips:
        span, _ = command_span(clip, vad, RECORDING_ENDPOINT)
        if span is not None:
            cut.append((kind, clip[span[0] : span[1]]))
    model = SpeechModel(ensure_speech_model(SpeechModelSpec("tiny.en", "int8")), threads=2)
    recognizer = Recognizer(load_context(grammar), model)
    source = {"data": f"espeak-ng commands sampled from the grammar and other sentences, "
                      f"{len(VOICES)} voices, clean", "clips": len(cut), "voices": list(VOICES),
              "command": "benchmarks/dashboard_screenshots.py",
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results = ((kind, recognizer.recognize(audio)) for kind, audio in cut)
    profile_from_results(results, recognizer, source).save(folder / "home.profile.json")
    return grammar


@contextlib.contextmanager
def server(grammar: Path) -> Iterator[str]:
    """``assistant serve`` on a free port with a small drift window; yields its http URL."""
    command = [sys.executable, "-m", "assistant.cli", "serve", "--port", "0",
               "--context", f"home={grammar}", "--workers", "2", "--log-level", "WARNING",
               "--drift-window-utterances", "40", "--drift-min-utterances", "20"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        for line in process.stderr:
            match = re.search(r"listening on ws://(\S+?)/v1/stream", line)
            if match:
                # Keep reading its log so a chatty server cannot fill the pipe and stall.
                threading.Thread(target=collections.deque, args=(process.stderr, 50),
                                 daemon=True).start()
                yield f"http://{match.group(1)}"
                return
        raise RuntimeError("the server did not start")
    finally:
        process.terminate()
        process.wait(timeout=60)


def send(http: str, clips: Sequence[np.ndarray]) -> list[Any]:
    """Stream ``clips`` (a second of silence after each) in one session, at 10x real time;
    returns the results."""
    from assistant import protocol
    from clients.sdk import AsyncClient

    silence = np.zeros(RATE_HZ, np.float32)
    audio = np.concatenate([x for clip in clips for x in (clip, silence)])
    step = RATE_HZ // 4  # 250 ms frames, 40 a second: within the default limits

    async def chunks() -> Any:
        for start in range(0, audio.size, step):
            yield audio[start : start + step]
            await asyncio.sleep(0.025)

    async def run() -> list[Any]:
        async with AsyncClient(http.replace("http://", "ws://")) as client:
            return [e async for e in client.stream_chunks(chunks())
                    if isinstance(e, protocol.Result)]

    return asyncio.run(run())


def noisy(clip: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``clip`` in white noise ``snr_db`` under its speech level (a loud fan, a bad line)."""
    speech = clip[np.abs(clip) > 0.01]
    level = float(np.sqrt(np.mean(np.square(speech)))) if speech.size else 0.1
    noise = rng.normal(0.0, level * 10 ** (-snr_db / 20), clip.size).astype(np.float32)
    return np.clip(clip + noise, -1, 1)


@contextlib.contextmanager
def chromium() -> Iterator[DevTools]:
    """Headless Chromium on a blank page, driven over DevTools."""
    from websockets.sync.client import connect

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    browser = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and "\n" in port_file.read_text()):
            if time.monotonic() > deadline:
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in json.load(r) if t.get("type") == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=2**26) as ws:
            yield DevTools(ws, timeout_s=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGTERM)
        browser.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(devtools: DevTools, url: str, size: tuple[int, int], out: Path,
               condition: str, screens: float = 10.0) -> None:
    """A PNG of ``url`` at ``size`` (CSS pixels) once ``condition`` holds: the whole page, or
    its first ``screens`` screen heights."""
    width, height = size
    mobile = width < 600
    devtools.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=2 if mobile else 1, mobile=mobile)
    devtools.call("Page.navigate", url=url)
    deadline = time.monotonic() + 30
    while not devtools.evaluate(f"!!(window.dashboard && ({condition}))"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the dashboard never showed {condition}")
        time.sleep(0.2)
    time.sleep(0.5)  # fonts and layout settle
    full = min(int(devtools.evaluate("document.documentElement.scrollHeight")),
               int(screens * height))
    devtools.call("Emulation.setDeviceMetricsOverride", width=width, height=full,
                  deviceScaleFactor=2 if mobile else 1, mobile=mobile)
    shot = devtools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": full, "scale": 1})
    out.write_bytes(base64.b64decode(shot["data"]))
    print(f"[screenshots] {out} ({width} px wide, {full} px tall)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--batches", type=int, default=3,
                        help="batches of traffic per phase, --pause-s apart (3)")
    parser.add_argument("--per-batch", type=int, default=14, help="utterances a batch (14)")
    parser.add_argument("--pause-s", type=float, default=25.0)
    parser.add_argument("--profile-clips", type=int, default=200,
                        help="clips the reference profile is made of (200; fewer than about "
                             "100 make the encoder signals alarm on in-distribution traffic)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dashboard-") as tmp:
        grammar = make_profile(Path(tmp), [
            *(("command", c) for c in commands(args.profile_clips, seed=1)),
            *(("other", c) for c in others(args.profile_clips // 8, seed=1))])
        print(f"[screenshots] profile made in {time.monotonic() - started:.0f} s", flush=True)
        live = commands(args.batches * args.per_batch, seed=2)
        with server(grammar) as http, chromium() as devtools:
            page = f"{http}/dashboard?refresh=2"
            for i in range(args.batches):
                batch = live[i * args.per_batch : (i + 1) * args.per_batch]
                results = send(http, batch)
                print(f"[screenshots] in-distribution batch {i + 1}: "
                      f"{sum(r.understood for r in results)}/{len(results)} understood",
                      flush=True)
                time.sleep(args.pause_s)
            screenshot(devtools, page, DESKTOP, args.out / "dashboard-ok.png",
                       "dashboard.updates > 0")
            for i in range(args.batches):
                half = args.per_batch // 2
                loud = [noisy(c, float(rng.uniform(-6, 0)), rng)
                        for c in live[i * args.per_batch : i * args.per_batch + half]]
                other = [speak(OUT_OF_GRAMMAR[(i * half + k) % len(OUT_OF_GRAMMAR)],
                               VOICES[k % len(VOICES)]) for k in range(args.per_batch - half)]
                mixed = [clip for pair in zip(loud, other, strict=False) for clip in pair]
                results = send(http, mixed)
                print(f"[screenshots] drifted batch {i + 1}: "
                      f"{sum(r.understood for r in results)}/{len(results)} understood",
                      flush=True)
                if i < args.batches - 1:
                    time.sleep(args.pause_s)
            drifting = "dashboard.data.models.home.drift.status === 'drift'"
            screenshot(devtools, page, DESKTOP, args.out / "dashboard-drift.png", drifting)
            screenshot(devtools, page, PHONE, args.out / "dashboard-phone.png", drifting,
                       screens=2.2)
    print(f"[screenshots] done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
