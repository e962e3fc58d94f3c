"""Build a dataset directory from a grammar: plan, render in parallel, validate, describe.

    info = prepare_dataset(Path("coffee_maker.yaml"), Path("data/barista"), config, workers=2)

Writes the layout documented in :mod:`training.manifest`; ``manifest.json`` holds::

    {"format": "voice-assistant-dataset", "format_version": 1,
     "data_version": sha256(config, grammar sha256, code version),
     "code_version": ..., "config": {...}, "grammar": {"file", "sha256", "intents"},
     "sample_rate_hz": 16000,
     "splits": {"train": {"file", "clips", "duration_s", "sha256"}, ...},
     "counts": {"train/command": ..., ...}, "dropped": {"silent": 2, ...},
     "voices": {"train": [...], "test_unseen_voices": [...]}, "noise_sources": [...],
     "engine_versions": {...}}

Same grammar, config and code give byte-identical audio, manifests and manifest.json.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import soundfile as sf

from assistant import __version__ as assistant_version
from assistant.artifacts import sha256_file
from assistant.audio import SAMPLE_RATE_HZ
from assistant.errors import ConfigError
from assistant.grammar import load_context

from . import noises as noise_module
from .data_config import DatasetConfig
from .manifest import FORMAT, FORMAT_VERSION, MANIFEST_FILE, SPLITS, ClipRecord, write_manifest
from .noises import ensure_noise_bank, load_noise_bank, music_files
from .plan import ClipPlan, plan_clips
from .progress import ProgressLine
from .render import BankPaths, Rendered, render_clip
from .report import dataset_card, distributions
from .rooms import ensure_room_bank
from .tts import engine_class, voice_catalog

logger = logging.getLogger("training.dataset")

HERE = Path(__file__).parent
T = TypeVar("T")
R = TypeVar("R")


# The modules whose code decides a dataset's content (not the other training stages').
DATA_MODULES = ("augment.py", "codecs.py", "data_config.py", "dataset.py", "levels.py",
                "manifest.py", "negatives.py", "noises.py", "plan.py", "render.py",
                "report.py", "rooms.py")


def code_version() -> str:
    """sha256 over the data pipeline's sources and the assistant's version."""
    digest = hashlib.sha256(assistant_version.encode())
    for path in sorted([*(HERE / m for m in DATA_MODULES), *(HERE / "tts").glob("*.py")]):
        digest.update(path.relative_to(HERE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def engine_versions(engines: tuple[str, ...]) -> dict[str, str]:
    versions: dict[str, str] = {"libsndfile": sf.__libsndfile_version__}
    for name in engines:
        engine = engine_class(name)
        if engine.available():
            versions.update(engine.versions())
    versions["pyroomacoustics"] = importlib.metadata.version("pyroomacoustics")
    return versions


def parallel_map(fn: Callable[[T], R], items: list[T], workers: int, label: str) -> Iterator[R]:
    """``map(fn, items)`` in order, over ``workers`` processes, with a progress line."""
    progress = ProgressLine(label, len(items))
    try:
        if workers <= 1:
            for item in items:
                yield fn(item)
                progress.advance()
            return
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for result in pool.map(fn, items, chunksize=4):
                yield result
                progress.advance()
    finally:
        progress.close()


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / MANIFEST_FILE).is_file():
            raise ConfigError(f"{out_dir} is not empty and holds no dataset; "
                              f"choose an empty or new directory")
        shutil.rmtree(out_dir / "audio", ignore_errors=True)  # a previous dataset: replace it
        for name in ["DATASET.md", MANIFEST_FILE, *(f"{s}.jsonl" for s in SPLITS)]:
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _noise_sources(bank_path: Path, config: DatasetConfig) -> list[str]:
    bank = load_noise_bank(bank_path)
    sources = ["generated: white, pink, brown and blue Gaussian noise; 50/60 Hz hum; fan",
               "generated: near-silence (white noise at -75..-55 dBFS)"]
    sources += [f"music ({noise_module.MUSIC_PACKAGE}): {path.name}"
                for path in music_files(config.noises)]
    if bank.babble:
        sources.append(f"babble: {len(bank.babble)} tracks of "
                       f"{config.noises.min_talkers}-{config.noises.max_talkers} TTS talkers "
                       f"(training voices, out-of-domain sentences)")
    return sources


def prepare_dataset(context_path: Path, out_dir: Path, config: DatasetConfig,
                    workers: int = 2) -> dict[str, Any]:
    """Build the dataset in ``out_dir`` (see module docs); returns the manifest.json content."""
    context = load_context(context_path)
    catalog = voice_catalog(config.engines)
    if not catalog.train or not catalog.held_out:
        raise ConfigError(f"need training and held-out voices; engines {config.engines} "
                          f"give {len(catalog.train)} and {len(catalog.held_out)} "
                          f"(apt-get install espeak-ng flite festival, pip install "
                          f"'voice-assistant[train]')")
    noise_bank = ensure_noise_bank(config.noises)
    banks = BankPaths(ensure_room_bank(config.rooms), noise_bank)
    engines_used = {v.engine for v in (*catalog.train, *catalog.held_out)}
    if "kokoro" in engines_used:  # assemble/patch model files once, before the workers fork
        from .tts.kokoro import model_path
        model_path()
    if "piper" in engines_used:
        from .tts.piper import _voice_files, seeded_model
        seeded_model(_voice_files("joe")[0])
    plan = plan_clips(context, config, catalog, load_noise_bank(noise_bank).kinds())
    _prepare_out_dir(out_dir)
    render = partial(render_clip, config=config, banks=banks, out_dir=out_dir)
    results: list[Rendered] = list(parallel_map(render, plan, workers, "prepare"))
    return write_dataset(out_dir, context_path, context.sha256, list(context.intent_names),
                         config, plan, results, catalog_voices={
                             "train": sorted(v.base for v in catalog.train),
                             "test_unseen_voices": sorted(v.base for v in catalog.held_out)},
                         noise_sources=_noise_sources(noise_bank, config))


def write_dataset(out_dir: Path, context_path: Path, grammar_sha256: str, intents: list[str],
                  config: DatasetConfig, plan: list[ClipPlan], results: list[Rendered],
                  catalog_voices: dict[str, list[str]], noise_sources: list[str]
                  ) -> dict[str, Any]:
    records: list[ClipRecord] = [r.record for r in results if r.record is not None]
    dropped = Counter((r.dropped or "").split(":")[0] for r in results if r.record is None)
    for r in results:
        if r.record is None:
            logger.warning("dropped %s: %s", r.clip_id, r.dropped)
    splits: dict[str, Any] = {}
    for split in SPLITS:
        rows = [r for r in records if r.split == split]
        path = out_dir / f"{split}.jsonl"
        write_manifest(path, rows)
        splits[split] = {"file": path.name, "clips": len(rows),
                         "duration_s": round(sum(r.duration_s for r in rows), 2),
                         "sha256": sha256_file(path)}
    shutil.copyfile(context_path, out_dir / "grammar.yaml")
    code = code_version()
    data_version = hashlib.sha256(f"{config.digest()}\n{grammar_sha256}\n{code}".encode())
    info: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "data_version": data_version.hexdigest(),
        "code_version": code,
        "config": config.to_json(),
        "grammar": {"file": "grammar.yaml", "source": context_path.name,
                    "sha256": grammar_sha256, "intents": intents},
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "planned_clips": len(plan),
        "splits": splits,
        "counts": dict(sorted(Counter(f"{r.split}/{r.kind}" for r in records).items())),
        "dropped": dict(sorted(dropped.items())),
        "voices": catalog_voices,
        "noise_sources": noise_sources,
        "engine_versions": engine_versions(config.engines),
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    card = dataset_card({**info, "grammar": {**info["grammar"], "file": context_path.name}},
                        distributions(records))
    (out_dir / "DATASET.md").write_text(card, encoding="utf-8")
    return info
