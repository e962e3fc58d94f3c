"""Evaluation reports: accuracy, rejection, calibration and slices, as Markdown with PNG plots.

    assistant evaluate --model MODEL_DIR --data labels.jsonl [--out REPORT_DIR]

``labels.jsonl`` rows: ``{"audio": path relative to the file, "intent": name or null,
"slots": {...}}`` plus any slice fields (``engine``, ``voice``, ``snr_db``, ``accent``,
``pitch_hz`` ...). A null intent marks speech or sound that must be rejected. Measured:

* command acceptance (intent and every labelled slot right), intent accuracy, slot F1;
* out-of-domain false accepts and in-grammar false rejects;
* expected calibration error and a reliability plot of the confidence;
* the same per slice (engine, voice, pitch band, accent, SNR band) to expose bias.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from assistant.audio import read_audio
from assistant.evaluation import slots_match
from assistant.recognizer import Recognizer, Result
from assistant.recording import recognize_recording
from assistant.vad import SileroVad

SLICE_FIELDS = ("engine", "voice", "pitch_band", "accent", "snr_band", "kind")
CALIBRATION_BINS = 10


def _band(value: float | None, edges: list[float], unit: str) -> str | None:
    if value is None:
        return None
    for lo, hi in itertools.pairwise(edges):
        if lo <= value < hi:
            return f"{lo:g}-{hi:g} {unit}"
    return f">= {edges[-1]:g} {unit}" if value >= edges[-1] else f"< {edges[0]:g} {unit}"


def slices_of(row: dict[str, Any]) -> dict[str, str]:
    out = {k: str(row[k]) for k in ("engine", "voice", "accent", "kind") if row.get(k)}
    augmentation = row.get("augmentation") or {}
    snr = row.get("snr_db", augmentation.get("snr_db"))
    if snr is not None:
        out["snr_band"] = _band(float(snr), [0, 6, 12, 18, 24, 30], "dB") or ""
    elif row.get("kind"):
        out["snr_band"] = "clean"
    pitch = row.get("pitch_hz")
    if pitch is not None:
        out["pitch_band"] = _band(float(pitch), [0, 140, 200, 400], "Hz") or ""
    return out


def score_row(row: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    expected = row.get("intent")
    slots = dict(row.get("slots") or {})
    got = result["slots"] if result["understood"] else {}
    predicted_pairs = {(k, str(v)) for k, v in got.items()}
    gold_pairs = {(k, str(v)) for k, v in slots.items()}
    return {
        "in_grammar": expected is not None,
        "understood": result["understood"],
        "accepted": (result["understood"] and result["intent"] == expected
                     and slots_match(slots, got)) if expected else not result["understood"],
        "intent_right": result["understood"] and result["intent"] == expected,
        "slot_tp": len(predicted_pairs & gold_pairs),
        "slot_fp": len(predicted_pairs - gold_pairs),
        "slot_fn": len(gold_pairs - predicted_pairs),
        "confidence": result["confidence"],
        "correct": bool(expected) and result["intent"] == expected and slots_match(slots, got),
    }


def summarize(scores: list[dict[str, Any]]) -> dict[str, Any]:
    commands = [s for s in scores if s["in_grammar"]]
    others = [s for s in scores if not s["in_grammar"]]
    tp = sum(s["slot_tp"] for s in commands)
    fp = sum(s["slot_fp"] for s in commands)
    fn = sum(s["slot_fn"] for s in commands)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0

    def rate(items: list[dict[str, Any]], key: str) -> float | None:
        return sum(bool(s[key]) for s in items) / len(items) if items else None

    return {
        "utterances": len(scores),
        "commands": len(commands),
        "out_of_domain": len(others),
        "command_acceptance": rate(commands, "accepted"),
        "intent_accuracy": rate(commands, "intent_right"),
        "slot_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "false_reject_rate": (sum(not s["understood"] for s in commands) / len(commands)
                              if commands else None),
        "false_accept_rate": rate(others, "understood"),
        "rejection_rate": rate(others, "accepted"),
    }


def calibration_table(scores: list[dict[str, Any]]) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error of the confidence as P(correct command), and its bins."""
    conf = np.array([s["confidence"] for s in scores])
    correct = np.array([float(s["correct"]) for s in scores])
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    table = []
    ece = 0.0
    for i in range(CALIBRATION_BINS):
        inside = (conf >= edges[i]) & ((conf < edges[i + 1]) if i < CALIBRATION_BINS - 1
                                       else (conf <= 1))
        if inside.any():
            gap = abs(conf[inside].mean() - correct[inside].mean())
            ece += inside.mean() * gap
            table.append({"low": float(edges[i]), "high": float(edges[i + 1]),
                          "count": int(inside.sum()), "confidence": float(conf[inside].mean()),
                          "accuracy": float(correct[inside].mean())})
    return float(ece), table


def reliability_plot(table: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    centers = [(b["low"] + b["high"]) / 2 for b in table]
    ax.bar(centers, [b["accuracy"] for b in table], width=0.09, alpha=0.7, label="accuracy")
    ax.plot([b["confidence"] for b in table], [b["accuracy"] for b in table], "o-",
            color="C1", label="mean confidence")
    ax.set_xlabel("confidence")
    ax.set_ylabel("share of commands recognized right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def evaluate(recognizer: Recognizer, labels_path: Path, out: Path | None = None,
             title: str = "", limit: int | None = None) -> dict[str, Any]:
    rows = [json.loads(line) for line in labels_path.read_text().splitlines() if line.strip()]
    if limit:
        rows = rows[:limit]
    vad = SileroVad()
    scores, sliced = [], defaultdict(list)
    latencies = []
    classifier_rows: list[tuple[bool, bool, float | None]] = []
    started = time.monotonic()
    for row in rows:
        audio = read_audio(labels_path.parent / row["audio"])
        outcome = recognize_recording(recognizer, vad, audio)
        if recognizer.classifier is not None:
            classifier_rows.append(_classifier_row(outcome, row.get("intent")))
        result = outcome.to_dict()
        latencies.append(result["timing_ms"].get("total", 0.0) - result["timing_ms"].get("vad",
                                                                                       0.0))
        score = score_row(row, result)
        scores.append(score)
        for field, value in slices_of(row).items():
            sliced[f"{field}={value}"].append(score)
    ece, table = calibration_table(scores)
    report: dict[str, Any] = {
        "data": str(labels_path),
        "model": recognizer.describe(),
        "overall": summarize(scores),
        "expected_calibration_error": ece,
        "reliability": table,
        "slices": {k: summarize(v) for k, v in sorted(sliced.items())},
        "recognize_ms": {"median": float(np.median(latencies)),
                         "p95": float(np.percentile(latencies, 95))} if latencies else {},
        "seconds": round(time.monotonic() - started, 1),
    }
    if classifier_rows:
        report["classifier"] = _classifier_summary(classifier_rows)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        reliability_plot(table, out / "reliability.png", title or labels_path.parent.name)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "REPORT.md").write_text(markdown(report, title or labels_path.parent.name))
    return report


def _classifier_row(outcome: Result, intent: str | None) -> tuple[bool, bool, float | None]:
    """The intent classifier alone on the audio the recognizer saw: (is a command, right,
    milliseconds of features + encoder + classifier). Without speech nothing reaches the
    classifier, which counts as answering "not a command" (no time)."""
    scores = outcome.intent_scores
    if scores is None:
        return intent is not None, intent is None, None
    best, _ = scores.best
    right = best == intent if intent else best == scores.labels[-1]
    elapsed = outcome.timing_ms.get("features", 0.0) + outcome.timing_ms.get("encoder", 0.0)
    return intent is not None, right, elapsed


def _classifier_summary(rows: list[tuple[bool, bool, float | None]]) -> dict[str, Any]:
    commands = [r for r in rows if r[0]]
    others = [r for r in rows if not r[0]]
    times = [r[2] for r in rows if r[2] is not None]
    return {
        "intent_accuracy": sum(r[1] for r in commands) / len(commands) if commands else None,
        "rejection_rate": sum(r[1] for r in others) / len(others) if others else None,
        "encoder_plus_classifier_ms": {"median": float(np.median(times)),
                                       "p95": float(np.percentile(times, 95))} if times else {},
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _classifier_lines(c: dict[str, Any]) -> list[str]:
    return [
        f"Intent classifier alone (no decoding): intent accuracy {_pct(c['intent_accuracy'])}, "
        f"out-of-domain rejected {_pct(c['rejection_rate'])}, encoder + classifier "
        f"{c['encoder_plus_classifier_ms']['median']:.1f} ms median.",
        "",
    ]


def markdown(report: dict[str, Any], title: str) -> str:
    o = report["overall"]
    lines = [
        f"# Evaluation: {title}",
        "",
        f"Data: `{report['data']}` ({o['utterances']} utterances: {o['commands']} commands, "
        f"{o['out_of_domain']} to reject). Model: `{report['model']['speech_model']['name']}` "
        f"({report['model']['speech_model']['precision']}), threshold "
        f"{report['model']['threshold']}.",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| command acceptance | {_pct(o['command_acceptance'])} |",
        f"| intent accuracy | {_pct(o['intent_accuracy'])} |",
        f"| slot F1 | {_pct(o['slot_f1'])} |",
        f"| false rejects (commands not understood) | {_pct(o['false_reject_rate'])} |",
        f"| false accepts (out-of-domain understood) | {_pct(o['false_accept_rate'])} |",
        f"| expected calibration error | {report['expected_calibration_error']:.3f} |",
        f"| recognize median / p95 | {report['recognize_ms'].get('median', 0):.0f} / "
        f"{report['recognize_ms'].get('p95', 0):.0f} ms |",
        "",
        *(_classifier_lines(report["classifier"]) if "classifier" in report else []),
        "![reliability](reliability.png)",
        "",
        "## Slices",
        "",
        "| slice | n | acceptance | false accepts |",
        "| --- | --- | --- | --- |",
    ]
    for name, s in report["slices"].items():
        lines.append(f"| {name} | {s['utterances']} | {_pct(s['command_acceptance'])} | "
                     f"{_pct(s['false_accept_rate'])} |")
    return "\n".join(lines) + "\n"
