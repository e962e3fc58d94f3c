"""The evaluation sets every benchmark reads, and how a quick run subsamples them.

* ``barista-dev``: 100 real recordings of coffee orders with labels (acceptance);
* ``digits-dev``: 300 real spoken digits, none a command of the barista grammar (rejection);
* ``benchmarks/data/out_of_grammar_barista.txt``: sentences outside the grammar, synthesized
  at run time with four TTS voices (rejection).

Subsamples are evenly spaced over the file order (deterministic, every part of the set
represented), never random.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from assistant.evaluation import Label, read_labels

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
OOG_SENTENCES = REPO / "benchmarks" / "data" / "out_of_grammar_barista.txt"
OOG_VOICES = ("espeak:en-us+m3", "espeak:en-gb+f1", "flite:slt", "festival:kal")

T = TypeVar("T")


def subsample(items: Sequence[T], limit: int | None) -> list[T]:
    """``limit`` items evenly spaced over ``items`` (all of them when ``limit`` is None)."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def have_data(data: Path = DATA) -> bool:
    return (data / "barista-dev" / "labels.jsonl").is_file()


def barista_grammar(data: Path = DATA) -> Path:
    return data / "barista-dev" / "coffee_maker.yaml"


def barista_labels(data: Path = DATA, limit: int | None = None) -> list[Label]:
    return subsample(read_labels(data / "barista-dev" / "labels.jsonl"), limit)


def digits_labels(data: Path = DATA, limit: int | None = None) -> list[Label]:
    """The spoken digits as out-of-grammar labels (``intent`` None: must be rejected)."""
    rows = [json.loads(line) for line in
            (data / "digits-dev" / "labels.jsonl").read_text().splitlines() if line.strip()]
    return subsample([Label(data / "digits-dev" / row["audio"], None, {}) for row in rows],
                     limit)


def oog_sentences(path: Path = OOG_SENTENCES) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def synthesized_oog(path: Path = OOG_SENTENCES,
                    limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """The out-of-grammar sentences spoken by TTS voices (each with half a second of silence
    around it); voices whose engine is not installed are skipped."""
    from training.tts import Voice, engine_available, synthesize

    sentences = list(enumerate(oog_sentences(path)))
    clips = []
    for i, sentence in subsample(sentences, limit):
        engine, name = OOG_VOICES[i % len(OOG_VOICES)].split(":")
        if not engine_available(engine):
            continue
        audio = synthesize(sentence, Voice(engine, name))
        pad = np.zeros(8000, np.float32)
        clips.append((sentence, np.concatenate([pad, audio, pad])))
    return clips
