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
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.audio import read_audio  # noqa: E402
from assistant.evaluation import Label, command_accepted, read_labels  # noqa: E402
from assistant.recognizer import Recognizer, RecognizerConfig  # noqa: E402
from assistant.recording import recognize_recording  # noqa: E402
from assistant.vad import SileroVad  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
OOG_VOICES = ("espeak:en-us+m3", "espeak:en-gb+f1", "flite:slt", "festival:kal")


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    array = np.array(values)
    return {"median": float(np.median(array)), "p95": float(np.percentile(array, 95)),
            "max": float(array.max()), "n": len(values)}


def _synthesized_oog(text_file: Path) -> list[tuple[str, np.ndarray]]:
    from training.tts import Voice, engine_available, synthesize

    sentences = [line.strip() for line in text_file.read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    clips = []
    for i, sentence in enumerate(sentences):
        engine, name = OOG_VOICES[i % len(OOG_VOICES)].split(":")
        if not engine_available(engine):
            continue
        audio = synthesize(sentence, Voice(engine, name))
        pad = np.zeros(8000, np.float32)
        clips.append((sentence, np.concatenate([pad, audio, pad])))
    return clips


def evaluate(speech_model: str, precision: str, data: Path, verbose: bool) -> dict[str, object]:
    config = RecognizerConfig(speech_model=speech_model, precision=precision)
    grammar = data / "barista-dev" / "coffee_maker.yaml"
    recognizer = Recognizer.from_context(grammar, config, progress=print)
    vad = SileroVad()
    report: dict[str, object] = {"speech_model": speech_model, "precision": precision}
    latencies: list[float] = []
    accepted = 0
    labels = read_labels(data / "barista-dev" / "labels.jsonl")
    misses = []
    for label in labels:
        result = recognize_recording(recognizer, vad, read_audio(label.audio))
        latencies.append(result.timing_ms["total"] - result.timing_ms.get("vad", 0.0))
        ok = command_accepted(label, result.understood, result.intent, result.slots)
        accepted += ok
        if not ok:
            misses.append({"file": label.audio.name, "expected": label.slots,
                           "got": result.to_dict()})
            if verbose:
                print("MISS", label.audio.name, label.slots, result.transcript,
                      round(result.confidence, 3))
    report["barista_acceptance"] = {"accepted": accepted, "total": len(labels),
                                    "rate": accepted / len(labels), "misses": misses}
    rejected = 0
    digits = [json.loads(line) for line in
              (data / "digits-dev" / "labels.jsonl").read_text().splitlines() if line.strip()]
    false_accepts = []
    for row in digits:
        path = data / "digits-dev" / row["audio"]
        result = recognize_recording(recognizer, vad, read_audio(path))
        ok = command_accepted(Label(path, None, {}), result.understood, None, {})
        rejected += ok
        if not ok:
            false_accepts.append({"file": row["audio"], "got": result.to_dict()})
    report["digits_rejection"] = {"rejected": rejected, "total": len(digits),
                                  "rate": rejected / len(digits),
                                  "false_accepts": false_accepts}
    clips = _synthesized_oog(ROOT / "benchmarks" / "data" / "out_of_grammar_barista.txt")
    rejected = 0
    false_accepts = []
    for sentence, audio in clips:
        result = recognize_recording(recognizer, vad, audio)
        rejected += not result.understood
        if result.understood:
            false_accepts.append({"sentence": sentence, "got": result.to_dict()})
            if verbose:
                print("FALSE ACCEPT", sentence, "->", result.transcript,
                      round(result.confidence, 3))
    report["out_of_grammar_rejection"] = {
        "rejected": rejected, "total": len(clips),
        "rate": rejected / len(clips) if clips else None, "false_accepts": false_accepts,
    }
    report["recognize_ms"] = _percentiles(latencies)
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
    report["machine"] = {"platform": platform.platform(), "processor": platform.processor(),
                         "python": platform.python_version()}
    report["wall_s"] = round(time.monotonic() - started, 1)
    summary = {k: (v["rate"] if isinstance(v, dict) and "rate" in v else v)
               for k, v in report.items() if k != "machine"}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
