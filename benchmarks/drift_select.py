"""Choose the drift settings by simulation on synthesized traffic (a selection set).

    python benchmarks/drift_select.py --out runs/drift_select.json

The selection set is the scenario of :mod:`benchmarks.drift` drawn with other seeds (other
sentences, voice variants, noise stretches; the same kinds of shift, which the issue names):
600 in-distribution clips and 200 of each shift. Each clip is recognized in process as a
recording (the shipped home profile's own cut) and turned into an observation; then every
combination of the grid below is replayed offline:

* each shift: the in-distribution stretch, then the shift; detection delay = answers into
  the shift before the first alarm;
* false alarms: ``--days`` simulated days of ``--per-day`` answers resampled from the
  in-distribution stretch, evenly spread over 24 h (quiet windows included), plus any alarm
  during the in-distribution stretches.

Rule fixed before looking: keep the combinations that detect every shift within 150 answers
(a margin under the 200 target) with at most 0.25 false alarms a day (a margin under 1);
among them take the smallest worst delay, then the fewest false alarms, then the strictest
settings (higher floor, smaller alpha, the joint and other-speech tests off or at a smaller
alpha). The other-speech test (``drift_other_alpha``) came later: ``--other-only`` replays
its alpha with the other settings at their defaults, for the zero-shot grammar and for a
fine-tuned model (``--model``); the default is the smallest alpha
(fewest false alarms) that meets the issue's targets on both selection sets (every shift
within 200 answers, at most one false alarm a simulated day, none in the stretches), fixed
before the runs; a shift no alpha changes (one the other tests miss) does not count against
any (benchmarks/README.md has both runs).
``benchmarks/drift.py`` then reports the chosen defaults on its own seeds.

Fallback, added after the first run found no feasible combination (no setting detected
30 % out-of-grammar speech within 150 answers at under one false alarm a day, because a
third of the synthesized in-distribution commands are already not understood): among the
combinations within the false-alarm limits, take the one that detects the most shifts
within 200 answers, then the same order as above.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.drift import HOME, Segment, render_segment, replay_days  # noqa: E402

GRID = {
    "drift_window_utterances": (100, 150),
    "drift_psi_floor": (0.1, 0.15, 0.2),
    "drift_alpha": (1e-3, 1e-4, 1e-5),
    "drift_joint_alpha": (0.0, 1e-3, 1e-4, 1e-5),
}
# The other-speech test came later: its alpha is chosen with the settings above at their
# defaults (--other-only), as a full grid four times the size takes half an hour here.
OTHER_GRID = {"drift_other_alpha": (0.0, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)}
MAX_DELAY = 150
MAX_FALSE_PER_DAY = 0.25
TARGET_DELAY = 200  # the target, for the fallback


def selection_segments(offset: int, in_distribution: int, per_shift: int) -> list[Segment]:
    return [Segment("in-distribution", "in", in_distribution, offset + 1),
            *(Segment(kind, kind, per_shift, offset + 20 + i)
              for i, kind in enumerate(("noise", "oog", "phrasing", "telephone")))]


def observations(segment: Segment, cache: Path, profile: Any, model: Path | None = None
                 ) -> list[Any]:
    """The segment's clips recognized as recordings, as observations (cached per model:
    the grammar zero-shot, or the model directory ``model``)."""
    from assistant.audio import read_audio
    from assistant.monitor import Observation
    from assistant.recognizer import Recognizer
    from assistant.recording import recognize_recording
    from assistant.vad import SileroVad

    served = "" if model is None else f"-{model.name}"
    path = cache / f"observations{served}-{segment.kind}-{segment.seed}-{segment.clips}.json"
    if path.is_file():
        return [Observation.from_json(row) for row in json.loads(path.read_text())]
    files = render_segment(segment, cache)
    recognizer = Recognizer.from_context(HOME) if model is None \
        else Recognizer.from_model_dir(model)
    vad = SileroVad()
    rows = [Observation.of(recognize_recording(recognizer, vad, read_audio(f)), profile.encoder)
            for f in files]
    path.write_text(json.dumps([o.to_json() for o in rows]))
    return rows


def replay_shift(profile: Any, config: Any, base: list[Any], shift: list[Any]
                 ) -> tuple[int | None, int]:
    """(delay in answers, or None; alarms raised during the in-distribution stretch)."""
    from assistant.monitor import DriftMonitor

    monitor = DriftMonitor(profile, config)
    false = 0
    for i, o in enumerate(base):
        false += sum(e.raised for e in monitor.observe(o, float(i)))
    for j, o in enumerate(shift, 1):
        if any(e.raised for e in monitor.observe(o, float(len(base) + j))):
            return j, false
    return None, false


def false_per_day(profile: Any, config: Any, pool: list[Any], days: int, per_day: int,
                  seed: int = 0) -> float:
    return len(replay_days(profile, config, pool, days, per_day, seed)) / days


def choose(rows: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, bool]:
    """(the chosen row, whether the fallback rule chose it); see the module docs."""

    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["worst_delay"], r["false_per_day"], -r["drift_psi_floor"], r["drift_alpha"],
                0 if r["drift_joint_alpha"] == 0 else 1, r["drift_joint_alpha"],
                0 if r["drift_other_alpha"] == 0 else 1, r["drift_other_alpha"])

    feasible = [r for r in rows if r["feasible"]]
    if feasible:
        return min(feasible, key=order), False
    quiet = [r for r in rows if r["false_per_day"] <= MAX_FALSE_PER_DAY
             and r["false_in_stretches"] == 0]
    if not quiet:
        return None, True

    def detected(r: dict[str, Any]) -> list[int]:
        return [d for d in r["delays"].values() if d is not None and d <= TARGET_DELAY]

    return min(quiet, key=lambda r: (-len(detected(r)), max(detected(r), default=0),
                                     *order(r)[1:])), True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "drift-clips")
    parser.add_argument("--seed-offset", type=int, default=100)
    parser.add_argument("--in-distribution", type=int, default=600)
    parser.add_argument("--per-shift", type=int, default=200)
    parser.add_argument("--model", type=Path, help="a model directory of the home grammar "
                        "and its profile.json (default: the grammar zero-shot)")
    parser.add_argument("--other-only", action="store_true", help="choose only the "
                        "other-speech test's alpha, the other settings at their defaults")
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--per-day", type=int, default=2000)
    args = parser.parse_args(argv)
    from assistant.monitor import MonitorConfig
    from assistant.profile import ReferenceProfile
    from benchmarks.report import save_json

    started = time.monotonic()
    profile = ReferenceProfile.load(HOME.with_name("home.profile.json") if args.model is None
                                    else args.model / "profile.json")
    segments = selection_segments(args.seed_offset, args.in_distribution, args.per_shift)
    data = {s.kind: observations(s, args.cache, profile, args.model) for s in segments}
    base = data.pop("in")
    print(f"[select] observations ready in {time.monotonic() - started:.0f} s", flush=True)
    rows: list[dict[str, Any]] = []
    grid = OTHER_GRID if args.other_only else {**GRID, "drift_other_alpha": (0.0,)}
    for values in itertools.product(*grid.values()):
        settings: dict[str, Any] = {k: getattr(MonitorConfig(), k) for k in GRID}
        settings.update(zip(grid, values, strict=True))
        config = replace(MonitorConfig(), **settings)
        delays, false_in_base = {}, 0
        for kind, shift in data.items():
            delays[kind], false = replay_shift(profile, config, base, shift)
            false_in_base += false
        per_day = false_per_day(profile, config, base, args.days, args.per_day)
        worst = max((d if d is not None else 10**6) for d in delays.values())
        rows.append({**settings, "delays": delays, "worst_delay": worst,
                     "false_per_day": round(per_day, 3), "false_in_stretches": false_in_base,
                     "feasible": worst <= MAX_DELAY and per_day <= MAX_FALSE_PER_DAY
                     and false_in_base == 0})
        print(json.dumps(rows[-1]), flush=True)
    chosen, fallback = choose(rows)
    report = {"grid": grid, "rule": {"max_delay": MAX_DELAY,
                                     "max_false_per_day": MAX_FALSE_PER_DAY},
              "served": str(args.model) if args.model else "home.yaml, zero-shot",
              "selection_seeds": [s.seed for s in segments], "rows": rows, "chosen": chosen,
              "fallback": fallback,
              "seconds": round(time.monotonic() - started, 1),
              "command": "python benchmarks/drift_select.py " + " ".join(argv or sys.argv[1:])}
    save_json(report, args.out)
    print("chosen" + (" (fallback)" if fallback else "") + ":", json.dumps(chosen))
    return 0 if chosen else 1


if __name__ == "__main__":
    sys.exit(main())
