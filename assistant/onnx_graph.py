"""Whisper encoder and decoder as ONNX graphs, written directly from a numpy state dict.

No tracing and no torch: the graphs are spelled out op by op with ``onnx.helper`` from the
weights in Transformers naming (:mod:`assistant.whisper_weights`), so the pretrained and the
fine-tuned models export through the same code.

Encoder (``encoder.onnx``)
    in:  ``mel`` float32 [batch, n_mels, frames] (frames even, at most 2 x n_audio_ctx)
    out: ``hidden`` [batch, frames/2, d] and, for each decoder layer i, the cross-attention
         keys ``cross_k_i`` [batch, heads, head_dim, frames/2] (already transposed for
         ``q @ k``) and values ``cross_v_i`` [batch, heads, frames/2, head_dim].
    The positional table is sliced to the window, so a 3 s utterance costs 3 s, not 30.

Decoder (``decoder.onnx``), one or more tokens at a time with a key/value cache
    in:  ``tokens`` int64 [batch, new], ``past_k_i``/``past_v_i`` [batch, heads, past, head_dim]
         (``past`` may be 0), ``cross_k_i``/``cross_v_i`` from the encoder for ``utterances``
         utterances, and ``cross_mask`` float32 [utterances, positions] (0 where an
         utterance's audio is, a large negative number over the padding after a shorter
         one). The decoder's rows belong to the utterances in order, ``batch / utterances``
         each (beams of one utterance share one copy of its keys and values; several
         utterances decode in one run, :func:`assistant.decoding.run_together`).
    out: ``logprobs`` [batch, new, vocab] (log-softmax), ``present_k_i``/``present_v_i``.

Attention scale ``head_dim ** -0.5`` is folded into the query projections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import MissingDependencyError
from .whisper_weights import WhisperDims

OPSET = 17
GRAPH_VERSION = 3  # bump when the graphs change: cached artifacts are keyed by it


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as e:
        raise MissingDependencyError("onnx", "build", "building ONNX models") from e
    return onnx


@dataclass
class _Builder:
    """Accumulates nodes and initializers with unique names."""

    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    counter: int = 0

    def name(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}_{self.counter}"

    def const(self, array: np.ndarray, hint: str = "const") -> str:
        onnx = _onnx()
        name = self.name(hint)
        self.initializers.append(onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, array: np.ndarray, name: str) -> str:
        onnx = _onnx()
        self.initializers.append(
            onnx.numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)
        )
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        (out,) = self.op_multi(op_type, inputs, 1, hint, **attrs)
        return out

    def op_multi(
        self, op_type: str, inputs: list[str], n_out: int, hint: str | None = None, **attrs: Any
    ) -> list[str]:
        onnx = _onnx()
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(
            onnx.helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs)
        )
        return outs

    # -- layers ------------------------------------------------------------------------
    def linear(self, x: str, sd: dict[str, np.ndarray], prefix: str, scale: float = 1.0) -> str:
        """``x @ W.T + b``; W stored transposed as the MatMul's initializer (quantizable)."""
        w = sd[f"{prefix}.weight"].T * np.float32(scale)
        y = self.op("MatMul", [x, self.weight(w, f"{prefix}.weight_t")])
        bias = sd.get(f"{prefix}.bias")
        if bias is None:
            return y
        return self.op("Add", [y, self.weight(bias * np.float32(scale), f"{prefix}.bias")])

    def layer_norm(self, x: str, sd: dict[str, np.ndarray], prefix: str) -> str:
        return self.op(
            "LayerNormalization",
            [x, self.weight(sd[f"{prefix}.weight"], f"{prefix}.weight"),
             self.weight(sd[f"{prefix}.bias"], f"{prefix}.bias")],
            axis=-1,
            epsilon=1e-5,
        )

    def gelu(self, x: str) -> str:
        """Exact (erf) GELU, which onnxruntime fuses into one kernel."""
        inv_sqrt2 = self.const(np.array(1 / math.sqrt(2), np.float32), "inv_sqrt2")
        half, one = self.const(np.array(0.5, np.float32)), self.const(np.array(1.0, np.float32))
        erf = self.op("Erf", [self.op("Mul", [x, inv_sqrt2])])
        return self.op("Mul", [self.op("Mul", [x, half]), self.op("Add", [erf, one])])

    def split_heads(self, x: str, heads: int, head_dim: int, perm: list[int]) -> str:
        """[B, T, H*Dh] -> [B, H, T, Dh] (perm [0,2,1,3]) or [B, H, Dh, T] (perm [0,2,3,1])."""
        shape = self.const(np.array([0, -1, heads, head_dim], np.int64), "heads_shape")
        return self.op("Transpose", [self.op("Reshape", [x, shape])], perm=perm)

    def merge_heads(self, x: str, d: int) -> str:
        t = self.op("Transpose", [x], perm=[0, 2, 1, 3])
        return self.op("Reshape", [t, self.const(np.array([0, -1, d], np.int64), "merge_shape")])

    def attend(self, q: str, k_t: str, v: str, mask: str | None) -> str:
        """softmax(q @ k_t + mask) @ v with q [B,H,T,Dh], k_t [B,H,Dh,S], v [B,H,S,Dh]."""
        scores = self.op("MatMul", [q, k_t])
        if mask is not None:
            scores = self.op("Add", [scores, mask])
        return self.op("MatMul", [self.op("Softmax", [scores], axis=-1), v])

    def mlp(self, x: str, sd: dict[str, np.ndarray], prefix: str) -> str:
        h = self.layer_norm(x, sd, f"{prefix}.final_layer_norm")
        h = self.linear(self.gelu(self.linear(h, sd, f"{prefix}.fc1")), sd, f"{prefix}.fc2")
        return self.op("Add", [x, h])

    def model(self, name: str, inputs: list[Any], outputs: list[Any], doc: str) -> Any:
        onnx = _onnx()
        graph = onnx.helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = onnx.helper.make_model(
            graph,
            opset_imports=[onnx.helper.make_opsetid("", OPSET)],
            producer_name="voice-assistant",
            doc_string=doc,
        )
        model.ir_version = 8
        return model


def _tensor(name: str, dtype: int, shape: list[Any]) -> Any:
    return _onnx().helper.make_tensor_value_info(name, dtype, shape)


def build_encoder(dims: WhisperDims, sd: dict[str, np.ndarray]) -> Any:
    """The encoder graph (see module docs); returns an ``onnx.ModelProto``."""
    onnx = _onnx()
    f32 = onnx.TensorProto.FLOAT
    b = _Builder()
    d, heads = dims.n_audio_state, dims.n_audio_head
    head_dim = d // heads
    scale = head_dim**-0.5
    enc = "model.encoder"

    def conv(x: str, i: int, stride: int) -> str:
        w = b.weight(sd[f"{enc}.conv{i}.weight"], f"{enc}.conv{i}.weight")
        bias = b.weight(sd[f"{enc}.conv{i}.bias"], f"{enc}.conv{i}.bias")
        return b.op("Conv", [x, w, bias], kernel_shape=[3], pads=[1, 1], strides=[stride])

    x = b.gelu(conv("mel", 1, 1))
    x = b.gelu(conv(x, 2, 2))
    x = b.op("Transpose", [x], perm=[0, 2, 1])  # [B, S, D]
    seq = b.op("Slice", [b.op("Shape", [x]), b.const(np.array([1], np.int64)),
                         b.const(np.array([2], np.int64))])
    positions = b.op(
        "Slice",
        [b.weight(sd[f"{enc}.embed_positions.weight"], f"{enc}.embed_positions.weight"),
         b.const(np.array([0], np.int64)), seq, b.const(np.array([0], np.int64))],
    )
    x = b.op("Add", [x, positions])
    for i in range(dims.n_audio_layer):
        p = f"{enc}.layers.{i}"
        h = b.layer_norm(x, sd, f"{p}.self_attn_layer_norm")
        q = b.split_heads(b.linear(h, sd, f"{p}.self_attn.q_proj", scale), heads, head_dim,
                          [0, 2, 1, 3])
        k = b.split_heads(b.linear(h, sd, f"{p}.self_attn.k_proj"), heads, head_dim, [0, 2, 3, 1])
        v = b.split_heads(b.linear(h, sd, f"{p}.self_attn.v_proj"), heads, head_dim, [0, 2, 1, 3])
        a = b.linear(b.merge_heads(b.attend(q, k, v, None), d), sd, f"{p}.self_attn.out_proj")
        x = b.mlp(b.op("Add", [x, a]), sd, p)
    hidden = b.layer_norm(x, sd, f"{enc}.layer_norm")
    b.nodes.append(onnx.helper.make_node("Identity", [hidden], ["hidden"], name="hidden_out"))
    outputs = [_tensor("hidden", f32, ["batch", "positions", d])]
    dh = dims.n_text_state // dims.n_text_head
    for i in range(dims.n_text_layer):
        p = f"model.decoder.layers.{i}.encoder_attn"
        k = b.split_heads(b.linear(hidden, sd, f"{p}.k_proj"), dims.n_text_head, dh, [0, 2, 3, 1])
        v = b.split_heads(b.linear(hidden, sd, f"{p}.v_proj"), dims.n_text_head, dh, [0, 2, 1, 3])
        b.nodes.append(onnx.helper.make_node("Identity", [k], [f"cross_k_{i}"]))
        b.nodes.append(onnx.helper.make_node("Identity", [v], [f"cross_v_{i}"]))
        outputs += [
            _tensor(f"cross_k_{i}", f32, ["batch", dims.n_text_head, dh, "positions"]),
            _tensor(f"cross_v_{i}", f32, ["batch", dims.n_text_head, "positions", dh]),
        ]
    inputs = [_tensor("mel", f32, ["batch", dims.n_mels, "frames"])]
    return b.model("whisper_encoder", inputs, outputs, "Whisper encoder, window-sized")


def build_decoder(dims: WhisperDims, sd: dict[str, np.ndarray]) -> Any:
    """The decoder graph with a key/value cache (see module docs); an ``onnx.ModelProto``."""
    onnx = _onnx()
    f32, i64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    b = _Builder()
    d, heads = dims.n_text_state, dims.n_text_head
    head_dim = d // heads
    scale = head_dim**-0.5
    dec = "model.decoder"
    zero = b.const(np.array(0, np.int64), "zero")
    one = b.const(np.array(1, np.int64), "one")

    def dim(tensor: str, axis: int) -> str:
        shape = b.op("Shape", [tensor])
        return b.op("Gather", [shape, b.const(np.array(axis, np.int64))], axis=0)

    past = dim("past_k_0", 2)
    new = dim("tokens", 1)
    total = b.op("Add", [past, new])
    positions = b.op("Range", [past, total, one])
    embed = b.weight(sd[f"{dec}.embed_tokens.weight"], f"{dec}.embed_tokens.weight")
    x = b.op("Add", [
        b.op("Gather", [embed, "tokens"], axis=0),
        b.op("Gather", [b.weight(sd[f"{dec}.embed_positions.weight"],
                                 f"{dec}.embed_positions.weight"), positions], axis=0),
    ])
    # Causal mask [new, past+new]: query t (absolute past+t) sees keys j <= past+t.
    rows = b.op("Unsqueeze", [positions, b.const(np.array([1], np.int64))])
    cols = b.op("Unsqueeze", [b.op("Range", [zero, total, one]),
                              b.const(np.array([0], np.int64))])
    mask = b.op("Where", [b.op("Greater", [cols, rows]),
                          b.const(np.array(-1e9, np.float32)), b.const(np.array(0, np.float32))])
    # Cross-attention per utterance: the rows [batch, H, new, Dh] as [utterances, rows, H, new,
    # Dh] against each utterance's keys and values with a rows axis of 1 to broadcast over.
    # Each (row, head) stays a product of its own, as in a batch of one utterance (whose
    # numbers this keeps exactly: graph version 1 broadcast one utterance's keys the same way).
    one_d = b.const(np.array([1], np.int64), "one_d")
    new_1d = b.op("Reshape", [new, one_d])
    grouped = b.op("Concat", [b.op("Reshape", [dim("cross_k_0", 0), one_d]),
                              b.const(np.array([-1, heads], np.int64)), new_1d,
                              b.const(np.array([head_dim], np.int64))], axis=0)
    by_row = b.op("Concat", [b.const(np.array([-1, heads], np.int64)), new_1d,
                             b.const(np.array([head_dim], np.int64))], axis=0)
    rows_axis = b.const(np.array([1], np.int64), "rows_axis")
    cross_mask = b.op("Unsqueeze", ["cross_mask", b.const(np.array([1, 2, 3], np.int64))])

    def attend_cross(q: str, k_t: str, v: str) -> str:
        q = b.op("Reshape", [q, grouped])
        a = b.attend(q, b.op("Unsqueeze", [k_t, rows_axis]), b.op("Unsqueeze", [v, rows_axis]),
                     cross_mask)
        return b.op("Reshape", [a, by_row])

    outputs = []
    for i in range(dims.n_text_layer):
        p = f"{dec}.layers.{i}"
        h = b.layer_norm(x, sd, f"{p}.self_attn_layer_norm")
        q = b.split_heads(b.linear(h, sd, f"{p}.self_attn.q_proj", scale), heads, head_dim,
                          [0, 2, 1, 3])
        k_new = b.split_heads(b.linear(h, sd, f"{p}.self_attn.k_proj"), heads, head_dim,
                              [0, 2, 1, 3])
        v_new = b.split_heads(b.linear(h, sd, f"{p}.self_attn.v_proj"), heads, head_dim,
                              [0, 2, 1, 3])
        k_all = b.op("Concat", [f"past_k_{i}", k_new], axis=2)
        v_all = b.op("Concat", [f"past_v_{i}", v_new], axis=2)
        b.nodes.append(onnx.helper.make_node("Identity", [k_all], [f"present_k_{i}"]))
        b.nodes.append(onnx.helper.make_node("Identity", [v_all], [f"present_v_{i}"]))
        k_t = b.op("Transpose", [k_all], perm=[0, 1, 3, 2])
        a = b.linear(b.merge_heads(b.attend(q, k_t, v_all, mask), d), sd,
                     f"{p}.self_attn.out_proj")
        x = b.op("Add", [x, a])
        h = b.layer_norm(x, sd, f"{p}.encoder_attn_layer_norm")
        q = b.split_heads(b.linear(h, sd, f"{p}.encoder_attn.q_proj", scale), heads, head_dim,
                          [0, 2, 1, 3])
        a = attend_cross(q, f"cross_k_{i}", f"cross_v_{i}")
        x = b.op("Add", [x, b.linear(b.merge_heads(a, d), sd, f"{p}.encoder_attn.out_proj")])
        x = b.mlp(x, sd, p)
        outputs += [
            _tensor(f"present_k_{i}", f32, ["batch", heads, "total", head_dim]),
            _tensor(f"present_v_{i}", f32, ["batch", heads, "total", head_dim]),
        ]
    x = b.layer_norm(x, sd, f"{dec}.layer_norm")
    logits = b.op("MatMul", [x, b.weight(sd[f"{dec}.embed_tokens.weight"].T, "proj_out.weight_t")])
    b.nodes.append(
        onnx.helper.make_node("LogSoftmax", [logits], ["logprobs"], axis=-1, name="logprobs")
    )
    inputs = [_tensor("tokens", i64, ["batch", "new"])]
    for i in range(dims.n_text_layer):
        inputs += [
            _tensor(f"past_k_{i}", f32, ["batch", heads, "past", head_dim]),
            _tensor(f"past_v_{i}", f32, ["batch", heads, "past", head_dim]),
        ]
    for i in range(dims.n_text_layer):
        inputs += [
            _tensor(f"cross_k_{i}", f32, ["utterances", heads, head_dim, "positions"]),
            _tensor(f"cross_v_{i}", f32, ["utterances", heads, "positions", head_dim]),
        ]
    inputs.append(_tensor("cross_mask", f32, ["utterances", "positions"]))
    outputs.insert(0, _tensor("logprobs", f32, ["batch", "new", dims.n_vocab]))
    return b.model("whisper_decoder", inputs, outputs, "Whisper decoder with a key/value cache")


def build_classifier(weights: dict[str, np.ndarray], labels: list[str]) -> Any:
    """The intent classifier (``training/classifier.py``) as an ONNX graph.

    in:  ``hidden`` float32 [batch, positions, d] (the encoder's output)
    out: ``probs`` float32 [batch, classes] (softmax; class order = ``labels``)
    """
    onnx = _onnx()
    f32 = onnx.TensorProto.FLOAT
    b = _Builder()
    x = b.layer_norm("hidden", {"n.weight": weights["norm.weight"],
                                "n.bias": weights["norm.bias"]}, "n")
    scores = b.linear(x, {"a.weight": weights["attention.weight"],
                          "a.bias": weights["attention.bias"]}, "a")  # [B, P, 1]
    attention = b.op("Softmax", [scores], axis=1)
    pooled = b.op("ReduceSum", [b.op("Mul", [attention, x]),
                                b.const(np.array([1], np.int64))], keepdims=0)
    h = b.op("Relu", [b.linear(pooled, {"fc1.weight": weights["fc1.weight"],
                                        "fc1.bias": weights["fc1.bias"]}, "fc1")])
    logits = b.linear(h, {"fc2.weight": weights["fc2.weight"],
                          "fc2.bias": weights["fc2.bias"]}, "fc2")
    b.nodes.append(onnx.helper.make_node("Softmax", [logits], ["probs"], axis=-1, name="probs"))
    d = weights["norm.weight"].shape[0]
    model = b.model(
        "intent_classifier",
        [_tensor("hidden", f32, ["batch", "positions", d])],
        [_tensor("probs", f32, ["batch", len(labels)])],
        "Intent classifier over encoder states; classes: " + ", ".join(labels),
    )
    return model
