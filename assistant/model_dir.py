"""Self-describing model directories: a speech model, the grammar it serves, its calibration.

    DIR/
      metadata.json   what it is: speech model (name, dims, prompt, precision), feature
                      settings, grammar file and sha256, intents, calibration, recognizer
                      settings, versions, and the sha256 and size of every file
      context.yaml    the grammar, byte for byte as given
      encoder.onnx  decoder.onnx  tokenizer.json
      MODEL_CARD.md   a short human-readable description

``assistant recognize --model DIR`` and the server load it with
:meth:`assistant.recognizer.Recognizer.from_model_dir`; nothing else is needed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from .artifacts import METADATA_FILE, file_entry, read_metadata, write_metadata
from .errors import ConfigError
from .recognizer import Recognizer

CONTEXT_FILE = "context.yaml"
SPEECH_FILES = ("encoder.onnx", "decoder.onnx", "tokenizer.json")


def _card(metadata: dict[str, Any]) -> str:
    grammar = metadata["grammar"]
    calibration = metadata["calibration"].get("info", {})
    return "\n".join([
        f"# Voice-command model: {grammar['name']}",
        "",
        f"- Speech model: Whisper {metadata['model']} ({metadata['precision']}), "
        f"{metadata.get('kind', 'zero-shot')}.",
        f"- Grammar: `{CONTEXT_FILE}` (sha256 {grammar['sha256'][:16]}...), intents: "
        + ", ".join(grammar["intents"]) + ".",
        f"- Confidence calibration: {calibration.get('data', 'unknown')}.",
        f"- Understood when confidence >= {metadata['recognizer']['threshold']}.",
        "- Limits: English only; one command per utterance; speech up to 28 s; accuracy on "
        "voices, accents and noise unlike the calibration data is not guaranteed.",
        "",
    ])


def export_model_dir(recognizer: Recognizer, out: Path, grammar_file: Path) -> dict[str, Any]:
    """Write ``recognizer`` (its speech model, grammar and calibration) into ``out``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty; choose a new directory")
    out.mkdir(parents=True, exist_ok=True)
    source = recognizer.model.directory
    for name in SPEECH_FILES:
        shutil.copyfile(source / name, out / name)
    shutil.copyfile(grammar_file, out / CONTEXT_FILE)
    metadata = dict(read_metadata(source))
    context = recognizer.context
    metadata["source_model"] = metadata.get("source_model", metadata["model"])
    metadata["grammar"] = {
        "file": CONTEXT_FILE,
        "name": grammar_file.stem,
        "sha256": context.sha256,
        "intents": list(context.intent_names),
    }
    metadata["calibration"] = recognizer.calibration.to_json()
    metadata["recognizer"] = {
        k: v for k, v in dataclasses.asdict(recognizer.config).items()
        if k not in ("threads", "device")
    }
    metadata["kind"] = metadata.get("kind", "zero-shot")
    (out / "MODEL_CARD.md").write_text(_card(metadata))
    write_metadata(out, metadata)
    return metadata


def record_file(directory: Path, name: str) -> None:
    """List ``directory/name`` (a file written into a model directory after it was built,
    e.g. a remade ``profile.json``) in its metadata with its size and checksum, so that the
    directory still loads and verifies. The metadata is replaced in one step."""
    path = directory / METADATA_FILE
    if not path.is_file():
        raise ConfigError(f"{directory} is not a model directory (no {METADATA_FILE})")
    metadata = json.loads(path.read_text())  # not read_metadata: the file itself changed
    file = directory / name
    if not file.is_file():
        raise ConfigError(f"{file} does not exist")
    files = dict(metadata.get("files", {}))
    files[name] = file_entry(file)
    metadata["files"] = dict(sorted(files.items()))
    scratch = directory / f".{METADATA_FILE}.tmp"
    scratch.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    scratch.replace(directory / METADATA_FILE)
