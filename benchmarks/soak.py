"""Soak: real-time clients for minutes with abusive ones mixed in; does anything leak or get lost?

    python benchmarks/soak.py --clients 50 --duration-s 600 --out runs/soak.json

A real ``assistant serve`` (2 worker processes, an API key) gets ``--clients`` concurrent
clients for ``--duration-s``. Each client loops: most of the time it streams a recording at
real-time speed and checks that every utterance the server ended got its result; now and then
(``--abuse-share``) it misbehaves instead, picked at random: garbage JSON, an oversized frame,
a wrong key, odd-length audio, a disconnect mid-utterance, a burst of connect/close, cancel
storms, or going idle past the idle timeout. Every ``--sample-s`` the server's resident memory
(all its processes), open file descriptors, event-loop tasks and open sessions are sampled.

Reported: utterances ended / answered / lost, sessions per kind, the samples, the mean RSS,
fds, tasks and sessions over the first and the last quarter of the run while every client is
at work (a leak grows; a healthy server stays flat once warm), and the same gauges before the
clients came and after the last one left. Exit code 1 if anything was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.load import audio_files, process_tree, start_server  # noqa: E402

KEY = "soak-key"
ABUSES = ("garbage_json", "oversized_frame", "wrong_key", "odd_audio", "drop_mid_utterance",
          "connect_burst", "cancel_storm", "idle")


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def fd_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def scrape(http: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{http}/metrics", timeout=10) as r:
        text = r.read().decode()
    wanted = ("assistant_event_loop_tasks", "assistant_active_sessions",
              "assistant_inference_queue_depth")
    return {name: float(line.split()[-1]) for line in text.splitlines()
            for name in wanted if line.startswith(name + " ")}


async def sampler(server_pid: int, http: str, every_s: float, out: list[dict[str, Any]],
                  stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        pids = [p for p in process_tree(server_pid) if Path(f"/proc/{p}").exists()]
        try:
            gauges = await asyncio.to_thread(scrape, http)
        except OSError:
            gauges = {}
        out.append({"t_s": round(time.monotonic() - started, 1),
                    "rss_mib": round(sum(rss_mib(p) for p in pids), 1),
                    "fds": sum(fd_count(p) for p in pids), "processes": len(pids),
                    **{k.removeprefix("assistant_"): v for k, v in gauges.items()}})
        with contextlib.suppress(TimeoutError):  # the timeout is the normal case
            await asyncio.wait_for(stop.wait(), every_s)


async def honest(url: str, path: Path, tally: Counter[str]) -> None:
    from assistant import protocol as p
    from clients.sdk import AsyncClient, ClientError

    ended: set[int] = set()
    answered: set[int] = set()
    try:
        async with AsyncClient(url, api_key=KEY, client_name="soak") as session:
            async for event in session.stream_file(path, realtime=True):
                if isinstance(event, p.SpeechEnded):
                    ended.add(event.utterance_id)
                elif isinstance(event, p.Result):
                    answered.add(event.utterance_id)
    except ClientError as e:
        tally["honest_failed"] += 1
        tally[f"error: {str(e)[:60]}"] += 1
        return
    tally["honest_sessions"] += 1
    tally["utterances_ended"] += len(ended)
    tally["utterances_answered"] += len(ended & answered)
    tally["utterances_lost"] += len(ended - answered)


async def abuse(url: str, kind: str, pcm: bytes, rng: random.Random, tally: Counter[str]) -> None:
    import websockets
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    headers = {"Authorization": f"Bearer {'nope' if kind == 'wrong_key' else KEY}"}
    tally[f"abuse_{kind}"] += 1
    try:
        if kind == "connect_burst":
            for _ in range(10):
                async with websockets.connect(url, additional_headers=headers):
                    pass
            return
        async with websockets.connect(url, additional_headers=headers, max_size=2**22) as ws:
            await ws.send(json.dumps({"type": "start", "client": f"soak-{kind}"}))
            if kind == "garbage_json":
                for frame in ("{", "[" * 20000, '{"type": "start", "model": ""}',
                              '{"type": ' + "9" * 5000 + "}"):
                    await ws.send(frame)
            elif kind == "oversized_frame":
                await ws.send(b"\0" * rng.choice([70000, 300000]))
            elif kind == "odd_audio":
                await ws.send(b"\0" * 321)
            elif kind == "drop_mid_utterance":
                cut = 2 * rng.randrange(len(pcm) // 4, len(pcm) // 2)
                for i in range(0, cut, 3200):
                    await ws.send(pcm[i : i + 3200])
                    await asyncio.sleep(0.1)
                return  # gone without stop
            elif kind == "cancel_storm":
                for _ in range(50):
                    await ws.send('{"type": "cancel"}')
            elif kind == "idle":
                await asyncio.sleep(rng.uniform(5, 15))  # the server's idle timeout is 5 s
            async for _ in ws:
                pass
    except (ConnectionClosed, InvalidStatus, OSError):
        pass


async def client(url: str, files: list[Path], pcm: bytes, deadline: float, share: float,
                 seed: int, tally: Counter[str]) -> None:
    rng = random.Random(seed)
    await asyncio.sleep(rng.uniform(0, 5))
    while time.monotonic() < deadline:
        if rng.random() < share:
            await abuse(url, rng.choice(ABUSES), pcm, rng, tally)
        else:
            await honest(url, rng.choice(files), tally)


def _quarters(samples: list[dict[str, Any]], key: str) -> tuple[float, float]:
    values = [s[key] for s in samples if key in s]
    if len(values) < 4:
        return (values[0], values[-1]) if values else (0.0, 0.0)
    q = len(values) // 4
    return (round(sum(values[:q]) / q, 1), round(sum(values[-q:]) / q, 1))


async def soak(url: str, server_pid: int, files: list[Path], args: argparse.Namespace
               ) -> dict[str, Any]:
    from assistant.audio import float_to_pcm16le, read_audio

    pcm = float_to_pcm16le(read_audio(files[0]))
    tally: Counter[str] = Counter()
    samples: list[dict[str, Any]] = []
    stop = asyncio.Event()
    http = url.replace("ws://", "http://")
    sampling = asyncio.create_task(sampler(server_pid, http, args.sample_s, samples, stop))
    deadline = time.monotonic() + args.duration_s
    await asyncio.gather(*(client(url + "/v1/stream", files, pcm, deadline, args.abuse_share,
                                  i, tally) for i in range(args.clients)))
    await asyncio.sleep(args.sample_s)  # one sample after the last client left
    stop.set()
    await sampling
    steady = [x for x in samples if x["t_s"] <= args.duration_s]  # all clients at work
    keys = ("rss_mib", "fds", "event_loop_tasks", "active_sessions")
    return {"tally": dict(sorted(tally.items())), "samples": samples,
            "first_vs_last_quarter": {k: _quarters(steady, k) for k in keys},
            "after_clients_left": {k: samples[-1].get(k) for k in keys} if samples else {},
            "before_clients": {k: samples[0].get(k) for k in keys} if samples else {}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--abuse-share", type=float, default=0.2)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    args = parser.parse_args(argv)
    from benchmarks.machine import describe
    from benchmarks.report import save_json

    with tempfile.TemporaryDirectory() as tmp:
        files, grammar, source = audio_files(Path(tmp))
        # Every client comes from 127.0.0.1: the wrong-key abuse must not lock the honest
        # ones out (auth_failures_per_min is per address; its own test covers it).
        server, url = start_server(grammar, args.clients, 2, "process", extra=[
            "--api-keys", KEY, "--idle-timeout-s", "5", "--auth-failures-per-min", "100000"])
        try:
            started = time.monotonic()
            report = asyncio.run(soak(url, server.pid, files, args))
            report["wall_s"] = round(time.monotonic() - started, 1)
        finally:
            server.terminate()
            server.wait(timeout=60)
    report |= {"clients": args.clients, "duration_s": args.duration_s,
               "abuse_share": args.abuse_share, "audio_source": source, "machine": describe()}
    save_json(report, args.out)
    print(json.dumps({k: v for k, v in report.items() if k not in ("samples", "machine")},
                     indent=2))
    tally = report["tally"]
    return 1 if tally.get("utterances_lost", 0) or tally.get("honest_failed", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
