"""Command acceptance on barista-dev mixed with held-out babble at 6-24 dB SNR.

    python benchmarks/noisy.py [--model MODEL_DIR ...] [--out results.json] [--plot acc.png]

Zero-shot (the bundled model with the barista grammar) is always measured; each ``--model``
(for example a fine-tuned directory from ``assistant train``) is measured beside it on the
same mixtures. Noise and mixing: :mod:`benchmarks.noise` (the public benchmark's loudest-frame
SNR; the noise is real babble that training never uses).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.audio import read_audio  # noqa: E402
from assistant.evaluation import Label, command_accepted  # noqa: E402
from assistant.recognizer import Recognizer, RecognizerConfig  # noqa: E402
from assistant.vad import SileroVad  # noqa: E402
from benchmarks.accuracy import Engine, percentiles, recognize  # noqa: E402
from benchmarks.datasets import DATA, barista_labels  # noqa: E402
from benchmarks.noise import babble, mix_at_snr  # noqa: E402
from benchmarks.report import save_json  # noqa: E402

SNRS_DB = (24, 21, 18, 15, 12, 9, 6)


def run(recognizers: Mapping[str, Engine], data: Path, snrs: tuple[int, ...],
        seed: int, labels: list[Label] | None = None) -> dict[str, Any]:
    """Acceptance of each engine, clean and at each SNR, on the same mixtures.

    ``labels`` defaults to all of barista-dev; per-utterance times (after the VAD cut) are
    kept for the clean recordings.
    """
    labels = labels if labels is not None else barista_labels(data)
    clean = [read_audio(label.audio) for label in labels]
    noise = babble()
    vad = SileroVad()
    results: dict[str, dict[str, float]] = {name: {} for name in recognizers}
    clean_ms: dict[str, list[float]] = {name: [] for name in recognizers}
    conditions: list[tuple[str, int | None]] = [("clean", None)] + [(f"{s} dB", s) for s in snrs]
    for condition, snr in conditions:
        rng = np.random.default_rng(seed + (snr or 0))
        audios = clean if snr is None else [mix_at_snr(a, noise, snr, rng) for a in clean]
        for name, recognizer in recognizers.items():
            started = time.monotonic()
            accepted = 0
            for label, audio in zip(labels, audios, strict=True):
                r, elapsed_ms = recognize(recognizer, vad, audio)
                accepted += command_accepted(label, r.understood, r.intent, r.slots)
                if snr is None:
                    clean_ms[name].append(elapsed_ms)
            results[name][condition] = accepted / len(labels)
            print(f"{name:>12s} {condition:>6s}: {100 * accepted / len(labels):5.1f} % "
                  f"({time.monotonic() - started:.0f} s)", flush=True)
    for name in results:
        noisy = [results[name][f"{s} dB"] for s in snrs]
        results[name]["mean_noisy"] = float(np.mean(noisy)) if noisy else None  # type: ignore[assignment]
    return {"acceptance": results, "snrs_db": list(snrs), "seed": seed,
            "noise": "six-talker babble from asterisk-core-sounds-{fr,es,it}-wav (held out)",
            "utterances": len(labels),
            "recognize_ms": {name: percentiles(v) for name, v in clean_ms.items()}}


def plot(report: dict[str, Any], path: Path) -> None:
    """Acceptance vs SNR, one line per engine (drawn by :mod:`benchmarks.plots`)."""
    from benchmarks.plots import accuracy_plot

    engines = {name: {"acceptance": values} for name, values in report["acceptance"].items()}
    accuracy_plot({"cpu": {"accuracy": {"snrs_db": report["snrs_db"], "engines": engines}}},
                  path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=[], type=Path)
    parser.add_argument("--speech-model", default="tiny.en")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--snr", type=int, action="append")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    if not (args.data / "barista-dev" / "labels.jsonl").is_file():
        print(f"no evaluation data at {args.data}", file=sys.stderr)
        return 2
    recognizers = {"zero-shot": Recognizer.from_context(
        args.data / "barista-dev" / "coffee_maker.yaml",
        RecognizerConfig(speech_model=args.speech_model))}
    for directory in args.model:
        recognizers[directory.name] = Recognizer.from_model_dir(directory)
    for recognizer in recognizers.values():
        recognizer.warm_up()
    report = run(recognizers, args.data, tuple(args.snr or SNRS_DB), args.seed)
    print(json.dumps(report["acceptance"], indent=2))
    if args.out:
        save_json(report, args.out)
    if args.plot:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
