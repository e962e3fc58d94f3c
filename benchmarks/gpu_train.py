"""Time the fine-tuning stage of ``assistant train`` on a GPU, with a dataset's real shapes.

    python benchmarks/gpu_train.py --data DATA_DIR [--device cuda] [--epochs 3] [--out FILE]

For a GPU machine that cannot receive the synthesized audio or the Whisper weights (a
transfer cap, no package index; where it can, run ``assistant train --device cuda`` there
instead), this runs ``training.finetune.train`` unchanged on the same clips, texts and
batches, with two stand-ins that cost exactly what the originals cost: each clip is noise of
the length the VAD cut gave it here (``durations.json`` beside the manifests, written by
``--write-durations``), and the model is tiny.en's architecture with random weights. It
measures time only; accuracy comes from the CPU runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TINY_EN = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6,
           "n_audio_layer": 4, "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 384,
           "n_text_head": 6, "n_text_layer": 4}
MANIFESTS = ("train.jsonl", "val.jsonl", "holdout_a.jsonl")


def write_durations(data_dir: Path) -> Path:
    """Record the VAD-cut length of every clip (run where the audio is)."""
    from assistant.vad import SileroVad
    from training.finetune import read_manifest, utterance_audio

    vad = SileroVad()
    durations = {}
    for name in MANIFESTS:
        for row in read_manifest(data_dir / name):
            durations[row["_audio_path"].split("/audio/", 1)[-1]] = int(
                utterance_audio(row["_audio_path"], vad).size)
    path = data_dir / "durations.json"
    path.write_text(json.dumps(durations))
    return path


def run(data_dir: Path, tokenizer_file: Path, device: str, epochs: int) -> dict[str, Any]:
    import torch

    import training.finetune as finetune
    from assistant.hf import whisper_config
    from assistant.tokenizer import load_tokenizer
    from assistant.whisper_weights import WhisperDims

    durations: dict[str, int] = json.loads((data_dir / "durations.json").read_text())
    rng = np.random.default_rng(0)
    tokenizer = load_tokenizer(tokenizer_file)

    def noise_clips(paths: list[str], vad: object) -> list[np.ndarray]:
        return [(0.05 * rng.standard_normal(durations[p.split("/audio/", 1)[-1]]))
                .astype(np.float32) for p in paths]

    def random_whisper(name: str) -> tuple[Any, Any]:
        from transformers import WhisperForConditionalGeneration

        config = whisper_config(WhisperDims(**TINY_EN), tokenizer.special_tokens())
        return WhisperForConditionalGeneration(config).eval(), tokenizer

    class NoVad:
        pass

    finetune.utterance_audios = noise_clips  # type: ignore[assignment]
    finetune.load_pretrained = random_whisper
    finetune.SileroVad = NoVad  # type: ignore[assignment,misc]
    config = finetune.FinetuneConfig(device=device, epochs=epochs, patience=epochs + 1)
    intents = sorted({r["intent"] for r in map(json.loads, (data_dir / "train.jsonl")
                                               .read_text().splitlines()) if r.get("intent")})
    out = Path("/tmp/gpu_train_run")
    started = time.monotonic()
    record = finetune.train(data_dir, out, config, intents, stop_manifest="holdout_a.jsonl")
    total = time.monotonic() - started
    return {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "train_clips": record["train_clips"],
        "epochs": len(record["epochs"]),
        "feature_seconds": record["feature_seconds"],
        "epoch_seconds": [e["seconds"] for e in record["epochs"]],
        "fine_tune_stage_seconds": round(total, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, help="tiny.en tokenizer.json")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--write-durations", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from benchmarks.report import save_json

    if args.write_durations:
        print(write_durations(args.data))
        return 0
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to time", file=sys.stderr)
        return 0
    report = run(args.data, args.tokenizer, args.device, args.epochs)
    print(json.dumps(report, indent=2))
    if args.out:
        save_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
