"""Load test: N concurrent real-time clients against a real ``assistant serve`` subprocess.

    python benchmarks/load.py --clients 50 --out runs/load.json

Each client streams ``--files-per-client`` recordings of barista-dev (or espeak-ng speech
when the data is absent) at real-time speed in 100 ms frames, one session per file; clients
start at random offsets over the first ``--stagger-s`` seconds, like users who do not all
stop talking at the same instant. Reported: utterances sent, results, lost and failed ones,
end-of-speech-to-result percentiles (the server's own measure, carried in each result),
the server's CPU use (from /proc, its worker processes included), the sum of their peak
RSS (VmHWM; memory the workers share counts once per process), the sum of their PSS after
the run (shared memory split between its sharers: what the server really holds) and sampled
every 0.5 s during it (median and max), and how
fast ``/healthz`` answers meanwhile (a probe every 100 ms from its own thread, as a
Kubernetes liveness probe would: an event loop busy with audio answers late).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BARISTA = REPO.parent / "shared" / "data" / "barista-dev"
HOME = REPO / "assistant" / "contexts" / "home.yaml"
TTS_COMMANDS = ("turn off the bedroom lights", "set a timer for five minutes",
                "what's the weather like", "turn the volume up")


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _ticks()  # utime + stime


def peak_rss_mib(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def pss_mib(pid: int) -> float:
    """Proportional set size: private memory plus a share of what is shared with others (the
    workers' models, forked from one copy), so the processes' values add up to their total."""
    try:
        match = re.search(r"^Pss:\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text(),
                          re.MULTILINE)
    except OSError:
        return float("nan")
    return int(match.group(1)) / 1024 if match else float("nan")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server and its worker processes)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += parents.get(current, [])
    return tree


def tree_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += process_cpu_s(pid)
    return total


def audio_files(tmp: Path) -> tuple[list[Path], Path, str]:
    """Recordings to stream, the grammar they use, and where they came from."""
    if (BARISTA / "labels.jsonl").is_file():
        rows = [json.loads(line) for line in (BARISTA / "labels.jsonl").read_text().splitlines()]
        return [BARISTA / r["audio"] for r in rows], BARISTA / "coffee_maker.yaml", "barista-dev"
    import soundfile

    from training.tts import Voice, synthesize

    files = []
    for i, text in enumerate(TTS_COMMANDS):
        speech = synthesize(text, Voice("espeak", "en-us+m3"))
        pad = np.zeros(8000, np.float32)
        path = tmp / f"tts-{i}.wav"
        soundfile.write(path, np.concatenate([pad, speech, pad, pad]), 16000)
        files.append(path)
    return files, HOME, "espeak-ng TTS"


def quiet_file(tmp: Path, seconds: float) -> Path:
    """``seconds`` of white noise at -60 dBFS (a quiet room through a microphone)."""
    import soundfile

    rng = np.random.default_rng(0)
    path = tmp / "quiet.wav"
    soundfile.write(path, (0.001 * rng.standard_normal(int(16000 * seconds))).astype(np.float32),
                    16000)
    return path


def start_server(grammar: Path, clients: int, workers: int, kind: str,
                 model_dir: Path | None = None, extra: list[str] | None = None
                 ) -> tuple[subprocess.Popen[str], str]:
    """``assistant serve`` on a free port serving ``grammar`` (or the model directory
    ``model_dir``) as model ``bench``, with ``extra`` flags; returns the process and its
    ``ws://`` URL."""
    source = ["--model", f"bench={model_dir}"] if model_dir else ["--context", f"bench={grammar}"]
    command = [sys.executable, "-m", "assistant.cli", "serve", "--port", "0",
               *source, "--max-sessions", str(clients + 10),
               "--connections-per-min", "100000", "--workers", str(workers), "--worker-kind", kind,
               "--log-level", "WARNING", *(extra or [])]
    server = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    deadline = time.monotonic() + 300
    for line in server.stderr:
        match = re.search(r"listening on (ws://\S+?)/v1/stream", line)
        if match:
            # Keep reading the server's log so a chatty run cannot fill the pipe and stall it.
            threading.Thread(target=collections.deque, args=(server.stderr, 50),
                             daemon=True).start()
            return server, match.group(1)
        if time.monotonic() > deadline:
            break
    server.kill()
    raise RuntimeError("the server did not start")


async def client(url: str, files: list[Path], stagger_s: float, out: list[dict[str, Any]],
                 seed: int) -> None:
    from assistant import protocol as p
    from clients.sdk import AsyncClient, ClientError

    rng = random.Random(seed)
    await asyncio.sleep(rng.uniform(0, stagger_s))
    for path in files:
        row: dict[str, Any] = {"file": path.name, "results": [], "ended": 0, "error": None}
        ends_ms: dict[int, float] = {}
        try:
            async with AsyncClient(url, client_name="load") as session:
                sent_from = time.perf_counter()  # audio at t s goes out at sent_from + t
                async for event in session.stream_file(path, realtime=True):
                    if isinstance(event, p.SpeechEnded):
                        row["ended"] += 1
                        ends_ms[event.utterance_id] = event.end_ms
                    elif isinstance(event, p.Result):
                        arrived_ms = 1000 * (time.perf_counter() - sent_from)
                        end_ms = ends_ms.get(event.utterance_id)
                        row["results"].append({
                            "intent": event.intent, "understood": event.understood,
                            "eos_ms": event.timing.end_of_speech_to_result_ms,
                            # As the client sees it: from sending the audio where the
                            # utterance ended (its speech_ended end_ms, trailing padding
                            # included) to receiving the result; the endpointer's silence
                            # wait is part of it.
                            "client_ms": None if end_ms is None else arrived_ms - end_ms,
                            "processing_ms": event.timing.processing_ms})
        except ClientError as e:
            row["error"] = str(e)
        out.append(row)


async def run_clients(url: str, files: list[Path], clients: int, per_client: int,
                      stagger_s: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rng = random.Random(0)
    tasks = []
    for i in range(clients):
        chosen = [files[(i * per_client + k) % len(files)] for k in range(per_client)]
        rng.shuffle(chosen)
        tasks.append(client(url, chosen, stagger_s, rows, seed=i))
    await asyncio.gather(*tasks)
    return rows


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.array(values)
    return {f"p{q}": round(float(np.percentile(array, q)), 1) for q in (50, 95, 99)}


class _Periodic:
    """Calls ``sample()`` every ``interval_s`` from a thread while the ``with`` block runs."""

    def __init__(self, interval_s: float, name: str, join_timeout_s: float = 5.0):
        self.interval_s = interval_s
        self._join_timeout_s = join_timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._join_timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        raise NotImplementedError


class HealthProbe(_Periodic):
    """GET /healthz every ``interval_s`` from a thread; the latencies in ms (a timeout or
    error counts as ``timeout_s``)."""

    def __init__(self, url: str, interval_s: float = 0.1, timeout_s: float = 10.0):
        super().__init__(interval_s, "healthz-probe", timeout_s + 1)
        self.url = url.replace("ws://", "http://").replace("wss://", "https://") + "/healthz"
        self.timeout_s = timeout_s
        self.latencies_ms: list[float] = []
        self.failures = 0

    def sample(self) -> None:
        import urllib.request

        started = time.perf_counter()
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as r:
                r.read()
        except OSError:
            self.failures += 1
        self.latencies_ms.append(1000 * (time.perf_counter() - started))

    def summary(self) -> dict[str, Any]:
        values = np.array(self.latencies_ms)
        if not values.size:
            return {"probes": 0}
        return {"probes": int(values.size), "failures": self.failures,
                **{f"p{q}": round(float(np.percentile(values, q)), 1) for q in (50, 90, 99)},
                "max": round(float(values.max()), 1)}


class MemorySampler(_Periodic):
    """The server's total PSS every ``interval_s`` while the clients run, from a thread: what
    it holds under load, where the figure after the run shows what it keeps."""

    def __init__(self, pids: list[int], interval_s: float = 0.5):
        super().__init__(interval_s, "pss-sampler")
        self.pids = pids
        self.samples_mib: list[float] = []
        self.peak_mib: dict[int, float] = {}

    def sample(self) -> None:
        values = [pss_mib(pid) for pid in self.pids]
        self.samples_mib.append(sum(v for v in values if v == v))  # nan: a process gone
        for pid, value in zip(self.pids, values, strict=True):
            if value == value:
                self.peak_mib[pid] = max(value, self.peak_mib.get(pid, 0.0))

    def summary(self) -> dict[str, Any]:
        values = np.array(self.samples_mib)
        if not values.size:
            return {}
        return {"samples": int(values.size), "median": round(float(np.median(values)), 1),
                "max": round(float(values.max()), 1),
                "max_per_process": {str(pid): round(v, 1) for pid, v in self.peak_mib.items()}}


def measure(url: str, server_pid: int, files: list[Path], clients: int, per_client: int,
            stagger_s: float) -> dict[str, Any]:
    """Run ``clients`` real-time clients against a running server and summarize (module docs)."""
    pids = process_tree(server_pid)
    cpu0, wall0 = tree_cpu_s(pids), time.perf_counter()
    own0 = time.process_time()
    with HealthProbe(url) as probe, MemorySampler(pids) as memory:
        rows = asyncio.run(run_clients(url, files, clients, per_client, stagger_s))
    wall = time.perf_counter() - wall0
    cpu = tree_cpu_s(pids) - cpu0
    own = time.process_time() - own0
    rss = {str(pid): round(peak_rss_mib(pid), 1) for pid in pids if Path(f"/proc/{pid}").exists()}
    pss = {str(pid): round(pss_mib(pid), 1) for pid in pids if Path(f"/proc/{pid}").exists()}
    latencies = np.array([r["eos_ms"] for row in rows for r in row["results"]])
    failed = [row for row in rows if row["error"]]
    lost = sum(max(0, row["ended"] - len(row["results"])) for row in rows)
    no_result = sum(1 for row in rows if not row["error"] and not row["results"])
    return {
        "clients": clients, "files_per_client": per_client,
        "sessions": len(rows), "utterances_ended": sum(
            row["ended"] for row in rows), "results": int(latencies.size),
        "failed_sessions": len(failed), "lost_utterances": lost,
        "sessions_without_result": no_result,
        "understood": sum(r["understood"] for row in rows for r in row["results"]),
        "end_of_speech_to_result_ms": {
            f"p{q}": round(float(np.percentile(latencies, q)), 1) for q in (50, 95, 99)
        } | {"max": round(float(latencies.max()), 1), "mean": round(float(latencies.mean()), 1),
             "samples": [round(float(x), 1) for x in latencies]}
        if latencies.size else {},
        "client_end_to_result_ms": _percentiles(
            [r["client_ms"] for row in rows for r in row["results"]
             if r["client_ms"] is not None]),
        "processing_ms_mean": round(float(np.mean([r["processing_ms"] for row in rows
                                                   for r in row["results"]])), 1)
        if latencies.size else None,
        "wall_s": round(wall, 1), "server_cpu_s": round(cpu, 1),
        "server_cpu_cores": round(cpu / wall, 2), "client_cpu_cores": round(own / wall, 2),
        "server_peak_rss_mib": round(sum(rss.values()), 1),
        "server_peak_rss_mib_per_process": rss, "server_processes": len(pids),
        # After the run: peak RSS counts memory shared between processes once per process.
        "server_pss_mib": round(sum(pss.values()), 1), "server_pss_mib_per_process": pss,
        "server_pss_mib_during_run": memory.summary(),
        "cores": os.cpu_count(), "errors": [row["error"] for row in failed][:5],
        "healthz_ms": probe.summary(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--files-per-client", type=int, default=2)
    parser.add_argument("--stagger-s", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-kind", choices=["process", "thread"], default="process")
    parser.add_argument("--quiet-s", type=float, default=0.0,
                        help="instead of commands, stream this many seconds of quiet room "
                             "noise (-60 dBFS) per session: what streams cost while nobody "
                             "speaks")
    parser.add_argument("--serve-args", default="",
                        help="more flags for assistant serve, e.g. '--device cuda "
                             "--batch-utterances 64'")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    args = parser.parse_args(argv)
    from benchmarks.report import save_json

    sys.path.insert(0, str(REPO))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if args.quiet_s > 0:
            files, grammar, source = [quiet_file(Path(tmp), args.quiet_s)], HOME, "quiet noise"
        else:
            files, grammar, source = audio_files(Path(tmp))
        server, url = start_server(grammar, args.clients, args.workers, args.worker_kind,
                                   extra=shlex.split(args.serve_args))
        try:
            report = measure(url, server.pid, files, args.clients, args.files_per_client,
                             args.stagger_s)
        finally:
            server.terminate()
            server.wait(timeout=60)
    report |= {"audio_source": source, "workers": args.workers,
               "worker_kind": args.worker_kind, "serve_args": args.serve_args}
    save_json(report, args.out)
    latency = {k: v for k, v in report["end_of_speech_to_result_ms"].items() if k != "samples"}
    print(json.dumps({**report, "end_of_speech_to_result_ms": latency}, indent=2))
    ok = not (report["failed_sessions"] or report["lost_utterances"]
              or (report["sessions_without_result"] and not args.quiet_s))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
