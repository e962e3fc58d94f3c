"""A speech-model directory loaded into ONNX Runtime sessions (no torch).

One :class:`SpeechModel` is shared, read-only, by every recognizer and stream: onnxruntime
sessions are safe to run from several threads at once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import read_metadata
from .errors import ModelError
from .onnx_session import session_options
from .tokenizer import SpecialTokens, Tokenizer, load_tokenizer
from .whisper_weights import WhisperDims

logger = logging.getLogger("assistant.speech_model")


def batched_mel(mel: Any, max_frames: int) -> Any:
    """Log-mel features [n_mels, frames] or [batch, n_mels, frames] as a batch, checked.

    The encoder takes an even number of frames (its second convolution has stride 2), at
    most ``max_frames``. Works on numpy arrays and torch tensors alike.
    """
    if mel.ndim == 2:
        mel = mel[None]
    frames = mel.shape[-1]
    if frames % 2 or frames > max_frames or frames == 0:
        raise ModelError(f"encoder needs an even number of frames in 2..{max_frames}, "
                         f"got {frames}")
    return mel


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class EncoderOutput:
    hidden: np.ndarray  # [batch, positions, d]
    cross: dict[str, np.ndarray]  # cross_k_i / cross_v_i

    @property
    def positions(self) -> int:
        return int(self.hidden.shape[1])


class KVCache:
    """The decoder's self-attention cache: ``past_k_i``/``past_v_i`` [batch, heads, t, dh]."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    @classmethod
    def empty(cls, dims: WhisperDims, batch: int) -> KVCache:
        dh = dims.n_text_state // dims.n_text_head
        shape = (batch, dims.n_text_head, 0, dh)
        return cls({f"past_{kv}_{i}": np.zeros(shape, np.float32)
                    for i in range(dims.n_text_layer) for kv in "kv"})

    def select(self, rows: np.ndarray | list[int]) -> KVCache:
        """Reorder/duplicate batch rows (beam search)."""
        index = np.asarray(rows, dtype=np.int64)
        return KVCache({k: v[index] for k, v in self.arrays.items()})

    @property
    def length(self) -> int:
        return int(next(iter(self.arrays.values())).shape[2])


class SpeechModel:
    """Whisper encoder + decoder sessions, tokenizer and metadata of one model directory."""

    def __init__(self, directory: str | Path, threads: int | None = None):
        import onnxruntime as ort

        self.directory = Path(directory)
        self.metadata = read_metadata(self.directory)
        try:
            self.dims = WhisperDims(**self.metadata["dims"])
            self.prompt: tuple[int, ...] = tuple(self.metadata["prompt"])
        except (KeyError, TypeError) as e:
            raise ModelError(f"{self.directory}: metadata lacks or garbles {e}") from e
        self.name: str = self.metadata.get("model", self.directory.name)
        self.precision: str = self.metadata.get("precision", "unknown")
        self.tokenizer: Tokenizer = load_tokenizer(self.directory / "tokenizer.json")
        self.special: SpecialTokens = self.tokenizer.special_tokens()
        self.threads = threads or default_threads()
        options = session_options(self.threads, memory_arena=False)
        try:
            self._encoder = ort.InferenceSession(
                str(self.directory / "encoder.onnx"), options, providers=["CPUExecutionProvider"]
            )
            self._decoder = ort.InferenceSession(
                str(self.directory / "decoder.onnx"), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load ONNX models from {self.directory}: {e}") from e
        self._encoder_outputs = [o.name for o in self._encoder.get_outputs()]
        self._decoder_outputs = [o.name for o in self._decoder.get_outputs()]

    @property
    def max_frames(self) -> int:
        return 2 * self.dims.n_audio_ctx

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "precision": self.precision,
                "directory": str(self.directory)}

    def encode(self, mel: np.ndarray) -> EncoderOutput:
        """Run the encoder on log-mel features [n_mels, frames] or [batch, n_mels, frames]."""
        mel = batched_mel(mel, self.max_frames)
        outputs = self._encoder.run(None, {"mel": np.ascontiguousarray(mel, np.float32)})
        named = dict(zip(self._encoder_outputs, outputs, strict=True))
        hidden = named.pop("hidden")
        return EncoderOutput(hidden=hidden, cross=named)

    def decode(
        self, tokens: np.ndarray, cache: KVCache, encoded: EncoderOutput
    ) -> tuple[np.ndarray, KVCache]:
        """Log-probabilities [batch, new, vocab] for ``tokens`` [batch, new] and the new cache."""
        feeds = {"tokens": np.ascontiguousarray(tokens, np.int64), **cache.arrays,
                 **encoded.cross}
        outputs = self._decoder.run(None, feeds)
        named = dict(zip(self._decoder_outputs, outputs, strict=True))
        logprobs = named.pop("logprobs")
        return logprobs, KVCache({k.replace("present", "past"): v for k, v in named.items()})

