"""Speech-model directories: built once from the bundled weights, cached, self-describing.

A speech-model directory holds::

    encoder.onnx  decoder.onnx  tokenizer.json  metadata.json

``metadata.json`` says what the model is (name, dims, special tokens, prompt), how to make
its input features, its precision, the versions that built it and the sha256 and size of every
file. Pretrained models are built on first use into the user cache directory
(``$ASSISTANT_CACHE_DIR``, else ``$XDG_CACHE_HOME/voice-assistant``, else
``~/.cache/voice-assistant``), keyed by model, precision and versions, so a new release of
any of them builds a new directory and never reads a stale one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError, MissingDependencyError, ModelError
from .features import HOP_LENGTH, N_FFT, SAMPLE_RATE_HZ
from .onnx_graph import GRAPH_VERSION, build_decoder, build_encoder
from .pretrained import DEFAULT_PRETRAINED, PRETRAINED, locate

logger = logging.getLogger("assistant.artifacts")

METADATA_FILE = "metadata.json"
FORMAT = "voice-assistant-speech-model"
FORMAT_VERSION = 1
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "int8"

Progress = Callable[[str], None]


def cache_dir() -> Path:
    """Root of the user cache (created on demand by the builders, not here)."""
    explicit = os.environ.get("ASSISTANT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "voice-assistant"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    out = {"voice-assistant": __version__, "graph": str(GRAPH_VERSION)}
    for dist in ("onnx", "onnxruntime", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


@dataclass(frozen=True)
class SpeechModelSpec:
    """Which pretrained speech model to use and at what precision."""

    pretrained: str = DEFAULT_PRETRAINED
    precision: str = DEFAULT_PRECISION

    def __post_init__(self) -> None:
        if self.pretrained not in PRETRAINED:
            known = ", ".join(sorted(PRETRAINED))
            raise ConfigError(f"unknown speech model {self.pretrained!r} (known: {known})")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def cache_key(self) -> str:
        files = locate(self.pretrained)
        payload = json.dumps(
            {"spec": [self.pretrained, self.precision], "sources": files.versions,
             "versions": _versions()},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def directory(self) -> Path:
        return cache_dir() / "speech" / f"{self.pretrained}-{self.precision}-{self.cache_key()}"


def quantize_int8(source: Path, target: Path, op_types: list[str]) -> None:
    """Dynamic INT8 quantization with per-channel weight scales."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:  # pragma: no cover - part of onnxruntime
        raise MissingDependencyError("onnxruntime", "build", "INT8 quantization") from e
    root = logging.getLogger()
    quiet = _DropMessage("pre-processing before quantization")  # advice for static QDQ, not us
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
            op_types_to_quantize=op_types,
        )
    finally:
        root.removeFilter(quiet)


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str):
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def write_speech_model(
    out: Path,
    dims: Any,
    state_dict: dict[str, Any],
    tokenizer_json: dict[str, Any],
    special: Any,
    name: str,
    precision: str,
    extra: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write encoder/decoder ONNX (optionally INT8), tokenizer and metadata into ``out``."""
    import onnx

    say = progress or (lambda _msg: None)
    out.mkdir(parents=True, exist_ok=True)
    graphs = {"encoder": build_encoder, "decoder": build_decoder}
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        for part, build in graphs.items():
            say(f"building {part} graph ({name}, {precision})")
            model = build(dims, state_dict)
            target = out / f"{part}.onnx"
            if precision == "fp32":
                onnx.save(model, str(target))
            else:
                fp32 = Path(scratch) / f"{part}.onnx"
                onnx.save(model, str(fp32))
                say(f"quantizing {part} to INT8 (per-channel)")
                quantize_int8(fp32, target, ["MatMul", "Gather"] if part == "decoder" else
                              ["MatMul"])
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False))
    multilingual = dims.multilingual
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": name,
        "precision": precision,
        "dims": dims.to_dict(),
        "special_tokens": {k: v for k, v in vars(special).items() if k != "languages"},
        "prompt": list(special.sot_sequence(multilingual)),
        "multilingual": multilingual,
        "features": {"sample_rate_hz": SAMPLE_RATE_HZ, "n_fft": N_FFT, "hop_length": HOP_LENGTH,
                     "n_mels": dims.n_mels},
        "versions": _versions(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    write_metadata(out, metadata)
    return metadata


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_pretrained(spec: SpeechModelSpec, out: Path, progress: Progress | None = None) -> None:
    """Convert the bundled CTranslate2 weights of ``spec`` into a speech-model directory."""
    from .ct2 import read_ct2_model
    from .tokenizer import load_tokenizer
    from .whisper_weights import state_dict_from_ct2

    say = progress or (lambda _msg: None)
    files = locate(spec.pretrained)
    say(f"reading {spec.pretrained} weights from {files.weight_parts[0].parent}")
    dims, state_dict = state_dict_from_ct2(read_ct2_model(files.weight_parts))
    tokenizer = load_tokenizer(files.tokenizer)
    tokenizer_json = json.loads(files.tokenizer.read_text(encoding="utf-8"))
    if tokenizer.restored_merges:
        merges = tokenizer_json["model"]["merges"]
        as_lists = bool(merges) and not isinstance(merges[0], str)
        for merge in reversed(tokenizer.restored_merges):
            merges.insert(0, merge.split(" ") if as_lists else merge)
    write_speech_model(
        out, dims, state_dict, tokenizer_json, tokenizer.special_tokens(), spec.pretrained,
        spec.precision,
        extra={"source": {"packages": files.versions,
                          "restored_merges": list(tokenizer.restored_merges)}},
        progress=say,
    )


def ensure_speech_model(spec: SpeechModelSpec, progress: Progress | None = None) -> Path:
    """The cached speech-model directory for ``spec``, built first if it is not there yet."""
    target = spec.directory()
    if (target / METADATA_FILE).is_file():
        return target
    with _locked(target.parent / f".{target.name}.lock"):
        if (target / METADATA_FILE).is_file():  # built by another process meanwhile
            return target
        say = progress or (lambda msg: logger.info("%s", msg))
        started = time.monotonic()
        say(f"first use of {spec.pretrained} ({spec.precision}): building into {target}")
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            build_pretrained(spec, scratch, say)
            scratch.rename(target)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        say(f"built {target.name} in {time.monotonic() - started:.1f} s")
    return target


def file_entry(path: Path) -> dict[str, Any]:
    """A file's entry in a model directory's metadata (what :func:`read_metadata` checks)."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def write_metadata(directory: Path, metadata: dict[str, Any]) -> None:
    """Write ``metadata`` into ``directory``, listing every file there (but itself)."""
    metadata["files"] = {f.name: file_entry(f) for f in sorted(directory.iterdir())
                         if f.is_file() and f.name != METADATA_FILE}
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True)
                                           + "\n")


def read_metadata(directory: Path, verify: bool = False) -> dict[str, Any]:
    """Read and check a model directory's metadata (sizes always, checksums when ``verify``)."""
    path = directory / METADATA_FILE
    if not path.is_file():
        raise ModelError(f"{directory} is not a model directory (no {METADATA_FILE})")
    try:
        metadata: dict[str, Any] = json.loads(path.read_text())
    except ValueError as e:
        raise ModelError(f"{path} is not valid JSON: {e}") from e
    for name, info in metadata.get("files", {}).items():
        file = directory / name
        if not file.is_file():
            raise ModelError(f"{directory}: file {name} listed in {METADATA_FILE} is missing")
        if file.stat().st_size != info["bytes"]:
            raise ModelError(
                f"{file}: {file.stat().st_size} bytes, metadata says {info['bytes']} (corrupt?)"
            )
        if verify and sha256_file(file) != info["sha256"]:
            raise ModelError(f"{file}: sha256 does not match {METADATA_FILE} (corrupt?)")
    return metadata
