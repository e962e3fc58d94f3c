"""A user's own labelled recordings mixed into the training data, without touching the dataset.

``assistant train --recordings DIR`` reads ``DIR/labels.jsonl`` (``{"audio", "intent" (null:
not a command), "slots", "text"?}``; without ``text`` a recording trains the intent classifier
only, not the decoder) and writes a *separate* manifest, ``DATA_DIR/train+recordings.jsonl``:
the synthesized ``train.jsonl`` as the data stage wrote it, plus each recording ``copies``
times, shuffled. It is rebuilt from those two on every run, so a resumed or repeated run sees
the recordings exactly ``copies`` times, and ``train.jsonl`` stays the data stage's own.

:func:`recordings_digest` names the recordings' version (the labels and every audio file) so
the fine-tuning record can say which recordings a model learned from.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from assistant.artifacts import sha256_file
from assistant.errors import ConfigError
from assistant.evaluation import read_labels

SYNTHESIZED = "train.jsonl"  # the data stage's training split
MIXED = "train+recordings.jsonl"
DEFAULT_COPIES = 3


def recording_rows(recordings: Path, copies: int = DEFAULT_COPIES) -> list[dict[str, Any]]:
    """Manifest rows for the recordings in ``recordings/labels.jsonl``, each ``copies`` times."""
    labels_file = recordings / "labels.jsonl"
    labels = read_labels(labels_file)
    texts = [json.loads(line).get("text") for line in labels_file.read_text().splitlines()
             if line.strip()]
    rows: list[dict[str, Any]] = []
    for label, text in zip(labels, texts, strict=True):
        if not label.audio.is_file():
            raise ConfigError(f"{labels_file}: recording {label.audio} does not exist")
        rows += [{"audio": str(label.audio.resolve()), "text": text, "intent": label.intent,
                  "slots": label.slots, "kind": "recording", "engine": "recording",
                  "voice": "user"}] * copies
    if not rows:
        raise ConfigError(f"{labels_file} lists no recordings")
    return rows


def recordings_digest(recordings: Path) -> str:
    """sha256 over ``labels.jsonl`` and the audio files it names, in order."""
    labels_file = recordings / "labels.jsonl"
    digest = hashlib.sha256(labels_file.read_bytes())
    for label in read_labels(labels_file):
        digest.update(sha256_file(label.audio).encode())
    return digest.hexdigest()


def mix_recordings(recordings: Path, data_dir: Path, copies: int = DEFAULT_COPIES,
                   seed: int = 0) -> tuple[Path, int]:
    """Write ``data_dir/train+recordings.jsonl`` (see module docs); returns it and how many
    recordings went in. ``train.jsonl`` is only read."""
    synthesized = data_dir / SYNTHESIZED
    rows = [json.loads(line) for line in synthesized.read_text().splitlines() if line.strip()]
    if any(r.get("kind") == "recording" for r in rows):
        raise ConfigError(f"{synthesized} already holds recordings (written by an older "
                          f"version that mixed them in place): delete {data_dir} and rerun")
    mixed = recording_rows(recordings, copies)
    rows += mixed
    random.Random(seed).shuffle(rows)
    out = data_dir / MIXED
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out)
    return out, len(mixed) // copies
