"""Fit the zero-shot confidence calibration of a speech model on synthesized speech only.

    python -m training.calibrate --speech-model tiny.en --out assistant/calibration/tiny.en.json

For each calibration grammar (the shipped home context and ``training/grammars/*.yaml``; never
an evaluation grammar) it synthesizes, with every installed TTS voice:

* in-grammar sentences, labelled 1 when recognized exactly right and 0 otherwise;
* out-of-grammar speech, labelled 0: other domains, short words, near misses one word away,
  and the other grammars' sentences;
* non-speech (noise, hum), labelled 0 when the VAD lets it through.

Half the clips get noise at 5-30 dB SNR and every clip a random level, then each goes through
the same VAD trimming as a recording. A logistic model of the confidence features
(:mod:`assistant.confidence`) is fitted and written with a summary of the data it saw.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.artifacts import SpeechModelSpec, ensure_speech_model
from assistant.audio import SAMPLE_RATE_HZ
from assistant.confidence import FEATURES, fit_logistic_cv
from assistant.grammar import Context, load_context, sample_sentences
from assistant.recognizer import Recognizer, RecognizerConfig
from assistant.speech_model import SpeechModel
from assistant.vad import SileroVad, speech_span

from .negatives import OUT_OF_DOMAIN, SHORT_UTTERANCES, near_misses, non_speech
from .tts import Voice, default_voices, synthesize

logger = logging.getLogger("training.calibrate")

HERE = Path(__file__).parent
CALIBRATION_GRAMMARS = (
    HERE.parent / "assistant" / "contexts" / "home.yaml",
    HERE / "grammars" / "pizza.yaml",
    HERE / "grammars" / "kitchen.yaml",
    HERE / "grammars" / "navigation.yaml",
)


@dataclass(frozen=True)
class Clip:
    grammar: int
    text: str  # "" for non-speech
    kind: str  # "in", "out", "near", "cross", "short", "noise"
    expected: tuple[str, dict[str, object]] | None  # intent and slots for in-grammar clips
    voice: str


def _vary(voice: Voice, rng: random.Random) -> Voice:
    rate = round(rng.uniform(0.85, 1.2), 2)
    pitch = rng.randrange(30, 80) if voice.engine == "espeak" else None
    return Voice(voice.engine, voice.name, rate, pitch)


def plan(contexts: list[Context], per_grammar: int, seed: int) -> list[Clip]:
    rng = random.Random(seed)
    clips: list[Clip] = []
    samples = [sample_sentences(c, per_grammar, seed=seed + i) for i, c in enumerate(contexts)]
    for g, context in enumerate(contexts):
        for s in samples[g]:
            clips.append(Clip(g, s.text, "in", (s.intent, dict(s.slots)), ""))
        n_out = per_grammar // 4
        for text in rng.sample(OUT_OF_DOMAIN, min(n_out, len(OUT_OF_DOMAIN))):
            clips.append(Clip(g, text, "out", None, ""))
        for text in rng.sample(SHORT_UTTERANCES, min(n_out // 2, len(SHORT_UTTERANCES))):
            clips.append(Clip(g, text, "short", None, ""))
        for text in near_misses(context, n_out, seed=seed + 100 + g):
            clips.append(Clip(g, text, "near", None, ""))
        others = [s for h, ss in enumerate(samples) if h != g for s in ss]
        for s in rng.sample(others, min(n_out // 2, len(others))):
            clips.append(Clip(g, s.text, "cross", None, ""))
    return clips


def augment(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random level, silence around the speech, and noise at 5-30 dB SNR on half the clips."""
    lead = np.zeros(int(rng.uniform(0.2, 1.0) * SAMPLE_RATE_HZ), np.float32)
    tail = np.zeros(int(rng.uniform(0.3, 1.2) * SAMPLE_RATE_HZ), np.float32)
    x = np.concatenate([lead, audio, tail])
    peak = float(np.abs(x).max()) or 1.0
    x = x / peak * 10 ** rng.uniform(-1.5, -0.1)
    if rng.random() < 0.5:
        snr_db = rng.uniform(5, 30)
        noise = rng.standard_normal(x.size).astype(np.float32)
        if rng.random() < 0.5:  # pink-ish: integrate and high-pass a little
            noise = np.cumsum(noise) * 0.02
            noise -= np.convolve(noise, np.ones(401) / 401, mode="same")
        signal_power = float(np.mean(x[lead.size : lead.size + audio.size] ** 2)) + 1e-12
        noise *= np.sqrt(signal_power / (np.mean(noise**2) + 1e-12) / 10 ** (snr_db / 10))
        x = x + noise
    return np.clip(x, -1, 1).astype(np.float32)


def run(speech_model: str, precision: str, per_grammar: int, seed: int) -> dict[str, object]:
    contexts = [load_context(p) for p in CALIBRATION_GRAMMARS]
    spec = SpeechModelSpec(speech_model, precision)
    model = SpeechModel(ensure_speech_model(spec, progress=print))
    config = RecognizerConfig(speech_model=speech_model, precision=precision)
    recognizers = [Recognizer(c, model, config) for c in contexts]
    vad = SileroVad()
    voices = default_voices()
    if not voices:
        raise SystemExit("no TTS engine installed (apt-get install espeak-ng flite festival)")
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    clips = plan(contexts, per_grammar, seed)
    rows: list[tuple[list[float], int, Clip]] = []
    started = time.monotonic()
    for i, clip in enumerate(clips):
        voice = _vary(voices[i % len(voices)], rng)
        audio = augment(synthesize(clip.text, voice), nprng)
        rows.append(_measure(recognizers[clip.grammar], vad, audio, clip, voice.id))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(clips)} clips ({time.monotonic() - started:.0f} s)")
    for g, (kind, audio) in enumerate(non_speech(8 * len(contexts), seed)):
        clip = Clip(g % len(contexts), "", f"noise:{kind}", None, "")
        rows.append(_measure(recognizers[clip.grammar], vad, audio, clip, ""))
    measured = [(x, y, c) for x, y, c in rows if x]
    x = np.array([r[0] for r in measured])
    y = np.array([r[1] for r in measured], dtype=np.float64)
    calibration = fit_logistic_cv(x, y, FEATURES)
    probs = np.array([calibration.probability(dict(zip(FEATURES, r, strict=True)))
                      for r in x])
    kinds = sorted({c.kind.split(":")[0] for _, _, c in rows})
    summary = {
        "speech_model": speech_model,
        "precision": precision,
        "grammars": [p.name for p in CALIBRATION_GRAMMARS],
        "voices": len(voices),
        "seed": seed,
        "clips": len(rows),
        "clips_by_kind": {k: sum(c.kind.split(":")[0] == k for _, _, c in rows) for k in kinds},
        "decoded_with_sentence": len(measured),
        "positives": int(y.sum()),
        "in_grammar_recognized": f"{int(y.sum())}/{sum(c.kind == 'in' for _, _, c in rows)}",
        "accuracy_at_0.5": float(np.mean((probs >= 0.5) == (y == 1))),
        "expected_calibration_error": _ece(probs, y),
        "fitted_at": time.strftime("%Y-%m-%d"),
        "data": "synthesized speech only (training/calibrate.py); no real recordings",
    }
    result = calibration.to_json()
    result["info"] = {**summary, **calibration.info}
    return result


def _measure(
    recognizer: Recognizer, vad: SileroVad, audio: np.ndarray, clip: Clip, voice: str
) -> tuple[list[float], int, Clip]:
    span = speech_span(audio, vad)
    if span is None:
        return [], 0, clip
    analysis = recognizer.analyze(audio[span[0] : span[1]])
    if analysis.features is None:
        return [], 0, clip
    right = 0
    if clip.expected is not None and analysis.annotation is not None:
        intent, slots = clip.expected
        right = int(analysis.annotation.intent == intent and dict(analysis.annotation.slots)
                    == slots)
    return [analysis.features[name] for name in FEATURES], right, clip


def _ece(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (probs >= lo) & ((probs < hi) if hi < 1 else (probs <= hi))
        if inside.any():
            total += inside.mean() * abs(probs[inside].mean() - labels[inside].mean())
    return float(total)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speech-model", default="tiny.en")
    parser.add_argument("--precision", default="int8", choices=["int8", "fp32"])
    parser.add_argument("--per-grammar", type=int, default=80)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = run(args.speech_model, args.precision, args.per_grammar, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["info"], indent=2))


if __name__ == "__main__":
    main()
