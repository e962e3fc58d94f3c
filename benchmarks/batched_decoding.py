"""Utterances recognized together against one by one, in process: time per utterance, and
whether the answers stay the same (:meth:`assistant.recognizer.Recognizer.recognize_many`).

    python benchmarks/batched_decoding.py --out runs/batched_decoding.json
        [--utterances 48] [--precision int8] [--threads 2] [--device cuda] [--groups 2,4,8]

Commands of the shipped home grammar, synthesized with four espeak-ng voices plus a little
white noise, are recognized one by one, then in groups of 2, 4 and 8 (what a worker gets
when that many utterances wait together). Reported per group size: milliseconds per
utterance (features, encoder, decoder, rescue and all), the mean decoder run size, and how
many answers (understood, intent, slots) and transcripts equal the one-by-one ones, with the
largest confidence difference. FP32 models give the same answers to the last digit; INT8
ones quantize each decoder run's inputs as one, so the company moves confidences a little.
``--device cuda`` runs the speech model with PyTorch on the GPU (``cpu-pytorch``: the same
code on the CPU), where larger groups are the point: ``--groups 8,32,64,128``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOME = ROOT / "assistant" / "contexts" / "home.yaml"
VOICES = ("en-us+m3", "en-us+f2", "en-gb+m1", "en-us+f4")
GROUPS = (2, 4, 8)


def commands(n: int, seed: int) -> list[np.ndarray]:
    from assistant.grammar import load_context, sample_sentences
    from training.tts import Voice, synthesize

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    out = []
    for annotation in sample_sentences(load_context(HOME), n, seed=seed):
        audio = synthesize(annotation.text, Voice("espeak", rng.choice(VOICES)))
        out.append((audio + noise.normal(0, 3e-3, audio.size)).astype(np.float32))
    return out


def compare(alone: list[Any], together: list[Any]) -> dict[str, Any]:
    answers = sum((a.understood, a.intent, a.slots) == (t.understood, t.intent, t.slots)
                  for a, t in zip(alone, together, strict=True))
    transcripts = sum(a.transcript == t.transcript for a, t in zip(alone, together, strict=True))
    return {"same_answers": f"{answers}/{len(alone)}",
            "same_transcripts": f"{transcripts}/{len(alone)}",
            "max_confidence_difference": round(max(abs(a.confidence - t.confidence)
                                                   for a, t in zip(alone, together,
                                                                   strict=True)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--utterances", type=int, default=48)
    parser.add_argument("--precision", default="int8", choices=("int8", "fp32"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--device", default="cpu",
                        help="cpu (ONNX Runtime), cuda, cuda:N or cpu-pytorch (PyTorch)")
    parser.add_argument("--groups", default=",".join(map(str, GROUPS)),
                        help="utterances recognized together, comma-separated")
    args = parser.parse_args(argv)
    groups = [int(g) for g in args.groups.split(",")]
    from assistant.recognizer import Recognizer, RecognizerConfig
    from benchmarks.machine import describe
    from benchmarks.report import save_json

    recognizer = Recognizer.from_context(
        HOME, RecognizerConfig(precision=args.precision, threads=args.threads,
                               device=args.device))
    recognizer.warm_up()
    audios = commands(args.utterances, args.seed)
    started = time.perf_counter()
    alone = [recognizer.recognize(a) for a in audios]
    alone_ms = 1000 * (time.perf_counter() - started) / len(audios)
    report: dict[str, Any] = {
        "command": "python benchmarks/batched_decoding.py " + " ".join(argv or sys.argv[1:]),
        "machine": describe(), "precision": args.precision, "utterances": len(audios),
        "model": recognizer.model.describe(),
        "one_by_one_ms_per_utterance": round(alone_ms, 1), "together": {}}
    print(f"[batched] one by one: {alone_ms:.1f} ms per utterance", flush=True)
    for size in groups:
        runs: list[int] = []
        started = time.perf_counter()
        together: list[Any] = []
        for i in range(0, len(audios), size):
            together += recognizer.recognize_many(audios[i : i + size], on_run=runs.append)
        ms = 1000 * (time.perf_counter() - started) / len(audios)
        failed = [t for t in together if isinstance(t, Exception)]
        if failed:
            raise failed[0]
        row = {"ms_per_utterance": round(ms, 1), "speedup": round(alone_ms / ms, 2),
               "mean_decoder_run_utterances": round(float(np.mean(runs)), 2),
               **compare(alone, together)}
        report["together"][str(size)] = row
        print(f"[batched] {size} together: {row}", flush=True)
    save_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
