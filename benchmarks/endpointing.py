"""What the person experiences: from the true end of the last word to the result, and commands
cut short when the speaker pauses, for several endpointing policies in one run.

    python benchmarks/endpointing.py --out runs/endpointing.json [--synthesized 60]

Policies: a fixed trailing silence of 400 ms (ours), 700 ms (Home Assistant's default) and
1000 ms (Rhino's). Sets:

* **barista-dev** (real recordings, ../shared/data; measured, never tuned on) and
  **synthesized** commands of the home grammar (espeak-ng voices, clean): each clip with
  1.5 s of silence after it, streamed in 20 ms chunks through a
  :class:`~assistant.stream.RecognizerSession` as a client would. The **true end of the last
  word** is found on the audio itself at 10 ms resolution: the last frame whose level is
  within 45 dB of the clip's peak and 12 dB over its noise floor. Latency = the stream
  position at the chunk that ends the utterance, minus that end, plus the time that feed
  took (the recognition): what a person waits if audio arrives in real time.
* **pause set**: synthesized commands spoken in two parts with a silence of 200, 400, 600 or
  800 ms at a word boundary. A premature cut: the utterance ended (a result came) before the
  second part began.

Acceptance (right intent and slots) is reported for every set and policy.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.audio import SAMPLE_RATE_HZ, read_audio  # noqa: E402
from assistant.evaluation import Label, command_accepted  # noqa: E402

POLICIES_MS = (400, 700, 1000)
PAUSES_MS = (200, 400, 600, 800)
TRAILING_S = 1.5
CHUNK_MS = 20
VOICES = ("en-us+m3", "en-us+f2", "en-gb+m1", "en-us+f4")
HOME = ROOT / "assistant" / "contexts" / "home.yaml"


def last_word_end_s(audio: np.ndarray) -> float:
    """Where the speech ends, at 10 ms resolution (see module docs)."""
    frame = SAMPLE_RATE_HZ // 100
    frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    level = 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)
    threshold = max(float(np.percentile(level, 10)) + 12.0, float(level.max()) - 45.0)
    loud = np.flatnonzero(level >= threshold)
    return float((loud[-1] + 1) * frame / SAMPLE_RATE_HZ) if loud.size else 0.0


def stream(recognizer: Any, vad: Any, audio: np.ndarray, silence_ms: int
           ) -> list[tuple[float, float, Any]]:
    """(stream position s when the result came, feed ms, result) for each utterance."""
    from assistant.stream import RecognizerSession, StreamConfig, UtteranceResult
    from assistant.vad import EndpointConfig

    base = StreamConfig().endpoint
    config = StreamConfig(endpoint=EndpointConfig(**{**base.__dict__,
                                                     "min_silence_ms": silence_ms}))
    session = RecognizerSession(recognizer, vad, config)
    chunk = SAMPLE_RATE_HZ * CHUNK_MS // 1000
    out = []
    for start in range(0, audio.size, chunk):
        t0 = time.perf_counter()
        events = session.feed(audio[start : start + chunk])
        elapsed = 1000 * (time.perf_counter() - t0)
        position = min(start + chunk, audio.size) / SAMPLE_RATE_HZ
        out += [(position, elapsed, e.result) for e in events if isinstance(e, UtteranceResult)]
    t0 = time.perf_counter()
    events = session.finalize()
    out += [(audio.size / SAMPLE_RATE_HZ, 1000 * (time.perf_counter() - t0), e.result)
            for e in events if isinstance(e, UtteranceResult)]
    return out


def percentile_summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 1),
            "p95": round(float(np.percentile(a, 95)), 1), "max": round(float(a.max()), 1)}


def run_set(recognizer: Any, vad: Any, clips: list[tuple[np.ndarray, Label]], silence_ms: int
            ) -> dict[str, Any]:
    latencies, accepted = [], 0
    for audio, label in clips:
        end_s = last_word_end_s(audio)
        padded = np.concatenate([audio, np.zeros(int(TRAILING_S * SAMPLE_RATE_HZ), np.float32)])
        answers = stream(recognizer, vad, padded, silence_ms)
        if answers:
            position, feed_ms, _ = answers[-1]
            latencies.append(1000 * (position - end_s) + feed_ms)
        best = next((r for _, _, r in answers if r.understood), None)
        accepted += best is not None and command_accepted(label, True, best.intent, best.slots)
    return {"last_word_to_result_ms": percentile_summary(latencies),
            "acceptance": round(accepted / len(clips), 4), "clips": len(clips)}


def synthesized(n: int, seed: int) -> list[tuple[np.ndarray, Label, list[str]]]:
    from assistant.grammar import load_context, sample_sentences
    from training.tts import Voice, synthesize

    rng = random.Random(seed)
    out = []
    for annotation in sample_sentences(load_context(HOME), n, seed=seed):
        voice = Voice("espeak", rng.choice(VOICES))
        audio = np.concatenate([np.zeros(8000, np.float32),
                                synthesize(annotation.text, voice).astype(np.float32)])
        label = Label(Path(), annotation.intent, dict(annotation.to_json()["slots"]))
        out.append((audio, label, [annotation.text, voice.name]))
    return out


def pause_set(clips: list[tuple[np.ndarray, Label, list[str]]], seed: int
              ) -> list[tuple[np.ndarray, Label, float, int]]:
    """(audio, label, when the second part starts in s, pause ms) of commands with a pause."""
    from training.tts import Voice, synthesize

    rng = random.Random(seed)
    out = []
    for i, (_, label, (text, voice_name)) in enumerate(clips):
        words = text.split()
        if len(words) < 3:
            continue
        cut = rng.randrange(1, len(words) - 1)
        pause_ms = PAUSES_MS[i % len(PAUSES_MS)]
        voice = Voice("espeak", voice_name)
        first = synthesize(" ".join(words[:cut]), voice).astype(np.float32)
        second = synthesize(" ".join(words[cut:]), voice).astype(np.float32)
        first = first[: int(last_word_end_s(first) * SAMPLE_RATE_HZ)]  # its own end
        lead = np.zeros(8000, np.float32)
        gap = np.zeros(int(pause_ms * SAMPLE_RATE_HZ / 1000), np.float32)
        audio = np.concatenate([lead, first, gap, second])
        out.append((audio, label, (lead.size + first.size + gap.size) / SAMPLE_RATE_HZ,
                    pause_ms))
    return out


def run_pauses(recognizer: Any, vad: Any, clips: list[tuple[np.ndarray, Label, float, int]],
               silence_ms: int) -> dict[str, Any]:
    cuts: dict[int, list[int]] = {p: [0, 0] for p in PAUSES_MS}
    accepted = 0
    for audio, label, second_s, pause_ms in clips:
        padded = np.concatenate([audio, np.zeros(int(TRAILING_S * SAMPLE_RATE_HZ), np.float32)])
        answers = stream(recognizer, vad, padded, silence_ms)
        cut = any(position < second_s for position, _, _ in answers)
        cuts[pause_ms][0] += cut
        cuts[pause_ms][1] += 1
        final = answers[-1][2] if answers else None
        accepted += final is not None and command_accepted(label, final.understood,
                                                           final.intent, final.slots)
    total = sum(c for c, _ in cuts.values())
    return {"premature_cuts": round(total / len(clips), 4),
            "by_pause_ms": {str(p): f"{c}/{n}" for p, (c, n) in cuts.items()},
            "acceptance": round(accepted / len(clips), 4), "clips": len(clips)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--synthesized", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    from assistant.recognizer import Recognizer
    from assistant.vad import SileroVad
    from benchmarks.datasets import barista_grammar, barista_labels
    from benchmarks.machine import describe
    from benchmarks.report import save_json

    vad = SileroVad()
    barista = Recognizer.from_context(barista_grammar())
    home = Recognizer.from_context(HOME)
    for r in (barista, home):
        r.warm_up()
    real = [(read_audio(label.audio), label) for label in barista_labels()]
    synth = synthesized(args.synthesized, args.seed)
    pauses = pause_set(synth, args.seed)
    report: dict[str, Any] = {"policies": {}, "machine": describe(),
                              "command": "python benchmarks/endpointing.py "
                                         + " ".join(argv or sys.argv[1:])}
    for silence_ms in POLICIES_MS:
        started = time.monotonic()
        row = {"barista_dev": run_set(barista, vad, real, silence_ms),
               "synthesized": run_set(home, vad, [(a, lab) for a, lab, _ in synth],
                                      silence_ms),
               "pause_set": run_pauses(home, vad, pauses, silence_ms)}
        report["policies"][f"fixed {silence_ms} ms"] = row
        print(f"[endpointing] fixed {silence_ms} ms ({time.monotonic() - started:.0f} s): "
              f"barista {row['barista_dev']['last_word_to_result_ms']}, acceptance "
              f"{row['barista_dev']['acceptance']}; synthesized "
              f"{row['synthesized']['last_word_to_result_ms']}; premature cuts "
              f"{row['pause_set']['premature_cuts']} {row['pause_set']['by_pause_ms']}",
              flush=True)
    save_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
