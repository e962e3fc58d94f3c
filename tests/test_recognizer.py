"""The zero-shot recognizer on real TTS speech with the bundled tiny.en INT8 model."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.errors import ConfigError
from assistant.recognizer import Recognizer, RecognizerConfig, Result


@pytest.mark.parametrize(("text", "intent", "slots"), [
    ("turn on the kitchen lights please", "lightsOn", {"room": "kitchen"}),
    ("set a timer for ten minutes", "setTimer", {"duration": 10, "unit": "minutes"}),
    ("set the thermostat to seventy two degrees", "setThermostat", {"temperature": 72}),
    ("what's the weather tomorrow", "getWeather", {"day": "tomorrow"}),
])
def test_commands_are_understood(home_recognizer: Recognizer, speak, text: str, intent: str,
                                 slots: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    result = home_recognizer.recognize(speak(text, voice="en-us+m3"))
    assert result.understood, result
    assert result.intent == intent
    assert result.slots == slots
    assert 0.5 <= result.confidence <= 1.0
    assert result.transcript


@pytest.mark.parametrize("text", [
    "the quick brown fox jumps over the lazy dog",
    "can I get a large pepperoni pizza with extra cheese",
    "how many people live in canada",
])
def test_out_of_grammar_speech_is_rejected(home_recognizer: Recognizer, speak, text: str) -> None:  # type: ignore[no-untyped-def]
    result = home_recognizer.recognize(speak(text, voice="en-us+f3"))
    assert not result.understood, result
    assert result.intent is None and result.slots == {}
    assert result.confidence < home_recognizer.config.threshold
    assert result.heard  # what the model heard without the grammar is still reported


def test_non_speech_is_rejected(home_recognizer: Recognizer) -> None:
    rng = np.random.default_rng(0)
    for audio in (np.zeros(16000, np.float32), 0.05 * rng.standard_normal(24000)):
        result = home_recognizer.recognize(audio.astype(np.float32))
        assert not result.understood


def test_empty_and_malformed_audio(home_recognizer: Recognizer) -> None:
    empty = home_recognizer.recognize(np.zeros(0, np.float32))
    assert not empty.understood and empty.audio_ms == 0
    with pytest.raises(ConfigError, match="1-D"):
        home_recognizer.recognize(np.zeros((2, 100), np.float32))


def test_result_serializes_with_timings(home_recognizer: Recognizer, speak) -> None:  # type: ignore[no-untyped-def]
    data = home_recognizer.recognize(speak("stop")).to_dict()
    assert set(data) >= {"understood", "intent", "slots", "confidence", "transcript",
                         "timing_ms", "audio_ms"}
    assert set(data["timing_ms"]) >= {"features", "encoder", "decoder", "total"}
    assert Result.not_understood(0.0).to_dict()["understood"] is False


def test_threshold_decides_understood(tiny_int8, speak) -> None:  # type: ignore[no-untyped-def]
    from assistant.grammar import load_context
    from tests.conftest import HOME_CONTEXT

    context = load_context(HOME_CONTEXT)
    audio = speak("pause the music")
    strict = Recognizer(context, tiny_int8, RecognizerConfig(threshold=1.0)).recognize(audio)
    lenient = Recognizer(context, tiny_int8, RecognizerConfig(threshold=0.0)).recognize(audio)
    assert not strict.understood
    assert lenient.understood and lenient.intent == "mediaPause"
    assert strict.confidence == pytest.approx(lenient.confidence)


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"beam_size": 0},
                                    {"precision": "fp16"}, {"speech_model": "large"},
                                    {"trailing_pad_ms": -1}])
def test_config_is_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RecognizerConfig(**kwargs)  # type: ignore[arg-type]


def test_warm_up_fills_the_constraint_cache(tiny_int8) -> None:  # type: ignore[no-untyped-def]
    from assistant.grammar import load_context
    from tests.conftest import HOME_CONTEXT

    recognizer = Recognizer(load_context(HOME_CONTEXT), tiny_int8)
    before = recognizer.constraint.cache_size
    recognizer.warm_up(sentences=8)
    assert recognizer.constraint.cache_size > before + 20


def test_a_full_config_for_a_model_directory_is_deprecated(tmp_path, home_recognizer) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from assistant.grammar import DEFAULT_CONTEXT
    from assistant.model_dir import export_model_dir

    strict = Recognizer(home_recognizer.context, home_recognizer.model,
                        RecognizerConfig(threshold=0.8, beam_size=2))
    export_model_dir(strict, tmp_path / "m", DEFAULT_CONTEXT)
    assert Recognizer.from_model_dir(tmp_path / "m").config.threshold == 0.8
    with pytest.warns(DeprecationWarning, match="pass the settings to override as a mapping"):
        old_style = Recognizer.from_model_dir(tmp_path / "m", RecognizerConfig(threads=1))
    # Only what differs from the defaults overrides: the stored settings survive.
    assert dataclasses.astuple(old_style.config) == dataclasses.astuple(
        RecognizerConfig(threshold=0.8, beam_size=2, threads=1))
