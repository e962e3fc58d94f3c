"""``assistant train`` and ``assistant evaluate``: the training pipeline as one command.

    assistant train CONTEXT.yaml --out MODEL_DIR [--device cpu|cuda] [--recordings DIR]
                    [--size tiny|default|large|N] [--epochs N] [--work DIR]
    assistant evaluate --model MODEL_DIR --data labels.jsonl [--out REPORT_DIR]

``train`` runs the stages, each writing files the next reads (a rerun reuses finished ones):
synthesize and augment a dataset (``WORK/data``), fine-tune (``WORK/run``: checkpoints,
TensorBoard, ``experiment.json``; early stopping on half of the unseen voices, see
:mod:`training.holdout`), export the INT8 model directory (``MODEL_DIR``; calibration on the
validation split and that half), evaluate it on the other half of the unseen voices
(``MODEL_DIR/evaluation``) and write the model card.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from assistant import config as cfg
from assistant.errors import ConfigError


def register(sub: Any) -> None:
    from .finetune_config import FinetuneConfig

    p = sub.add_parser("train", help="fine-tune a model for a grammar on synthesized speech")
    p.add_argument("context", type=Path, help="the grammar (context YAML)")
    p.add_argument("--out", type=Path, required=True, help="the model directory to write")
    p.add_argument("--work", type=Path, help="intermediate files (default: OUT.work)")
    p.add_argument("--size", default="default", help="dataset size: tiny, default, large or N")
    p.add_argument("--recordings", type=Path,
                   help="a folder with labels.jsonl and your own labelled recordings to mix in")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    cfg.add_arguments(p, FinetuneConfig)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a model directory on labelled audio")
    p.add_argument("--model", type=Path, help="model directory (default: zero-shot)")
    p.add_argument("--context", type=Path, help="grammar for zero-shot evaluation")
    p.add_argument("--data", type=Path, required=True, help="labels.jsonl")
    p.add_argument("--out", type=Path, help="where to write REPORT.md and plots")
    p.add_argument("--limit", type=int)
    p.set_defaults(func=cmd_evaluate)


def _say(message: str) -> None:
    print(f"[train] {message}", flush=True)


def _mix_recordings(recordings: Path, data_dir: Path, copies: int = 3) -> int:
    """Add the user's labelled recordings to the training manifest (each ``copies`` times).

    ``labels.jsonl`` rows: ``{"audio", "intent" (null: not a command), "slots", "text"?}``.
    Without ``text`` a recording trains the intent classifier only, not the decoder.
    """
    from assistant.evaluation import read_labels

    labels_file = recordings / "labels.jsonl"
    labels = read_labels(labels_file)
    texts = [json.loads(line).get("text") for line in labels_file.read_text().splitlines()
             if line.strip()]
    train = data_dir / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines() if line.strip()]
    for label, text in zip(labels, texts, strict=True):
        if not label.audio.is_file():
            raise ConfigError(f"{labels_file}: recording {label.audio} does not exist")
        rows += [{"audio": str(label.audio.resolve()), "text": text, "intent": label.intent,
                  "slots": label.slots, "kind": "recording", "engine": "recording",
                  "voice": "user"}] * copies
    random.Random(0).shuffle(rows)
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return len(labels)


def cmd_train(args: argparse.Namespace) -> int:
    from assistant.grammar import load_context

    from .data_config import config_for_size
    from .dataset import prepare_dataset
    from .evaluate import evaluate
    from .export import export
    from .finetune import train
    from .finetune_config import FinetuneConfig
    from .holdout import split_holdout
    from .model_card import write_model_card

    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    context = load_context(args.context)
    settings = cfg.build(FinetuneConfig, args)
    work = args.work or args.out.with_name(args.out.name + ".work")
    data_dir, run_dir = work / "data", work / "run"
    timings: dict[str, float] = {}

    t = time.monotonic()
    if not (data_dir / "manifest.json").is_file():
        _say(f"1/4 synthesizing speech for {args.context.name} into {data_dir}")
        prepare_dataset(args.context, data_dir, config_for_size(args.size, seed=settings.seed),
                        workers=args.workers)
    else:
        _say(f"1/4 reusing the dataset in {data_dir}")
    data_info = json.loads((data_dir / "manifest.json").read_text())
    steer, judge = split_holdout(data_dir)
    if args.recordings:
        count = _mix_recordings(args.recordings, data_dir)
        _say(f"mixed {count} of your recordings into the training split")
    timings["data"] = time.monotonic() - t

    t = time.monotonic()
    if not (run_dir / "experiment.json").is_file():
        _say(f"2/4 fine-tuning {settings.speech_model} on {settings.device}")
        train(data_dir, run_dir, settings, list(context.intent_names),
              data_version=data_info.get("data_version", ""), stop_manifest=steer.name)
    else:
        _say(f"2/4 reusing the finished run in {run_dir}")
    timings["fine_tune"] = time.monotonic() - t

    t = time.monotonic()
    if args.out.exists():
        shutil.rmtree(args.out)
    _say(f"3/4 exporting the INT8 model to {args.out}")
    metadata = export(run_dir, args.context, data_dir, args.out, settings.speech_model,
                      calibration_manifests=("val.jsonl", steer.name))
    timings["export"] = time.monotonic() - t

    t = time.monotonic()
    _say("4/4 evaluating on the held-out synthetic voices")
    from assistant.recognizer import Recognizer

    recognizer = Recognizer.from_model_dir(args.out)
    recognizer.warm_up()
    report = evaluate(recognizer, judge, args.out / "evaluation",
                      f"{args.context.stem}: unseen synthetic voices")
    timings["evaluate"] = time.monotonic() - t
    timings["total"] = time.monotonic() - started
    write_model_card(args.out, metadata, data_info, report, timings)
    overall = report["overall"]
    _say(f"done in {timings['total'] / 60:.1f} min: unseen-voice command acceptance "
         f"{100 * (overall['command_acceptance'] or 0):.1f} %, false accepts "
         f"{100 * (overall['false_accept_rate'] or 0):.1f} %; model in {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from assistant.recognizer import Recognizer

    from .evaluate import evaluate

    if args.model:
        recognizer = Recognizer.from_model_dir(args.model)
    elif args.context:
        recognizer = Recognizer.from_context(args.context)
    else:
        raise ConfigError("give --model DIR or --context FILE.yaml")
    recognizer.warm_up()
    report = evaluate(recognizer, args.data, args.out, limit=args.limit)
    print(json.dumps({"overall": report["overall"],
                      "expected_calibration_error": report["expected_calibration_error"],
                      "classifier": report.get("classifier"),
                      "recognize_ms": report["recognize_ms"]}, indent=2))
    return 0
