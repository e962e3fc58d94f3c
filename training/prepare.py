"""Stage 1 of training: synthesize and augment a dataset for one grammar.

    python -m training.prepare CONTEXT.yaml --out DIR [--size tiny|default|large|N]
                               [--seed S] [--workers W] [--engines espeak flite ...]

Writes DIR/manifest.json, DIR/{train,val,test_unseen_voices}.jsonl, DIR/audio/ and
DIR/DATASET.md (see :mod:`training.manifest` and :mod:`training.dataset`). The fine-tuning
stage reads the manifests. TTS audio, the room bank and the noise bank are cached under the
user cache directory (``$ASSISTANT_CACHE_DIR``), so a rerun only renders.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from assistant.errors import AssistantError

from .data_config import PRESETS, config_for_size
from .tts import ENGINES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.prepare",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("context", type=Path, help="the grammar (context YAML)")
    parser.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    parser.add_argument("--size", default="default",
                        help=f"number of command clips or a preset: "
                             f"{', '.join(f'{k} ({v})' for k, v in PRESETS.items())}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="synthesis processes (default: 2 or the CPU count if lower)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                        help="TTS engines to use (default: every installed one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .dataset import prepare_dataset  # after logging is set up

    started = time.monotonic()
    try:
        config = config_for_size(args.size, seed=args.seed, engines=tuple(args.engines))
        info = prepare_dataset(args.context, args.out, config, workers=max(1, args.workers))
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = {split: s["clips"] for split, s in info["splits"].items()}
    print(json.dumps({"out": str(args.out), "clips": summary, "dropped": info["dropped"],
                      "data_version": info["data_version"][:16],
                      "seconds": round(time.monotonic() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
