"""``assistant train``, ``evaluate`` and ``profile``: the training pipeline as commands.

    assistant train CONTEXT.yaml --out MODEL_DIR [--device cpu|cuda] [--recordings DIR]
                    [--size tiny|default|large|N] [--epochs N] [--work DIR]
    assistant evaluate --model MODEL_DIR --data labels.jsonl [--out REPORT_DIR]
    assistant profile --context CONTEXT.yaml | --model MODEL_DIR [--recordings DIR]

``train`` runs the stages, each writing files the next reads (a rerun reuses finished ones):
synthesize and augment a dataset (``WORK/data``), fine-tune (``WORK/run``: checkpoints,
TensorBoard, ``experiment.json``; early stopping on half of the unseen voices, see
:mod:`training.holdout`), export the INT8 model directory (``MODEL_DIR``; calibration on the
validation split and that half), evaluate it on the other half of the unseen voices
(``MODEL_DIR/evaluation``), profile it there for monitoring (``MODEL_DIR/profile.json``,
:mod:`training.profile`) and write the model card.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant import config as cfg
from assistant.artifacts import METADATA_FILE
from assistant.errors import ConfigError

from .recordings import SYNTHESIZED, mix_recordings, recordings_digest


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
    p.add_argument("--profile-clips", type=int, default=300, help="synthesized clips of "
                   "held-out voices for the model's reference profile (monitoring; 300, at "
                   "least 40, and 100 for its encoder summary)")
    cfg.add_arguments(p, FinetuneConfig)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("profile", help="make the reference profile monitoring compares "
                       "live traffic with (from synthesized speech)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--context", type=Path, help="a grammar served zero-shot: writes "
                       "NAME.profile.json beside it")
    where.add_argument("--model", type=Path, help="a model directory: writes profile.json in it")
    p.add_argument("--out", type=Path, help="write the profile here instead")
    p.add_argument("--speech-model", default="tiny.en", help="for --context (default tiny.en)")
    p.add_argument("--precision", default="int8", choices=["int8", "fp32"],
                   help="for --context (default int8)")
    p.add_argument("-n", "--clips", type=int, default=300, help="synthesized clips (300; at "
                   "least 40, and 100 for the encoder summary)")
    p.add_argument("--other-share", type=float, default=0.1,
                   help="share of clips that are not commands of the grammar (0.1)")
    p.add_argument("--recordings", type=Path,
                   help="a folder with labels.jsonl and your own recordings to add")
    p.add_argument("--engines", help="only these TTS engines, comma-separated (default: all "
                   "installed)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("evaluate", help="evaluate a model directory on labelled audio")
    p.add_argument("--model", type=Path, help="model directory (default: zero-shot)")
    p.add_argument("--context", type=Path, help="grammar for zero-shot evaluation")
    p.add_argument("--data", type=Path, required=True, help="labels.jsonl")
    p.add_argument("--out", type=Path, help="where to write REPORT.md and plots")
    p.add_argument("--limit", type=int)
    p.set_defaults(func=cmd_evaluate)


def _say(message: str) -> None:
    print(f"[train] {message}", flush=True)


def check_out_dir(out: Path) -> None:
    """Refuse an ``--out`` that holds anything but a model directory (which is replaced)."""
    if out.is_file():
        raise ConfigError(f"--out {out} is a file; give a directory for the model")
    if out.is_dir() and any(out.iterdir()) and not (out / METADATA_FILE).is_file():
        raise ConfigError(f"--out {out} is not empty and not a model directory (no "
                          f"{METADATA_FILE}); refusing to replace it: choose a new directory")


def replace_dir(new: Path, out: Path) -> None:
    """Put the finished directory ``new`` at ``out``, replacing a model directory there."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        out.replace(old / out.name)
    new.replace(out)
    if old is not None:
        shutil.rmtree(old)


def _check_reuse(record: dict[str, Any], manifest: str, lineage: dict[str, Any],
                 run_dir: Path) -> None:
    """A finished run is reused only for the same training data."""
    trained = (record.get("train_manifest", SYNTHESIZED), record.get("recordings"))
    if trained != (manifest, lineage.get("recordings")):
        raise ConfigError(f"the finished run in {run_dir} trained on other data "
                          f"({trained[0]}, recordings {trained[1]}); use a new --work or "
                          f"delete {run_dir}")


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
    check_out_dir(args.out)
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
    manifest, lineage = SYNTHESIZED, {}
    if args.recordings:
        mixed, count = mix_recordings(args.recordings, data_dir)
        manifest = mixed.name
        lineage["recordings"] = {"path": str(args.recordings.resolve()), "count": count,
                                 "sha256": recordings_digest(args.recordings)}
        _say(f"mixed {count} of your recordings into {mixed.name} ({SYNTHESIZED} unchanged)")
    timings["data"] = time.monotonic() - t

    t = time.monotonic()
    experiment = run_dir / "experiment.json"
    if not experiment.is_file():
        _say(f"2/4 fine-tuning {settings.speech_model} on {settings.device}")
        train(data_dir, run_dir, settings, list(context.intent_names),
              data_version=data_info.get("data_version", ""), stop_manifest=steer.name,
              train_manifest=manifest, lineage=lineage)
    else:
        _check_reuse(json.loads(experiment.read_text()), manifest, lineage, run_dir)
        _say(f"2/4 reusing the finished run in {run_dir}")
    timings["fine_tune"] = time.monotonic() - t

    t = time.monotonic()
    _say(f"3/4 exporting the INT8 model to {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=args.out.parent, prefix=f".{args.out.name}.new-"))
    try:
        metadata = export(run_dir, args.context, data_dir, staging, settings.speech_model,
                          calibration_manifests=("val.jsonl", steer.name))
        replace_dir(staging, args.out)  # a model already there survives a failed export
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    timings["export"] = time.monotonic() - t

    t = time.monotonic()
    _say("4/4 evaluating on the held-out synthetic voices")
    from assistant.recognizer import Recognizer

    recognizer = Recognizer.from_model_dir(args.out)
    recognizer.warm_up()
    report = evaluate(recognizer, judge, args.out / "evaluation",
                      f"{args.context.stem}: unseen synthetic voices")
    timings["evaluate"] = time.monotonic() - t
    t = time.monotonic()
    try:
        write_training_profile(args.out, recognizer, args.context, args.profile_clips,
                               args.recordings)
    except ConfigError as e:  # a small run: the model works, drift just has no reference
        _say(f"no reference profile for monitoring ({e}); make one later with "
             f"'assistant profile --model {args.out}'")
    timings["profile"] = time.monotonic() - t
    timings["total"] = time.monotonic() - started
    write_model_card(args.out, metadata, data_info, report, timings)
    overall = report["overall"]
    _say(f"done in {timings['total'] / 60:.1f} min: unseen-voice command acceptance "
         f"{100 * (overall['command_acceptance'] or 0):.1f} %, false accepts "
         f"{100 * (overall['false_accept_rate'] or 0):.1f} %; model in {args.out}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from assistant.recognizer import Recognizer, RecognizerConfig

    from .profile import synthesized_profile

    if args.clips < 40:
        raise ConfigError(f"--clips must be at least 40, got {args.clips}")
    in_model = False  # written into the model directory, whose metadata lists it
    if args.model:
        from assistant.artifacts import read_metadata

        recognizer = Recognizer.from_model_dir(args.model)
        out = args.out or args.model / "profile.json"
        in_model = out.resolve().parent == args.model.resolve()
        if in_model and out.name != "profile.json":
            raise ConfigError(f"a model directory's profile is {args.model / 'profile.json'}; "
                              f"not {out}")
        # The grammar's name finds its near-domain questions, as `assistant train` does.
        grammar = Path(f"{read_metadata(args.model)['grammar']['name']}.yaml")
    else:
        config = RecognizerConfig(speech_model=args.speech_model, precision=args.precision)
        recognizer = Recognizer.from_context(args.context, config)
        out = args.out or args.context.with_name(args.context.stem + ".profile.json")
        grammar = args.context
    extra, extra_source = _profile_recordings(args.recordings)
    started = time.monotonic()
    made = synthesized_profile(recognizer, grammar, held_out=args.model is not None,
                               n=args.clips, other_share=args.other_share, seed=args.seed,
                               extra=extra, extra_source=extra_source,
                               engines=tuple(e.strip() for e in args.engines.split(",")
                                             if e.strip()) if args.engines else None)
    made.save(out)
    if in_model:
        from assistant.model_dir import record_file

        record_file(args.model, out.name)  # the model's metadata lists (and checks) it
    shares = made.signals["outcome"].to_json()["shares"]
    print(f"[profile] {made.utterances} utterances in {time.monotonic() - started:.0f} s; "
          f"understood {100 * shares.get('understood', 0):.0f} %; written to {out}")
    return 0


def _profile_recordings(recordings: Path | None) -> tuple[Any, dict[str, Any] | None]:
    """The user's recordings for a profile (their audio, and where they came from), or
    (None, None)."""
    from .profile import manifest_audio

    if recordings is None:
        return None, None
    labels = recordings / "labels.jsonl"
    if not labels.is_file():
        raise ConfigError(f"{recordings} has no labels.jsonl")
    return manifest_audio(labels), {"path": str(recordings.resolve()),
                                    "sha256": recordings_digest(recordings)}


def write_training_profile(out: Path, recognizer: Any, grammar: Path, clips: int,
                           recordings: Path | None) -> None:
    """``profile.json`` of a trained model: ``clips`` synthesized clips spoken by the
    catalogue's held-out voices (none of them in its training data), 10 % of them other
    speech, augmented as training data is, and the user's recordings when given.

    Not the judge split: at the default size it holds about 80 clips, a third of them
    negatives, too few for the encoder summary and a steady reference (a profile of 83
    clips moved drift tests on in-distribution traffic)."""
    from .profile import synthesized_profile

    if clips < 40:
        raise ConfigError(f"--profile-clips must be at least 40, got {clips}")
    extra, extra_source = _profile_recordings(recordings)
    made = synthesized_profile(recognizer, grammar, held_out=True, n=clips, extra=extra,
                               extra_source=extra_source, command="assistant train")
    made.save(out / "profile.json")


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
