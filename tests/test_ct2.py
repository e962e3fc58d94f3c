from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from assistant.ct2 import read_ct2_model
from assistant.errors import ModelError
from assistant.pretrained import locate


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _model_bytes(version: int = 6) -> bytes:
    out = struct.pack("<I", version) + _string("TestSpec") + struct.pack("<I", 1)
    out += struct.pack("<I", 2)
    weight = np.arange(6, dtype=np.float16).reshape(2, 3)
    out += _string("w") + struct.pack("<B", 2) + struct.pack("<II", 2, 3) + struct.pack("<B", 4)
    out += struct.pack("<I", weight.nbytes) + weight.tobytes()
    out += _string("n") + struct.pack("<B", 0) + struct.pack("<B", 3) + struct.pack("<I", 4)
    out += struct.pack("<i", 7)
    out += struct.pack("<I", 1) + _string("alias") + _string("w")
    return out


def test_reads_variables_scalars_and_aliases(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(_model_bytes())
    model = read_ct2_model(path)
    assert model.spec_name == "TestSpec"
    assert model["w"].dtype == np.float16
    np.testing.assert_array_equal(model["w"], np.arange(6).reshape(2, 3))
    assert model.scalar("n") == 7
    assert model["alias"] is model["w"]


def test_split_parts_read_as_one(tmp_path: Path) -> None:
    data = _model_bytes()
    (tmp_path / "a").write_bytes(data[:20])
    (tmp_path / "b").write_bytes(data[20:])
    model = read_ct2_model([tmp_path / "a", tmp_path / "b"])
    assert model.scalar("n") == 7


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-3], "trailing|truncated|does not fit"),
        (lambda b: struct.pack("<I", 99) + b[4:], "binary version 99"),
        (lambda b: b + b"xx", "trailing bytes"),
        (lambda b: b"", "empty"),
    ],
)
def test_corrupt_files_are_named(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "model.bin"
    path.write_bytes(mutate(_model_bytes()))
    with pytest.raises(ModelError, match=message):
        read_ct2_model(path)


def test_missing_variable_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(_model_bytes())
    with pytest.raises(ModelError, match="no variable 'nope'"):
        read_ct2_model(path)["nope"]


def test_bundled_tiny_en_layout() -> None:
    model = read_ct2_model(locate("tiny.en").weight_parts)
    assert model.spec_name == "WhisperSpec"
    assert model["decoder/embeddings/weight"].shape == (51864, 384)
    # Self-attention q/k/v are fused; the stored key bias is zero.
    fused = model["encoder/layer_0/self_attention/linear_0/bias"]
    assert fused.shape == (3 * 384,)
    assert not fused[384:768].any()
    assert model["decoder/projection/weight"] is model["decoder/embeddings/weight"]
