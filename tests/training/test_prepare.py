"""The prepare stage end to end on the tiny preset: a valid, complete, reproducible dataset."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import soundfile as sf

from assistant.grammar import load_context
from training.data_config import config_for_size
from training.dataset import write_dataset
from training.manifest import SPLITS, read_manifest
from training.noises import ensure_noise_bank, load_noise_bank
from training.plan import ClipPlan, plan_clips
from training.render import BankPaths, render_clip
from training.rooms import ensure_room_bank
from training.tts import voice_catalog

from .conftest import HOME


def test_tiny_dataset_is_valid_and_covers_every_intent(tiny_dataset: Path) -> None:
    info = json.loads((tiny_dataset / "manifest.json").read_text())
    assert info["format"] == "voice-assistant-dataset" and len(info["data_version"]) == 64
    records = [r for split in SPLITS for r in read_manifest(tiny_dataset / f"{split}.jsonl")]
    assert len(records) == sum(s["clips"] for s in info["splits"].values())
    assert len(records) >= 0.95 * info["planned_clips"]
    intents = {r.intent for r in records if r.kind == "command"}
    assert intents == set(load_context(HOME).intent_names)
    assert {r.kind for r in records} == {"command", "out_of_domain", "near_miss", "non_speech"}
    for record in records:
        path = tiny_dataset / record.audio
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
        audio_info = sf.info(path)
        assert (audio_info.samplerate, audio_info.channels, audio_info.subtype) == (
            16000, 1, "PCM_16")
        assert audio_info.duration == pytest.approx(record.duration_s, abs=1e-3)
    train = {r.speaker.split("~")[0] for r in records
             if r.speaker and r.split != "test_unseen_voices"}
    test = {r.speaker.split("~")[0] for r in records
            if r.speaker and r.split == "test_unseen_voices"}
    assert test and not train & test
    card = (tiny_dataset / "DATASET.md").read_text()
    assert "asterisk-moh-opsound-wav" in card and "## Splits" in card


def test_same_seed_gives_identical_bytes_even_from_an_empty_tts_cache(
        tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-render a spread of the tiny dataset's clips (one per engine, kind and split) with
    an empty TTS cache: every file is byte-identical and so are the manifests."""
    config = config_for_size("tiny", seed=3)
    context = load_context(HOME)
    banks = BankPaths(ensure_room_bank(config.rooms), ensure_noise_bank(config.noises))
    plan = plan_clips(context, config, voice_catalog(config.engines),
                      load_noise_bank(banks.noises).kinds())
    chosen: list[ClipPlan] = []
    keys: set[tuple[str | None, str, str]] = set()
    for clip in plan:
        key = (clip.voice.engine if clip.voice else clip.noise_kind, clip.kind, clip.split)
        if key not in keys and (clip.voice is None or clip.voice.engine != "kokoro"
                                or "kokoro" not in {k[0] for k in keys}):
            keys.add(key)
            chosen.append(clip)
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "again"
    results = [render_clip(clip, config, banks, out) for clip in chosen]
    original = {r.id: r for split in SPLITS for r in read_manifest(tiny_dataset / f"{split}.jsonl")}
    for result in results:
        assert result.record is not None
        assert result.record == original[result.record.id]
        assert (out / result.record.audio).read_bytes() == (
            tiny_dataset / result.record.audio).read_bytes()
    assert len(chosen) >= 8


def test_rewriting_gives_identical_manifests(tiny_dataset: Path, tmp_path: Path) -> None:
    info = json.loads((tiny_dataset / "manifest.json").read_text())
    records = {split: read_manifest(tiny_dataset / f"{split}.jsonl") for split in SPLITS}
    from training.render import Rendered

    results = [Rendered(r, None, r.id) for split in SPLITS for r in records[split]]
    config = config_for_size("tiny", seed=3)
    again = write_dataset(tmp_path, HOME, info["grammar"]["sha256"], info["grammar"]["intents"],
                          config, [None] * info["planned_clips"], results,  # type: ignore[list-item]
                          info["voices"], info["noise_sources"])
    assert json.loads(json.dumps(again)) == info
    for name in ("manifest.json", *(f"{s}.jsonl" for s in SPLITS), "DATASET.md"):
        assert (tmp_path / name).read_bytes() == (tiny_dataset / name).read_bytes(), name


def test_rerun_replaces_a_previous_dataset_but_not_other_directories(tmp_path: Path) -> None:
    from assistant.errors import ConfigError
    from training.dataset import _prepare_out_dir

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        _prepare_out_dir(tmp_path)
    assert os.listdir(tmp_path) == ["notes.txt"]
