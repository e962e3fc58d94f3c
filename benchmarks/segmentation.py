"""Choose how recordings are cut, on synthesized speech only: soft onsets, short and quiet
commands, noise-only clips.

    python benchmarks/segmentation.py --out runs/segmentation.json

The settings compared are the endpointer's ``onset_threshold`` (moving a segment's start back
over a soft first word) and the recording's second look (:class:`assistant.vad.SecondLook`,
when the VAD finds no speech). The clips come from grammars and voices that the evaluation
never uses: sentences of the calibration grammars (``training/grammars``, the home context)
and one- and two-word commands (``training/grammars/short_commands.yaml``), spoken by the
training voices (``training.tts.default_voices``), under these conditions:

* ``normal``: the sentence between silences, at a random level;
* ``soft_onset``: its first 35 % 20 dB quieter (a first word said softly or off-microphone);
* ``quiet``: the whole command at -50 to -40 dBFS peak;
* ``noisy``: pink noise at 10 dB SNR under a normal clip;
* negatives: pink, brown and hum noise alone, and near-silence, which must not be understood.

For each setting: how often the cut holds the whole command (>= 95 % of its samples),
command acceptance through the zero-shot recognizer, and false accepts on the negatives. The
VAD runs once per clip; recognitions are shared between settings that cut the same span.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GRAMMARS = (REPO / "training" / "grammars" / "short_commands.yaml",
            REPO / "training" / "grammars" / "pizza.yaml",
            REPO / "training" / "grammars" / "navigation.yaml",
            REPO / "assistant" / "contexts" / "home.yaml")
CONDITIONS = ("normal", "soft_onset", "quiet", "noisy")
ONSETS: tuple[float | None, ...] = (None, 0.3, 0.2, 0.1)
# Second looks: off, the relaxed VAD alone, the relaxed VAD then the energy span.
LOOKS: tuple[str, ...] = ("off", "vad 0.25", "vad 0.25 + energy")
NEGATIVE_KINDS = ("pink", "brown", "hum", "fan", "blue", "white")


@dataclass
class Clip:
    grammar: int
    condition: str
    audio: np.ndarray
    speech: tuple[int, int]  # where the command is (samples), (0, 0) for negatives
    intent: str | None
    slots: dict[str, Any]


def _trim(speech: np.ndarray) -> np.ndarray:
    """The TTS output without its own silence (frames 50 dB under the loudest)."""
    frames = speech.size // 512
    power = np.square(speech[: frames * 512].astype(np.float64)).reshape(frames, 512).mean(1)
    loud = np.flatnonzero(power >= power.max() * 1e-5)
    return speech[int(loud[0]) * 512 : (int(loud[-1]) + 1) * 512] if loud.size else speech


def _place(speech: np.ndarray, rng: random.Random, peak: float) -> tuple[np.ndarray, int]:
    lead = np.zeros(int(rng.uniform(0.3, 1.0) * 16000), np.float32)
    tail = np.zeros(int(rng.uniform(0.5, 1.0) * 16000), np.float32)
    speech = speech / (np.abs(speech).max() + 1e-9) * peak
    return np.concatenate([lead, speech, tail]).astype(np.float32), lead.size


def make_clips(per_grammar: int, negatives: int, seed: int) -> list[Clip]:
    from assistant.grammar import load_context, sample_sentences
    from training.noises import noise_clip
    from training.tts import default_voices, synthesize

    rng = random.Random(seed)
    voices = default_voices()
    clips: list[Clip] = []
    for g, path in enumerate(GRAMMARS):
        context = load_context(path)
        for i, annotation in enumerate(sample_sentences(context, per_grammar, seed + g)):
            speech = _trim(synthesize(annotation.text, voices[(i * 7 + g) % len(voices)]))
            condition = CONDITIONS[i % len(CONDITIONS)]
            if condition == "soft_onset":
                speech = speech.copy()
                speech[: int(0.35 * speech.size)] *= 0.1
            peak = 10 ** (rng.uniform(-50, -40) / 20) if condition == "quiet" else \
                10 ** (rng.uniform(-20, -3) / 20)
            audio, start = _place(speech, rng, peak)
            if condition == "noisy":
                noise, _ = noise_clip("pink", audio.size, seed + i, None)
                power = float(np.mean(audio[start : start + speech.size] ** 2))
                noise = noise * np.sqrt(power / (np.mean(noise**2) + 1e-12) / 10)
                audio = (audio + noise).astype(np.float32)
            clips.append(Clip(g, condition, audio, (start, start + speech.size),
                              annotation.intent, dict(annotation.slots)))
        for k in range(negatives):
            kind = NEGATIVE_KINDS[k % len(NEGATIVE_KINDS)]
            samples = int(rng.uniform(2.0, 4.0) * 16000)
            noise, _ = noise_clip(kind, samples, seed + 1000 * g + k, None)
            level = rng.uniform(-70, -20)  # from near-silence to loud
            noise = noise / (np.abs(noise).max() + 1e-9) * 10 ** (level / 20)
            clips.append(Clip(g, f"noise:{kind}", noise.astype(np.float32), (0, 0), None, {}))
    return clips


def covered(span: tuple[int, int] | None, speech: tuple[int, int]) -> bool:
    if span is None or speech == (0, 0):
        return False
    inside = max(0, min(span[1], speech[1]) - max(span[0], speech[0]))
    return inside >= 0.95 * (speech[1] - speech[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-grammar", type=int, default=60)
    parser.add_argument("--negatives", type=int, default=18, help="noise-only clips a grammar")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from assistant.evaluation import slots_match
    from assistant.recognizer import Recognizer
    from assistant.recording import RECORDING_ENDPOINT
    from assistant.vad import SecondLook, SileroVad, _segments, _span, energy_span
    from benchmarks.report import save_json

    vad = SileroVad()
    recognizers = [Recognizer.from_context(p) for p in GRAMMARS]
    for r in recognizers:
        r.warm_up()
    clips = make_clips(args.per_grammar, args.negatives, args.seed)
    probabilities = vad.probabilities_many([c.audio for c in clips])
    cache: dict[tuple[int, tuple[int, int]], Any] = {}
    rows = []
    for onset, look in itertools.product(ONSETS, LOOKS):
        endpoint = replace(RECORDING_ENDPOINT, onset_threshold=onset)
        second = None if look == "off" else SecondLook(threshold=0.25,
                                                       energy="energy" in look)
        stats: dict[str, list[float]] = {}
        for index, (clip, probs) in enumerate(zip(clips, probabilities, strict=True)):
            span = _span(_segments(probs, clip.audio.size, endpoint))
            first_found = span is not None
            if span is None and second is not None:
                relaxed = replace(endpoint, threshold=second.threshold, neg_threshold=None,
                                  min_speech_ms=second.min_speech_ms, onset_threshold=None)
                span = _span(_segments(probs, clip.audio.size, relaxed))
                if span is None and second.energy:
                    span = energy_span(clip.audio, second, endpoint.pad_samples)
            found = "vad" if first_found else ("second" if span is not None else "none")
            key = (index, span or (0, 0))
            if key not in cache:
                cache[key] = None if span is None else recognizers[clip.grammar].recognize(
                    clip.audio[span[0] : span[1]])
            result = cache[key]
            understood = result is not None and result.understood
            if clip.intent is None:
                stats.setdefault("negatives_false_accepts", []).append(float(understood))
                stats.setdefault(f"negatives_false_accepts_{found}", []).append(
                    float(understood))
                continue
            right = understood and result.intent == clip.intent and slots_match(
                clip.slots, result.slots)
            stats.setdefault(f"{clip.condition}:covered", []).append(
                float(covered(span, clip.speech)))
            stats.setdefault(f"{clip.condition}:accepted", []).append(float(right))
            stats.setdefault("all:accepted", []).append(float(right))
        rows.append({"onset_threshold": onset, "second_look": look,
                     **{f"n_{k}": len(v) for k, v in stats.items()
                        if k.startswith("negatives_false_accepts_")},
                     **{k: round(float(np.mean(v)), 4) for k, v in sorted(stats.items())}})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report = {"clips": len(clips), "commands": sum(c.intent is not None for c in clips),
              "negatives": sum(c.intent is None for c in clips), "rows": rows,
              "grammars": [str(p.relative_to(REPO)) for p in GRAMMARS]}
    save_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
