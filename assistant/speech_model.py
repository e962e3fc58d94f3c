"""A speech-model directory loaded into ONNX Runtime sessions (no torch).

One :class:`SpeechModel` is shared, read-only, by every recognizer and stream: onnxruntime
sessions are safe to run from several threads at once. :func:`load_speech_model` opens a
directory on a ``device``: here on the CPU, or with PyTorch on a GPU
(:mod:`assistant.torch_speech`, imported only then).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Sequence
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


# A recognizer's ``device``: cpu (ONNX Runtime), cuda, cuda:N, cpu-pytorch (PyTorch).
DEVICE_PATTERN = re.compile(r"cpu|cpu-pytorch|cuda(:\d+)?")

MASKED = np.float32(-1e9)  # a cross-attention mask's value over padding (exp() is 0)


@dataclass(frozen=True)
class CrossKeys:
    """What the decoder attends to: the cross-attention keys and values ``cross_k_i`` /
    ``cross_v_i`` of one or more utterances, and ``mask`` [utterances, positions] (0 over
    an utterance's audio, :data:`MASKED` over the padding after a shorter one)."""

    arrays: dict[str, np.ndarray]
    mask: np.ndarray

    @property
    def utterances(self) -> int:
        return int(self.mask.shape[0])

    @staticmethod
    def position_axis(name: str) -> int:
        """The positions' axis of array ``name``: ``cross_k_i`` is stored transposed."""
        return 3 if name.startswith("cross_k") else 2

    @staticmethod
    def masks_together(parts: Sequence[CrossKeys]) -> np.ndarray:
        """Several utterances' masks as one [utterances, longest], the padding after the
        shorter ones masked (what any runtime's :meth:`SpeechModel.keys_together` uses)."""
        positions = max(p.mask.shape[1] for p in parts)
        mask = np.full((sum(p.utterances for p in parts), positions), MASKED, np.float32)
        row = 0
        for p in parts:
            mask[row : row + p.utterances, : p.mask.shape[1]] = p.mask
            row += p.utterances
        return mask

    @classmethod
    def together(cls, parts: Sequence[CrossKeys]) -> CrossKeys:
        """Several utterances' keys side by side, the shorter ones padded and masked."""
        mask = cls.masks_together(parts)
        arrays = {}
        for name, first in parts[0].arrays.items():
            axis = cls.position_axis(name)
            shape = list(first.shape)
            shape[0], shape[axis] = mask.shape
            out = np.zeros(shape, np.float32)
            row = 0
            for p in parts:
                part = p.arrays[name]
                index = [slice(row, row + part.shape[0])] + [slice(None)] * 3
                index[axis] = slice(0, part.shape[axis])
                out[tuple(index)] = part
                row += part.shape[0]
            arrays[name] = out
        return cls(arrays, mask)


@dataclass(frozen=True)
class EncoderOutput:
    hidden: np.ndarray  # [batch, positions, d]
    cross: dict[str, np.ndarray]  # cross_k_i / cross_v_i

    @property
    def positions(self) -> int:
        return int(self.hidden.shape[1])

    @functools.cached_property
    def keys(self) -> CrossKeys:
        """The cross-attention keys and values, every position heard (made once: every
        decoder step of the utterance attends to them)."""
        return CrossKeys(self.cross, np.zeros(self.hidden.shape[:2], np.float32))


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

        self._read_directory(directory)
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
        # Graphs built before version 2 attend to one utterance at a time.
        self._takes_mask = any(i.name == "cross_mask" for i in self._decoder.get_inputs())
        self.decodes_together = self._takes_mask  # assistant.decoding.run_together looks

    def _read_directory(self, directory: str | Path) -> None:
        """What every runtime reads: metadata, architecture, prompt and tokenizer."""
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
        self, tokens: np.ndarray, cache: KVCache, encoded: EncoderOutput | CrossKeys
    ) -> tuple[np.ndarray, KVCache]:
        """Log-probabilities [batch, new, vocab] for ``tokens`` [batch, new] and the new cache.

        With the keys of several utterances (:meth:`CrossKeys.together`), the rows belong to
        them in order, ``batch / utterances`` each."""
        keys = encoded.keys if isinstance(encoded, EncoderOutput) else encoded
        feeds = {"tokens": np.ascontiguousarray(tokens, np.int64), **cache.arrays,
                 **keys.arrays}
        if self._takes_mask:
            feeds["cross_mask"] = keys.mask
        elif keys.utterances > 1:
            raise ModelError(f"{self.directory}: its decoder graph predates decoding several "
                             "utterances together; rebuild or re-export the model")
        if tokens.shape[0] % keys.utterances:
            raise ModelError(f"{tokens.shape[0]} decoder rows cannot be shared evenly by "
                             f"{keys.utterances} utterances")
        outputs = self._decoder.run(None, feeds)
        named = dict(zip(self._decoder_outputs, outputs, strict=True))
        logprobs = named.pop("logprobs")
        return logprobs, KVCache({k.replace("present", "past"): v for k, v in named.items()})

    def gather_cache(self, parts: Sequence[tuple[KVCache, np.ndarray]]) -> KVCache:
        """One cache of the ``rows`` of each ``(cache, rows)`` in turn (several utterances'
        beams for one decoder run, :func:`assistant.decoding.run_together`)."""
        arrays = {}
        total = sum(len(rows) for _, rows in parts)
        for name, first in parts[0][0].arrays.items():
            out = np.empty((total, *first.shape[1:]), first.dtype)
            start = 0
            for cache, rows in parts:
                np.take(cache.arrays[name], rows, axis=0, out=out[start : start + len(rows)])
                start += len(rows)
            arrays[name] = out
        return KVCache(arrays)

    def keys_together(self, parts: Sequence[CrossKeys]) -> CrossKeys:
        """Several utterances' cross-attention keys for one decoder run."""
        return CrossKeys.together(parts)


def load_speech_model(directory: str | Path, threads: int | None = None,
                      device: str = "cpu") -> SpeechModel:
    """A model directory on ``device``: ``cpu`` runs it with ONNX Runtime; ``cuda``,
    ``cuda:N`` and ``cpu-pytorch`` with PyTorch (:mod:`assistant.torch_speech`)."""
    if device == "cpu":
        return SpeechModel(directory, threads=threads)
    from .torch_speech import TorchSpeechModel

    return TorchSpeechModel(directory, device, threads=threads)
