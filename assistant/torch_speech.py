"""A speech-model directory run by PyTorch: on a CUDA GPU, or on the CPU to check that path.

:class:`TorchSpeechModel` is a :class:`~assistant.speech_model.SpeechModel` whose encoder
and decoder are the directory's own graphs (``encoder.onnx``, ``decoder.onnx``) computed
with torch, op for op as :mod:`assistant.onnx_graph` spells them out, from the weights
stored in those files: an INT8 directory's weights are dequantized (per output channel, as
its graphs dequantize them), so a fine-tuned model runs on the GPU with the very weights it
runs with on the CPU, and an FP32 directory's are used as they are. ONNX Runtime is not
used: its CUDA build is a separate package, while torch's CUDA build is the one training
already installs (extra ``cuda``: ``pip install 'voice-assistant[cuda]'``).

The self-attention cache and the cross-attention keys stay on the device between decoder
steps; only token ids go up and log-probabilities [rows, new, vocab] come back (float32
numpy), so :mod:`assistant.decoding` drives it unchanged, several utterances per decoder
run included (:func:`~assistant.decoding.run_together`). The encoder states come back too
(numpy): the intent classifier, finality probe and monitor read them on the CPU.

Imported only when a recognizer's ``device`` is not ``cpu`` (``import assistant`` never
imports torch).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, MissingDependencyError, ModelError
from .speech_model import (
    DEVICE_PATTERN,
    MASKED,
    CrossKeys,
    EncoderOutput,
    KVCache,
    SpeechModel,
    batched_mel,
)


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise MissingDependencyError("torch", "cuda", "running speech models on a GPU") from e
    return torch


def torch_device(device: str) -> Any:
    """The torch device for a recognizer's ``device`` setting (``cpu-pytorch``, ``cuda``,
    ``cuda:N``), checked to exist here."""
    torch = _torch()
    if not DEVICE_PATTERN.fullmatch(device) or device == "cpu":
        raise ConfigError(f"device {device!r} is not run by PyTorch (cpu-pytorch, cuda, cuda:N)")
    if device == "cpu-pytorch":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: PyTorch {torch.__version__} finds no CUDA GPU "
                          f"here (CUDA build: {torch.version.cuda or 'none'}); use device cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: there are {torch.cuda.device_count()} CUDA "
                          "GPUs here")
    return torch.device("cuda", index)


WEIGHT_PREFIXES = ("model.", "proj_out.")  # assistant.onnx_graph names weights so


def read_graph_weights(path: Path) -> dict[str, np.ndarray]:
    """The named weights of one of our ONNX graphs as float32 arrays, INT8 ones dequantized.

    ONNX Runtime's dynamic quantization replaces a weight ``W`` by ``W_quantized``,
    ``W_scale`` and ``W_zero_point`` (per output channel, the last axis, for a MatMul's
    weight; one scale for a Gather's table); ``(W_quantized - W_zero_point) * W_scale``
    is the weight its graph multiplies by."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:  # onnx raises its own types (DecodeError, OSError)
        raise ModelError(f"cannot read {path}: {e}") from e
    raw = {init.name: numpy_helper.to_array(init) for init in graph.initializer
           if init.name.startswith(WEIGHT_PREFIXES)}  # not the graphs' small constants
    weights = {}
    for name, value in raw.items():
        base = re.sub(r"_(quantized|scale|zero_point)$", "", name)
        if base != name and f"{base}_quantized" in raw:
            if name.endswith("_quantized"):
                scale = raw[f"{base}_scale"].astype(np.float32)
                zero = raw[f"{base}_zero_point"].astype(np.float32)
                if scale.size not in (1, value.shape[-1]) or zero.shape != scale.shape:
                    raise ModelError(f"{path}: {base} is quantized along an axis this "
                                     f"version does not read (scale {scale.shape} for "
                                     f"{value.shape})")
                weights[base] = (value.astype(np.float32) - zero) * scale
            continue
        if value.dtype != np.float32:
            raise ModelError(f"{path}: weight {name} is {value.dtype}, not float32")
        weights[name] = value
    return weights


class TorchSpeechModel(SpeechModel):
    """A model directory's encoder and decoder on a torch device (see module docs)."""

    def __init__(self, directory: str | Path, device: str = "cuda", threads: int | None = None):
        torch = _torch()
        self._read_directory(directory)
        self.device = torch_device(device)
        if self.device.type == "cpu" and threads:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads() if self.device.type == "cpu" else 0
        self._torch = torch
        self._f = torch.nn.functional
        self.decodes_together = True
        weights = {**read_graph_weights(self.directory / "encoder.onnx"),
                   **read_graph_weights(self.directory / "decoder.onnx")}
        self._w = {name: torch.from_numpy(np.array(value, np.float32)).to(self.device)
                   for name, value in weights.items()}
        missing = [name for name in self._needed() if name not in self._w]
        if missing:
            raise ModelError(f"{self.directory}: its graphs lack the weights {missing[:4]} "
                             f"({len(missing)} in all); not a model this version wrote")

    def _needed(self) -> list[str]:
        """Every weight the two graphs use (as :mod:`assistant.onnx_graph` names them)."""
        def linear(prefix: str, bias: bool = True) -> list[str]:
            return [f"{prefix}.weight_t", *([f"{prefix}.bias"] if bias else [])]

        def norm(prefix: str) -> list[str]:
            return [f"{prefix}.weight", f"{prefix}.bias"]

        def attention(prefix: str, qkv: bool = True) -> list[str]:
            return [*linear(f"{prefix}.q_proj"), *linear(f"{prefix}.out_proj"),
                    *(linear(f"{prefix}.k_proj", bias=False) + linear(f"{prefix}.v_proj")
                      if qkv else [])]

        enc, dec = "model.encoder", "model.decoder"
        names = [f"{enc}.conv{i}.{kind}" for i in (1, 2) for kind in ("weight", "bias")]
        names += [f"{enc}.embed_positions.weight", *norm(f"{enc}.layer_norm"),
                  f"{dec}.embed_tokens.weight", f"{dec}.embed_positions.weight",
                  *norm(f"{dec}.layer_norm"), "proj_out.weight_t"]
        for i in range(self.dims.n_audio_layer):
            p = f"{enc}.layers.{i}"
            names += [*norm(f"{p}.self_attn_layer_norm"), *attention(f"{p}.self_attn"),
                      *norm(f"{p}.final_layer_norm"), *linear(f"{p}.fc1"), *linear(f"{p}.fc2")]
        for i in range(self.dims.n_text_layer):
            p = f"{dec}.layers.{i}"
            names += [*norm(f"{p}.self_attn_layer_norm"), *attention(f"{p}.self_attn"),
                      *norm(f"{p}.encoder_attn_layer_norm"), *attention(f"{p}.encoder_attn"),
                      *norm(f"{p}.final_layer_norm"), *linear(f"{p}.fc1"), *linear(f"{p}.fc2")]
        return names

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "runtime": "pytorch", "device": str(self.device)}

    # -- the graphs' pieces (assistant.onnx_graph._Builder) --------------------------------
    def _linear(self, x: Any, prefix: str, bias: bool = True) -> Any:
        y = x @ self._w[f"{prefix}.weight_t"]
        return y + self._w[f"{prefix}.bias"] if bias else y

    def _norm(self, x: Any, prefix: str) -> Any:
        return self._f.layer_norm(x, x.shape[-1:], self._w[f"{prefix}.weight"],
                                  self._w[f"{prefix}.bias"], 1e-5)

    def _mlp(self, x: Any, prefix: str) -> Any:
        h = self._norm(x, f"{prefix}.final_layer_norm")
        return x + self._linear(self._f.gelu(self._linear(h, f"{prefix}.fc1")), f"{prefix}.fc2")

    @staticmethod
    def _heads(x: Any, heads: int) -> Any:
        """[B, T, H*Dh] -> [B, H, T, Dh]."""
        return x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

    @staticmethod
    def _merge(x: Any) -> Any:
        """[B, H, T, Dh] -> [B, T, H*Dh]."""
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)

    def _attend(self, q: Any, k_t: Any, v: Any, mask: Any) -> Any:
        """softmax(q @ k_t + mask) @ v (the scale is folded into the query weights)."""
        scores = q @ k_t
        if mask is not None:
            scores = scores + mask
        return self._f.softmax(scores, dim=-1) @ v

    def _attend_cross(self, q: Any, k_t: Any, v: Any, mask: Any, utterances: int) -> Any:
        """Each utterance's rows q [U*R, H, new, Dh] against its own keys k_t [U, H, Dh, P]
        and values [U, H, P, Dh]: the rows folded into the query axis, so that the keys are
        read in place rather than copied for every row (the graph broadcasts them)."""
        rows, heads, new, dh = q.shape
        per = rows // utterances
        folded = q.reshape(utterances, per, heads, new, dh).transpose(1, 2)
        a = self._attend(folded.reshape(utterances, heads, per * new, dh), k_t, v, mask)
        return a.reshape(utterances, heads, per, new, dh).transpose(1, 2).reshape(q.shape)

    # -- SpeechModel -------------------------------------------------------------------------
    def encode(self, mel: np.ndarray) -> EncoderOutput:
        torch, f, w = self._torch, self._f, self._w
        mel = batched_mel(mel, self.max_frames)
        enc = "model.encoder"
        heads = self.dims.n_audio_head
        # cuDNN would run FP32 convolutions in TF32 (torch's default): not the graph's numbers.
        with torch.inference_mode(), torch.backends.cudnn.flags(allow_tf32=False):
            x = torch.from_numpy(np.ascontiguousarray(mel, np.float32)).to(self.device)
            x = f.gelu(f.conv1d(x, w[f"{enc}.conv1.weight"], w[f"{enc}.conv1.bias"], padding=1))
            x = f.gelu(f.conv1d(x, w[f"{enc}.conv2.weight"], w[f"{enc}.conv2.bias"], stride=2,
                                padding=1))
            x = x.transpose(1, 2)
            x = x + w[f"{enc}.embed_positions.weight"][: x.shape[1]]
            for i in range(self.dims.n_audio_layer):
                p = f"{enc}.layers.{i}"
                h = self._norm(x, f"{p}.self_attn_layer_norm")
                q = self._heads(self._linear(h, f"{p}.self_attn.q_proj"), heads)
                k = self._heads(self._linear(h, f"{p}.self_attn.k_proj", bias=False), heads)
                v = self._heads(self._linear(h, f"{p}.self_attn.v_proj"), heads)
                a = self._attend(q, k.transpose(2, 3), v, None)
                x = self._mlp(x + self._linear(self._merge(a), f"{p}.self_attn.out_proj"), p)
            hidden = self._norm(x, f"{enc}.layer_norm")
            cross = {}
            for i in range(self.dims.n_text_layer):
                p = f"model.decoder.layers.{i}.encoder_attn"
                cross[f"cross_k_{i}"] = self._heads(
                    self._linear(hidden, f"{p}.k_proj", bias=False),
                    self.dims.n_text_head).transpose(2, 3)
                cross[f"cross_v_{i}"] = self._heads(
                    self._linear(hidden, f"{p}.v_proj"), self.dims.n_text_head)
            states = hidden.float().cpu().numpy()
        return EncoderOutput(hidden=states, cross=cross)

    def decode(self, tokens: np.ndarray, cache: KVCache, encoded: EncoderOutput | CrossKeys
               ) -> tuple[np.ndarray, KVCache]:
        torch, w = self._torch, self._w
        keys = encoded.keys if isinstance(encoded, EncoderOutput) else encoded
        rows, new = int(tokens.shape[0]), int(tokens.shape[1])
        if rows % keys.utterances:
            raise ModelError(f"{rows} decoder rows cannot be shared evenly by "
                             f"{keys.utterances} utterances")
        utterances = keys.utterances
        heads = self.dims.n_text_head
        dec = "model.decoder"
        past = cache.length
        with torch.inference_mode():
            ids = torch.from_numpy(np.ascontiguousarray(tokens, np.int64)).to(self.device)
            x = w[f"{dec}.embed_tokens.weight"][ids] + \
                w[f"{dec}.embed_positions.weight"][past : past + new]
            positions = torch.arange(past, past + new, device=self.device)
            columns = torch.arange(past + new, device=self.device)
            causal = torch.where(columns[None, :] > positions[:, None], float(MASKED), 0.0)
            # Each utterance's rows against its own keys (graph version 3's cross-attention).
            cross_mask = self._array(keys.mask)[:, None, None, :]
            present = {}
            for i in range(self.dims.n_text_layer):
                p = f"{dec}.layers.{i}"
                h = self._norm(x, f"{p}.self_attn_layer_norm")
                q = self._heads(self._linear(h, f"{p}.self_attn.q_proj"), heads)
                k = torch.cat([self._array(cache.arrays[f"past_k_{i}"]),
                               self._heads(self._linear(h, f"{p}.self_attn.k_proj", bias=False),
                                           heads)], 2)
                v = torch.cat([self._array(cache.arrays[f"past_v_{i}"]),
                               self._heads(self._linear(h, f"{p}.self_attn.v_proj"), heads)], 2)
                present[f"past_k_{i}"], present[f"past_v_{i}"] = k, v
                a = self._attend(q, k.transpose(2, 3), v, causal)
                x = x + self._linear(self._merge(a), f"{p}.self_attn.out_proj")
                h = self._norm(x, f"{p}.encoder_attn_layer_norm")
                q = self._heads(self._linear(h, f"{p}.encoder_attn.q_proj"), heads)
                a = self._attend_cross(q, self._array(keys.arrays[f"cross_k_{i}"]),
                                       self._array(keys.arrays[f"cross_v_{i}"]), cross_mask,
                                       utterances)
                x = x + self._linear(self._merge(a), f"{p}.encoder_attn.out_proj")
                x = self._mlp(x, p)
            logits = self._norm(x, f"{dec}.layer_norm") @ w["proj_out.weight_t"]
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return logprobs, KVCache(present)

    def gather_cache(self, parts: Sequence[tuple[KVCache, np.ndarray]]) -> KVCache:
        torch = self._torch
        index = [torch.from_numpy(np.asarray(rows, np.int64)).to(self.device)
                 for _, rows in parts]
        return KVCache({name: torch.cat([self._array(c.arrays[name]).index_select(0, i)
                                         for (c, _), i in zip(parts, index, strict=True)])
                        for name in parts[0][0].arrays})

    def keys_together(self, parts: Sequence[CrossKeys]) -> CrossKeys:
        mask = CrossKeys.masks_together(parts)
        positions = mask.shape[1]
        arrays = {}
        for name in parts[0].arrays:
            axis = CrossKeys.position_axis(name)
            padded = []
            for p in parts:
                part = self._array(p.arrays[name])
                pad = [0, 0] * (4 - axis - 1) + [0, positions - part.shape[axis]]
                padded.append(self._f.pad(part, pad))
            arrays[name] = self._torch.cat(padded)
        return CrossKeys(arrays, mask)

    def _array(self, value: Any) -> Any:
        """A numpy array (an empty cache, a mask) on the device; a tensor as it is."""
        if isinstance(value, np.ndarray):
            return self._torch.from_numpy(np.ascontiguousarray(value)).to(self.device)
        return value
