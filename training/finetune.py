"""Fine-tune Whisper and the intent classifier on a synthesized dataset (CPU or CUDA).

    python -m training.finetune DATA_DIR --out RUN_DIR [--epochs 3] [--device cpu|cuda]

Reads the manifests ``training.prepare`` wrote (``DATA_DIR/{train,val}.jsonl``) and writes
``RUN_DIR/checkpoints/{last,best}.pt`` (resumable), TensorBoard event files under
``RUN_DIR/tensorboard`` and ``RUN_DIR/experiment.json`` (config, data version, metrics per
epoch). The best checkpoint is what ``training.export`` turns into a model directory.

Design against the synthetic-to-real gap: the bottom of the encoder (convolutions and all but
``train_encoder_layers`` layers) stays frozen, as pretrained on real speech, so only the top
layers adapt to the domain, noise and rooms; the decoder learns the grammar's phrasing from
both commands and out-of-grammar speech (transcribed faithfully, so it keeps writing what it
hears rather than forcing every sound into a command); the classifier learns intents and an
out-of-domain class from the same encoder states.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from assistant.audio import SAMPLE_RATE_HZ, read_audio
from assistant.ct2 import read_ct2_model
from assistant.errors import ConfigError
from assistant.features import frames_for_duration, log_mel_spectrogram
from assistant.hf import build_hf_model
from assistant.pretrained import locate
from assistant.tokenizer import Tokenizer, load_tokenizer
from assistant.vad import SileroVad, speech_spans
from assistant.whisper_weights import state_dict_from_ct2

from .classifier import OUT_OF_DOMAIN, IntentClassifier
from .finetune_config import FinetuneConfig
from .targets import written_form

logger = logging.getLogger("training.finetune")

TRAILING_PAD_S = 1.0  # as the recognizer pads (RecognizerConfig.trailing_pad_ms)


@dataclass
class Batch:
    frozen: torch.Tensor  # [B, positions, d] output of the frozen encoder part
    tokens: torch.Tensor  # [B, T] decoder input (prompt + target without the last)
    labels: torch.Tensor  # [B, T] next tokens, -100 where not scored
    classes: torch.Tensor  # [B]


def read_manifest(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        row["_audio_path"] = str((path.parent / row["audio"]).resolve())
    return rows


def class_labels(intents: list[str]) -> list[str]:
    return [*intents, OUT_OF_DOMAIN]


def target_tokens(row: dict[str, Any], tokenizer: Tokenizer) -> list[int] | None:
    """What the decoder should write: the words spoken (commands and other speech alike),
    nothing for non-speech; None when the words are unknown (a recording labelled with an
    intent only), so the row trains the classifier alone."""
    if row.get("kind") == "non_speech":
        return []
    if not row.get("text"):
        return None
    return tokenizer.encode(written_form(row["text"]))


def utterance_audio(path: str, vad: SileroVad) -> np.ndarray:
    """Cut to the speech, then the recognizer's trailing silence.

    The cut uses the VAD's default padding (30 ms around the speech), as the calibration in
    :mod:`training.export` and :mod:`training.calibrate` does; the recognizer itself pads
    200 ms (``assistant.recording.RECORDING_ENDPOINT``, ``assistant.stream``). Aligning them
    means refitting the shipped calibrations and retraining, so it is left as it is.
    """
    return utterance_audios([path], vad)[0]


def utterance_audios(paths: Sequence[str], vad: SileroVad, chunk: int = 256) -> list[np.ndarray]:
    """:func:`utterance_audio` of many clips, the VAD batched (``chunk`` clips read at once)."""
    out = []
    for first in range(0, len(paths), chunk):
        audios = [read_audio(p) for p in paths[first : first + chunk]]
        for audio, span in zip(audios, speech_spans(audios, vad), strict=True):
            if span is not None:
                audio = audio[span[0] : span[1]]
            out.append(np.concatenate(
                [audio, np.zeros(int(TRAILING_PAD_S * SAMPLE_RATE_HZ), np.float32)]))
    return out


class WhisperForCommands(nn.Module):
    """The Transformers Whisper split at the frozen/trainable boundary, plus the classifier."""

    whisper: Any  # transformers' WhisperForConditionalGeneration (attributes built at run time)

    def __init__(self, whisper: Any, n_classes: int, train_layers: int):
        super().__init__()
        self.whisper = whisper
        encoder = whisper.model.encoder
        self.split = len(encoder.layers) - train_layers
        self.classifier = IntentClassifier(whisper.config.d_model, n_classes)
        for p in encoder.parameters():
            p.requires_grad = False
        for layer in encoder.layers[self.split :]:
            for p in layer.parameters():
                p.requires_grad = True
        for p in encoder.layer_norm.parameters():
            p.requires_grad = train_layers > 0
        # The token embedding is tied to the output projection: keep the vocabulary fixed.
        whisper.model.decoder.embed_tokens.weight.requires_grad = False

    @torch.no_grad()
    def frozen_part(self, mel: torch.Tensor) -> torch.Tensor:
        encoder = self.whisper.model.encoder
        x = nn.functional.gelu(encoder.conv1(mel))
        x = nn.functional.gelu(encoder.conv2(x)).permute(0, 2, 1)
        x = x + encoder.embed_positions.weight[: x.shape[1]]
        for layer in encoder.layers[: self.split]:
            x = _run_layer(layer, x)
        return x

    def forward(
        self, frozen: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = self.whisper.model.encoder
        x = frozen
        for layer in encoder.layers[self.split :]:
            x = _run_layer(layer, x)
        states = encoder.layer_norm(x)
        hidden = self.whisper.model.decoder(input_ids=tokens,
                                            encoder_hidden_states=states).last_hidden_state
        return self.whisper.proj_out(hidden), self.classifier(states)


def _run_layer(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = layer(x, attention_mask=None)
    return out[0] if isinstance(out, tuple) else out


def load_pretrained(name: str) -> tuple[nn.Module, Tokenizer]:
    files = locate(name)
    tokenizer = load_tokenizer(files.tokenizer)
    dims, state_dict = state_dict_from_ct2(read_ct2_model(files.weight_parts))
    return build_hf_model(dims, state_dict, tokenizer.special_tokens()), tokenizer


def make_batches(rows: list[dict[str, Any]], model: WhisperForCommands, tokenizer: Tokenizer,
                 labels: list[str], batch_size: int, device: torch.device,
                 vad: SileroVad, progress: str) -> list[Batch]:
    """Group clips of similar length, run the frozen encoder part once, keep the results."""
    prompt = list(tokenizer.special_tokens().sot_sequence(model.whisper.config.vocab_size
                                                          >= 51865))
    eot = tokenizer.special_tokens().eot
    audios = utterance_audios([r["_audio_path"] for r in rows], vad)
    order = sorted(range(len(rows)), key=lambda i: audios[i].size)
    batches: list[Batch] = []
    started = time.monotonic()
    for b in range(0, len(order), batch_size):
        index = order[b : b + batch_size]
        frames = min(frames_for_duration(max(audios[i].size for i in index)), 3000)
        mel = np.stack([log_mel_spectrogram(audios[i], n_frames=frames) for i in index])
        frozen = model.frozen_part(torch.from_numpy(mel).to(device)).to(torch.float16)
        words = [target_tokens(rows[i], tokenizer) for i in index]
        targets = [prompt + (w or []) + [eot] for w in words]
        width = max(len(t) for t in targets) - 1
        tokens = torch.full((len(index), width), eot, dtype=torch.long)
        label = torch.full((len(index), width), -100, dtype=torch.long)
        for j, t in enumerate(targets):
            tokens[j, : len(t) - 1] = torch.tensor(t[:-1])
            if words[j] is not None:  # unknown words: no decoder loss for this row
                label[j, len(prompt) - 1 : len(t) - 1] = torch.tensor(t[len(prompt) :])
        classes = torch.tensor([labels.index(rows[i]["intent"]) if rows[i].get("intent")
                                else len(labels) - 1 for i in index])
        batches.append(Batch(frozen.cpu(), tokens, label, classes))
        print(f"\r[finetune] {progress}: {min(b + batch_size, len(order))}/{len(order)} clips "
              f"({time.monotonic() - started:.0f} s)", end="", flush=True)
    print(flush=True)
    return batches


def _lr_lambda(warmup: int, total: int) -> Any:
    def scale(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return scale


def evaluate_batches(model: WhisperForCommands, batches: list[Batch],
                     device: torch.device) -> dict[str, float]:
    model.eval()
    loss_sum = tokens = correct = total = 0.0
    with torch.no_grad():
        for batch in batches:
            logits, class_logits = model(batch.frozen.to(device).float(), batch.tokens.to(device))
            labels = batch.labels.to(device)
            loss_sum += float(nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="sum"))
            tokens += float((labels != -100).sum())
            correct += float((class_logits.argmax(-1).cpu() == batch.classes).sum())
            total += len(batch.classes)
    model.train()
    return {"decoder_loss": loss_sum / max(tokens, 1), "intent_accuracy": correct / max(total, 1)}


def train(data_dir: Path, out: Path, config: FinetuneConfig, intents: list[str],
          data_version: str = "", stop_manifest: str = "val.jsonl",
          train_manifest: str = "train.jsonl",
          lineage: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fine-tune; returns the experiment record (also written to ``out/experiment.json``).

    Trains on ``train_manifest`` (``assistant train --recordings`` passes the manifest with
    the user's recordings mixed in, :mod:`training.recordings`). Early stopping watches
    ``stop_manifest`` (``assistant train`` passes the unseen-voice half of
    :mod:`training.holdout`). ``lineage`` (e.g. the recordings' digest) goes into the record.
    """
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    device = torch.device(config.device)
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    labels = class_labels(intents)
    whisper, tokenizer = load_pretrained(config.speech_model)
    model = WhisperForCommands(whisper, len(labels), config.train_encoder_layers).to(device)
    vad = SileroVad()
    started = time.monotonic()
    train_batches = make_batches(read_manifest(data_dir / train_manifest), model, tokenizer,
                                 labels, config.batch_size, device, vad, "train features")
    val_batches = make_batches(read_manifest(data_dir / stop_manifest), model, tokenizer,
                               labels, config.batch_size, device, vad,
                               f"{stop_manifest} features")
    features_s = time.monotonic() - started
    encoder = model.whisper.model.encoder
    groups = [
        {"params": [p for p in model.whisper.model.decoder.parameters() if p.requires_grad],
         "lr": config.lr_decoder},
        {"params": [p for p in encoder.parameters() if p.requires_grad],
         "lr": config.lr_encoder},
        {"params": list(model.classifier.parameters()), "lr": config.lr_head},
    ]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]],
                                  weight_decay=config.weight_decay)
    steps_per_epoch = len(train_batches)
    total = config.epochs * steps_per_epoch
    if config.max_steps:
        total = min(total, config.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  _lr_lambda(config.warmup_steps, total))
    record: dict[str, Any] = {"config": dataclasses.asdict(config), "data_dir": str(data_dir),
                              "data_version": data_version, "labels": labels, "epochs": [],
                              "early_stopping_on": stop_manifest,
                              "train_manifest": train_manifest, **(lineage or {}),
                              "train_clips": sum(len(b.classes) for b in train_batches),
                              "val_clips": sum(len(b.classes) for b in val_batches),
                              "feature_seconds": round(features_s, 1)}
    step, start_epoch, best, stale = 0, 0, math.inf, 0
    last = out / "checkpoints" / "last.pt"
    if last.is_file():  # resume
        state = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, start_epoch, best, stale = (state["step"], state["epoch"] + 1, state["best"],
                                          state["stale"])
        record["epochs"] = state["record_epochs"]
        logger.info("resumed from %s at epoch %d, step %d", last, start_epoch, step)
    writer = SummaryWriter(str(out / "tensorboard"))
    rng = random.Random(config.seed)
    model.train()
    for epoch in range(start_epoch, config.epochs):
        order = list(range(steps_per_epoch))
        rng.shuffle(order)
        epoch_started = time.monotonic()
        for n, i in enumerate(order):
            if config.max_steps and step >= config.max_steps:
                break
            batch = train_batches[i]
            logits, class_logits = model(batch.frozen.to(device).float(),
                                         batch.tokens.to(device))
            decoder_loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch.labels.to(device).reshape(-1))
            class_loss = nn.functional.cross_entropy(class_logits, batch.classes.to(device))
            loss = decoder_loss + config.classifier_weight * class_loss
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            writer.add_scalar("train/decoder_loss", decoder_loss.item(), step)
            writer.add_scalar("train/classifier_loss", class_loss.item(), step)
            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
            print(f"\r[finetune] epoch {epoch + 1}/{config.epochs} step {n + 1}/"
                  f"{steps_per_epoch} loss {loss.item():.3f}", end="", flush=True)
        print(flush=True)
        metrics = evaluate_batches(model, val_batches, device)
        metrics.update({"epoch": epoch + 1, "step": step,
                        "seconds": round(time.monotonic() - epoch_started, 1)})
        record["epochs"].append(metrics)
        for key in ("decoder_loss", "intent_accuracy"):
            writer.add_scalar(f"val/{key}", metrics[key], step)
        score = metrics["decoder_loss"] + (1 - metrics["intent_accuracy"])
        improved = score < best
        if improved:
            best, stale = score, 0
            torch.save({"model": model.state_dict(), "labels": labels, "config": record["config"]},
                       out / "checkpoints" / "best.pt")
        else:
            stale += 1
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "step": step, "epoch": epoch,
                    "best": best, "stale": stale, "record_epochs": record["epochs"]}, last)
        print(f"[finetune] epoch {epoch + 1}: val decoder loss {metrics['decoder_loss']:.3f}, "
              f"intent accuracy {metrics['intent_accuracy']:.3f}"
              f"{' (best)' if improved else ''}", flush=True)
        if stale >= config.patience or (config.max_steps and step >= config.max_steps):
            break
    if config.head_epochs and (out / "checkpoints" / "best.pt").is_file():
        record["head"] = fit_head(model, out / "checkpoints" / "best.pt", train_batches,
                                  val_batches, config, device, writer)
    writer.close()
    record["train_seconds"] = round(time.monotonic() - started, 1)
    (out / "experiment.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


@torch.no_grad()
def _final_states(model: WhisperForCommands, batches: list[Batch],
                  device: torch.device) -> list[torch.Tensor]:
    encoder = model.whisper.model.encoder
    out = []
    for batch in batches:
        x = batch.frozen.to(device).float()
        for layer in encoder.layers[model.split :]:
            x = _run_layer(layer, x)
        out.append(encoder.layer_norm(x).to(torch.float16).cpu())
    return out


def fit_head(model: WhisperForCommands, best: Path, train_batches: list[Batch],
             val_batches: list[Batch], config: FinetuneConfig, device: torch.device,
             writer: Any) -> dict[str, Any]:
    """Train the intent classifier alone on the best checkpoint's final encoder states.

    Joint fine-tuning stops when the decoder is done, which is early for a head that starts
    from random weights; with the encoder fixed its states are computed once, so many more
    passes cost seconds. Keeps the epoch with the best accuracy on the early-stopping data.
    """
    state = torch.load(best, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    model.eval()
    train_states = _final_states(model, train_batches, device)
    val_states = _final_states(model, val_batches, device)
    head = model.classifier
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr_head, weight_decay=0.01)

    def accuracy() -> float:
        head.eval()
        with torch.no_grad():
            right = sum(int((head(s.to(device).float()).argmax(-1).cpu() == b.classes).sum())
                        for s, b in zip(val_states, val_batches, strict=True))
        head.train()
        return right / max(1, sum(len(b.classes) for b in val_batches))

    best_accuracy, best_head, history = accuracy(), dict(head.state_dict()), []
    start_accuracy = best_accuracy
    rng = random.Random(config.seed)
    head.train()
    for epoch in range(config.head_epochs):
        order = list(range(len(train_batches)))
        rng.shuffle(order)
        for i in order:
            loss = nn.functional.cross_entropy(head(train_states[i].to(device).float()),
                                               train_batches[i].classes.to(device))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        value = accuracy()
        history.append(round(value, 4))
        writer.add_scalar("head/intent_accuracy", value, epoch + 1)
        if value > best_accuracy:
            best_accuracy = value
            best_head = {k: v.detach().clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_head)
    state["model"] = model.state_dict()
    torch.save(state, best)
    print(f"[finetune] classifier head: intent accuracy {start_accuracy:.3f} -> "
          f"{best_accuracy:.3f} on the early-stopping data", flush=True)
    return {"epochs": config.head_epochs, "start_accuracy": start_accuracy,
            "best_accuracy": best_accuracy, "history": history}


def load_best(run_dir: Path, speech_model: str) -> tuple[WhisperForCommands, list[str]]:
    state = torch.load(run_dir / "checkpoints" / "best.pt", map_location="cpu",
                       weights_only=False)
    config = state["config"]
    whisper, _ = load_pretrained(speech_model)
    model = WhisperForCommands(whisper, len(state["labels"]), config["train_encoder_layers"])
    model.load_state_dict(state["model"])
    return model.eval(), state["labels"]


def main(argv: list[str] | None = None) -> int:
    from assistant import config as cfg
    from assistant.grammar import load_context

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--context", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    cfg.add_arguments(parser, FinetuneConfig)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    context = load_context(args.context)
    train(args.data_dir, args.out, cfg.build(FinetuneConfig, args), list(context.intent_names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
