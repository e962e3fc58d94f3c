"""End of speech to result, streaming, on this machine: the latency a user feels.

    python benchmarks/latency.py [--speech-model tiny.en] [--precision int8] [--chunk-ms 20]

Each barista-dev recording is fed to a :class:`~assistant.stream.RecognizerSession` in
``--chunk-ms`` chunks, as a client would stream it. The clock starts when the chunk that
lets the endpointer declare the end of speech is fed (the trailing-silence wait,
``min_silence_ms``, has then already passed and is reported separately) and stops when
that feed returns the result. Chunks are fed as fast as they are processed: the
wall-clock between chunks does not change what is computed, only when.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.audio import SAMPLE_RATE_HZ, read_audio  # noqa: E402
from assistant.evaluation import Label, command_accepted  # noqa: E402
from assistant.recognizer import Recognizer, RecognizerConfig  # noqa: E402
from assistant.stream import RecognizerSession, SpeechEnded, StreamConfig, UtteranceResult  # noqa: E402
from assistant.vad import SileroVad  # noqa: E402
from benchmarks.accuracy import percentiles  # noqa: E402
from benchmarks.datasets import DATA, barista_grammar, barista_labels  # noqa: E402
from benchmarks.machine import describe  # noqa: E402
from benchmarks.report import save_json  # noqa: E402


def stream_latency(recognizer: Recognizer, vad: SileroVad, labels: list[Label],
                   chunk_ms: int = 20, stream_config: StreamConfig | None = None
                   ) -> dict[str, Any]:
    """Stream each labelled recording through a session; see the module docs for the clock."""
    stream_config = stream_config or StreamConfig()
    chunk = SAMPLE_RATE_HZ * chunk_ms // 1000
    latencies: list[float] = []
    feed_ms: list[float] = []
    accepted = 0
    for label in labels:
        audio = read_audio(label.audio)
        session = RecognizerSession(recognizer, vad, stream_config)
        results = []
        for start in range(0, audio.size, chunk):
            t0 = time.perf_counter()
            events = session.feed(audio[start : start + chunk])
            elapsed = 1000 * (time.perf_counter() - t0)
            if any(isinstance(e, SpeechEnded) for e in events):
                latencies.append(elapsed)
            else:
                feed_ms.append(elapsed)
            results += [e.result for e in events if isinstance(e, UtteranceResult)]
        t0 = time.perf_counter()
        events = session.finalize()
        if any(isinstance(e, SpeechEnded) for e in events):  # speech ran to the file's end
            latencies.append(1000 * (time.perf_counter() - t0))
        results += [e.result for e in events if isinstance(e, UtteranceResult)]
        best = next((r for r in results if r.understood), results[0] if results else None)
        if best is not None and command_accepted(label, best.understood, best.intent,
                                                 best.slots):
            accepted += 1
    lat = np.array(latencies)
    return {
        "chunk_ms": chunk_ms,
        "utterances": len(labels),
        "results": int(lat.size),
        "end_of_speech_to_result_ms": {
            **percentiles(latencies), "samples": [round(float(x), 2) for x in lat],
        } if lat.size else {},
        "trailing_silence_ms": stream_config.endpoint.min_silence_ms,
        "other_chunks_ms": {"median": float(np.median(feed_ms)),
                            "p99": float(np.percentile(feed_ms, 99))} if feed_ms else {},
        "streamed_acceptance": accepted / len(labels) if labels else None,
    }


def measure(speech_model: str, precision: str, chunk_ms: int, data: Path,
            threads: int | None) -> dict[str, object]:
    config = RecognizerConfig(speech_model=speech_model, precision=precision, threads=threads)
    recognizer = Recognizer.from_context(barista_grammar(data), config)
    warm_s = recognizer.warm_up()
    report = stream_latency(recognizer, SileroVad(), barista_labels(data), chunk_ms)
    return {
        "speech_model": speech_model,
        "precision": precision,
        "threads": recognizer.model.threads,
        **report,
        "warm_up_s": round(warm_s, 2),
        "machine": describe(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speech-model", default="tiny.en")
    parser.add_argument("--precision", default="int8", choices=["int8", "fp32"])
    parser.add_argument("--chunk-ms", type=int, default=20)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not (args.data / "barista-dev" / "labels.jsonl").is_file():
        print(f"no evaluation data at {args.data}", file=sys.stderr)
        return 2
    report = measure(args.speech_model, args.precision, args.chunk_ms, args.data, args.threads)
    print(json.dumps(report, indent=2))
    if args.out:
        save_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
