"""The development bench: accuracy across domains, voices, noises and grammars, in one command.

    python benchmarks/devbench.py --out runs/devbench            # every domain, zero-shot
    python benchmarks/devbench.py --quick --domains barista home --out runs/devbench-quick
    python benchmarks/devbench.py --model barista=runs/barista-model --out runs/devbench

Every clip goes through what ``assistant recognize`` runs (the VAD cut of the whole
recording, then the recognizer: :func:`assistant.recording.recognize_recording`). Per domain
(:mod:`benchmarks.devbench_data`): real recordings where the project has them (evaluation
only), commands of the grammar synthesized by voices that neither training nor the
confidence calibration used, near-domain questions that must be rejected, and real
non-command speech of the other domains (keywords and digits) that must be rejected. Each
command clip is also mixed with real noises training never heard (six-talker babble, game
music, game sound effects) at loudest-frame SNRs (the public benchmark's definition).

Reported per domain, system (zero-shot, or a fine-tuned model given with ``--model``) and
condition: command acceptance (real and synthesized apart), false rejects by cause (no
speech found, the out-of-domain gate, below the threshold, no sentence of the grammar, a
wrong intent or slot), false accepts on near-domain questions and on real non-command
speech, expected calibration error, and acceptance by voice pitch band (estimated from the
clean audio) and, for the digits, by the speakers' accents. Nothing here chooses a setting:
the numbers are for reading, and the dev sets stay evaluation-only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.devbench_data import (  # noqa: E402
    DOMAINS,
    BenchSize,
    Clip,
    domain_clips,
    noise_tracks,
)

CAUSES = ("no_speech", "out_of_domain", "below_threshold", "no_grammar_path", "gated",
          "wrong")


@dataclass(frozen=True)
class Condition:
    noise: str | None  # None: clean
    snr_db: float | None = None

    @property
    def name(self) -> str:
        return "clean" if self.noise is None else f"{self.noise} {self.snr_db:g} dB"


def conditions(size: BenchSize, noises: dict[str, np.ndarray]) -> list[Condition]:
    return [Condition(None)] + [Condition(n, snr) for n in noises for snr in size.snrs_db]


def score(clip: Clip, result: Any) -> dict[str, Any]:
    """One row: what was expected, what came back, and why it was not accepted."""
    from assistant.evaluation import slots_match

    correct = (clip.intent is not None and result.understood and result.intent == clip.intent
               and slots_match(clip.slots, result.slots))
    accepted = correct if clip.intent is not None else not result.understood
    cause = None
    if clip.intent is not None and not correct:
        cause = "wrong" if result.understood else str(result.reason or "below_threshold")
    return {"domain": clip.domain, "source": clip.source, "speaker": clip.speaker,
            "pitch_band": clip.pitch_band, "accent": clip.accent, "command": clip.intent
            is not None, "accepted": accepted, "correct": correct,
            "understood": result.understood, "confidence": float(result.confidence),
            "cause": cause, "ms": float(result.timing_ms.get("total", 0.0)),
            "text": clip.text, "transcript": result.transcript, "heard": result.heard}


def run_system(recognizer: Any, vad: Any, clips: list[Clip], conds: list[Condition],
               noises: dict[str, np.ndarray], progress: Any) -> list[dict[str, Any]]:
    from assistant.recording import recognize_recording
    from benchmarks.noise import mix_at_snr

    rows = []
    for cond in conds:
        rng = np.random.default_rng(7)  # the same noise stretches for every system
        chosen = clips if cond.noise is None else [c for c in clips if c.noisy]
        for clip in chosen:
            audio = clip.audio if cond.noise is None else mix_at_snr(
                clip.audio, noises[cond.noise], float(cond.snr_db or 0), rng)
            row = score(clip, recognize_recording(recognizer, vad, audio))
            rows.append({**row, "condition": cond.name})
        progress(f"  {cond.name}: {len(chosen)} clips")
    return rows


def run_domain(job: tuple[str, Path, BenchSize, str | None, str, bool, dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """Every system on one domain's clips under every condition (one worker's share)."""
    from assistant.recognizer import Recognizer, RecognizerConfig
    from assistant.vad import SileroVad

    name, data, size, model_dir, speech_model, parallel, settings = job
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    domain = DOMAINS[name]
    vad = SileroVad()
    noises = noise_tracks(say, size.noises)
    conds = conditions(size, noises)
    clips = domain_clips(domain, data, size, say)
    threads = 1 if parallel else None  # one core each when domains run side by side
    given = {**settings, **({"threads": threads} if threads else {})}
    systems = {"zero-shot": Recognizer.from_context(
        domain.grammar(data), RecognizerConfig(**{**given, "speech_model": speech_model}))}
    if model_dir is not None:
        systems["fine-tuned"] = Recognizer.from_model_dir(model_dir, given)
    rows = []
    for system, recognizer in systems.items():
        recognizer.warm_up()
        say(f"{name} / {system}: {len(clips)} clips")
        rows += [{**r, "system": system}
                 for r in run_system(recognizer, vad, clips, conds, noises,
                                     lambda m, n=name: say(f"{n}{m}"))]
    return rows


def _rate(rows: list[dict[str, Any]], key: str = "accepted") -> float | None:
    return round(sum(bool(r[key]) for r in rows) / len(rows), 4) if rows else None


def ece(rows: list[dict[str, Any]], bins: int = 10) -> float | None:
    """Expected calibration error of the confidence as P(a correct command)."""
    if not rows:
        return None
    conf = np.array([r["confidence"] for r in rows])
    correct = np.array([float(r["correct"]) for r in rows])
    index = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += inside.mean() * abs(conf[inside].mean() - correct[inside].mean())
    return round(float(total), 4)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    commands = [r for r in rows if r["command"]]
    out: dict[str, Any] = {
        "commands": len(commands),
        "acceptance": _rate(commands),
        "acceptance_real": _rate([r for r in commands if r["source"] == "real"]),
        "acceptance_synth": _rate([r for r in commands if r["source"] == "synth"]),
        "false_rejects": {c: sum(r["cause"] == c for r in commands) for c in CAUSES
                          if any(r["cause"] == c for r in commands)},
        "false_accepts_near": _rate([r for r in rows if r["source"] == "near"], "understood"),
        "false_accepts_real_other": _rate([r for r in rows if r["source"] == "other-real"],
                                          "understood"),
        "negatives": sum(not r["command"] for r in rows),
        "ece": ece(rows),
        "median_ms": round(float(np.median([r["ms"] for r in rows])), 1) if rows else None,
    }
    bands: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in commands:
        bands[r["pitch_band"]].append(r)
    out["by_pitch_band"] = {b: {"n": len(v), "acceptance": _rate(v)}
                            for b, v in sorted(bands.items()) if b != "unknown"}
    accents: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in commands:
        if r["accent"]:
            accents[r["accent"]].append(r)
    if accents:
        out["by_accent"] = {a: {"n": len(v), "acceptance": _rate(v)}
                            for a, v in sorted(accents.items())}
    return out


def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summaries per (domain, system, condition), and per (domain, system) over the noise."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["domain"], r["system"], r["condition"])].append(r)
    table = [{"domain": d, "system": s, "condition": c, **summarize(v)}
             for (d, s, c), v in groups.items()]
    noisy: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["condition"] != "clean":
            noisy[(r["domain"], r["system"])].append(r)
    means = [{"domain": d, "system": s, "condition": "noisy (all)", **summarize(v)}
             for (d, s), v in noisy.items()]
    return {"table": table + means}


def markdown(result: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f} %"

    lines = ["| domain | system | condition | commands | accepted | real / synth | false "
             "rejects by cause | FA near | FA real other | ECE | worst pitch band |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in sorted(result["table"], key=lambda t: (t["domain"], t["system"],
                                                    t["condition"] != "clean",
                                                    t["condition"])):
        causes = ", ".join(f"{k} {v}" for k, v in t["false_rejects"].items()) or "-"
        bands = t["by_pitch_band"]
        worst = min(bands.items(), key=lambda kv: kv[1]["acceptance"] or 0) if bands else None
        worst_text = f"{worst[0]} {pct(worst[1]['acceptance'])}" if worst else "-"
        lines.append(f"| {t['domain']} | {t['system']} | {t['condition']} | {t['commands']} "
                     f"| {pct(t['acceptance'])} | {pct(t['acceptance_real'])} / "
                     f"{pct(t['acceptance_synth'])} | {causes} | "
                     f"{pct(t['false_accepts_near'])} | {pct(t['false_accepts_real_other'])} "
                     f"| {pct(t['ece'])} | {worst_text} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the report")
    parser.add_argument("--domains", nargs="+", choices=sorted(DOMAINS), default=None)
    parser.add_argument("--model", action="append", default=[], metavar="DOMAIN=DIR",
                        help="also run a model directory on its domain (repeatable)")
    parser.add_argument("--quick", action="store_true", help="fewer clips and conditions")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--speech-model", default="tiny.en")
    parser.add_argument("--jobs", type=int, default=2, help="domains run side by side")
    from assistant.config import add_arguments, given
    from assistant.recognizer import RecognizerConfig

    own = ("speech_model", "precision", "threads")  # the bench's own choices
    add_arguments(parser, RecognizerConfig, skip=own)
    args = parser.parse_args(argv)
    settings = {k: v for k, v in given(RecognizerConfig, args).items() if k not in own}

    from benchmarks.devbench_data import FULL, QUICK
    from benchmarks.machine import describe
    from benchmarks.report import save_json

    size = QUICK if args.quick else FULL
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    models = dict(m.split("=", 1) for m in args.model)
    noise_tracks(say, size.noises)  # built once (cached) before the workers read them
    started = time.monotonic()
    names = [n for n in args.domains or sorted(DOMAINS)
             if DOMAINS[n].grammar(args.data).is_file() or say(f"{n}: skipped, no grammar")]
    jobs = [(n, args.data, size, models.get(n), args.speech_model, args.jobs > 1, settings)
            for n in names]
    rows: list[dict[str, Any]] = []
    if args.jobs > 1:
        import concurrent.futures
        import multiprocessing

        with concurrent.futures.ProcessPoolExecutor(
                args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for part in pool.map(run_domain, jobs):
                rows += part
    else:
        for job in jobs:
            rows += run_domain(job)
    result = {**report(rows), "rows": rows, "size": size.__dict__, "noises": list(size.noises),
              "settings": settings,
              "seconds": round(time.monotonic() - started, 1), "machine": describe(),
              "command": " ".join(["python", "benchmarks/devbench.py", *(argv or sys.argv[1:])])}
    args.out.mkdir(parents=True, exist_ok=True)
    save_json(result, args.out / "devbench.json")
    (args.out / "results.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
