"""Does the speech sound finished? A probe on the speech model's encoder states.

Grammar-aware endpointing (:mod:`assistant.endpointing`) knows from the grammar whether a
sentence *can* go on ("a large latte" ... "with oat milk"), not whether the speaker *will*.
Speakers mark that themselves: a sentence's last word is drawn out and falls, a word before
a hesitation is not. Whisper's encoder hears it: a logistic regression on the encoder states
around the end of the speech (the mean of the last 200 ms of speech, of the 200 ms before
them, and of the first 100 ms after) tells the end of a synthesized sentence from a cut at a
pause inside it with an AUC of 0.95-0.99 on TTS engines it was not fitted on
(``python -m training.finality``, which writes the shipped probes with their own report).

A probe belongs to one speech model's encoder (``assistant/finality_probes/<model>.json``); models
without one (a fine-tuned encoder, another size) get no finality, and the endpointing falls
back to the grammar alone.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .levels import speech_end_s

SAMPLE_RATE_HZ = 16000
SAMPLES_PER_STATE = SAMPLE_RATE_HZ // 50  # Whisper's encoder: one state per 20 ms
SPEECH_STATES = 10  # 200 ms of the last speech, and 200 ms before them
AFTER_STATES = 5  # 100 ms after the speech
PROBES = Path(__file__).resolve().parent / "finality_probes"


def finality_features(hidden: np.ndarray, audio: np.ndarray) -> np.ndarray | None:
    """The probe's input for one utterance: encoder states ``hidden`` [positions, d] of
    ``audio`` (mono 16 kHz, the states' first position at its first sample); None when no
    speech end is found."""
    end = round(speech_end_s(audio, SAMPLE_RATE_HZ) * SAMPLE_RATE_HZ) // SAMPLES_PER_STATE
    if end < 2 or end >= hidden.shape[0]:
        return None
    last = hidden[max(0, end - SPEECH_STATES) : end]
    before = hidden[max(0, end - 2 * SPEECH_STATES) : max(1, end - SPEECH_STATES)]
    after = hidden[end : end + AFTER_STATES]
    return np.concatenate([last.mean(0), before.mean(0), after.mean(0)]).astype(np.float64)


@dataclass(frozen=True)
class FinalityProbe:
    """``sigmoid(weights . features + bias)`` (inputs already standardized into the
    weights), for the encoder of ``speech_model``. Speech at or over ``finished_at`` sounds
    finished, under ``unfinished_below`` unfinished, and in between the probe cannot tell
    (both chosen when it was fitted, see :mod:`training.finality`)."""

    speech_model: str
    weights: np.ndarray
    bias: float
    finished_at: float
    unfinished_below: float
    info: dict[str, Any]

    def __post_init__(self) -> None:
        if not 0.0 <= self.unfinished_below <= self.finished_at <= 1.0:
            raise ModelError(f"finality probe for {self.speech_model}: thresholds need "
                             f"0 <= unfinished_below <= finished_at <= 1, got "
                             f"{self.unfinished_below}, {self.finished_at}")

    def judge(self, probability: float | None) -> bool | None:
        """True: sounds finished; False: sounds unfinished; None: cannot tell."""
        if probability is None:
            return None
        if probability >= self.finished_at:
            return True
        return False if probability < self.unfinished_below else None

    def probability(self, hidden: np.ndarray, audio: np.ndarray) -> float | None:
        """How likely the speech in ``audio`` is a finished sentence (None: no speech end)."""
        x = finality_features(hidden, audio)
        if x is None:
            return None
        if x.shape != self.weights.shape:
            raise ModelError(f"finality probe for {self.speech_model} takes {self.weights.size} "
                             f"features, the encoder gave {x.size}")
        z = float(x @ self.weights) + self.bias
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"speech_model": self.speech_model, "finished_at": self.finished_at,
                "unfinished_below": self.unfinished_below, "bias": self.bias,
                "weights": [float(f"{w:.6g}") for w in self.weights], "info": self.info}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FinalityProbe:
        try:
            return cls(str(data["speech_model"]), np.asarray(data["weights"], np.float64),
                       float(data["bias"]), float(data["finished_at"]),
                       float(data["unfinished_below"]), dict(data.get("info", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"a finality probe lacks or garbles {e}") from e


@functools.lru_cache(maxsize=8)
def builtin_probe(speech_model: str) -> FinalityProbe | None:
    """The shipped probe for a pretrained speech model's encoder, or None."""
    path = PROBES / f"{speech_model}.json"
    if not path.is_file():
        return None
    try:
        return FinalityProbe.from_json(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise ModelError(f"{path} is not valid JSON: {e}") from e
