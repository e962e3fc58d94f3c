"""Turn one planned clip into a checked 16 kHz WAV file and its manifest line.

:func:`render_clip` synthesizes (or, for non-speech, generates) the audio, augments it with
settings drawn from the clip's own seed, checks it and writes ``audio/<split>/<id>.wav``.
It runs in worker processes; banks are loaded once per process. A clip that fails a check is
not written: the result says why (``silent``, ``clipped``, ``too_long``, ``tts_failed``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from assistant.artifacts import sha256_file
from assistant.audio import SAMPLE_RATE_HZ

from .augment import AugmentSettings, apply, sample_settings
from .data_config import DatasetConfig
from .levels import level_dbfs
from .manifest import ClipRecord
from .noises import load_noise_bank, noise_clip
from .plan import ClipPlan
from .rooms import load_room_bank
from .tts import SynthesisError, synthesize

FULL_SCALE = 32767 / 32768
SILENCE_DBFS = (-75.0, -55.0)  # level range of "silence" non-speech clips


@dataclass(frozen=True)
class BankPaths:
    rooms: Path | None
    noises: Path | None


@dataclass(frozen=True)
class Rendered:
    record: ClipRecord | None
    dropped: str | None = None  # reason, when record is None
    clip_id: str = ""


def check_audio(audio: np.ndarray, speech: bool, config: DatasetConfig) -> str | None:
    """Why ``audio`` must be dropped, or None."""
    if audio.size == 0:
        return "empty"
    if audio.size > config.max_duration_s * SAMPLE_RATE_HZ:
        return "too_long"
    if speech and level_dbfs(audio) < config.min_speech_level_dbfs:
        return "silent"
    if np.mean(np.abs(audio) >= FULL_SCALE) > config.max_full_scale_fraction:
        return "clipped"
    return None


def _non_speech(clip: ClipPlan, config: DatasetConfig, banks: BankPaths
                ) -> tuple[np.ndarray, AugmentSettings, str]:
    rng = np.random.default_rng(clip.seed)
    noises = load_noise_bank(banks.noises) if banks.noises else None
    samples = int(rng.uniform(config.min_non_speech_s, config.max_non_speech_s) * SAMPLE_RATE_HZ)
    settings = sample_settings(rng, config.augment, None, noises, speech=False)
    kind = clip.noise_kind or "white"
    if kind == "silence":
        settings = replace(settings, level_dbfs=round(float(rng.uniform(*SILENCE_DBFS)), 2))
        audio, source = noise_clip("white", samples, clip.seed, None)[0], "silence"
    else:
        audio, source = noise_clip(kind, samples, clip.seed, noises)
    out, _ = apply(audio, settings, None, noises)
    return out, settings, source


def render_clip(clip: ClipPlan, config: DatasetConfig, banks: BankPaths, out_dir: Path
                ) -> Rendered:
    speech = clip.voice is not None
    if clip.voice is not None:
        try:
            clean = synthesize(clip.text, clip.voice)
        except SynthesisError as e:
            return Rendered(None, f"tts_failed: {e}", clip.id)
        rng = np.random.default_rng(clip.seed)
        rooms = load_room_bank(banks.rooms) if banks.rooms else None
        noises = load_noise_bank(banks.noises) if banks.noises else None
        settings = sample_settings(rng, config.augment, rooms, noises)
        audio, source = apply(clean, settings, rooms, noises)
    else:
        audio, settings, source = _non_speech(clip, config, banks)
    problem = check_audio(audio, speech, config)
    if problem is not None:
        return Rendered(None, problem, clip.id)
    relative = Path("audio") / clip.split / f"{clip.id}.wav"
    path = out_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE_HZ, subtype="PCM_16", format="WAV")
    digest = sha256_file(path)
    voice = clip.voice
    record = ClipRecord(
        id=clip.id,
        audio=relative.as_posix(),
        text=clip.text,
        intent=clip.intent,
        slots=dict(clip.slots),
        kind=clip.kind,
        split=clip.split,
        engine=voice.engine if voice else None,
        voice=voice.id if voice else None,
        speaker=voice.speaker if voice else None,
        augmentation={**settings.to_json(), "noise_source": source},
        duration_s=round(audio.size / SAMPLE_RATE_HZ, 4),
        sample_rate_hz=SAMPLE_RATE_HZ,
        sha256=digest,
    )
    return Rendered(record, None, clip.id)
