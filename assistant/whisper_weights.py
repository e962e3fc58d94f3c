"""Whisper weights as one numpy state dict in Hugging Face Transformers naming.

Every consumer reads this one representation: the ONNX graph builder
(:mod:`assistant.onnx_graph`), the Transformers model used for fine-tuning
(:mod:`assistant.hf`) and tests. CTranslate2 checkpoints are converted here:

* self-attention q/k/v are fused in ``self_attention/linear_0`` (rows q, k, v) and the
  cross-attention k/v in ``attention/linear_1``; the stored k bias is all zeros and
  Whisper's k projections have no bias, so it is dropped (and checked to be zero);
* ``decoder/projection/weight`` is an alias of the token embedding (``proj_out`` is tied);
* ``ffn/linear_0``/``linear_1`` are ``fc1``/``fc2``; ``ffn/layer_norm`` is ``final_layer_norm``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from .ct2 import Ct2Model
from .errors import ModelError


@dataclass(frozen=True)
class WhisperDims:
    """Architecture sizes, read off the weights."""

    n_mels: int
    n_audio_ctx: int  # encoder positions: 1500 = 30 s at 20 ms
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int  # decoder positions: 448 tokens
    n_text_state: int
    n_text_head: int
    n_text_layer: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def multilingual(self) -> bool:
        return self.n_vocab >= 51865


def _count_layers(names: list[str], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"layer_(\d+)/")
    found = {int(m.group(1)) for n in names if (m := pattern.match(n))}
    if found != set(range(len(found))):
        raise ModelError(f"{prefix} layers are not numbered 0..n-1: {sorted(found)}")
    return len(found)


def dims_from_ct2(model: Ct2Model) -> WhisperDims:
    names = list(model.variables)
    conv1 = model["encoder/conv1/weight"]
    embed = model["decoder/embeddings/weight"]
    return WhisperDims(
        n_mels=int(conv1.shape[1]),
        n_audio_ctx=int(model["encoder/position_encodings/encodings"].shape[0]),
        n_audio_state=int(conv1.shape[0]),
        n_audio_head=int(model.scalar("encoder/num_heads")),
        n_audio_layer=_count_layers(names, "encoder/"),
        n_vocab=int(embed.shape[0]),
        n_text_ctx=int(model["decoder/position_encodings/encodings"].shape[0]),
        n_text_state=int(embed.shape[1]),
        n_text_head=int(model.scalar("decoder/num_heads")),
        n_text_layer=_count_layers(names, "decoder/"),
    )


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _split_qkv(
    sd: dict[str, np.ndarray], ct2: Ct2Model, src: str, dst: str, names: tuple[str, ...]
) -> None:
    weight = _f32(ct2[f"{src}/weight"])
    bias = _f32(ct2[f"{src}/bias"])
    d = weight.shape[1]
    if weight.shape[0] != d * len(names):
        raise ModelError(f"{src}/weight has shape {weight.shape}, expected {len(names)}x{d} rows")
    for i, name in enumerate(names):
        sd[f"{dst}.{name}.weight"] = weight[i * d : (i + 1) * d]
        b = bias[i * d : (i + 1) * d]
        if name == "k_proj":
            if np.any(b != 0):
                raise ModelError(f"{src}: key bias is not zero; cannot map to Whisper (no k bias)")
            continue
        sd[f"{dst}.{name}.bias"] = b


def _linear(sd: dict[str, np.ndarray], ct2: Ct2Model, src: str, dst: str) -> None:
    sd[f"{dst}.weight"] = _f32(ct2[f"{src}/weight"])
    sd[f"{dst}.bias"] = _f32(ct2[f"{src}/bias"])


def _norm(sd: dict[str, np.ndarray], ct2: Ct2Model, src: str, dst: str) -> None:
    sd[f"{dst}.weight"] = _f32(ct2[f"{src}/gamma"])
    sd[f"{dst}.bias"] = _f32(ct2[f"{src}/beta"])


def state_dict_from_ct2(ct2: Ct2Model) -> tuple[WhisperDims, dict[str, np.ndarray]]:
    """Convert a CTranslate2 ``WhisperSpec`` into a float32 state dict (HF names, no proj_out)."""
    if ct2.spec_name != "WhisperSpec":
        raise ModelError(f"expected a WhisperSpec model, got {ct2.spec_name!r}")
    dims = dims_from_ct2(ct2)
    sd: dict[str, np.ndarray] = {}
    enc, dec = "model.encoder", "model.decoder"
    for i in (1, 2):
        _linear(sd, ct2, f"encoder/conv{i}", f"{enc}.conv{i}")
    sd[f"{enc}.embed_positions.weight"] = _f32(ct2["encoder/position_encodings/encodings"])
    for i in range(dims.n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"{enc}.layers.{i}"
        _split_qkv(sd, ct2, f"{src}/self_attention/linear_0", f"{dst}.self_attn",
                   ("q_proj", "k_proj", "v_proj"))
        _linear(sd, ct2, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")
        _norm(sd, ct2, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
        _linear(sd, ct2, f"{src}/ffn/linear_0", f"{dst}.fc1")
        _linear(sd, ct2, f"{src}/ffn/linear_1", f"{dst}.fc2")
        _norm(sd, ct2, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
    _norm(sd, ct2, "encoder/layer_norm", f"{enc}.layer_norm")
    sd[f"{dec}.embed_tokens.weight"] = _f32(ct2["decoder/embeddings/weight"])
    sd[f"{dec}.embed_positions.weight"] = _f32(ct2["decoder/position_encodings/encodings"])
    for i in range(dims.n_text_layer):
        src, dst = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        _split_qkv(sd, ct2, f"{src}/self_attention/linear_0", f"{dst}.self_attn",
                   ("q_proj", "k_proj", "v_proj"))
        _linear(sd, ct2, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")
        _norm(sd, ct2, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
        _linear(sd, ct2, f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj")
        _split_qkv(sd, ct2, f"{src}/attention/linear_1", f"{dst}.encoder_attn",
                   ("k_proj", "v_proj"))
        _linear(sd, ct2, f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj")
        _norm(sd, ct2, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
        _linear(sd, ct2, f"{src}/ffn/linear_0", f"{dst}.fc1")
        _linear(sd, ct2, f"{src}/ffn/linear_1", f"{dst}.fc2")
        _norm(sd, ct2, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
    _norm(sd, ct2, "decoder/layer_norm", f"{dec}.layer_norm")
    projection = ct2["decoder/projection/weight"]
    if projection is not ct2["decoder/embeddings/weight"] and not np.array_equal(
        projection, ct2["decoder/embeddings/weight"]
    ):
        raise ModelError("decoder projection is not tied to the token embedding")
    return dims, sd
