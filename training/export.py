"""A fine-tuned checkpoint -> a self-describing INT8 ONNX model directory.

    python -m training.export RUN_DIR --context CONTEXT.yaml --data DATA_DIR --out MODEL_DIR

Writes the speech model (``encoder.onnx``, ``decoder.onnx``, INT8 per-channel), the intent
classifier (``classifier.onnx``), the grammar, a confidence calibration fitted on the
synthesized validation split with the exported model itself, ``metadata.json`` (what, how,
versions, checksums) and ``MODEL_CARD.md``. Parity with PyTorch is checked before anything is
declared done: encoder states and classifier probabilities within tolerance, and the same
greedy transcript.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assistant.artifacts import (
    METADATA_FILE,
    read_metadata,
    write_metadata,
    write_speech_model,
)
from assistant.confidence import (
    CLASSIFIER_FEATURES,
    COMPACT_FEATURES,
    FEATURES,
    builtin_calibration,
    fit_parsimonious,
)
from assistant.errors import ModelError
from assistant.features import frames_for_duration, log_mel_spectrogram
from assistant.grammar import load_context
from assistant.hf import state_dict_from_hf
from assistant.intent_classifier import CLASSIFIER_FILE
from assistant.model_dir import CONTEXT_FILE
from assistant.onnx_graph import build_classifier
from assistant.pretrained import locate
from assistant.recognizer import Recognizer
from assistant.vad import SileroVad, speech_span
from assistant.whisper_weights import dims_from_ct2

from .finetune import WhisperForCommands, load_best, read_manifest, utterance_audio

logger = logging.getLogger("training.export")

ENCODER_ATOL = 2e-3  # FP32 ONNX vs PyTorch, real weights
CLASSIFIER_ATOL = 1e-3


def _check_parity(model: WhisperForCommands, fp32_dir: Path, labels: list[str],
                  audio: np.ndarray) -> dict[str, float]:
    """FP32 ONNX against PyTorch on one utterance."""
    from assistant.intent_classifier import IntentClassifier
    from assistant.speech_model import SpeechModel

    mel = log_mel_spectrogram(audio, n_frames=frames_for_duration(audio.size))
    onnx_model = SpeechModel(fp32_dir)
    encoded = onnx_model.encode(mel)
    with torch.no_grad():
        frozen = model.frozen_part(torch.from_numpy(mel[None]))
        x = frozen
        for layer in model.whisper.model.encoder.layers[model.split :]:
            out = layer(x, attention_mask=None)
            x = out[0] if isinstance(out, tuple) else out
        states = model.whisper.model.encoder.layer_norm(x)
        probs = torch.softmax(model.classifier(states), -1).numpy()[0]
    encoder_error = float(np.abs(encoded.hidden - states.numpy()).max())
    classifier = IntentClassifier(fp32_dir / CLASSIFIER_FILE, labels)
    classifier_error = float(np.abs(classifier.classify(encoded.hidden).probs - probs).max())
    if encoder_error > ENCODER_ATOL or classifier_error > CLASSIFIER_ATOL:
        raise ModelError(f"ONNX export differs from PyTorch: encoder {encoder_error:.2e} "
                         f"(tolerance {ENCODER_ATOL}), classifier {classifier_error:.2e} "
                         f"(tolerance {CLASSIFIER_ATOL})")
    return {"encoder_max_abs_error": encoder_error, "classifier_max_abs_error": classifier_error}


def _write(out: Path, model: WhisperForCommands, labels: list[str], speech_model: str,
           precision: str, extra: dict[str, Any]) -> None:
    import onnx

    files = locate(speech_model)
    tokenizer_json = json.loads(files.tokenizer.read_text(encoding="utf-8"))
    from assistant.ct2 import read_ct2_model
    from assistant.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(files.tokenizer)
    if tokenizer.restored_merges:
        merges = tokenizer_json["model"]["merges"]
        for merge in reversed(tokenizer.restored_merges):
            merges.insert(0, merge if isinstance(merges[0], str) else merge.split(" "))
    dims = dims_from_ct2(read_ct2_model(files.weight_parts))
    write_speech_model(out, dims, state_dict_from_hf(model.whisper), tokenizer_json,
                       tokenizer.special_tokens(), f"{speech_model}-commands", precision,
                       extra={"source_model": speech_model, **extra})
    classifier = build_classifier(model.classifier.export_weights(), labels)
    onnx.save(classifier, str(out / CLASSIFIER_FILE))


def _finish_metadata(out: Path, updates: dict[str, Any]) -> dict[str, Any]:
    metadata = json.loads((out / METADATA_FILE).read_text())
    metadata.update(updates)
    write_metadata(out, metadata)
    return metadata


def calibrate(recognizer: Recognizer, rows: list[dict[str, Any]], vad: SileroVad) -> dict[str, Any]:
    """Fit the confidence map on synthesized clips with the exported model."""
    from assistant.audio import read_audio

    names = FEATURES + CLASSIFIER_FEATURES
    x: list[dict[str, float]] = []
    y: list[float] = []
    for row in rows:
        audio = read_audio(row["_audio_path"])
        span = speech_span(audio, vad)
        if span is None:
            continue
        analysis = recognizer.analyze(audio[span[0] : span[1]])
        if analysis.features is None:
            continue
        right = (row.get("intent") is not None and analysis.annotation is not None
                 and analysis.annotation.intent == row["intent"]
                 and dict(analysis.annotation.slots) == dict(row.get("slots") or {}))
        x.append({n: analysis.features[n] for n in names})
        y.append(float(right))
    if len(set(y)) < 2 or len(y) < 20:
        # Too little to fit (a tiny dataset): keep the pretrained model's shipped calibration.
        logger.warning("calibration data too small (%d clips, %d right): using the zero-shot "
                       "calibration of %s", len(y), int(sum(y)), recognizer.model.metadata.get(
                           "source_model", "tiny.en"))
        fallback = builtin_calibration(recognizer.model.metadata.get("source_model", "tiny.en"))
        data = fallback.to_json()
        data["info"] = {**data["info"], "fallback": "too little calibration data",
                        "clips": len(y)}
        return data
    calibration = fit_parsimonious(x, np.array(y), (COMPACT_FEATURES, FEATURES, names))
    data = calibration.to_json()
    data["info"] = {"data": "synthesized validation split of this model's dataset",
                    "clips": len(y), "positives": int(sum(y)), **calibration.info}
    return data


def export(run_dir: Path, context_path: Path, data_dir: Path, out: Path,
           speech_model: str = "tiny.en", calibration_clips: int = 600,
           calibration_manifests: tuple[str, ...] = ("val.jsonl",)) -> dict[str, Any]:
    model, labels = load_best(run_dir, speech_model)
    context = load_context(context_path)
    intents = list(context.intent_names)
    if labels[:-1] != intents:
        raise ModelError(f"checkpoint intents {labels[:-1]} do not match the grammar's {intents}")
    if out.exists() and any(out.iterdir()):
        raise ModelError(f"{out} exists and is not empty; choose a new directory")
    experiment = json.loads((run_dir / "experiment.json").read_text())
    val_rows = read_manifest(data_dir / "val.jsonl")
    vad = SileroVad()
    sample = next((r for r in val_rows if r.get("intent")), val_rows[0])
    extra = {"kind": "fine-tuned",
             "training": {"run": str(run_dir), "data_version": experiment.get("data_version"),
                          "epochs": experiment["epochs"], "config": experiment["config"],
                          "train_clips": experiment["train_clips"],
                          "train_manifest": experiment.get("train_manifest", "train.jsonl"),
                          "recordings": experiment.get("recordings")}}
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "fp32"
        _write(fp32, model, labels, speech_model, "fp32", extra)
        parity = _check_parity(model, fp32, labels, utterance_audio(sample["_audio_path"], vad))
    _write(out, model, labels, speech_model, "int8", extra)
    shutil.copyfile(context_path, out / CONTEXT_FILE)
    grammar = {"file": CONTEXT_FILE, "name": context_path.stem, "sha256": context.sha256,
               "intents": intents}
    _finish_metadata(out, {"grammar": grammar, "classifier": {"file": CLASSIFIER_FILE,
                                                              "labels": labels},
                           "calibration": {"features": [], "mean": [], "scale": [],
                                           "weights": [], "bias": 0.0},
                           "parity": parity, "recognizer": {"threshold": 0.5}})
    recognizer = Recognizer.from_model_dir(out)
    rows = [r for name in calibration_manifests for r in read_manifest(data_dir / name)]
    rng = np.random.default_rng(0)
    chosen = [rows[i] for i in rng.permutation(len(rows))[:calibration_clips]]
    calibration = calibrate(recognizer, chosen, vad)
    calibration["info"]["data"] = "synthesized: " + " + ".join(calibration_manifests)
    metadata = _finish_metadata(out, {"calibration": calibration})
    read_metadata(out, verify=True)
    return metadata
