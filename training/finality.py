"""Fit the finality probe of a speech model (:mod:`assistant.finality`) on synthesized speech.

    python -m training.finality --speech-model tiny.en --out assistant/finality_probes/tiny.en.json

For sentences of the calibration grammars (the shipped home context and every
``training/grammars/*.yaml``; never an evaluation grammar) of three words or more, spoken by
every TTS engine installed (espeak-ng, flite and festival voices, Piper's joe), two clips
each, cut the way a grammar-endpointing speculation sees an utterance (30-100 ms of background
before, the speech, 30-130 ms of the pause):

* **finished**: the whole sentence (label 1);
* **cut**: the sentence cut at a dip of its level inside the speech (at least 30 ms, 25 dB
  under its loud frames, in the middle 60 % of it), as a speaker who pauses mid-sentence
  (label 0). Such a dip is mostly between words, sometimes a stop consonant's closure.

A low background of white noise (-70 to -50 dBFS) lies under every clip. The probe is an
L2-regularized logistic regression on :func:`assistant.finality.finality_features`. Each
engine in turn is predicted by a probe fitted on the others (leave one engine out): the
report gives their AUCs, and the two **thresholds** are read off those held-out predictions:
``finished_at``, the lowest at which at most ``--max-error`` (2 %) of the cuts pass (a speaker
who pauses mid-sentence is rarely taken for finished by a probe that never heard their
voice), and ``unfinished_below``, the highest under which at most as many of the finished
sentences fall (a finished one is rarely made to wait longest). Between them the probe
cannot tell, and the endpointing keeps the grammar's wait. The probe written is then fitted
on all clips.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.audio import SAMPLE_RATE_HZ
from assistant.confidence import fit_logistic
from assistant.finality import FinalityProbe, finality_features
from assistant.grammar import load_context, sample_sentences
from assistant.levels import level_dips, speech_end_s

from .tts import Voice, default_voices, synthesize

logger = logging.getLogger("training.finality")
HERE = Path(__file__).resolve().parent
GRAMMARS = (HERE.parent / "assistant" / "contexts" / "home.yaml",
            *sorted((HERE / "grammars").glob("*.yaml")))
L2 = 10.0  # per standardized weight; leave-one-engine-out AUC was flat over 1-100


@dataclass(frozen=True)
class Clip:
    engine: str
    grammar: str
    finished: bool
    features: np.ndarray


def _voices() -> dict[str, list[Voice]]:
    by_engine: dict[str, list[Voice]] = {}
    for voice in default_voices():
        by_engine.setdefault(voice.engine, []).append(voice)
    try:
        by_engine["piper"] = [Voice("piper", "joe", noise_scale=0.667, seed=s) for s in range(5)]
    except Exception as e:  # piper-tts or its voice not installed
        logger.warning("no Piper voice: %s", e)
    return by_engine


def speculation_clip(speech: np.ndarray, end: int, rng: np.random.Generator) -> np.ndarray:
    """``speech[:end]`` as a speculation sees it: the VAD's 30 ms of padding before (and up
    to 70 ms it started late), the speech, and 30-130 ms of the pause (the padding after the
    VAD's pause start, which comes some frames after the last sound)."""
    level = 10 ** (rng.uniform(-70, -50) / 20)
    before = int(rng.uniform(0.03, 0.1) * SAMPLE_RATE_HZ)
    pause = int(rng.uniform(0.03, 0.13) * SAMPLE_RATE_HZ)
    clip = np.concatenate([np.zeros(before, np.float32), speech[:end],
                           np.zeros(pause, np.float32)])
    return (clip + rng.normal(0, level, clip.size)).astype(np.float32)


def measure(recognizer: Any, per_grammar: int, seed: int) -> list[Clip]:
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    clips = []
    for engine, voices in _voices().items():
        for grammar in GRAMMARS:
            for annotation in sample_sentences(load_context(grammar), per_grammar, seed=seed):
                if len(annotation.text.split()) < 3:
                    continue
                speech = synthesize(annotation.text, rng.choice(voices)).astype(np.float32)
                end = round(speech_end_s(speech) * SAMPLE_RATE_HZ)
                cuts = level_dips(speech[:end])
                for finished, at in ((True, end), (False, rng.choice(cuts) if cuts else None)):
                    if at is None:
                        continue
                    clip = speculation_clip(speech, at, noise)
                    x = finality_features(recognizer.encode(clip).hidden[0], clip)
                    if x is not None:
                        clips.append(Clip(engine, grammar.stem, finished, x))
        logger.info("%s: %d clips so far", engine, len(clips))
    return clips


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """The weights and bias for the raw inputs of a standardized, L2-regularized logistic
    regression (the calibration's fit, :func:`assistant.confidence.fit_logistic`)."""
    fitted = fit_logistic(x, y, tuple(str(i) for i in range(x.shape[1])), l2=l2)
    weights = np.asarray(fitted.weights) / np.asarray(fitted.scale)
    return weights, float(fitted.bias - weights @ np.asarray(fitted.mean))


def auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    return float(np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))


def held_out(clips: list[Clip]) -> tuple[np.ndarray, dict[str, float]]:
    """Each engine's probabilities from a probe fitted on the others; their AUCs."""
    x = np.stack([c.features for c in clips])
    y = np.array([c.finished for c in clips], float)
    engines = np.array([c.engine for c in clips])
    p = np.zeros(len(clips))
    aucs = {}
    for engine in sorted(set(engines)):
        out = engines == engine
        weights, bias = fit(x[~out], y[~out])
        p[out] = 1 / (1 + np.exp(-np.clip(x[out] @ weights + bias, -30, 30)))
        aucs[engine] = round(auc(p[out], y[out]), 4)
    return p, aucs


def thresholds(p: np.ndarray, y: np.ndarray, max_error: float) -> tuple[float, float]:
    """(finished_at, unfinished_below): at most ``max_error`` of the cuts at or over the
    first, at most as many of the finished sentences under the second."""
    cuts = np.sort(p[y == 0])
    finished = np.sort(p[y == 1])
    over = int(np.floor(max_error * cuts.size))
    under = int(np.floor(max_error * finished.size))
    finished_at = float(np.nextafter(cuts[-over - 1], 1.0)) if over < cuts.size else 0.0
    unfinished_below = float(finished[under]) if under < finished.size else 1.0
    return finished_at, min(unfinished_below, finished_at)


def run(speech_model: str, per_grammar: int, seed: int, max_error: float,
        argv: list[str], rows: Path | None = None) -> dict[str, Any]:
    from assistant.recognizer import Recognizer, RecognizerConfig

    started = time.monotonic()
    recognizer = Recognizer.from_context(GRAMMARS[0], RecognizerConfig(speech_model=speech_model))
    clips = measure(recognizer, per_grammar, seed)
    y = np.array([c.finished for c in clips], float)
    p, aucs = held_out(clips)
    if rows is not None:  # each clip's held-out probability, for analyses
        np.savez(rows, held_out=p, finished=y, engine=[c.engine for c in clips],
                 grammar=[c.grammar for c in clips])
    finished_at, unfinished_below = thresholds(p, y, max_error)
    weights, bias = fit(np.stack([c.features for c in clips]), y)
    info = {
        "command": "python -m training.finality " + " ".join(argv),
        "clips": {"finished": int(y.sum()), "cut": int((1 - y).sum())},
        "engines": sorted(aucs), "grammars": [g.stem for g in GRAMMARS],
        "held_out_auc_by_engine": aucs,
        "max_error": max_error,
        "held_out": {kind: {
            "sound_finished": round(float(np.mean(p[y == label] >= finished_at)), 4),
            "cannot_tell": round(float(np.mean((p[y == label] < finished_at)
                                               & (p[y == label] >= unfinished_below))), 4),
            "sound_unfinished": round(float(np.mean(p[y == label] < unfinished_below)), 4)}
            for kind, label in (("finished", 1), ("cut", 0))},
        "seconds": round(time.monotonic() - started, 1),
    }
    return FinalityProbe(speech_model, weights, bias, finished_at, unfinished_below,
                         info).to_json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speech-model", default="tiny.en")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-grammar", type=int, default=16,
                        help="sentences per grammar and engine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-error", type=float, default=0.02,
                        help="held-out share of cuts sounding finished, and of finished "
                             "sentences sounding unfinished, the thresholds allow")
    parser.add_argument("--rows", type=Path, help="write each clip's held-out probability "
                        "(.npz) for analyses")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    probe = run(args.speech_model, args.per_grammar, args.seed, args.max_error,
                argv if argv is not None else sys.argv[1:], args.rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(probe, indent=1) + "\n")
    print(json.dumps(probe["info"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
