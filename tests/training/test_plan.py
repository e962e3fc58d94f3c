"""Splits: held-out voices only in the test split, no (sentence, voice) pair shared by val."""

from __future__ import annotations

from dataclasses import replace

import pytest

from assistant.grammar import load_context
from training.data_config import DatasetConfig, config_for_size
from training.noises import NOISE_KINDS
from training.plan import plan_clips
from training.tts import voice_catalog

from .conftest import HOME


@pytest.fixture(scope="module")
def plan():  # type: ignore[no-untyped-def]
    config = DatasetConfig(commands=400, seed=5)
    return plan_clips(load_context(HOME), config, voice_catalog(), NOISE_KINDS)


def test_unseen_voice_split_shares_no_voice_with_training(plan) -> None:  # type: ignore[no-untyped-def]
    seen = {c for p in plan if p.voice and p.split != "test_unseen_voices"
            for c in p.voice.components}
    test = {c for p in plan if p.voice and p.split == "test_unseen_voices"
            for c in p.voice.components}
    assert test and seen
    assert not seen & test
    assert {c.split(":")[0] for c in test} >= {"espeak", "festival"}


def test_val_has_no_sentence_voice_pair_of_train(plan) -> None:  # type: ignore[no-untyped-def]
    train = {(p.text, p.voice.base) for p in plan if p.split == "train" and p.voice}
    val = [(p.text, p.voice.base) for p in plan if p.split == "val" and p.voice]
    assert val
    assert not train.intersection(val)


def test_plan_covers_kinds_splits_and_intents(plan) -> None:  # type: ignore[no-untyped-def]
    assert {p.kind for p in plan} == {"command", "out_of_domain", "near_miss", "non_speech"}
    assert {p.split for p in plan} == {"train", "val", "test_unseen_voices"}
    intents = {p.intent for p in plan if p.kind == "command"}
    assert intents == set(load_context(HOME).intent_names)
    assert len({p.id for p in plan}) == len(plan)
    assert {p.noise_kind for p in plan if p.kind == "non_speech"} - {None} <= {
        *NOISE_KINDS, "silence"}


def test_plan_is_a_function_of_its_inputs(plan) -> None:  # type: ignore[no-untyped-def]
    config = DatasetConfig(commands=400, seed=5)
    again = plan_clips(load_context(HOME), config, voice_catalog(), NOISE_KINDS)
    assert again == plan
    other = plan_clips(load_context(HOME), replace(config, seed=6), voice_catalog(),
                       NOISE_KINDS)
    assert other != plan


def test_size_presets() -> None:
    assert config_for_size("tiny").commands == 48
    assert config_for_size("250", seed=3).seed == 3
    with pytest.raises(Exception, match="unknown size"):
        config_for_size("huge")
