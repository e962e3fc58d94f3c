"""What monitoring costs: CPU and latency, before (``--no-monitor``) and after.

    python benchmarks/monitoring_cost.py --out runs/monitoring_cost.json

Two measures:

* **per answer**, in process: the work monitoring adds to each answer, timed over many
  calls on real answers (the home grammar's recognizer on espeak-ng commands, its shipped
  profile): the SNR estimate and the encoder pooling in the recognizer, carrying the pooled
  state back from a worker process (pickling), and the result sink (quality metrics, the
  drift monitor, the timeline). All of it but the first runs on the event loop between a
  result and its message, so it adds to latency one for one; set against the server's CPU
  per answer it is the CPU share.
* **under load**: ``benchmarks/load.py``'s 50 real-time clients against a real server with
  monitoring off and on, alternated (off, on, off, on), reporting the server's CPU seconds
  per answer and the end-of-speech-to-result percentiles of each run.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HOME = REPO / "assistant" / "contexts" / "home.yaml"
COMMANDS = ("turn off the bedroom lights", "set a timer for five minutes",
            "what's the weather like", "turn the volume up", "play some jazz in the kitchen",
            "lock the front door")


def per_answer(repeats: int) -> dict[str, Any]:
    from assistant.grammar import load_context
    from assistant.levels import snr_estimate_db
    from assistant.profile import find_profile
    from assistant.recognizer import Recognizer, pooled_states
    from assistant.segmenter import EndReason
    from assistant.utterance import Completed, Utterance
    from serving.metrics import Metrics
    from serving.quality import QualitySink
    from training.tts import Voice, synthesize

    recognizer = Recognizer.from_context(HOME)
    recognizer.warm_up()
    profile = find_profile(HOME, "context", "tiny.en", "int8", load_context(HOME).sha256)
    assert profile is not None, "no shipped profile for home.yaml"
    clips = [synthesize(text, Voice("espeak", "en-us+m3")) for text in COMMANDS]
    clips = [np.concatenate([np.zeros(4000, np.float32), c, np.zeros(8000, np.float32)])
             for c in clips]
    results = [recognizer.recognize(c) for c in clips]
    recognize_ms = []
    for clip in clips:
        started = time.perf_counter()
        recognizer.recognize(clip)
        recognize_ms.append(1000 * (time.perf_counter() - started))
    hidden = recognizer.model.encode(np.zeros((80, 3000), np.float32)).hidden

    def timed(function: Any, n: int) -> float:
        started = time.perf_counter()
        for i in range(n):
            function(i)
        return 1e6 * (time.perf_counter() - started) / n  # microseconds per call

    snr_us = timed(lambda i: snr_estimate_db(clips[i % len(clips)]), repeats)
    pool_us = timed(lambda i: pooled_states(hidden, clips[i % len(clips)].size), repeats)
    plain = [r.__class__(**{**r.__dict__, "embedding": None}) for r in results]
    pickle_with_us = timed(lambda i: pickle.loads(pickle.dumps(results[i % len(results)])),
                           repeats)
    pickle_without_us = timed(lambda i: pickle.loads(pickle.dumps(plain[i % len(plain)])),
                              repeats)
    sinks: dict[str, QualitySink] = {}
    for monitor in (False, True):
        from assistant.monitor import MonitorConfig

        sinks["on" if monitor else "off"] = QualitySink(
            Metrics(), lambda name: profile, MonitorConfig(monitor=monitor))
    completed = [Completed(Utterance(i, clips[i % len(clips)], ended=EndReason.SILENCE),
                           results[i % len(results)], model="home", stream_id="s",
                           latency_ms=100.0) for i in range(64)]
    sink_us = {state: timed(lambda i, s=sink: s.on_result(completed[i % 64]), repeats)
               for state, sink in sinks.items()}
    metrics = sinks["on"].metrics
    render_ms = timed(lambda i: metrics.render(), 200) / 1000
    added_us = (snr_us + pool_us + (pickle_with_us - pickle_without_us)
                + sink_us["on"] - sink_us["off"])
    return {
        "recognize_ms_median": round(float(np.median(recognize_ms)), 2),
        "snr_estimate_us": round(snr_us, 1), "encoder_pooling_us": round(pool_us, 1),
        "pickle_result_us": {"with_embedding": round(pickle_with_us, 1),
                             "without": round(pickle_without_us, 1)},
        "sink_us": {k: round(v, 1) for k, v in sink_us.items()},
        "metrics_render_ms": round(render_ms, 3),
        "added_per_answer_us": round(added_us, 1),
        "added_share_of_recognition": round(added_us / 1000 / float(np.median(recognize_ms)), 5),
    }


def under_load(clients: int, rounds: int) -> list[dict[str, Any]]:
    from benchmarks.load import audio_files, measure, start_server

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        files, grammar, _source = audio_files(Path(tmp))
        for i in range(2 * rounds):
            monitor = i % 2 == 1
            server, url = start_server(grammar, clients, 2, "process",
                                       extra=[] if monitor else ["--no-monitor"])
            try:
                report = measure(url, server.pid, files, clients, 2, 8.0)
            finally:
                server.terminate()
                server.wait(timeout=60)
            latency = report["end_of_speech_to_result_ms"]
            runs.append({"monitor": monitor, "results": report["results"],
                         "lost": report["lost_utterances"],
                         "server_cpu_s": report["server_cpu_s"],
                         "server_cpu_s_per_answer": round(report["server_cpu_s"]
                                                          / max(1, report["results"]), 4),
                         "p50_ms": latency.get("p50"), "p95_ms": latency.get("p95"),
                         "p99_ms": latency.get("p99")})
            print(json.dumps(runs[-1]), flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs under load")
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args(argv)
    from benchmarks.report import save_json

    report: dict[str, Any] = {"per_answer": per_answer(args.repeats)}
    print(json.dumps(report["per_answer"], indent=1), flush=True)
    if not args.skip_load:
        runs = under_load(args.clients, args.rounds)
        off = [r for r in runs if not r["monitor"]]
        on = [r for r in runs if r["monitor"]]

        def mean(rows: list[dict[str, Any]], key: str) -> float:
            return float(np.mean([r[key] for r in rows]))

        report["under_load"] = {
            "clients": args.clients, "runs": runs,
            "cpu_s_per_answer": {"off": round(mean(off, "server_cpu_s_per_answer"), 4),
                                 "on": round(mean(on, "server_cpu_s_per_answer"), 4)},
            "p95_ms": {"off": round(mean(off, "p95_ms"), 1), "on": round(mean(on, "p95_ms"), 1)},
        }
        print(json.dumps({k: v for k, v in report["under_load"].items() if k != "runs"}))
    report["command"] = "python benchmarks/monitoring_cost.py " + " ".join(argv or sys.argv[1:])
    save_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
