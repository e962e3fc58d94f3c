"""MODEL_CARD.md for a fine-tuned model directory: what it is, what it saw, how it scored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assistant.artifacts import METADATA_FILE, write_metadata


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def write_model_card(out: Path, metadata: dict[str, Any], data: dict[str, Any],
                     report: dict[str, Any], timings: dict[str, float]) -> None:
    training = metadata.get("training", {})
    overall = report["overall"]
    classifier = report.get("classifier") or {}
    epochs = training.get("epochs", [])
    lines = [
        f"# {metadata['grammar']['name']}: fine-tuned voice-command model",
        "",
        f"Whisper {metadata.get('source_model')} fine-tuned for the grammar in `context.yaml` "
        f"(sha256 `{metadata['grammar']['sha256'][:16]}`; intents: "
        + ", ".join(metadata["grammar"]["intents"]) + "), exported to ONNX with INT8 weights, "
        "with an intent classifier (`classifier.onnx`, intents + out-of-domain) and a "
        "confidence calibration fitted on "
        + str(metadata.get("calibration", {}).get("info", {}).get("data", "synthesized speech"))
        + " (features: " + ", ".join(metadata.get("calibration", {}).get("features", []))
        + ").",
        "",
        "## Data",
        "",
        f"Synthesized speech only (see the dataset's `DATASET.md`), data version "
        f"`{str(data.get('data_version', ''))[:16]}`: "
        + ", ".join(f"{k} {v.get('clips', v) if isinstance(v, dict) else v} clips"
                    for k, v in data.get("splits", {}).items())
        + f". Trained on {training.get('train_clips', '?')} clips for {len(epochs)} epochs; "
        "the lower encoder layers stayed frozen as pretrained on real speech.",
        "",
        "## Measured",
        "",
        "On held-out synthetic voices that nothing was fitted on (neither training, early "
        "stopping nor calibration), with the real VAD:",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| command acceptance | {_pct(overall['command_acceptance'])} |",
        f"| intent accuracy | {_pct(overall['intent_accuracy'])} |",
        f"| slot F1 | {_pct(overall['slot_f1'])} |",
        f"| false accepts (out of domain) | {_pct(overall['false_accept_rate'])} |",
        f"| false rejects (commands) | {_pct(overall['false_reject_rate'])} |",
        f"| expected calibration error | {report['expected_calibration_error']:.3f} |",
        f"| intent classifier alone: accuracy / rejection | "
        f"{_pct(classifier.get('intent_accuracy'))} / {_pct(classifier.get('rejection_rate'))} |",
        "",
        "Full report: `evaluation/REPORT.md`. Time to build: "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items()) + ".",
        "",
        "## Limits",
        "",
        "- Synthetic voices are not people: accuracy on real speech can be lower, especially",
        "  for accents, children and far-field microphones unlike the synthesized rooms.",
        "- English only; one command per utterance; commands outside the grammar are rejected,",
        "  never mapped to the nearest command on purpose.",
        "- Evaluate on recordings of your own users (`assistant evaluate --model DIR --data",
        "  labels.jsonl`) before relying on it.",
        "",
    ]
    (out / "MODEL_CARD.md").write_text("\n".join(lines))
    meta = json.loads((out / METADATA_FILE).read_text())
    meta["evaluation"] = {"unseen_synthetic_voices": overall,
                          "expected_calibration_error": report["expected_calibration_error"]}
    meta["build_seconds"] = {k: round(v, 1) for k, v in timings.items()}
    write_metadata(out, meta)
