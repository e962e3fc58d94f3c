"""The fine-tuned model's intent classifier, run with onnxruntime on the encoder states.

Its classes are the grammar's intents plus an out-of-domain class (``labels[-1]``). The
recognizer uses it for the intent before decoding (partial results), as a gate that skips
decoding for clearly out-of-domain speech, and as a confidence feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError

CLASSIFIER_FILE = "classifier.onnx"


@dataclass(frozen=True)
class IntentScores:
    labels: tuple[str, ...]
    probs: np.ndarray  # [classes]

    @property
    def best(self) -> tuple[str, float]:
        i = int(np.argmax(self.probs))
        return self.labels[i], float(self.probs[i])

    @property
    def out_of_domain(self) -> float:
        return float(self.probs[-1])

    def of(self, intent: str | None) -> float:
        if intent is None or intent not in self.labels:
            return 0.0
        return float(self.probs[self.labels.index(intent)])


class IntentClassifier:
    def __init__(self, path: Path, labels: list[str], threads: int = 1):
        import onnxruntime as ort

        from .onnx_session import session_options

        options = session_options(threads)
        try:
            self._session = ort.InferenceSession(str(path), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load intent classifier {path}: {e}") from e
        self.labels = tuple(labels)
        classes = self._session.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(labels):
            raise ModelError(f"{path} has {classes} classes but {len(labels)} labels")

    def classify(self, hidden: np.ndarray) -> IntentScores:
        """Scores for encoder states [1, positions, d] (or [positions, d])."""
        if hidden.ndim == 2:
            hidden = hidden[None]
        (probs,) = self._session.run(None, {"hidden": np.ascontiguousarray(hidden, np.float32)})
        return IntentScores(self.labels, probs[0])
