"""Decide every clip of a dataset before any audio exists: text, label, split, voice, seed.

A pure, seeded function of (grammar, config, installed voices): the same inputs give the same
plan. Splits:

* ``train`` and ``val`` use the training voices; no (sentence, base voice) pair of ``val`` is
  in ``train`` (a val clip whose pair is taken gets another voice);
* ``test_unseen_voices`` uses only held-out voices (:func:`training.tts.voice_catalog`),
  none of which, nor any blend containing them, is heard in ``train`` or ``val``.

Commands come from :func:`assistant.grammar.sample_sentences` (every intent and slot value
dealt evenly); negatives from :mod:`training.negatives`. Each clip gets its own seed for
augmentation, so clips do not depend on the order they are rendered in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from assistant.errors import ConfigError
from assistant.grammar import Context, sample_sentences

from .data_config import DatasetConfig
from .negatives import near_misses, out_of_domain_for
from .noises import NOISE_KINDS
from .tts import Voice, VoiceCatalog, vary

NON_SPEECH_KINDS = (*NOISE_KINDS, "silence")
_PAIR_RETRIES = 50


@dataclass(frozen=True)
class ClipPlan:
    id: str
    split: str
    kind: str  # manifest kind
    text: str
    intent: str | None
    slots: tuple[tuple[str, Any], ...]
    voice: Voice | None  # None for non-speech
    noise_kind: str | None  # non-speech only: a NOISE_KINDS entry or "silence"
    seed: int


def _counts(total: int, config: DatasetConfig) -> dict[str, int]:
    test = max(1, round(total * config.test_fraction)) if total else 0
    val = round(total * config.val_fraction)
    return {"train": total - val - test, "val": val, "test_unseen_voices": test}


class _VoicePicker:
    def __init__(self, voices: tuple[Voice, ...], config: DatasetConfig, rng: random.Random):
        weights = dict(config.engine_weights)
        self.by_engine = {e: [v for v in voices if v.engine == e] for e in config.engines}
        self.engines = [e for e in config.engines if self.by_engine[e] and weights.get(e, 0) > 0]
        if not self.engines:
            raise ConfigError(f"no voices of engines {config.engines} with weight > 0 are "
                              f"installed (weights {weights})")
        self.weights = [weights[e] for e in self.engines]
        self.rng = rng
        self.config = config

    def pick(self) -> Voice:
        engine = self.rng.choices(self.engines, self.weights)[0]
        return vary(self.rng.choice(self.by_engine[engine]), self.rng, self.config.variation)


def plan_clips(context: Context, config: DatasetConfig, catalog: VoiceCatalog,
               available_noise_kinds: tuple[str, ...]) -> list[ClipPlan]:
    rng = random.Random(config.seed)
    pickers = {"train": _VoicePicker(catalog.train, config, rng),
               "val": _VoicePicker(catalog.train, config, rng),
               "test_unseen_voices": _VoicePicker(catalog.held_out, config, rng)}
    n = config.commands
    speech_sources: dict[str, list[tuple[str, str | None, tuple[tuple[str, Any], ...]]]] = {
        "command": [(a.text, a.intent, tuple(a.slots.items()))
                    for a in sample_sentences(context, n, seed=config.seed)],
        "out_of_domain": [(t, None, ()) for t in out_of_domain_for(
            context, round(n * config.out_of_domain_ratio), seed=config.seed + 1)],
        "near_miss": [(t, None, ()) for t in near_misses(
            context, round(n * config.near_miss_ratio), seed=config.seed + 2)],
    }
    clips: list[ClipPlan] = []
    taken: set[tuple[str, str]] = set()  # (text, base voice) pairs of train

    def add(split: str, kind: str, text: str, intent: str | None,
            slots: tuple[tuple[str, Any], ...], voice: Voice | None, noise: str | None) -> None:
        clip_id = f"{split}-{len(clips):06d}"
        clips.append(ClipPlan(clip_id, split, kind, text, intent, slots, voice, noise,
                              rng.randrange(1 << 31)))

    for kind, items in speech_sources.items():
        rng.shuffle(items)
        counts = _counts(len(items), config)
        splits = (["test_unseen_voices"] * counts["test_unseen_voices"] + ["val"] * counts["val"]
                  + ["train"] * counts["train"])
        # Train first, so that val can avoid its (sentence, voice) pairs.
        ordered = sorted(zip(splits, items, strict=True), key=lambda p: p[0] != "train")
        for split, (text, intent, slots) in ordered:
            voice = pickers[split].pick()
            if split == "train":
                taken.add((text, voice.base))
            elif split == "val":
                for _ in range(_PAIR_RETRIES):
                    if (text, voice.base) not in taken:
                        break
                    voice = pickers[split].pick()
                else:
                    continue  # every voice already says this sentence in train: skip it
            add(split, kind, text, intent, slots, voice, None)
    noise_kinds = [k for k in NON_SPEECH_KINDS if k in available_noise_kinds or k == "silence"]
    non_speech = round(n * config.non_speech_ratio)
    for split, count in _counts(non_speech, config).items():
        for _ in range(count):
            add(split, "non_speech", "", None, (), None, rng.choice(noise_kinds))
    return clips
