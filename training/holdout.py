"""Split the unseen-voice data in two, by voice: one half steers, the other half judges.

``test_unseen_voices.jsonl`` (voices never used for training) becomes
``holdout_a.jsonl``, used for early stopping and, with ``val.jsonl``, for fitting the
confidence calibration, and ``holdout_b.jsonl``, used only for the evaluation report. Both
halves hold whole voices, so the report speaks of voices that nothing was fitted on, and the
calibration sees the regret and classifier scores a model gives to voices it has not learned
(``val`` shares voices with ``train``: its scores are optimistic).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SOURCE = "test_unseen_voices.jsonl"
STEER, JUDGE = "holdout_a.jsonl", "holdout_b.jsonl"


def base_voice(row: dict[str, Any]) -> str:
    """The voice before conversion ("flite:awb~+3.6st/1.11" -> "flite:awb"); "" for noise."""
    return str(row.get("speaker") or "").split("~")[0]


def split_holdout(data_dir: Path) -> tuple[Path, Path]:
    """Write the two halves (idempotent) and return their paths."""
    rows = [json.loads(line) for line in (data_dir / SOURCE).read_text().splitlines()
            if line.strip()]
    voices = sorted({base_voice(r) for r in rows if base_voice(r)})
    steer_voices = set(voices[0::2])
    steer, judge = [], []
    unvoiced = 0
    for row in rows:
        voice = base_voice(row)
        if voice:
            (steer if voice in steer_voices else judge).append(row)
        else:  # non-speech clips: alternate
            (steer if unvoiced % 2 == 0 else judge).append(row)
            unvoiced += 1
    for name, part in ((STEER, steer), (JUDGE, judge)):
        (data_dir / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    return data_dir / STEER, data_dir / JUDGE
