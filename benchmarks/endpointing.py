"""What the person experiences: from the true end of the last word to the result, and commands
cut short when the speaker pauses, for several endpointing policies in one run.

    python benchmarks/endpointing.py --out runs/endpointing.json [--synthesized 60]

Policies: a fixed trailing silence of 400 ms (ours), 700 ms (Home Assistant's default) and
1000 ms (Rhino's), and grammar-aware endpointing (:mod:`assistant.endpointing`): its
defaults, with the finality probe deciding extendable sentences (``use_finality=true``), and
waiting longest for every extendable sentence (``extendable_ms=1000``). Sets:

* **barista-dev** (real recordings, ../shared/data; measured, never tuned on) and
  **synthesized** commands of the home grammar (espeak-ng voices, clean): each clip with
  1.5 s of silence after it, streamed in 20 ms chunks through a
  :class:`~assistant.stream.RecognizerSession` as a client would. The **true end of the last
  word** is found on the audio itself at 10 ms resolution: the last frame whose level is
  within 45 dB of the clip's peak and 12 dB over its noise floor. Latency = the stream
  position at the chunk that ends the utterance, minus that end, plus the time that feed
  took (the recognition): what a person waits if audio arrives in real time.
* **pause sets**: synthesized commands with a silence of 200, 400, 600 or 800 ms at a word
  boundary, made two ways: *two parts* (each part synthesized alone, so the first ends with a
  sentence's falling prosody) and *one breath* (espeak-ng's SSML ``<break>`` inside one
  sentence: the prosody of a speaker who goes on). A premature cut: the utterance ended (a
  result came) before the second part began; a *wrong* one: and that first result was not
  the whole command's intent and slots (a cut before "please" or "the music" of "pause the
  music" gives the right answer, then a stray "not understood" for the rest).

* **real pause set**: each barista-dev recording with a 200-800 ms pause inserted at a dip of
  its level inside the speech (at least 30 ms, 25 dB under the speech's loud frames: mostly
  between words, sometimes a stop consonant's closure), filled with the recording's own
  background (its quietest 100 ms, repeated). Recordings without such a dip in the middle
  60 % of the speech are left out (the count is reported). Measured, never tuned on.

Acceptance (right intent and slots) is reported for every set and policy, and the
recognitions run per clip (the grammar policy's speculations included).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.audio import SAMPLE_RATE_HZ, read_audio  # noqa: E402
from assistant.evaluation import Label, command_accepted  # noqa: E402
from assistant.levels import frame_levels_db, level_dips, speech_end_s  # noqa: E402

POLICIES = ("fixed 400 ms", "fixed 700 ms", "fixed 1000 ms", "grammar",
            "grammar use_finality=true", "grammar extendable_ms=1000")
PAUSES_MS = (200, 400, 600, 800)
TRAILING_S = 1.5
CHUNK_MS = 20
VOICES = ("en-us+m3", "en-us+f2", "en-gb+m1", "en-us+f4")
HOME = ROOT / "assistant" / "contexts" / "home.yaml"


def _typed(default: Any, value: str) -> Any:
    """``value`` as the type of the setting's ``default`` ("false" is False)."""
    if isinstance(default, bool):
        if value.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {value!r}")
        return value.lower() == "true"
    return type(default)(value)


def stream_config(policy: str) -> Any:
    """The stream settings of a policy named as in :data:`POLICIES`."""
    from dataclasses import replace

    from assistant.endpointing import EndpointingPolicy
    from assistant.stream import StreamConfig

    if policy.startswith("grammar"):  # "grammar" and GrammarEndpointing fields: name=value
        options = dict(option.split("=", 1) for option in policy.split()[1:])
        grammar = StreamConfig().grammar
        grammar = replace(grammar, **{name: _typed(getattr(grammar, name), value)
                                      for name, value in options.items()})
        return StreamConfig(endpointing=EndpointingPolicy.GRAMMAR, grammar=grammar)
    silence_ms = int(policy.split()[1])
    return StreamConfig(endpoint=replace(StreamConfig().endpoint, min_silence_ms=silence_ms))


class Counting:
    """A recognizer that counts the recognitions asked of it."""

    def __init__(self, recognizer: Any):
        self.recognizer = recognizer
        self.calls = 0

    def recognize(self, audio: np.ndarray) -> Any:
        self.calls += 1
        return self.recognizer.recognize(audio)

    def partial(self, audio: np.ndarray) -> Any:
        self.calls += 1
        return self.recognizer.partial(audio)


def stream(recognizer: Any, vad: Any, audio: np.ndarray, policy: str
           ) -> list[tuple[float, float, Any]]:
    """(stream position s when the result came, feed ms, result) for each utterance."""
    from assistant.stream import RecognizerSession, UtteranceResult

    session = RecognizerSession(recognizer, vad, stream_config(policy))
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


def run_set(recognizer: Any, vad: Any, clips: list[tuple[np.ndarray, Label]], policy: str
            ) -> dict[str, Any]:
    latencies, understood, accepted = [], [], 0
    counting = Counting(recognizer)
    for audio, label in clips:
        end_s = speech_end_s(audio, SAMPLE_RATE_HZ)
        padded = np.concatenate([audio, np.zeros(int(TRAILING_S * SAMPLE_RATE_HZ), np.float32)])
        answers = stream(counting, vad, padded, policy)
        if answers:
            position, feed_ms, result = answers[-1]
            latencies.append(1000 * (position - end_s) + feed_ms)
            if result.understood:
                understood.append(latencies[-1])
        best = next((r for _, _, r in answers if r.understood), None)
        accepted += best is not None and command_accepted(label, True, best.intent, best.slots)
    return {"last_word_to_result_ms": percentile_summary(latencies),
            "understood_last_word_to_result_ms": percentile_summary(understood),
            "acceptance": round(accepted / len(clips), 4), "clips": len(clips),
            "recognitions_per_clip": round(counting.calls / len(clips), 2)}


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


def _cuts(clips: list[tuple[np.ndarray, Label, list[str]]], seed: int
          ) -> Iterator[tuple[Label, list[str], int, int, str]]:
    """(label, words, the word before which the pause goes, pause ms, voice) of each command
    of three words or more: a random inner word boundary, the pauses in turn."""
    rng = random.Random(seed)
    for i, (_, label, (text, voice_name)) in enumerate(clips):
        words = text.split()
        if len(words) >= 3:
            yield label, words, rng.randrange(1, len(words) - 1), PAUSES_MS[i % len(PAUSES_MS)], \
                voice_name


def pause_set(clips: list[tuple[np.ndarray, Label, list[str]]], seed: int
              ) -> list[tuple[np.ndarray, Label, float, int]]:
    """(audio, label, when the second part starts in s, pause ms) of commands with a pause."""
    from training.tts import Voice, synthesize

    out = []
    for label, words, cut, pause_ms, voice_name in _cuts(clips, seed):
        voice = Voice("espeak", voice_name)
        first = synthesize(" ".join(words[:cut]), voice).astype(np.float32)
        second = synthesize(" ".join(words[cut:]), voice).astype(np.float32)
        first = first[: int(speech_end_s(first, SAMPLE_RATE_HZ) * SAMPLE_RATE_HZ)]  # its own end
        lead = np.zeros(8000, np.float32)
        gap = np.zeros(int(pause_ms * SAMPLE_RATE_HZ / 1000), np.float32)
        audio = np.concatenate([lead, first, gap, second])
        out.append((audio, label, (lead.size + first.size + gap.size) / SAMPLE_RATE_HZ,
                    pause_ms))
    return out


def breath_pause_set(clips: list[tuple[np.ndarray, Label, list[str]]], seed: int
                     ) -> list[tuple[np.ndarray, Label, float, int]]:
    """Like :func:`pause_set`, the pause made by espeak-ng inside one sentence (SSML)."""
    import subprocess
    import tempfile

    import soundfile as sf

    from assistant.resample import resample

    out = []
    for label, words, cut, pause_ms, voice_name in _cuts(clips, seed):
        ssml = (f"<speak>{' '.join(words[:cut])} <break time=\"{pause_ms}ms\"/> "
                f"{' '.join(words[cut:])}</speak>")
        with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
            subprocess.run(["espeak-ng", "-m", "-v", voice_name, "-w", wav.name, ssml],
                           check=True, capture_output=True)
            raw, rate = sf.read(wav.name, dtype="float32")
        audio = np.concatenate([np.zeros(8000, np.float32),
                                resample(raw, rate, SAMPLE_RATE_HZ).astype(np.float32)])
        out.append((audio, label, _after_longest_gap_s(audio), pause_ms))
    return out


def _after_longest_gap_s(audio: np.ndarray) -> float:
    """Where the speech after the longest silence inside the speech begins."""
    frame = SAMPLE_RATE_HZ // 100
    frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    quiet = 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12) < -60
    loud = np.flatnonzero(~quiet)
    best, best_end, run = 0, 0, 0
    for k in range(int(loud[0]), int(loud[-1]) + 1):
        run = run + 1 if quiet[k] else 0
        if run > best:
            best, best_end = run, k + 1
    return best_end * frame / SAMPLE_RATE_HZ


def real_pause_set(clips: list[tuple[np.ndarray, Label]], seed: int
                   ) -> list[tuple[np.ndarray, Label, float, int]]:
    """(audio, label, when the speech after the pause starts in s, pause ms) for real
    recordings with a pause inserted at a dip inside the speech (see module docs)."""
    rng = random.Random(seed)
    frame = SAMPLE_RATE_HZ // 100
    out = []
    for i, (audio, label) in enumerate(clips):
        dips = level_dips(audio, SAMPLE_RATE_HZ)
        if not dips:
            continue
        cut = rng.choice(dips)
        pause_ms = PAUSES_MS[i % len(PAUSES_MS)]
        level = frame_levels_db(audio, SAMPLE_RATE_HZ)
        quiet = int(np.argmin(np.convolve(level, np.ones(10), "valid")))  # quietest 100 ms
        background = audio[quiet * frame : (quiet + 10) * frame]
        gap = np.resize(background, int(pause_ms * SAMPLE_RATE_HZ / 1000))
        out.append((np.concatenate([audio[:cut], gap, audio[cut:]]), label,
                    (cut + gap.size) / SAMPLE_RATE_HZ, pause_ms))
    return out


def run_pauses(recognizer: Any, vad: Any, clips: list[tuple[np.ndarray, Label, float, int]],
               policy: str) -> dict[str, Any]:
    cuts: dict[int, list[int]] = {p: [0, 0] for p in PAUSES_MS}
    accepted = wrong = 0
    counting = Counting(recognizer)
    for audio, label, second_s, pause_ms in clips:
        padded = np.concatenate([audio, np.zeros(int(TRAILING_S * SAMPLE_RATE_HZ), np.float32)])
        answers = stream(counting, vad, padded, policy)
        early = [r for position, _, r in answers if position < second_s]
        cut = bool(early)
        wrong += cut and not command_accepted(label, early[0].understood, early[0].intent,
                                              early[0].slots)
        cuts[pause_ms][0] += cut
        cuts[pause_ms][1] += 1
        final = answers[-1][2] if answers else None
        accepted += final is not None and command_accepted(label, final.understood,
                                                           final.intent, final.slots)
    total = sum(c for c, _ in cuts.values())
    return {"premature_cuts": round(total / len(clips), 4),
            "wrong_answer_cuts": round(wrong / len(clips), 4),
            "by_pause_ms": {str(p): f"{c}/{n}" for p, (c, n) in cuts.items()},
            "acceptance": round(accepted / len(clips), 4), "clips": len(clips),
            "recognitions_per_clip": round(counting.calls / len(clips), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--synthesized", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policy", dest="policies", action="append",
                        help="a policy: 'fixed N ms', or 'grammar' with GrammarEndpointing "
                             "fields as name=value (repeatable; default: "
                             + ", ".join(POLICIES) + ")")
    parser.add_argument("--selection", action="store_true",
                        help="synthesized sets only (to choose settings: no real recordings)")
    args = parser.parse_args(argv)
    from assistant.recognizer import Recognizer
    from assistant.vad import SileroVad
    from benchmarks.datasets import barista_grammar, barista_labels
    from benchmarks.machine import describe
    from benchmarks.report import save_json

    vad = SileroVad()
    home = Recognizer.from_context(HOME)
    home.warm_up()
    barista, real = None, []
    if not args.selection:
        barista = Recognizer.from_context(barista_grammar())
        barista.warm_up()
        real = [(read_audio(label.audio), label) for label in barista_labels()]
    synth = synthesized(args.synthesized, args.seed)
    pauses = pause_set(synth, args.seed)
    breaths = breath_pause_set(synth, args.seed)
    real_pauses = real_pause_set(real, args.seed)
    report: dict[str, Any] = {"policies": {}, "machine": describe(),
                              "command": "python benchmarks/endpointing.py "
                                         + " ".join(argv or sys.argv[1:]),
                              "real_pause_set": {"recordings": len(real_pauses),
                                                 "of": len(real)}}
    policies = args.policies or POLICIES
    for policy in policies:
        started = time.monotonic()
        row = {"synthesized": run_set(home, vad, [(a, lab) for a, lab, _ in synth], policy),
               "pause_set": run_pauses(home, vad, pauses, policy),
               "pause_set_one_breath": run_pauses(home, vad, breaths, policy)}
        if barista is not None:
            row["barista_dev"] = run_set(barista, vad, real, policy)
            row["barista_dev_pauses"] = run_pauses(barista, vad, real_pauses, policy)
        report["policies"][policy] = row
        real_row = row.get("barista_dev", {})
        print(f"[endpointing] {policy} ({time.monotonic() - started:.0f} s): "
              f"barista {real_row.get('last_word_to_result_ms')}, acceptance "
              f"{real_row.get('acceptance')}; synthesized "
              f"{row['synthesized']['last_word_to_result_ms']} (understood "
              f"{row['synthesized']['understood_last_word_to_result_ms']}), acceptance "
              f"{row['synthesized']['acceptance']}; premature cuts "
              f"{row['pause_set']['premature_cuts']} {row['pause_set']['by_pause_ms']} (wrong "
              f"{row['pause_set']['wrong_answer_cuts']}); one breath "
              f"{row['pause_set_one_breath']['premature_cuts']} "
              f"{row['pause_set_one_breath']['by_pause_ms']} (wrong "
              f"{row['pause_set_one_breath']['wrong_answer_cuts']}); real pauses "
              f"{row.get('barista_dev_pauses', {}).get('premature_cuts')} "
              f"{row.get('barista_dev_pauses', {}).get('by_pause_ms')} (wrong "
              f"{row.get('barista_dev_pauses', {}).get('wrong_answer_cuts')}); recognitions/clip "
              f"{row['synthesized']['recognitions_per_clip']}",
              flush=True)
    save_json(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
