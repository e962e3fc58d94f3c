"""Read CTranslate2 ``model.bin`` files into numpy arrays, without the ctranslate2 package.

The layout (CTranslate2 binary version 6, ``python/ctranslate2/specs/model_spec.py``)::

    uint32 binary_version
    string spec_name            (uint16 length incl. NUL, bytes, NUL)
    uint32 spec_revision
    uint32 num_variables
    num_variables x { string name, uint8 rank, uint32 dims[rank], uint8 dtype,
                      uint32 nbytes, bytes }
    uint32 num_aliases
    num_aliases x { string alias, string target }

All integers are little-endian. Arrays are memory-mapped; nothing is copied until asked.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError

SUPPORTED_BINARY_VERSIONS = (5, 6)

# CTranslate2's DataType enum.
_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
}


@dataclass(frozen=True)
class Ct2Model:
    """The variables of a CTranslate2 model, by name (aliases resolved)."""

    spec_name: str
    spec_revision: int
    variables: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.variables[name]
        except KeyError:
            raise ModelError(f"{self.spec_name} model has no variable {name!r}") from None

    def scalar(self, name: str) -> int | float | bool:
        value = self[name]
        if value.size != 1:
            raise ModelError(f"variable {name!r} has shape {value.shape}, expected a scalar")
        item: int | float | bool = value.reshape(()).item()
        return item


class _Reader:
    def __init__(self, buffer: memoryview, path: Path):
        self.buffer = buffer
        self.path = path
        self.offset = 0

    def unpack(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.buffer):
            raise ModelError(f"{self.path}: truncated at byte {self.offset} (file is corrupt)")
        (value,) = struct.unpack_from(fmt, self.buffer, self.offset)
        self.offset += size
        return int(value)

    def string(self) -> str:
        length = self.unpack("<H")
        raw = bytes(self.buffer[self.offset : self.offset + length])
        self.offset += length
        if len(raw) != length or not raw.endswith(b"\0"):
            raise ModelError(f"{self.path}: malformed string at byte {self.offset - length}")
        return raw[:-1].decode("utf-8")


def _map(paths: Sequence[Path]) -> memoryview:
    """Memory-map one file, or read several parts (a model split across packages) into memory."""
    try:
        if len(paths) == 1:
            with open(paths[0], "rb") as file:
                return memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))
        return memoryview(b"".join(p.read_bytes() for p in paths))
    except OSError as e:
        raise ModelError(f"cannot read CTranslate2 model {e.filename}: {e.strerror}") from e
    except ValueError as e:  # mmap of an empty file
        raise ModelError(f"CTranslate2 model {paths[0]} is empty") from e


def read_ct2_model(path: str | Path | Sequence[str | Path]) -> Ct2Model:
    """Parse ``model.bin`` at ``path`` (or the concatenation of several part files).

    A single file is memory-mapped and its arrays are read-only views on the map.
    """
    parts = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if not parts:
        raise ModelError("no CTranslate2 model file given")
    path = parts[0] if len(parts) == 1 else Path("+".join(str(p) for p in parts))
    buffer = _map(parts)
    reader = _Reader(buffer, path)
    version = reader.unpack("<I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ModelError(
            f"{path}: CTranslate2 binary version {version} is not supported "
            f"(supported: {SUPPORTED_BINARY_VERSIONS})"
        )
    spec_name = reader.string()
    revision = reader.unpack("<I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("<I")):
        name = reader.string()
        rank = reader.unpack("<B")
        shape = tuple(reader.unpack("<I") for _ in range(rank))
        dtype_id = reader.unpack("<B")
        nbytes = reader.unpack("<I")
        if dtype_id not in _DTYPES:
            raise ModelError(f"{path}: variable {name!r} has unknown dtype id {dtype_id}")
        dtype = _DTYPES[dtype_id]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dtype.itemsize != nbytes or reader.offset + nbytes > len(buffer):
            raise ModelError(f"{path}: variable {name!r} of shape {shape} does not fit its bytes")
        array = np.frombuffer(buffer, dtype=dtype, count=count, offset=reader.offset)
        variables[name] = array.reshape(shape)
        reader.offset += nbytes
    for _ in range(reader.unpack("<I")):
        alias, target = reader.string(), reader.string()
        if target not in variables:
            raise ModelError(f"{path}: alias {alias!r} points to missing variable {target!r}")
        variables[alias] = variables[target]
    if reader.offset != len(buffer):
        raise ModelError(f"{path}: {len(buffer) - reader.offset} trailing bytes (file is corrupt)")
    return Ct2Model(spec_name=spec_name, spec_revision=revision, variables=variables)
