"""What the development bench (:mod:`benchmarks.devbench`) runs on: domains, clips, noises.

A domain is a grammar with its clips:

* **real**: labelled recordings of people (``../shared/data``: barista-dev, keywords-dev,
  digits-dev), evaluation only; their labels come from parsing the spoken text with the
  domain's own grammar where the set has no intent labels;
* **synth**: sentences sampled from the grammar, spoken by voices that neither the
  fine-tuning nor the confidence calibration used (:data:`BENCH_VOICES`);
* **near**: near-domain sentences that are not commands of the grammar
  (``benchmarks/grammars/near_*.txt``; any line the grammar parses is dropped and counted),
  spoken by the same voices: they must be rejected;
* **other-real**: real recordings of the other sets (spoken keywords, spoken digits) that are
  no command of this grammar: they must be rejected.

Only commands are mixed with noise. Subsets are evenly spaced, never random.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import subsample
from benchmarks.pitch import median_pitch_hz, pitch_band

REPO = Path(__file__).resolve().parent.parent
GRAMMARS = REPO / "benchmarks" / "grammars"
PAD_S = 0.5

# Voices no training run and no calibration fit hears (training/tts/catalog.py holds the
# espeak-ng variants f5, m7 and steph and Kokoro's jf_tebukuro out of training; the
# zero-shot calibration uses the older default_voices, which has none of them), and a
# higher variant of the Kokoro voice.
BENCH_VOICES: tuple[dict[str, Any], ...] = (
    {"engine": "espeak", "name": "en-us+f5"},
    {"engine": "espeak", "name": "en-gb-x-rp+m7"},
    {"engine": "espeak", "name": "en-029+steph"},
    {"engine": "kokoro", "name": "jf_tebukuro"},
    {"engine": "kokoro", "name": "jf_tebukuro", "semitones": -4.0, "formant_ratio": 0.9},
)


@dataclass(frozen=True)
class BenchSize:
    synth_commands: int  # per domain
    near: int  # near-domain sentences per domain (at most)
    real: int | None  # real recordings per domain (None: all)
    noisy_real: int  # of those, mixed with noise
    other_real: int  # real recordings of each other set, per domain
    snrs_db: tuple[float, ...]
    noises: tuple[str, ...]


FULL = BenchSize(40, 40, None, 40, 60, (18.0, 12.0, 6.0), ("babble", "music", "effects"))
QUICK = BenchSize(12, 12, 30, 20, 20, (12.0,), ("babble",))


@dataclass
class Clip:
    domain: str
    source: str  # "real", "synth", "near" or "other-real"
    audio: np.ndarray = field(repr=False)
    intent: str | None  # None: not a command, must be rejected
    slots: dict[str, Any]
    speaker: str
    noisy: bool = False  # also mixed with noise
    pitch_band: str = "unknown"
    accent: str = ""
    text: str = ""  # what a synthesized clip says ("" for recordings)


@dataclass(frozen=True)
class Domain:
    name: str
    grammar_path: str  # relative to the repository, or "data:" + relative to the data folder
    near: str | None = None  # a file in benchmarks/grammars
    real: str | None = None  # "barista", "keywords" or "digits"

    def grammar(self, data: Path) -> Path:
        if self.grammar_path.startswith("data:"):
            return data / self.grammar_path.removeprefix("data:")
        return REPO / self.grammar_path


DOMAINS = {d.name: d for d in (
    Domain("barista", "data:barista-dev/coffee_maker.yaml", "near_barista.txt", "barista"),
    Domain("home", "assistant/contexts/home.yaml", "near_home.txt"),
    Domain("home_assistant", "assistant/contexts/home_assistant.yaml", "near_home.txt"),
    Domain("timers", "benchmarks/grammars/timers.yaml", "near_timers.txt"),
    Domain("keywords", "benchmarks/grammars/keywords.yaml", "near_keywords.txt", "keywords"),
    Domain("digits", "benchmarks/grammars/digits.yaml", "near_digits.txt", "digits"),
)}
REAL_SETS = ("barista", "keywords", "digits")


def _rows(data: Path, name: str) -> list[dict[str, Any]]:
    path = data / f"{name}-dev" / "labels.jsonl"
    if not path.is_file():
        return []
    return [{**json.loads(line), "_dir": path.parent} for line in
            path.read_text().splitlines() if line.strip()]


def _accents(data: Path) -> dict[str, str]:
    path = data / "digits-dev" / "speakers.json"
    if not path.is_file():
        return {}
    return {k: v.get("accent", "") for k, v in json.loads(path.read_text()).items()}


def real_clips(domain: Domain, data: Path, context: Any, limit: int | None,
               noisy: int) -> list[Clip]:
    """The domain's own real recordings, labelled (see module docs)."""
    from assistant.audio import read_audio
    from assistant.grammar import parse

    if domain.real is None:
        return []
    rows = subsample(_rows(data, domain.real), limit)
    accents = _accents(data) if domain.real == "digits" else {}
    noisy_ids = {id(r) for r in subsample(rows, noisy)}
    clips = []
    for row in rows:
        if domain.real == "barista":
            intent, slots = row["intent"], dict(row.get("slots") or {})
        else:  # keywords and digits carry the spoken text: the grammar labels it
            annotation = parse(context, row["text"])
            if annotation is None:
                raise ValueError(f"{domain.name}: {row['text']!r} is not in its grammar")
            intent, slots = annotation.intent, dict(annotation.slots)
        audio = read_audio(row["_dir"] / row["audio"])
        clips.append(Clip(domain.name, "real", audio, intent, slots,
                          str(row.get("speaker", row["audio"])), id(row) in noisy_ids,
                          pitch_band(median_pitch_hz(audio)),
                          accents.get(str(row.get("speaker")), "")))
    return clips


def _voice(index: int) -> Any:
    from training.tts import Voice

    return Voice(**BENCH_VOICES[index % len(BENCH_VOICES)])


def _speak(text: str, index: int) -> tuple[np.ndarray, str]:
    from training.tts import synthesize

    voice = _voice(index)
    pad = np.zeros(int(PAD_S * 16000), np.float32)
    return np.concatenate([pad, synthesize(text, voice), pad]), voice.id


def synth_clips(domain: Domain, context: Any, count: int) -> list[Clip]:
    from assistant.grammar import sample_sentences

    clips = []
    for i, annotation in enumerate(sample_sentences(context, count, seed=2026)):
        audio, speaker = _speak(annotation.text, i)
        clips.append(Clip(domain.name, "synth", audio, annotation.intent,
                          dict(annotation.slots), speaker, True,
                          pitch_band(median_pitch_hz(audio)), text=annotation.text))
    return clips


def near_clips(domain: Domain, context: Any, count: int, say: Callable[[str], None]
               ) -> list[Clip]:
    from assistant.grammar import parse

    if domain.near is None or not (GRAMMARS / domain.near).is_file():
        return []
    lines = [ln.strip() for ln in (GRAMMARS / domain.near).read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    outside = [ln for ln in lines if parse(context, ln) is None]
    if len(outside) < len(lines):
        say(f"{domain.name}: {len(lines) - len(outside)} near-domain lines are in the "
            f"grammar and were dropped")
    clips = []
    for i, text in enumerate(subsample(outside, count)):
        audio, speaker = _speak(text, i)
        clips.append(Clip(domain.name, "near", audio, None, {}, speaker, text=text))
    return clips


def other_real_clips(domain: Domain, data: Path, count: int) -> list[Clip]:
    """Real keywords and digits recordings that are no command of this domain."""
    from assistant.audio import read_audio

    clips = []
    for name in ("keywords", "digits"):
        if name == domain.real:
            continue
        for row in subsample(_rows(data, name), count):
            clips.append(Clip(domain.name, "other-real", read_audio(row["_dir"] / row["audio"]),
                              None, {}, row["audio"]))
    return clips


def domain_clips(domain: Domain, data: Path, size: BenchSize, say: Callable[[str], None]
                 ) -> list[Clip]:
    from assistant.grammar import load_context

    context = load_context(domain.grammar(data))
    clips = (real_clips(domain, data, context, size.real, size.noisy_real)
             + synth_clips(domain, context, size.synth_commands)
             + near_clips(domain, context, size.near, say)
             + other_real_clips(domain, data, size.other_real))
    counts = {s: sum(c.source == s for c in clips) for s in ("real", "synth", "near",
                                                              "other-real")}
    say(f"{domain.name}: {counts}")
    return clips


def noise_tracks(say: Callable[[str], None], kinds: tuple[str, ...] = FULL.noises
                 ) -> dict[str, np.ndarray]:
    """The held-out noises that are installed here (each missing one is named)."""
    from benchmarks import noise

    makers = {"babble": noise.babble, "music": noise.music, "effects": noise.effects}
    tracks = {}
    for kind in kinds:
        try:
            tracks[kind] = makers[kind]()
        except (FileNotFoundError, SystemExit) as e:
            say(f"noise {kind} skipped: {e}")
    return tracks
