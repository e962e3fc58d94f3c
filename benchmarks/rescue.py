"""Does the nearest-sentence rescue pay? Selection data for ``rescue_sentences``.

    python benchmarks/rescue.py --out runs/rescue.json [--sentences 0 8 16 32]
        [--per-grammar 80] [--seed 1]

When the beam's sentence would not be understood and differs from the free decode, the
recognizer scores the grammar sentences nearest the free decode too (``Recognizer._rescued``,
``assistant/grammar/nearest.py``). This measures it on the clips ``training/calibrate.py``
fits the confidence on (same plan, training voices, noise and level augmentation, cut as a
recording is cut): synthesized speech of the ten calibration grammars, in-grammar commands and
out-of-grammar speech of five kinds (other domains, short words, near misses one word away,
near-domain questions, other grammars' sentences). Never the evaluation's voices, grammars or
recordings: this is where the setting may be chosen.

Each setting (0 = no rescue) decodes every clip. A setting is judged by what a
confidence calibration fitted for it would accept on grammars it did not see: the shipped
calibration's features and L2, fitted leave-one-grammar-out (as ``training/calibrate.py``
selects); the shipped calibration's own view is reported too. Per setting: sentences right,
commands accepted right and wrong (of the in-grammar clips), false accepts by kind, held-out
log-loss and ECE, and mean milliseconds per clip (cut and recognition; the settings take
turns on each clip), also for the answers the shipped calibration understands and the rest.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def decode_all(settings: list[int], per_grammar: int, seed: int, say: Any
               ) -> dict[int, list[dict[str, Any]]]:
    """Every calibration clip through recognizers with each ``rescue_sentences`` setting,
    the settings taking turns on each clip (so their timings share the machine's moods)."""
    from assistant.artifacts import SpeechModelSpec, ensure_speech_model
    from assistant.grammar import load_context
    from assistant.recognizer import Recognizer, RecognizerConfig
    from assistant.speech_model import SpeechModel
    from assistant.vad import SileroVad
    from training.calibrate import CALIBRATION_GRAMMARS, _vary, augment, measure, plan
    from training.tts import default_voices, synthesize

    contexts = [load_context(p) for p in CALIBRATION_GRAMMARS]
    model = SpeechModel(ensure_speech_model(SpeechModelSpec("tiny.en", "int8")))
    recognizers = {s: [Recognizer(c, model, RecognizerConfig(rescue_sentences=s))
                       for c in contexts] for s in settings}
    vad = SileroVad()
    voices = default_voices()
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    rows: dict[int, list[dict[str, Any]]] = {s: [] for s in settings}
    clips = plan(contexts, per_grammar, seed)
    for i, clip in enumerate(clips):  # the same voices and augmentation draws as calibrate
        audio = augment(synthesize(clip.text, _vary(voices[i % len(voices)], rng)), nprng)
        for setting in settings:
            started = time.perf_counter()
            found = measure(recognizers[setting][clip.grammar], vad, audio, clip)
            ms = 1000 * (time.perf_counter() - started)
            if found is not None:
                features, right, _ = found
                rows[setting].append({"grammar": CALIBRATION_GRAMMARS[clip.grammar].stem,
                                      "kind": clip.kind, "label": right, "ms": ms,
                                      "features": features})
        if (i + 1) % 400 == 0:
            say(f"  {i + 1}/{len(clips)} clips")
    return rows


def judge(rows: list[dict[str, Any]], in_grammar: int) -> dict[str, Any]:
    """Held-out (leave one grammar out) and shipped-calibration acceptance of one setting."""
    from assistant.confidence import builtin_calibration
    from training.calibrate import ece, held_out

    shipped = builtin_calibration("tiny.en")
    names = shipped.names
    l2 = float(shipped.info.get("l2", 1.0))
    features = [r["features"] for r in rows]
    y = np.array([r["label"] for r in rows], dtype=np.float64)
    _, groups = np.unique([r["grammar"] for r in rows], return_inverse=True)
    loss, probs = held_out(features, y, groups, names, l2)
    own = np.array([shipped.probability(f) for f in features])
    kinds = sorted({r["kind"] for r in rows} - {"in"})
    result: dict[str, Any] = {
        "in_grammar_clips": in_grammar,
        "sentences_right": int(y.sum()),
        "held_out_log_loss": round(loss, 1),
        "held_out_ece": round(ece(probs, y), 4),
        "mean_ms": round(float(np.mean([r["ms"] for r in rows])), 1),
    }
    ms = np.array([r["ms"] for r in rows])
    understood = own >= 0.5  # the rescue runs only for answers under the threshold
    result["mean_ms_understood"] = round(float(ms[understood].mean()), 1) \
        if understood.any() else None
    result["mean_ms_not_understood"] = round(float(ms[~understood].mean()), 1) \
        if (~understood).any() else None
    for view, p in (("held_out", probs), ("shipped", own)):
        accepted = p >= 0.5
        is_in = np.array([r["kind"] == "in" for r in rows])
        result[view] = {
            "accepted_right": int((accepted & is_in & (y == 1)).sum()),
            "accepted_wrong": int((accepted & is_in & (y == 0)).sum()),
            "false_accepts": {k: int(sum(a for a, r in zip(accepted, rows, strict=True)
                                         if r["kind"] == k)) for k in kinds},
        }
    result["negatives"] = {k: sum(r["kind"] == k for r in rows) for k in kinds}
    return result


def markdown(report: dict[str, Any]) -> str:
    lines = ["| rescue (sentences) | sentences right | accepted right / wrong "
             "(held out) | false accepts by kind (held out) | held-out log-loss / ECE | "
             "mean ms: all / understood / not |", "| --- | --- | --- | --- | --- | --- |"]
    for setting, r in report["settings"].items():
        h = r["held_out"]
        fa = ", ".join(f"{k} {v}/{r['negatives'][k]}" for k, v in h["false_accepts"].items())
        lines.append(f"| {setting} | {r['sentences_right']}/{r['in_grammar_clips']} | "
                     f"{h['accepted_right']} / {h['accepted_wrong']} | {fa} | "
                     f"{r['held_out_log_loss']} / {100 * r['held_out_ece']:.2f} % | "
                     f"{r['mean_ms']} / {r['mean_ms_understood']} / "
                     f"{r['mean_ms_not_understood']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sentences", type=int, nargs="+", default=[0, 8, 16, 32],
                        help="rescue_sentences settings to compare (0: no rescue)")
    parser.add_argument("--per-grammar", type=int, default=80)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    from benchmarks.machine import describe
    from benchmarks.report import save_json
    from training.calibrate import CALIBRATION_GRAMMARS

    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    started = time.monotonic()
    in_grammar = args.per_grammar * len(CALIBRATION_GRAMMARS)
    rows = decode_all(args.sentences, args.per_grammar, args.seed, say)
    settings = {str(s): judge(rows[s], in_grammar) for s in args.sentences}
    report = {"settings": settings, "per_grammar": args.per_grammar, "seed": args.seed,
              "seconds": round(time.monotonic() - started, 1), "machine": describe(),
              "command": " ".join(["python", "benchmarks/rescue.py",
                                   *(argv or sys.argv[1:])])}
    save_json(report, args.out)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
