"""Numbers said outside a grammar: answered "not understood", or acted on as another number?

    python benchmarks/heard_numbers.py --out runs/heard_numbers.json [--per-domain 30]
        [--snr-db 12] [--seed 2027]

Per domain (grammars with number slots: the shipped home and Home Assistant contexts, the
timers evaluation grammar), sentences with a number are sampled from the grammar and spoken
by the development bench's held-out voices (``benchmarks/devbench_data.BENCH_VOICES``), twice:
as sampled (**in range**: must be understood, with the slots said) and with one number
replaced by one the grammar does not take there (**out of range**, e.g. "set the temperature
to ninety five degrees" against 10..90, "... to one hundred fifty percent": must not be
understood). Each clip is recognized clean and with babble noise at ``--snr-db``.

The recognizer's check (``assistant/heard_numbers.py``) answers an understood sentence "not
understood" (reason ``number_not_in_grammar``) when the free decode has another number in its
place that the grammar would not take; "before" counts those answers as they were
(understood), "after" as given. Reported per domain and condition: in range, right before /
after and the right answers the check turned away (false vetoes); out of range, wrongly
understood before / after. No setting is chosen here: the check has none.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DOMAINS = {
    "home": REPO / "assistant" / "contexts" / "home.yaml",
    "home_assistant": REPO / "assistant" / "contexts" / "home_assistant.yaml",
    "timers": REPO / "benchmarks" / "grammars" / "timers.yaml",
}
SEED = 2027


def out_of_range(context: Any, text: str, slots: dict[str, Any]) -> str | None:
    """``text`` with one integer slot's number replaced by one the grammar does not take
    there (the first of a few natural choices that does not parse); None if none found."""
    from assistant.grammar import parse
    from assistant.numbers import int_to_words

    for value in slots.values():
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            continue  # (one: "one minute" -> "ten minute" fails for the noun, not the number)
        said = int_to_words(value)
        if f" {said} " not in f" {text} " or text.count(said) != 1:
            continue
        for other in (value * 10, value + 10, value + 20, value + 50, value + 100):
            if not 0 < other < 1000 or other == value:
                continue
            changed = f" {text} ".replace(f" {said} ", f" {int_to_words(other)} ").strip()
            if parse(context, changed) is None:
                return changed
    return None


def sentences(context: Any, count: int, seed: int) -> list[tuple[Any, str]]:
    """``count`` (annotation, out-of-range text) pairs with a number, evenly from a sample."""
    from assistant.grammar import sample_sentences

    pairs = []
    for annotation in sample_sentences(context, 40 * count, seed=seed):
        changed = out_of_range(context, annotation.text, dict(annotation.slots))
        if changed is not None:
            pairs.append((annotation, changed))
    step = max(1, len(pairs) // count)
    return pairs[::step][:count]


def run(per_domain: int, snr_db: float, say: Any, seed: int = SEED) -> dict[str, Any]:
    from assistant.recognizer import Reason, Recognizer
    from benchmarks.devbench_data import _speak
    from benchmarks.noise import babble, mix_at_snr

    noise = babble()
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {"per_domain": per_domain, "snr_db": snr_db, "seed": seed,
                              "domains": {}}
    rows: list[dict[str, Any]] = []
    for name, path in DOMAINS.items():
        recognizer = Recognizer.from_context(path)
        pairs = sentences(recognizer.context, per_domain, seed)
        say(f"{name}: {len(pairs)} sentences with a number")
        for i, (annotation, changed) in enumerate(pairs):
            for kind, text in (("in_range", annotation.text), ("out_of_range", changed)):
                clean, voice = _speak(text, i)
                for condition, audio in (("clean", clean),
                                         (f"babble {snr_db:g} dB",
                                          mix_at_snr(clean, noise, snr_db, rng))):
                    result = recognizer.recognize(audio)
                    vetoed = result.reason == Reason.NUMBER_NOT_IN_GRAMMAR
                    right = (kind == "in_range" and result.understood
                             and result.intent == annotation.intent
                             and result.slots == dict(annotation.slots))
                    # What the answer was without the check: the decoded sentence's own
                    # parse (its grammar words; the transcript "6.02" would not parse back).
                    before = recognizer.analyze(audio).annotation if vetoed else None
                    right_before = right or (
                        kind == "in_range" and before is not None
                        and before.intent == annotation.intent
                        and dict(before.slots) == dict(annotation.slots))
                    rows.append({"domain": name, "kind": kind, "condition": condition,
                                 "voice": voice, "text": text, "understood": result.understood,
                                 "understood_before": result.understood or vetoed,
                                 "right": right, "right_before": right_before,
                                 "vetoed": vetoed, "reason": str(result.reason or ""),
                                 "transcript": result.transcript, "heard": result.heard,
                                 "confidence": round(result.confidence, 4)})
    for name in DOMAINS:
        for condition in sorted({r["condition"] for r in rows}):
            mine = [r for r in rows if r["domain"] == name and r["condition"] == condition]
            inside = [r for r in mine if r["kind"] == "in_range"]
            outside = [r for r in mine if r["kind"] == "out_of_range"]
            report["domains"].setdefault(name, {})[condition] = {
                "in_range": len(inside),
                "right_before": sum(r["right_before"] for r in inside),
                "right_after": sum(r["right"] for r in inside),
                "false_vetoes": sum(r["right_before"] and r["vetoed"] for r in inside),
                "vetoed_wrong_answers": sum(r["vetoed"] and not r["right_before"]
                                            for r in inside),
                "out_of_range": len(outside),
                "understood_before": sum(r["understood_before"] for r in outside),
                "understood_after": sum(r["understood"] for r in outside),
            }
    report["rows"] = rows
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-domain", type=int, default=30)
    parser.add_argument("--snr-db", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=SEED, help="which sentences (and noise)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = run(args.per_domain, args.snr_db, lambda m: print(m, file=sys.stderr), args.seed)
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print("| domain | condition | in range: right before / after (false vetoes) | "
          "out of range: understood before / after |")
    print("| --- | --- | --- | --- |")
    for name, conditions in report["domains"].items():
        for condition, c in conditions.items():
            print(f"| {name} | {condition} | {c['right_before']} / {c['right_after']} of "
                  f"{c['in_range']} ({c['false_vetoes']}) | {c['understood_before']} / "
                  f"{c['understood_after']} of {c['out_of_range']} |")
    print(f"{report['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
