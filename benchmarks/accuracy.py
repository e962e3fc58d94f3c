"""Zero-shot accuracy on real speech: command acceptance and rejection, with the real VAD.

    python benchmarks/accuracy.py [--speech-model tiny.en] [--precision int8] [--out FILE.json]

* **Acceptance** on ``../shared/data/barista-dev`` (100 real recordings, the Picovoice
  benchmark's coffee grammar): intent and every labelled slot exactly right.
* **Rejection**, with the same grammar and the same threshold: the 300 real spoken digits of
  ``../shared/data/digits-dev`` and the out-of-grammar sentences in
  ``benchmarks/data/out_of_grammar_barista.txt`` synthesized with four TTS voices; an
  utterance is rejected when it comes back ``understood: false``.
* Latency of ``recognize`` per utterance (after the VAD cut), on this machine.

Nothing here tunes anything: the threshold and calibration come with the package
(fitted on synthesized speech of other grammars, see ``training/calibrate.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.audio import read_audio  # noqa: E402
from assistant.evaluation import Label, command_accepted  # noqa: E402
from assistant.recognizer import Recognizer, RecognizerConfig, Result  # noqa: E402
from assistant.recording import recognize_recording  # noqa: E402
from assistant.vad import SileroVad  # noqa: E402
from benchmarks.datasets import (  # noqa: E402
    DATA,
    barista_grammar,
    barista_labels,
    digits_labels,
    synthesized_oog,
)
from benchmarks.machine import describe  # noqa: E402
from benchmarks.report import save_json  # noqa: E402


class Engine(Protocol):
    """Anything that recognizes one VAD-cut utterance: our :class:`Recognizer` or a baseline."""

    def recognize(self, audio: np.ndarray) -> Result: ...


def percentiles(values: list[float]) -> dict[str, float]:
    """Median, p95, p99, mean and max of latencies (ms), and how many there were."""
    if not values:
        return {}
    array = np.array(values)
    return {"median": float(np.median(array)), "p95": float(np.percentile(array, 95)),
            "p99": float(np.percentile(array, 99)), "mean": float(array.mean()),
            "max": float(array.max()), "n": len(values)}


def recognize(engine: Engine, vad: SileroVad, audio: np.ndarray) -> tuple[Result, float]:
    """The engine's result on a whole recording (cut with the VAD) and its time after the cut."""
    result = recognize_recording(engine, vad, audio)  # type: ignore[arg-type]
    return result, result.timing_ms["total"] - result.timing_ms.get("vad", 0.0)


def acceptance(engine: Engine, vad: SileroVad, labels: list[Label],
               verbose: bool = False) -> dict[str, Any]:
    """Command acceptance on labelled recordings, with the misses and per-utterance times."""
    accepted = 0
    misses = []
    latencies: list[float] = []
    for label in labels:
        result, elapsed_ms = recognize(engine, vad, read_audio(label.audio))
        latencies.append(elapsed_ms)
        ok = command_accepted(label, result.understood, result.intent, result.slots)
        accepted += ok
        if not ok:
            misses.append({"file": label.audio.name, "expected": label.slots,
                           "got": result.to_dict()})
            if verbose:
                print("MISS", label.audio.name, label.slots, result.transcript,
                      round(result.confidence, 3))
    return {"accepted": accepted, "total": len(labels),
            "rate": accepted / len(labels) if labels else None, "misses": misses,
            "recognize_ms": percentiles(latencies)}


def rejection(engine: Engine, vad: SileroVad, clips: list[tuple[str, np.ndarray]],
              key: str = "file", verbose: bool = False) -> dict[str, Any]:
    """The share of ``(name, audio)`` clips outside the grammar that come back not understood."""
    rejected = 0
    false_accepts = []
    latencies: list[float] = []
    for name, audio in clips:
        result, elapsed_ms = recognize(engine, vad, audio)
        latencies.append(elapsed_ms)
        rejected += not result.understood
        if result.understood:
            false_accepts.append({key: name, "got": result.to_dict()})
            if verbose:
                print("FALSE ACCEPT", name, "->", result.transcript, round(result.confidence, 3))
    return {"rejected": rejected, "total": len(clips),
            "rate": rejected / len(clips) if clips else None, "false_accepts": false_accepts,
            "recognize_ms": percentiles(latencies)}


def digit_clips(data: Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    return [(label.audio.name, read_audio(label.audio)) for label in digits_labels(data, limit)]


def evaluate(speech_model: str, precision: str, data: Path, verbose: bool) -> dict[str, object]:
    config = RecognizerConfig(speech_model=speech_model, precision=precision)
    recognizer = Recognizer.from_context(barista_grammar(data), config, progress=print)
    vad = SileroVad()
    report: dict[str, object] = {"speech_model": speech_model, "precision": precision}
    accepted = acceptance(recognizer, vad, barista_labels(data), verbose)
    report["barista_acceptance"] = accepted
    report["digits_rejection"] = rejection(recognizer, vad, digit_clips(data), verbose=verbose)
    report["out_of_grammar_rejection"] = rejection(recognizer, vad, synthesized_oog(),
                                                   key="sentence", verbose=verbose)
    report["recognize_ms"] = accepted["recognize_ms"]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speech-model", default="tiny.en")
    parser.add_argument("--precision", default="int8", choices=["int8", "fp32"])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not (args.data / "barista-dev" / "labels.jsonl").is_file():
        print(f"no evaluation data at {args.data}", file=sys.stderr)
        return 2
    started = time.monotonic()
    report = evaluate(args.speech_model, args.precision, args.data, args.verbose)
    report["machine"] = describe()
    report["wall_s"] = round(time.monotonic() - started, 1)
    summary = {k: (v["rate"] if isinstance(v, dict) and "rate" in v else v)
               for k, v in report.items() if k != "machine"}
    print(json.dumps(summary, indent=2))
    if args.out:
        save_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
