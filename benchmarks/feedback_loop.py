"""The feedback loop end to end: serve v1, capture its mistakes, correct them, train v2 on
them, gate it, promote it into the running server, roll back.

    python benchmarks/feedback_loop.py --out runs/feedback_loop.json [--size default]

Synthesized speech only (the home grammar; voices held out from training; clips from
``benchmarks/drift.py``'s cache, rendered on first use):

1. **v1** is the home grammar zero-shot (tiny.en INT8), exported as a model directory, added
   to a registry and promoted; ``assistant serve --model bench=REGISTRY/home/current
   --capture-dir CAPTURE`` serves it.
2. **Traffic** with a slice it does badly on: telephone-band audio (300-3400 Hz, 8 kHz
   mu-law; never in training), beside training-like audio. Every clip is its own WebSocket
   session. Capture keeps what was not understood.
3. **Scripted review**: for each answer that was wrong (a command not understood or
   misunderstood, speech that was no command taken as one), ``POST /v1/feedback`` with the
   truth, as an app or a reviewer would; corrections of answers not kept otherwise keep them.
4. ``assistant capture export`` -> a labelled set; ``assistant train --recordings`` -> **v2**.
5. **Shadow evaluation**: v1 and v2 on held-out clips of both conditions (other sentences,
   voices and seeds than the traffic): acceptance per condition and overall; then
   ``assistant models promote --gate-data`` (refused if v2 is worse overall or on an intent).
6. **Promotion** switches the running server (``/v1/models`` names v2's directory; that a
   session open across a switch goes on is tested in tests/test_model_registry.py);
   **rollback** restores v1.

Reports acceptance per condition for v1 and v2 and the time of every step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.drift import HOME, Segment, render_segment, segment_clips  # noqa: E402

TRAFFIC = {"training-like": Segment("traffic clean", "in", 600, 101),
           "telephone": Segment("traffic telephone", "telephone", 200, 123)}
HELD_OUT = {"training-like": Segment("held-out clean", "in", 800, 1),
            "telephone": Segment("held-out telephone", "telephone", 200, 23)}


def labelled_files(segment: Segment, cache: Path, limit: int) -> list[tuple[Path, Any]]:
    """(file, label) of the segment's clips: label = (intent, slots) or None (no command)."""
    from assistant.grammar import load_context, parse

    context = load_context(HOME)
    clips = segment_clips(segment)
    out = []
    for path in render_segment(segment, cache)[:limit]:
        clip = clips[int(path.name[:4])]
        annotation = parse(context, clip.text) if clip.kind == "command" else None
        out.append((path, None if annotation is None else
                    (annotation.intent, dict(annotation.to_json()["slots"]))))
    return out


def right(label: Any, understood: bool, intent: str | None, slots: dict[str, Any]) -> bool:
    from assistant.evaluation import Label, command_accepted

    if label is None:
        return command_accepted(Label(Path(), None, {}), understood, intent, slots)
    return command_accepted(Label(Path(), label[0], label[1]), understood, intent, slots)


def write_labels(rows: list[tuple[Path, Any]], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "labels.jsonl").open("w") as out:
        for path, label in rows:
            out.write(json.dumps({"audio": str(path), "intent": None if label is None
                                  else label[0], "slots": {} if label is None else label[1]})
                      + "\n")
    return folder


async def serve_traffic(url: str, http: str, rows: list[tuple[Path, Any]], clients: int
                        ) -> dict[str, Any]:
    """Each clip its own session; wrong answers get feedback with the truth."""
    from clients.sdk import AsyncClient

    queue = list(rows)
    tally = {"answers": 0, "right": 0, "feedback": 0, "stored": 0}

    async def one() -> None:
        while queue:
            path, label = queue.pop(0)
            async with AsyncClient(url, client_name="loop") as session:
                results = await session.recognize_file(path, realtime=False)
                session_id = session.ready.session_id if session.ready else ""
            for r in results:
                tally["answers"] += 1
                slots = {k: v for k, v in (r.slots or {}).items()}
                if right(label, r.understood, r.intent, slots):
                    tally["right"] += 1
                    continue
                body = {"session_id": session_id, "utterance_id": r.utterance_id,
                        "correct": False, "intent": None if label is None else label[0],
                        "slots": {} if label is None else label[1]}
                answer = await asyncio.to_thread(_post, f"{http}/v1/feedback", body)
                tally["feedback"] += 1
                tally["stored"] += bool(answer.get("stored"))

    await asyncio.gather(*(one() for _ in range(clients)))
    return tally


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def acceptance(model_dir: Path, sets: dict[str, list[tuple[Path, Any]]]) -> dict[str, float]:
    """Acceptance per set and over all of them (each clip recognized once)."""
    from assistant.model_registry import answers_of

    recognize = answers_of(model_dir)
    right_by_set = {k: [right(label, *recognize(path)) for path, label in rows]
                    for k, rows in sets.items()}
    everything = [ok for oks in right_by_set.values() for ok in oks]
    return {**{k: round(sum(oks) / len(oks), 4) for k, oks in right_by_set.items()},
            "overall": round(sum(everything) / len(everything), 4)}


def wait_for(condition: Any, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the server never got there")


def assistant(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", *args], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"assistant {' '.join(args)} failed: {proc.stderr[-3000:]}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "drift-clips")
    parser.add_argument("--work", type=Path, help="keep the registry, capture and models here")
    parser.add_argument("--clean", type=int, default=200, help="training-like clips, each set")
    parser.add_argument("--telephone", type=int, default=200, help="telephone clips, each set")
    parser.add_argument("--size", default="default", help="assistant train --size")
    parser.add_argument("--epochs", default="3")
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args(argv)
    from assistant import model_registry as registry
    from benchmarks.load import start_server
    from benchmarks.report import save_json

    times: dict[str, float] = {}
    report: dict[str, Any] = {"times_s": times}

    def step(name: str, started: float) -> None:
        times[name] = round(time.monotonic() - started, 1)
        print(f"[loop] {name}: {times[name]} s", flush=True)

    limits = {"training-like": args.clean, "telephone": args.telephone}
    t = time.monotonic()
    traffic = {k: labelled_files(s, args.cache, limits[k]) for k, s in TRAFFIC.items()}
    held_out = {k: labelled_files(s, args.cache, limits[k]) for k, s in HELD_OUT.items()}
    step("render clips", t)
    work = args.work or Path(tempfile.mkdtemp(prefix="feedback-loop-"))
    if work.exists() and args.work:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    reg, capture = work / "registry", work / "capture"

    t = time.monotonic()
    assistant("export", "--context", str(HOME), "--out", str(work / "v1"))
    registry.add(reg, "home", work / "v1", move=True)
    registry.promote(reg, "home", "v1")
    step("v1: export, add, promote", t)

    t = time.monotonic()
    server, url = start_server(HOME, args.clients, 2, "process",
                               model_dir=reg / "home" / "current",
                               extra=["--capture-dir", str(capture), "--model-watch-s", "1"])
    http = url.replace("ws://", "http://")
    try:
        wait_for(lambda: urllib.request.urlopen(f"{http}/readyz", timeout=5).status == 200)
        step("server ready", t)
        t = time.monotonic()
        served = {k: asyncio.run(serve_traffic(url, http, rows, args.clients))
                  for k, rows in traffic.items()}
        report["traffic"] = served
        report["capture"] = _get(f"{http}/v1/capture")["stats"]
        step("traffic, capture and scripted feedback", t)

        t = time.monotonic()
        assistant("capture", "export", "--dir", str(capture), "--out", str(work / "labelled"))
        exported = sum(1 for _ in (work / "labelled" / "labels.jsonl").open())
        report["exported"] = exported
        step("export the labelled set", t)

        t = time.monotonic()
        assistant("train", str(HOME), "--out", str(work / "v2"), "--recordings",
                  str(work / "labelled"), "--size", args.size, "--epochs", args.epochs)
        step("train v2 (assistant train --recordings)", t)
        registry.add(reg, "home", work / "v2", parent="v1")

        t = time.monotonic()
        report["held_out_acceptance"] = {
            version: acceptance(reg / "home" / version, held_out) for version in ("v1", "v2")}
        step("shadow evaluation on held-out clips (v1 and v2)", t)

        t = time.monotonic()
        gate_set = write_labels([r for rows in held_out.values() for r in rows],
                                work / "gate")
        proc = subprocess.run([sys.executable, "-m", "assistant.cli", "models", "promote",
                               "home", "v2", "--registry", str(reg), "--gate-data",
                               str(gate_set)], cwd=REPO, capture_output=True, text=True)
        report["gate"] = {"returncode": proc.returncode,
                          "refused": "worse than the promoted version" in proc.stderr,
                          "report": json.loads(proc.stdout.split("\n{\"at\"")[0])["gate"]
                          if proc.stdout.strip() else None}
        step("gate and promote", t)
        if proc.returncode == 0:
            t = time.monotonic()
            wait_for(lambda: _get(f"{http}/v1/models")["models"][0]["resolved_path"]
                     == str((reg / "home" / "v2").resolve()))
            step("the running server serves v2", t)
            t = time.monotonic()
            registry.rollback(reg, "home")
            wait_for(lambda: _get(f"{http}/v1/models")["models"][0]["resolved_path"]
                     == str((reg / "home" / "v1").resolve()))
            step("rollback: the running server serves v1", t)
        report["registry"] = registry.listing(reg, "home")["home"]["history"]
    finally:
        server.terminate()
        server.wait(timeout=60)
    report["work"] = str(work)
    report["command"] = "python benchmarks/feedback_loop.py " + " ".join(argv or sys.argv[1:])
    save_json(report, args.out)
    print(json.dumps({k: report[k] for k in ("traffic", "exported", "held_out_acceptance",
                                             "times_s")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
