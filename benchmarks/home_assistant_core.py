"""A real Home Assistant core drives ``assistant wyoming``: speech in, devices switched.

    python3.11 -m venv /tmp/ha && /tmp/ha/bin/pip install homeassistant==2024.1.6
    python benchmarks/home_assistant_core.py --hass /tmp/ha/bin/hass --out runs/ha-core.json

``benchmarks/home_assistant.py`` drives the Wyoming service with the ``wyoming`` package's
client and judges transcripts with Home Assistant's matcher library; this runs Home Assistant
itself (the ``hass`` of another virtual environment: Home Assistant pins its own versions of
many packages, and the newest releases need a newer Python than ours), on loopback, with its
``demo`` integration's lights, locks, covers and fans:

1. a fresh configuration directory; Home Assistant is onboarded through its HTTP API (a user,
   a token), installing its integrations' requirements from PyPI on the first start;
2. the Wyoming integration is added the way its UI adds it (a config flow with our host and
   port): Home Assistant asks ``describe`` and makes an ``stt`` entity of our service;
3. the demo's device names go to our server at run time (``PUT /v1/models/ha/slots/TYPE``);
4. the devices are exposed to Assist (newer releases expose no locks by default), and
   an Assist pipeline (our speech-to-text, Home Assistant's own conversation agent) runs for
   each command over Home Assistant's WebSocket API, fed 16 kHz PCM of a Piper voice, as a
   voice satellite feeds it; the device's state is read before and after.

A command counts as done when Home Assistant answered ``action_done`` and the device went
(or is going) to the state said. Reported: the Home Assistant version, per command the
transcript, Home Assistant's answer, the state before and after, and the time from the last
audio to the transcript (``stt-end``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.home_assistant import speak, start_server  # noqa: E402

CONFIG = """homeassistant:
  name: Benchmark
  latitude: 52.0
  longitude: 4.0
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
onboarding:
auth:
config:
websocket_api:
assist_pipeline:
conversation:
demo:
"""
# The demo's devices, as our grammar's slot values (PUT at run time) ...
NAMES = {"light": ["bed light", "ceiling lights", "kitchen lights"],
         "lock": ["front door", "kitchen door"],
         "cover": ["garage door", "kitchen window", "hall window"],
         "fan": ["living room fan", "ceiling fan"]}
# ... and what is said, the entity, and the states it must go to (or be going to).
COMMANDS = [
    ("turn off the kitchen lights", "light.kitchen_lights", ("off",)),
    ("turn on the bed light", "light.bed_light", ("on",)),
    ("unlock the front door", "lock.front_door", ("unlocked", "unlocking")),
    ("open the garage door", "cover.garage_door", ("open", "opening")),
    ("turn on the living room fan", "fan.living_room_fan", ("on",)),
    ("lock the kitchen door", "lock.kitchen_door", ("locked", "locking")),
    ("turn off the ceiling lights", "light.ceiling_lights", ("off",)),
    ("close the hall window", "cover.hall_window", ("closed", "closing")),
    ("turn on the ceiling fan", "fan.ceiling_fan", ("on",)),
    ("turn off the bed light", "light.bed_light", ("off",)),
]
CLIENT_ID = "http://127.0.0.1/"


class HomeAssistant:
    """A ``hass`` process on loopback, onboarded, and its HTTP API with a token."""

    def __init__(self, hass: str, port: int, config_dir: Path):
        (config_dir / "configuration.yaml").write_text(CONFIG.format(port=port))
        self.base = f"http://127.0.0.1:{port}"
        self.log = (config_dir / "hass.log").open("w")
        self.process = subprocess.Popen([hass, "-c", str(config_dir)], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.token = ""

    def request(self, method: str, path: str, body: Any = None, form: bool = False) -> Any:
        data = headers = None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers)
        with urllib.request.urlopen(req, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def wait_until_up(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hass exited with {self.process.returncode}")
            try:
                self.request("GET", "/api/onboarding")
                return
            except urllib.error.HTTPError as e:
                raise RuntimeError(f"{self.base} answered {e.code}: not a new Home "
                                   f"Assistant") from e
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1)
        raise RuntimeError(f"Home Assistant did not answer in {timeout_s:.0f} s")

    def onboard(self) -> None:
        user = self.request("POST", "/api/onboarding/users", {
            "client_id": CLIENT_ID, "name": "bench", "username": "bench",
            "password": "bench-password", "language": "en"})
        token = self.request("POST", "/auth/token", {
            "grant_type": "authorization_code", "code": user["auth_code"],
            "client_id": CLIENT_ID}, form=True)
        self.token = token["access_token"]

    def add_wyoming(self, port: int) -> dict[str, Any]:
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "wyoming"})
        return self.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                            {"host": "127.0.0.1", "port": port})

    def state(self, entity: str) -> str:
        return str(self.request("GET", f"/api/states/{entity}")["state"])

    def stt_entities(self) -> list[str]:
        return [s["entity_id"] for s in self.request("GET", "/api/states")
                if s["entity_id"].startswith("stt.") and "demo" not in s["entity_id"]]

    def stop(self) -> None:
        _stop(self.process)
        self.log.close()


def pcm_of(text: str) -> bytes:
    """The command as ``home_assistant.py`` speaks it, 0.5 s more silence after (Home
    Assistant's own end-of-speech detection listens too), as 16-bit PCM."""
    from assistant.pcm import float_to_pcm16le
    from training.tts import Voice

    audio = speak(text, Voice("piper", "joe"))
    return float_to_pcm16le(np.concatenate([audio, np.zeros(8000, np.float32)]))


async def run_pipelines(ha: HomeAssistant, stt: str) -> list[dict[str, Any]]:
    import websockets

    rows = []
    url = ha.base.replace("http", "ws") + "/api/websocket"
    async with websockets.connect(url, max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "auth", "access_token": ha.token}))
        assert json.loads(await ws.recv())["type"] == "auth_ok"
        await ws.send(json.dumps({
            "id": 1, "type": "assist_pipeline/pipeline/create", "name": "voice-assistant",
            "language": "en", "stt_engine": stt, "stt_language": "en",
            "conversation_engine": "homeassistant", "conversation_language": "en",
            "tts_engine": None, "tts_language": None, "tts_voice": None,
            "wake_word_entity": None, "wake_word_id": None}))
        pipeline = json.loads(await ws.recv())["result"]["id"]
        # Newer releases expose no locks to Assist by default (a user's choice in its UI).
        await ws.send(json.dumps({
            "id": 2, "type": "homeassistant/expose_entity", "assistants": ["conversation"],
            "entity_ids": sorted({entity for _, entity, _ in COMMANDS}), "should_expose": True}))
        exposed = json.loads(await ws.recv())
        if not exposed.get("success"):
            raise RuntimeError(f"could not expose the devices to Assist: {exposed}")
        for n, (text, entity, expected) in enumerate(COMMANDS, 3):
            before = ha.state(entity)
            await ws.send(json.dumps({"id": n, "type": "assist_pipeline/run",
                                      "start_stage": "stt", "end_stage": "intent",
                                      "input": {"sample_rate": 16000}, "pipeline": pipeline}))
            row: dict[str, Any] = {"said": text, "entity": entity, "before": before}
            sent = 0.0
            while True:
                message = json.loads(await ws.recv())
                if message.get("type") == "result" and not message.get("success"):
                    row["error"] = message.get("error")
                    break
                if message.get("type") != "event":
                    continue
                event = message["event"]
                if event["type"] == "run-start":
                    handler = event["data"]["runner_data"]["stt_binary_handler_id"]
                    pcm = pcm_of(text)
                    for i in range(0, len(pcm), 3200):  # 100 ms chunks, as a satellite sends
                        await ws.send(bytes([handler]) + pcm[i : i + 3200])
                    await ws.send(bytes([handler]))  # end of audio
                    sent = time.perf_counter()
                elif event["type"] == "stt-end":
                    row["transcript"] = event["data"]["stt_output"]["text"]
                    row["stt_ms"] = round(1000 * (time.perf_counter() - sent), 1)
                elif event["type"] == "intent-end":
                    response = event["data"]["intent_output"]["response"]
                    row["response_type"] = response.get("response_type")
                    row["speech"] = response.get("speech", {}).get("plain", {}).get("speech")
                elif event["type"] == "error":
                    row["error"] = event["data"]
                if event["type"] in ("run-end", "error"):
                    break
            await asyncio.sleep(0.5)  # demo devices move at once or start moving
            row["after"] = ha.state(entity)
            row["done"] = row.get("response_type") == "action_done" and row["after"] in expected
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _stop(process: subprocess.Popen[Any]) -> None:
    """Terminate, then kill after 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hass", required=True, help="the hass executable of a virtual "
                        "environment with homeassistant installed")
    parser.add_argument("--port", type=int, default=18123, help="Home Assistant's HTTP port")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--start-timeout-s", type=float, default=600.0)
    args = parser.parse_args(argv)
    from benchmarks.report import save_json

    with socket.socket() as probe:  # a leftover hass on the port would answer instead
        if probe.connect_ex(("127.0.0.1", args.port)) == 0:
            raise SystemExit(f"port {args.port} is taken (a Home Assistant left running?)")
    config_dir = Path(tempfile.mkdtemp(prefix="ha-core-"))
    with contextlib.ExitStack() as stack:
        server, wyoming_port, http = start_server()
        stack.callback(_stop, server)
        ha = HomeAssistant(args.hass, args.port, config_dir)
        stack.callback(ha.stop)
        for slot_type, names in NAMES.items():
            req = urllib.request.Request(f"{http}/v1/models/ha/slots/{slot_type}",
                                         data=json.dumps(names).encode(), method="PUT")
            urllib.request.urlopen(req, timeout=60).read()
        started = time.monotonic()
        ha.wait_until_up(args.start_timeout_s)
        ha.onboard()
        version = ha.request("GET", "/api/config")["version"]
        entry = ha.add_wyoming(wyoming_port)
        if entry.get("type") != "create_entry":
            raise RuntimeError(f"the Wyoming integration was not added: {entry}")
        stt: list[str] = []
        for _ in range(30):
            if stt := ha.stt_entities():
                break
            time.sleep(1)
        if not stt:
            raise RuntimeError("Home Assistant made no stt entity of the service")
        setup_s = round(time.monotonic() - started, 1)
        rows = asyncio.run(asyncio.wait_for(run_pipelines(ha, stt[0]),
                                            timeout=60 * len(COMMANDS)))
    report = {"home_assistant": version, "stt_entity": stt[0], "setup_s": setup_s,
              "commands": len(rows), "done": sum(r["done"] for r in rows), "rows": rows,
              "command": " ".join(["python", "benchmarks/home_assistant_core.py",
                                   *(argv or sys.argv[1:])])}
    save_json(report, args.out)
    print(f"Home Assistant {version}: {report['done']} of {len(rows)} commands done "
          f"(setup {setup_s} s; log in {config_dir / 'hass.log'})")
    return 0 if report["done"] == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
