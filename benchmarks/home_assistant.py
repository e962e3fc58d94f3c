"""Home Assistant over Wyoming, end to end: spoken commands in, transcripts and intents out;
then the user's device list changes at run time and the next command with a new name.

    python benchmarks/home_assistant.py --out runs/home-assistant.json

A real ``assistant wyoming`` serves the shipped Home Assistant context. Commands of the
grammar, up to two of each intent with their own slot values,
are spoken by a TTS voice and sent the way Home Assistant sends them (``transcribe``,
``audio-start``, 100 ms ``audio-chunk``s, ``audio-stop``); each transcript is then read by
Home Assistant's own sentence matcher (:mod:`benchmarks.home_assistant_matcher`: hassil with
its English sentences, as its conversation agent reads it) and must fire the intent with the
slots the sentence was generated with (59 commands over the 33 intents: intents without
slots have one sentence each); commands Home Assistant has no sentence for, or cannot say as
we understood them, are reported as such. Then
``PUT /v1/models/ha/slots/device`` replaces the device names with 10, 100 and 1,000 names
that include one never heard before, and the very next spoken command with that name must be
understood. Reported: accuracy, latency per command, and how long each update took to apply:
the PUT itself (edit, check, swap in), then the first two commands after it (with two worker
processes each builds the new recognizer on its first command).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
HA = REPO / "assistant" / "contexts" / "home_assistant.yaml"
ADJECTIVES = ("red", "blue", "green", "small", "big", "old", "new", "front", "back", "upper",
              "lower", "north", "south", "corner", "wall", "desk", "floor", "window", "garden",
              "study")
NOUNS = ("lamp", "heater", "speaker", "plug", "socket", "sprinkler", "pump", "kettle",
         "charger", "projector", "humidifier", "purifier", "dehumidifier", "toaster", "fridge",
         "freezer", "radio", "printer", "router", "camera", "doorbell", "monitor", "console",
         "aquarium", "fountain", "blanket", "mirror", "clock", "diffuser", "boiler", "cooler",
         "bulb", "strip", "spotlight", "chandelier", "screen", "organizer", "dryer", "washer",
         "oven", "grill", "mixer", "blender", "vacuum", "robot", "ventilator", "curtain",
         "shutter", "gate", "door")
NEW_NAME = "aquarium pump"


def start_server() -> tuple[subprocess.Popen[str], int, str]:
    command = [sys.executable, "-m", "assistant.cli", "wyoming", "--uri", "tcp://127.0.0.1:0",
               "--port", "0", "--context", f"ha={HA}", "--log-level", "WARNING"]
    server = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    http = port = None
    for line in server.stderr:
        if match := re.search(r"listening on ws://([\d.]+:\d+)", line):
            http = f"http://{match.group(1)}"
        if match := re.search(r"ready: wyoming on tcp://[\d.]+:(\d+)", line):
            port = int(match.group(1))
            break
    if http is None or port is None:
        server.kill()
        raise RuntimeError("the server did not start")
    return server, port, http


def commands(per_intent: int) -> list[Any]:
    from assistant.grammar import load_context, sample_sentences

    context = load_context(HA)
    seen: dict[str, list[Any]] = {}
    for annotation in sample_sentences(context, 40 * len(context.intent_names), seed=7):
        chosen = seen.setdefault(annotation.intent, [])
        if len(chosen) < per_intent and all(a.slots != annotation.slots for a in chosen):
            chosen.append(annotation)
    return [a for intent in context.intent_names for a in seen.get(intent, [])]


async def transcribe(port: int, audio: np.ndarray) -> tuple[str, float]:
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    from assistant.pcm import float_to_pcm16le

    pcm = float_to_pcm16le(audio)
    async with AsyncTcpClient("127.0.0.1", port, read_timeout=120) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for i in range(0, len(pcm), 3200):
            await client.write_event(AudioChunk(rate=16000, width=2, channels=1,
                                                audio=pcm[i : i + 3200]).event())
        started = time.perf_counter()
        await client.write_event(AudioStop().event())
        event = await client.read_event()
        assert event is not None and Transcript.is_type(event.type), event
        return Transcript.from_event(event).text, 1000 * (time.perf_counter() - started)


def speak(text: str, voice: Any) -> np.ndarray:
    from training.tts import synthesize

    pad = np.zeros(8000, np.float32)
    return np.concatenate([pad, synthesize(text, voice), pad])


def put_devices(http: str, names: list[str]) -> float:
    request = urllib.request.Request(f"{http}/v1/models/ha/slots/device",
                                     data=json.dumps(names).encode(), method="PUT",
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as r:
        r.read()
    return 1000 * (time.perf_counter() - started)


def device_names(count: int) -> list[str]:
    names = [f"{a} {n}" for n in NOUNS for a in ADJECTIVES if f"{a} {n}" != NEW_NAME]
    return [*names[: count - 1], NEW_NAME]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-intent", type=int, default=2)
    parser.add_argument("--voice", default="piper:joe", help="ENGINE:NAME")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from assistant.grammar import load_context
    from benchmarks.home_assistant_matcher import HomeAssistantMatcher
    from benchmarks.report import save_json
    from serving.wyoming.phrasing import home_assistant_sentence
    from training.tts import Voice

    matcher = HomeAssistantMatcher(load_context(HA))

    engine, name = args.voice.split(":", 1)
    voice = Voice(engine, name)
    server, port, http = start_server()
    rows, updates = [], []
    try:
        for annotation in commands(args.per_intent):
            transcript, ms = asyncio.run(transcribe(port, speak(annotation.text, voice)))
            intent, got = matcher.fires(transcript) if transcript else (None, {})
            fired = bool(transcript) and matcher.agrees(annotation, transcript)
            gap = None if fired or not transcript else (
                "no Home Assistant sentence for it: sent as said"
                if home_assistant_sentence(annotation.intent, annotation.slots) is None
                else matcher.known_gap(annotation, transcript))
            rows.append({"said": annotation.text, "transcript": transcript,
                         "expected_intent": annotation.intent,
                         "home_assistant_intent": intent, "right": fired,
                         "home_assistant_gap": gap, "entities": got,
                         "expected_slots": dict(annotation.slots), "ms": round(ms, 1)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        command = speak(f"turn on the {NEW_NAME}", voice)
        for count in (10, 100, 1000):
            put_ms = put_devices(http, device_names(count))
            first, first_ms = asyncio.run(transcribe(port, command))
            _, second_ms = asyncio.run(transcribe(port, command))
            updates.append({"names": count, "put_ms": round(put_ms, 1),
                            "first_command_ms": round(first_ms, 1),
                            "second_command_ms": round(second_ms, 1),
                            "first_transcript": first, "understood": NEW_NAME in first.lower()})
            print(json.dumps(updates[-1]), file=sys.stderr, flush=True)
            put_devices(http, [*device_names(count)[:-1], "desk fan"])  # the name leaves again
    finally:
        server.terminate()
        server.wait(timeout=60)
    right = sum(r["right"] for r in rows)
    report = {"voice": voice.id, "commands": len(rows), "right": right,
              "not_understood": sum(not r["transcript"] for r in rows),
              "home_assistant_gaps": dict(collections.Counter(
                  r["home_assistant_gap"] for r in rows if r["home_assistant_gap"])),
              "intents": len({r["expected_intent"] for r in rows}),
              "ms_median": round(float(np.median([r["ms"] for r in rows])), 1),
              "updates": updates, "rows": rows}
    save_json(report, args.out)
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2))
    return 0 if right == len(rows) and all(u["understood"] for u in updates) else 1


if __name__ == "__main__":
    sys.exit(main())
