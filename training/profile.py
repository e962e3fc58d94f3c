"""Make a model's reference profile (:mod:`assistant.profile`) from held-out synthetic speech.

    assistant profile --context assistant/contexts/home.yaml      # -> home.profile.json beside it
    assistant profile --model models/barista                       # -> models/barista/profile.json
    assistant profile --model models/barista --recordings mine/    # and the user's recordings

Clips are sentences sampled from the grammar plus a share of other speech (out-of-domain
sentences, and the grammar's near-domain questions when ``training/grammars/near`` has them),
as real traffic has: ``--other-share`` (default 10 %). Each is spoken by a voice of the
catalogue (:func:`training.tts.voice_catalog`), varied per clip, and augmented exactly as
training data is (:mod:`training.augment`: rooms, the training noises at 0-30 dB, level,
channel), then cut and recognized as ``assistant recognize`` does a recording.

Which voices: a model directory is profiled with the catalogue's *held-out* voices (none of
them was in its fine-tuning data); a grammar served zero-shot with the *training* voices, so
that the held-out voices stay unseen for the benchmarks that judge monitoring
(``benchmarks/drift.py``). ``assistant train`` writes ``profile.json`` itself, as
``assistant profile --model`` would (``--profile-clips``, 300), with the user's recordings
when given.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.audio import read_audio
from assistant.errors import ConfigError
from assistant.grammar import Context, sample_sentences
from assistant.monitor import profile_from_results
from assistant.profile import ReferenceProfile
from assistant.recognizer import Recognizer
from assistant.recording import recognize_recording
from assistant.vad import SileroVad

from .augment import AugmentConfig, apply, sample_settings
from .calibrate import near_domain
from .negatives import out_of_domain_for
from .noises import ensure_noise_bank, load_noise_bank
from .rooms import ensure_room_bank, load_room_bank
from .tts import SynthesisError, Voice, synthesize, vary, voice_catalog

logger = logging.getLogger("training.profile")

DEFAULT_CLIPS = 300
DEFAULT_OTHER_SHARE = 0.1


@dataclass(frozen=True)
class ProfileClip:
    text: str
    kind: str  # "command" or "other"
    voice: Voice
    seed: int


def plan_clips(context: Context, grammar: Path | None, n: int, voices: Sequence[Voice],
               other_share: float, seed: int) -> list[ProfileClip]:
    """``n`` clips: commands of the grammar and ``other_share`` of other speech, each with a
    varied voice (engines in turn, so a slow engine cannot be skipped by chance)."""
    if not voices:
        raise ConfigError("no TTS voice is installed for the profile (apt-get install "
                          "espeak-ng flite festival)")
    if not 0 <= other_share < 1:
        raise ConfigError(f"--other-share must be in [0, 1), got {other_share}")
    rng = random.Random(seed)
    others = round(n * other_share)
    texts = [(a.text, "command") for a in sample_sentences(context, n - others, seed=seed)]
    pool = out_of_domain_for(context, others, seed)
    if grammar is not None:
        pool = near_domain(grammar, context) + pool
    rng.shuffle(pool)
    texts += [(t, "other") for t in pool[:others]]
    rng.shuffle(texts)
    by_engine: dict[str, list[Voice]] = {}
    for voice in voices:
        by_engine.setdefault(voice.engine, []).append(voice)
    engines = sorted(by_engine)
    clips = []
    for i, (text, kind) in enumerate(texts):
        base = rng.choice(by_engine[engines[i % len(engines)]])
        clips.append(ProfileClip(text, kind, vary(base, rng), rng.randrange(1 << 31)))
    return clips


class Renderer:
    """Speak and augment clips as training data is (banks loaded once)."""

    def __init__(self, augment: AugmentConfig | None = None):
        self.augment = augment or AugmentConfig()
        self.rooms = load_room_bank(ensure_room_bank())
        self.noises = load_noise_bank(ensure_noise_bank())

    def __call__(self, clip: ProfileClip) -> np.ndarray | None:
        try:
            clean = synthesize(clip.text, clip.voice)
        except SynthesisError as e:
            logger.warning("skipped %r: %s", clip.text, e)
            return None
        rng = np.random.default_rng(clip.seed)
        settings = sample_settings(rng, self.augment, self.rooms, self.noises)
        audio, _ = apply(clean, settings, self.rooms, self.noises)
        return audio


def rendered(clips: Sequence[ProfileClip], renderer: Renderer, workers: int = 2
             ) -> Iterator[tuple[str, np.ndarray]]:
    """Each clip's kind and audio in order, synthesized ``workers`` at a time (TTS engines are
    mostly separate processes), skipping those the TTS could not speak."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for clip, audio in zip(clips, pool.map(renderer, clips), strict=True):
            if audio is not None:
                yield clip.kind, audio


def manifest_audio(path: Path) -> Iterator[np.ndarray]:
    """The recordings of a labels file (``labels.jsonl``: one JSON object a line with an
    ``audio`` path relative to the file), speech and not."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            yield read_audio(path.parent / row["audio"])
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}:{number}: not a labelled recording: {e}") from e


def profile(recognizer: Recognizer, audio: Iterator[np.ndarray | tuple[str | None, np.ndarray]],
            source: dict[str, Any], progress: bool = True) -> ReferenceProfile:
    """Recognize every recording as ``assistant recognize`` does and profile the answers;
    a recording may come with its kind (``command``, ``other`` or None: not known)."""
    vad = SileroVad()
    started = time.monotonic()

    def results():  # type: ignore[no-untyped-def]
        for i, item in enumerate(audio, 1):
            kind, clip = item if isinstance(item, tuple) else (None, item)
            if progress and i % 50 == 0:
                print(f"[profile] {i} clips ({time.monotonic() - started:.0f} s)", flush=True)
            yield kind, recognize_recording(recognizer, vad, clip)

    made = profile_from_results(results(), recognizer, source)
    if made.utterances < 40:
        raise ConfigError(f"only {made.utterances} clips could be profiled; a reference "
                          f"needs at least 40")
    return made


def synthesized_profile(recognizer: Recognizer, grammar: Path | None, *, held_out: bool,
                        n: int = DEFAULT_CLIPS, other_share: float = DEFAULT_OTHER_SHARE,
                        seed: int = 0, extra: Iterator[np.ndarray] | None = None,
                        extra_source: dict[str, Any] | None = None,
                        engines: tuple[str, ...] | None = None,
                        command: str = "assistant profile") -> ReferenceProfile:
    """The profile of ``recognizer`` on ``n`` synthesized clips (see module docs), and
    ``extra`` recordings (the user's own) when given; ``engines``: only these TTS engines
    (default: every one installed)."""
    catalog = voice_catalog(engines) if engines else voice_catalog()
    voices = catalog.held_out if held_out else catalog.train
    clips = plan_clips(recognizer.context, grammar, n, voices, other_share, seed)
    augment = AugmentConfig()
    source: dict[str, Any] = {
        "data": "synthesized speech of the grammar, augmented as training data is",
        "clips": len(clips), "other_share": other_share, "seed": seed,
        "voices": "held-out voices of the catalogue" if held_out else
                  "training voices of the catalogue",
        "engines": sorted({c.voice.engine for c in clips}),
        "noises": [kind for kind, weight in augment.noise_weights if weight > 0],
        "snr_db": [augment.min_snr_db, augment.max_snr_db],
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    audio: Iterator[np.ndarray | tuple[str | None, np.ndarray]] = rendered(
        clips, Renderer(augment))
    if extra is not None:
        source["recordings"] = extra_source or {}
        audio = _chain(audio, extra)
    return profile(recognizer, audio, source)


def _chain(*parts: Iterator[Any]) -> Iterator[Any]:
    for part in parts:
        yield from part
