"""How soon can *any* monitor see out-of-grammar speech rise from 10 % to 30 % of traffic?

    python benchmarks/drift_information.py --out runs/drift_information.json [--model DIR]

Shift (b) of :mod:`benchmarks.drift` changes no sound, only what people say. Each answer
then carries a little evidence: how much, is the Kullback-Leibler divergence per answer
between traffic with 30 % and with 10 % of other speech, D = sum_x m30(x) ln(m30(x) /
m10(x)) with m_p = (1 - p) f_command + p f_other, where f_command and f_other are a signal's
distributions over commands and over other speech. They are measured on the selection set's
in-distribution clips (benchmarks/drift_select.py: 600 clips of held-out voices, training
augmentation, every clip known to be a command or not), binned at the deciles of both.

By Lorden's bound no sequential test detects a change sooner, on average, than about
ln(ARL) / D answers when it raises a false alarm once in ARL answers (Page's CUSUM attains
it); at the issue's limit of one false alarm a day of 2,000 answers, ARL = 2,000. The
report gives D and that delay per signal, for "not understood" alone, and for a best
per-answer score (a logistic regression on all numeric signals, fitted and scored by
10-fold cross-validation, so it is what a monitor could learn, not what it would know). The
estimates are from 60 clips of other speech: rough, and a little high (binning bias).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.drift import HOME, render_segment  # noqa: E402
from benchmarks.drift_select import observations, selection_segments  # noqa: E402

BEFORE, AFTER = 0.1, 0.3  # the share of other speech, in-distribution and in shift (b)


def divergence(commands: np.ndarray, others: np.ndarray, bins: int = 10) -> float:
    """D per answer (module docs) for a score, binned at the deciles of all its values."""
    values = np.concatenate([commands, others])
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    size = len(edges) + 1

    def shares(x: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=size) + 0.5
        return counts / counts.sum()

    f_command, f_other = shares(commands), shares(others)
    before = (1 - BEFORE) * f_command + BEFORE * f_other
    after = (1 - AFTER) * f_command + AFTER * f_other
    return float(np.sum(after * np.log(after / before)))


def cross_validated_score(x: np.ndarray, y: np.ndarray, folds: int = 10) -> np.ndarray:
    """P(other speech) per answer from a logistic regression fitted on the other folds."""
    from assistant.confidence import fit_logistic

    names = tuple(str(i) for i in range(x.shape[1]))
    score = np.zeros(len(y))
    fold = np.arange(len(y)) % folds
    for k in range(folds):
        model = fit_logistic(x[fold != k], y[fold != k].astype(float), names, l2=1.0)
        score[fold == k] = [model.probability(dict(zip(names, row, strict=True)))
                            for row in x[fold == k]]
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "drift-clips")
    parser.add_argument("--model", type=Path, help="a model directory of the home grammar "
                        "(default: the grammar zero-shot)")
    parser.add_argument("--seed-offset", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--false-per-day", type=float, default=1.0)
    args = parser.parse_args(argv)
    from assistant.monitor import NUMERIC_SIGNALS, UNDERSTOOD
    from assistant.profile import ReferenceProfile
    from benchmarks.report import save_json

    profile = ReferenceProfile.load(HOME.with_name("home.profile.json") if args.model is None
                                    else args.model / "profile.json")
    segment = selection_segments(args.seed_offset, 600, 200)[0]  # in-distribution
    rows = observations(segment, args.cache, profile, args.model)
    kinds = np.asarray([f.stem.split("-", 1)[1] for f in render_segment(segment, args.cache)])
    other = kinds == "other"
    arl = args.per_day / args.false_per_day
    report: dict[str, Any] = {"clips": len(rows), "other_speech": int(other.sum()),
                              "shift": [BEFORE, AFTER], "arl_answers": arl, "signals": {}}

    def entry(score: np.ndarray) -> dict[str, float | None]:
        d = divergence(score[~other], score[other])
        return {"nats_per_answer": round(d, 4),
                "min_delay_answers": round(math.log(arl) / d) if d > 0 else None}

    columns = {}
    for name in NUMERIC_SIGNALS:
        values = [o.value(name) for o in rows]
        if all(v is None for v in values):
            continue
        column = np.asarray([np.nan if v is None else v for v in values], np.float64)
        fill = float(np.nanmin(column)) - 1.0  # "none" (e.g. nothing heard) as its own bin
        columns[name] = np.where(np.isnan(column), fill, column)
        report["signals"][name] = entry(columns[name])
    not_understood = np.asarray([o.outcome != UNDERSTOOD for o in rows], np.float64)
    report["signals"]["not_understood"] = entry(not_understood)
    x = np.stack([*columns.values(), not_understood], axis=1)
    report["signals"]["best_score"] = entry(cross_validated_score(x, other))
    report["served"] = str(args.model) if args.model else "home.yaml, zero-shot"
    report["command"] = "python benchmarks/drift_information.py " + " ".join(
        argv or sys.argv[1:])
    save_json(report, args.out)
    for name, value in report["signals"].items():
        print(f"{name:20s} {value['nats_per_answer']:.4f} nats/answer, at least "
              f"{value['min_delay_answers']} answers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
