"""``assistant bench``: the benchmark suite (:mod:`benchmarks.suite`) from the command line.

    assistant bench [--quick] [--model DIR] [--out DIR] [--only SECTION ...]

Writes ``bench-cpu[-quick]-<time>.json``, PNG plots and ``results.md`` into ``--out``
(default ``runs/bench``); ``results.md`` also shows the latest GPU run in that folder
(``python benchmarks/gpu.py --out DIR``) side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .datasets import DATA
from .suite import SECTIONS, SuiteConfig


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def config_from_args(args: argparse.Namespace) -> SuiteConfig:
    """The one place flags become the suite's config."""
    return SuiteConfig(quick=args.quick, model_dir=args.model, out_dir=args.out, data=args.data,
                       threads=args.threads, seed=args.seed, budget_p95_ms=args.budget_ms,
                       sections=tuple(args.only or SECTIONS), baselines=not args.no_baselines)


def cmd_bench(args: argparse.Namespace) -> int:
    from .report import write_json, write_results
    from .suite import run_suite

    config = config_from_args(args)
    report = run_suite(config, _progress)
    path = write_json(report, config.out_dir)
    results = write_results(config.out_dir)
    _progress(f"wrote {path} and {results} in {report['wall_s']} s")
    print(results.read_text())
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark speed and accuracy against baselines (JSON, plots, markdown)",
        description="Benchmark components, streaming latency, server throughput and accuracy "
                    "against PocketSphinx and free-transcription baselines.")
    p.add_argument("--quick", action="store_true",
                   help="subsampled sets, fewer SNRs and server steps (a few minutes on 2 cores)")
    p.add_argument("--model", type=Path, help="a fine-tuned model directory to measure too")
    p.add_argument("--out", type=Path, default=Path("runs/bench"),
                   help="results folder (default runs/bench)")
    p.add_argument("--data", type=Path, default=DATA,
                   help="evaluation data (default ../shared/data)")
    p.add_argument("--threads", type=int, help="intra-op threads (default min(4, cores))")
    p.add_argument("--seed", type=int, default=7, help="noise placement seed")
    p.add_argument("--budget-ms", type=float, default=300.0,
                   help="server p95 end-of-speech-to-result budget (default 300)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip PocketSphinx and free-transcription baselines")
    p.set_defaults(func=cmd_bench)
