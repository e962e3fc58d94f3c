"""Drift scenario: does monitoring see each kind of shift, soon, without crying wolf?

    python benchmarks/drift.py --out runs/drift.json

A real ``assistant serve`` subprocess serves the home grammar zero-shot with its shipped
reference profile (``assistant/contexts/home.profile.json``: the catalogue's *training*
voices, training augmentation), and real WebSocket clients send it synthesized traffic in
segments, one after the other:

1. **in-distribution**: voices held out from training and from the profile (the catalogue's
   held-out voices: festival HTS, espeak-ng variants f5/m7/steph, flite awb, Kokoro
   tebukuro), augmented like the training data (rooms, the training noises at 0-30 dB,
   level, channel), 10 % of it speech that is no command of the grammar;
2. each shift, after a recovery stretch of in-distribution traffic (the window refills):
   (a) a noise never used in training (game sound effects, ``benchmarks/noise.py``) at a
   signal-to-noise ratio under training's range (-6 to -1 dB peak-frame);
   (b) out-of-grammar speech rising to 30 % of traffic;
   (c) a phrasing the grammar lacks: half of the commands wrapped in polite phrases
   ("could you please ... for me");
   (d) telephone-band audio (300-3400 Hz, 8 kHz mu-law, for every clip).

The server's drift alarms (``GET /v1/monitor`` events, polled) are matched to segments by
the monitor's own answer count: detection delay = answers into the shift before the first
alarm. Alarms raised during in-distribution traffic are false alarms.

False alarms per simulated day: the in-distribution answers the server logged
(``--monitor-log``, the signals only) are resampled into ``--days`` days of ``--per-day``
answers spaced evenly over 24 h and replayed through the same monitor
(:func:`assistant.monitor.replay`), so quiet and busy windows both occur.

``--model DIR`` serves a model directory of the home grammar instead (``assistant train
assistant/contexts/home.yaml --out DIR``) with its own profile (``DIR/profile.json``, made by
``assistant train`` from its held-out judge voices): a fine-tuned model has an intent
classifier, whose out-of-domain score is one more monitored signal.

Clips are cached under ``--cache`` (keyed by the segment's settings); a rerun reuses them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from assistant.audio import SAMPLE_RATE_HZ  # noqa: E402

HOME = REPO / "assistant" / "contexts" / "home.yaml"
POLITE = ("could you please {} for me", "I was wondering if you could {}",
          "would you mind if you {} right now", "{} if that's okay with you",
          "please be so kind as to {}", "do me a favour and {} thanks")


# The monitor's settings a run may give the server (``assistant serve`` flags of the same
# names); the simulated days replay with the same ones.
SETTINGS = {"drift_window_utterances": int, "drift_psi_floor": float, "drift_alpha": float,
            "drift_joint_alpha": float, "drift_other_alpha": float}


@dataclass(frozen=True)
class Segment:
    name: str
    kind: str  # "in", "noise", "oog", "phrasing", "telephone"
    clips: int
    seed: int

    @property
    def shift(self) -> bool:
        return self.kind != "in"


def scenario(in_distribution: int, per_shift: int, recovery: int) -> list[Segment]:
    segments = [Segment("in-distribution", "in", in_distribution, 1)]
    shifts = [("a: unseen noise, SNR -6..-1 dB", "noise"), ("b: 30 % out of grammar", "oog"),
              ("c: unsupported phrasing", "phrasing"), ("d: telephone band", "telephone")]
    for i, (name, kind) in enumerate(shifts):
        if i:
            segments.append(Segment(f"recovery {i}", "in", recovery, 10 + i))
        segments.append(Segment(name, kind, per_shift, 20 + i))
    return segments


def segment_clips(segment: Segment) -> list[Any]:
    """The segment's planned clips (text, kind, voice; the file of clip ``i`` is named
    ``{i:04d}-{kind}.wav``), the same on every call."""
    from assistant.grammar import load_context, parse
    from training.profile import plan_clips
    from training.tts import voice_catalog

    context = load_context(HOME)
    voices = voice_catalog().held_out
    other = 0.3 if segment.kind == "oog" else 0.1
    clips = plan_clips(context, HOME, segment.clips, voices, other, segment.seed)
    rng = random.Random(segment.seed)
    if segment.kind == "phrasing":
        changed = []
        for clip in clips:
            if clip.kind == "command" and rng.random() < 0.5:
                text = rng.choice(POLITE).format(clip.text)
                if parse(context, text) is None:
                    clip = replace(clip, text=text, kind="rephrased")
            changed.append(clip)
        clips = changed
    return list(clips)


def render_segment(segment: Segment, cache: Path) -> list[Path]:
    """The segment's clips as WAV files (cached)."""
    from benchmarks import noise as bench_noise
    from training.augment import AugmentConfig
    from training.levels import mix_at_snr, set_level_dbfs
    from training.profile import Renderer

    folder = cache / f"{segment.kind}-{segment.seed}-{segment.clips}"
    done = folder / "done.json"
    if done.is_file():
        return [folder / name for name in json.loads(done.read_text())["files"]]
    folder.mkdir(parents=True, exist_ok=True)
    clips = segment_clips(segment)
    augment = AugmentConfig()
    if segment.kind == "noise":
        augment = replace(augment, p_noise=0.0, channel_weights=(("none", 1.0),))
    if segment.kind == "telephone":
        augment = replace(augment, channel_weights=(("telephone", 1.0),))
    renderer = Renderer(augment)
    effects = bench_noise.effects() if segment.kind == "noise" else None
    files = []
    for i, clip in enumerate(clips):
        audio = renderer(clip)
        if audio is None:
            continue
        if effects is not None:
            noise_rng = np.random.default_rng(clip.seed)
            mixed = mix_at_snr(audio, effects, float(noise_rng.uniform(-6.0, -1.0)), noise_rng)
            audio, _ = set_level_dbfs(mixed, float(noise_rng.uniform(-35.0, -5.0)))
        path = folder / f"{i:04d}-{clip.kind}.wav"
        sf.write(path, np.clip(audio, -1, 1), SAMPLE_RATE_HZ, subtype="PCM_16")
        files.append(path.name)
    done.write_text(json.dumps({"segment": segment.name, "files": files}))
    return [folder / name for name in files]


def monitor_state(http: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{http}/v1/monitor", timeout=30) as r:
        state: dict[str, Any] = json.loads(r.read())["models"]["bench"]
        return state


class EventPoller:
    """Polls ``/v1/monitor`` every ``interval_s`` and keeps every alarm event it sees."""

    def __init__(self, http: str, interval_s: float = 1.0):
        self.http = http
        self.interval_s = interval_s
        self.events: dict[tuple[str, bool, int], dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> EventPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()

    def poll(self) -> None:
        for event in monitor_state(self.http)["drift"]["events"]:
            self.events[(event["signal"], event["raised"], event["utterance"])] = event

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(OSError):
                self.poll()


async def send(url: str, files: list[Path], clients: int) -> int:
    """Each file in its own session, ``clients`` at a time, as fast as the server allows;
    returns the results received."""
    from clients.sdk import AsyncClient

    queue = list(files)
    received = 0

    async def one_client() -> None:
        nonlocal received
        while queue:
            path = queue.pop(0)
            async with AsyncClient(url, client_name="drift") as session:
                results = await session.recognize_file(path, realtime=False)
            received += len(results)

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return received


def analyse(segments: list[Segment], bounds: list[tuple[int, int]],
            events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for segment, (start, end) in zip(segments, bounds, strict=True):
        raised = [e for e in events if e["raised"] and start < e["utterance"] <= end]
        first = min(raised, key=lambda e: e["utterance"]) if raised else None
        rows.append({
            "segment": segment.name, "shift": segment.shift, "answers": end - start,
            "alarms_raised": [f"{e['signal']}@{e['utterance'] - start}" for e in raised],
            "detected": bool(first) if segment.shift else None,
            "delay_answers": first["utterance"] - start if first and segment.shift else None,
            "first_signal": first["signal"] if first and segment.shift else None,
            "false_alarms": None if segment.shift else len(raised),
        })
    return rows


def replay_days(profile: Any, config: Any, pool: list[Any], days: int, per_day: int,
                seed: int = 0) -> list[tuple[int, str]]:
    """The alarms (day, signal) a monitor raises on ``days`` of ``per_day`` answers drawn
    from ``pool``, spread evenly over each day (quiet and busy windows both occur)."""
    from assistant.monitor import DriftMonitor

    rng = np.random.default_rng(seed)
    monitor = DriftMonitor(profile, config)
    gap_s = 86400.0 / per_day
    raised = []
    for day in range(days):
        for i in rng.integers(0, len(pool), per_day):
            now = monitor.observed * gap_s
            raised += [(day, e.signal) for e in monitor.observe(pool[int(i)], now) if e.raised]
    return raised


def simulated_days(profile_path: Path, log: Path, answers: int, days: int, per_day: int,
                   settings: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """False alarms per simulated day on resampled in-distribution answers (module docs),
    with the monitor ``settings`` the server ran (its defaults for the rest)."""
    from assistant.monitor import MonitorConfig, Observation
    from assistant.profile import ReferenceProfile

    profile = ReferenceProfile.load(profile_path)
    lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()][:answers]
    pool = [Observation.from_json(row) for row in lines]
    config = replace(MonitorConfig(), **(settings or {}))
    raised = replay_days(profile, config, pool, days, per_day, seed)
    return {"days": days, "answers_per_day": per_day, "pool": len(pool),
            "false_alarms": len(raised), "false_alarms_per_day": round(len(raised) / days, 3),
            "signals": sorted({s for _, s in raised}), "by_day": [d for d, _ in raised]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "drift-clips")
    parser.add_argument("--model", type=Path, help="serve this model directory of the "
                        "home grammar (default: the grammar, zero-shot)")
    parser.add_argument("--profile", type=Path, help="the reference profile (default: the "
                        "grammar's home.profile.json, or the model directory's profile.json)")
    parser.add_argument("--in-distribution", type=int, default=800)
    parser.add_argument("--per-shift", type=int, default=200)
    parser.add_argument("--recovery", type=int, default=250)
    parser.add_argument("--clients", type=int, default=3)
    for name, kind in SETTINGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind,
                            help="a monitor setting for the server (default: its default)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=2000)
    args = parser.parse_args(argv)
    from assistant.grammar import load_context
    from benchmarks.load import start_server
    from benchmarks.report import save_json

    if args.model is not None:
        served = load_context(args.model / "context.yaml").sha256
        if served != load_context(HOME).sha256:
            parser.error(f"{args.model} was not trained on {HOME.name}: the scenario's "
                         "commands are that grammar's")
    if args.profile is None:
        args.profile = args.model / "profile.json" if args.model is not None \
            else HOME.with_name("home.profile.json")

    segments = scenario(args.in_distribution, args.per_shift, args.recovery)
    started = time.monotonic()
    files = [render_segment(s, args.cache) for s in segments]
    render_s = time.monotonic() - started
    print(f"[drift] {sum(map(len, files))} clips ready in {render_s:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        grammar = Path(tmp) / "home.yaml"
        shutil.copy(HOME, grammar)
        model = None
        if args.model is not None:  # a copy, so that the chosen profile is the one served
            model = Path(tmp) / "model"
            shutil.copytree(args.model, model)
            shutil.copy(args.profile, model / "profile.json")
        else:
            shutil.copy(args.profile, Path(tmp) / "home.profile.json")
        log = Path(tmp) / "monitor.jsonl"
        settings = {k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None}
        flags = [f for k, v in settings.items() for f in ("--" + k.replace("_", "-"), str(v))]
        server, url = start_server(grammar, args.clients, 2, "process", model_dir=model,
                                   extra=["--monitor-log", str(log), *flags])
        http = url.replace("ws://", "http://")
        bounds = []
        psi: dict[str, dict[str, float]] = {}
        try:
            with EventPoller(http) as poller:
                for segment, paths in zip(segments, files, strict=True):
                    before = monitor_state(http)["drift"]["observed"]
                    received = asyncio.run(send(url, paths, args.clients))
                    state = monitor_state(http)["drift"]
                    bounds.append((before, state["observed"]))
                    psi[segment.name] = {k: v["psi"] for k, v in state["signals"].items()}
                    print(f"[drift] {segment.name}: {len(paths)} clips, {received} answers, "
                          f"status {state['status']}, PSI at its end "
                          f"{json.dumps(psi[segment.name])}", flush=True)
            final = monitor_state(http)
        finally:
            server.terminate()
            server.wait(timeout=60)
        shutil.copy(log, args.out.with_suffix(".monitor.jsonl"))  # for offline replays
        events = sorted(poller.events.values(), key=lambda e: e["utterance"])
        rows = analyse(segments, bounds, events)
        days = simulated_days(args.profile, log, bounds[0][1], args.days, args.per_day,
                              settings)
    for row in rows:
        row["psi_at_end"] = psi[row["segment"]]
    report = {
        "segments": rows, "events": events, "simulated_days": days,
        "monitor_config": final["drift"]["config"],
        "profile": {"path": str(args.profile.relative_to(REPO)) if args.profile.is_relative_to(
            REPO) else str(args.profile), **final["drift"]["reference"]},
        "served": str(args.model) if args.model is not None else "home.yaml, zero-shot",
        "render_s": round(render_s, 1), "wall_s": round(time.monotonic() - started, 1),
        "command": "python benchmarks/drift.py " + " ".join(argv or sys.argv[1:]),
    }
    save_json(report, args.out)
    for row in rows:
        print(json.dumps(row))
    print(json.dumps({k: v for k, v in days.items() if k != "by_day"}))
    detected = all(r["detected"] and r["delay_answers"] <= args.per_shift
                   for r in rows if r["shift"])
    return 0 if detected and days["false_alarms_per_day"] <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
