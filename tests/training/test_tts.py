"""Real TTS engines: determinism (also from an empty cache), voice ids, conversion, lexicon."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.audio import SAMPLE_RATE_HZ
from assistant.errors import ConfigError
from training.tts import Voice, respell, synthesize, voice_catalog
from training.tts.conversion import convert

from .conftest import need_engine


def test_legacy_voice_ids_are_unchanged() -> None:
    # The TTS cache of earlier releases is keyed by these ids.
    assert Voice("espeak", "en-us+m3").id == "espeak:en-us+m3@r1.00"
    assert Voice("espeak", "en-gb", 1.2, 40).id == "espeak:en-gb@r1.20,p40"
    assert Voice("flite", "slt").id == "flite:slt@r1.00"


def test_voice_validation() -> None:
    with pytest.raises(ConfigError, match=r"unknown TTS engine 'sapi' \(known: \['espeak', "
                                          r"'flite', 'festival', 'piper', 'kokoro'\]"):
        Voice("sapi", "david")
    with pytest.raises(ConfigError, match="unknown festival voice 'nope'"):
        Voice("festival", "nope")
    with pytest.raises(ConfigError, match="unknown flite voice 'nope'"):
        Voice("flite", "nope")
    with pytest.raises(ConfigError, match="pitch"):
        Voice("flite", "slt", pitch=50)
    with pytest.raises(ConfigError, match="noise_scale"):
        Voice("espeak", "en-us", noise_scale=0.5)
    with pytest.raises(ConfigError, match="blend"):
        Voice("kokoro", "jf_alpha+jm_kumo")


def test_respellings_apply_per_engine() -> None:
    assert respell("a large Latte please", "flite") == "a large lah tay please"
    assert respell("a large latte please", "espeak") == "a large latte please"
    assert respell("lattes", "festival") == "lah tays"


def test_piper_is_deterministic_from_an_empty_cache(tmp_path: Path) -> None:
    need_engine("piper")
    voice = Voice("piper", "joe", rate=1.1, noise_scale=0.6, noise_w=0.7, seed=11)
    a = synthesize("set a timer for ten minutes", voice, cache=tmp_path / "a")
    b = synthesize("set a timer for ten minutes", voice, cache=tmp_path / "b")
    other_seed = synthesize("set a timer for ten minutes", Voice("piper", "joe", 1.1, None,
                                                                 0.6, 0.7, 12),
                            cache=tmp_path / "a")
    assert a.size > 0.8 * SAMPLE_RATE_HZ
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != other_seed.tobytes()


def test_kokoro_speaks_english_deterministically(tmp_path: Path) -> None:
    need_engine("kokoro")
    from training.tts.kokoro import espeak_ipa, to_kokoro_phonemes

    assert to_kokoro_phonemes(espeak_ipa("time")) == "tˈIm"
    voice = Voice("kokoro", "jf_alpha+jm_kumo@0.30")
    a = synthesize("pause the music", voice, cache=tmp_path / "a")
    b = synthesize("pause the music", voice, cache=tmp_path / "b")
    assert 0.5 * SAMPLE_RATE_HZ < a.size < 3 * SAMPLE_RATE_HZ
    assert a.tobytes() == b.tobytes()


def _f0_hz(x: np.ndarray) -> float:
    """Median autocorrelation pitch over loud 40 ms frames (60-500 Hz)."""
    size, estimates = 640, []
    loud = 0.3 * np.max(np.abs(x))
    for start in range(0, x.size - size, size // 2):
        frame = x[start : start + size]
        if np.max(np.abs(frame)) < loud:
            continue
        frame = frame - frame.mean()
        corr = np.correlate(frame, frame, "full")[size - 1 :]
        low, high = SAMPLE_RATE_HZ // 500, SAMPLE_RATE_HZ // 60
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] > 0.3 * corr[0]:
            estimates.append(SAMPLE_RATE_HZ / lag)
    return float(np.median(estimates))


def test_conversion_raises_pitch_and_keeps_duration(espeak_speech: np.ndarray) -> None:
    shifted = convert(espeak_speech, semitones=7.0, formant_ratio=1.2)
    assert shifted.shape == espeak_speech.shape
    ratio = _f0_hz(shifted) / _f0_hz(espeak_speech)
    assert ratio == pytest.approx(2 ** (7 / 12), rel=0.12)
    rms = np.sqrt(np.mean(shifted**2)) / np.sqrt(np.mean(espeak_speech**2))
    assert rms == pytest.approx(1.0, rel=0.01)


def test_formant_shift_alone_keeps_pitch(espeak_speech: np.ndarray) -> None:
    shifted = convert(espeak_speech, semitones=0.0, formant_ratio=1.2)
    assert _f0_hz(shifted) == pytest.approx(_f0_hz(espeak_speech), rel=0.08)
    assert not np.allclose(shifted, espeak_speech, atol=1e-3)


def test_converted_voice_is_cached_and_stays_the_same_base(tmp_path: Path) -> None:
    need_engine("flite")
    voice = Voice("flite", "rms", semitones=4.0, formant_ratio=1.12)
    a = synthesize("good morning", voice, cache=tmp_path)
    assert a.tobytes() == synthesize("good morning", voice, cache=tmp_path).tobytes()
    assert voice.base == "flite:rms" and voice.speaker == "flite:rms~+4.0st/1.12"
    assert len(list(tmp_path.rglob("*.wav"))) == 2  # the engine's output and the conversion


def test_catalog_holds_out_voices_entirely() -> None:
    catalog = voice_catalog()
    train = {c for v in catalog.train for c in v.components}
    held = {c for v in catalog.held_out for c in v.components}
    assert catalog.held_out and catalog.train
    assert not train & held
    with pytest.raises(ConfigError, match="held-out"):
        type(catalog)(catalog.train, catalog.train[:1])


def test_a_new_engine_is_one_class_and_one_line(tmp_path: Path) -> None:
    """An engine registered by name works everywhere an engine is asked: the voice checks,
    the catalogue, per-clip variation and synthesis (through the cache)."""
    import random

    from training.tts import TTS_ENGINES, engine_class, vary
    from training.tts.command_line import EspeakEngine

    class SlowEspeak(EspeakEngine):
        name = "slow_espeak"
        convertible = True

        @classmethod
        def voices(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
            return ("en-us+m3",), ("en-gb+f3",)

        def speak(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
            audio, rate_hz = super().speak(text, voice)
            return np.repeat(audio, 2), rate_hz  # half the speed, an octave down

    assert "slow_espeak" not in TTS_ENGINES
    with pytest.raises(ConfigError, match="unknown TTS engine 'slow_espeak'"):
        Voice("slow_espeak", "en-us+m3")
    TTS_ENGINES.register("slow_espeak", SlowEspeak)
    try:
        assert engine_class("slow_espeak") is SlowEspeak
        catalog = voice_catalog(("espeak", "slow_espeak"))
        assert Voice("slow_espeak", "en-gb+f3") in catalog.held_out
        assert Voice("slow_espeak", "en-us+m3") in catalog.train
        varied = [vary(Voice("slow_espeak", "en-us+m3"), random.Random(i)) for i in range(40)]
        assert all(v.pitch is not None for v in varied)
        assert any(v.converted for v in varied)  # its class says it may be converted
        with pytest.raises(ConfigError, match=r"noise_scale 0\.5 is not a setting of "
                                              r"engine slow_espeak"):
            Voice("slow_espeak", "en-us+m3", noise_scale=0.5)
        slow = synthesize("turn on the lights", Voice("slow_espeak", "en-us+m3"), tmp_path)
        plain = synthesize("turn on the lights", Voice("espeak", "en-us+m3"), tmp_path)
        assert abs(slow.size / plain.size - 2.0) < 0.01
    finally:
        TTS_ENGINES.unregister("slow_espeak")
