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
                                    {"trailing_pad_ms": -1}, {"rescue_sentences": -1}])
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


@pytest.fixture(scope="module")
def home_assistant_context():  # type: ignore[no-untyped-def]
    from pathlib import Path

    from assistant.grammar import load_context

    return load_context(Path(__file__).parents[1] / "assistant/contexts/home_assistant.yaml")


def test_the_rescue_finds_the_sentence_the_beam_missed(tiny_int8, speak,  # type: ignore[no-untyped-def]
                                                          home_assistant_context) -> None:
    """On Home Assistant's 2-million-sentence grammar the beam (4 wide) commits to a first
    word and writes nonsense for this Piper "unmute the volume", while the free decode heard
    "and use the volume"; the nearest grammar sentences, scored by the model, find it."""
    audio = speak("unmute the volume", voice="joe", engine="piper")
    without = Recognizer(home_assistant_context, tiny_int8,
                         RecognizerConfig(rescue_sentences=0)).recognize(audio)
    assert not without.understood and without.intent is None  # the failure this fixes
    result = Recognizer(home_assistant_context, tiny_int8).recognize(audio)
    assert result.understood and result.intent == "HassMediaPlayerUnmute"
    assert result.transcript.lower().rstrip(".") == "unmute the volume"
    assert result.timing_ms["rescue"] > 0


def test_no_rescue_for_an_understood_answer(tiny_int8, speak) -> None:  # type: ignore[no-untyped-def]
    from assistant.grammar import load_context
    from tests.conftest import HOME_CONTEXT

    context = load_context(HOME_CONTEXT)
    audio = speak("pause the music")
    plain = Recognizer(context, tiny_int8, RecognizerConfig(rescue_sentences=0)).recognize(audio)
    looked = Recognizer(context, tiny_int8).recognize(audio)
    assert plain.understood
    assert (looked.transcript, looked.confidence) == (plain.transcript, plain.confidence)


def test_rescoring_a_sentence_the_beam_found_gives_the_same_hypothesis(  # type: ignore[no-untyped-def]
        home_recognizer: Recognizer, speak) -> None:
    """What :meth:`BeamSearch.rescore` reports for a sentence is what the beam search itself
    reports for it: tokens, score, regret and the branching of the whole grammar. (Scores
    agree to INT8 rounding only: dynamic quantization scales activations per batch, and the
    two searches batch different rows.)"""
    from assistant.features import frames_for_duration, log_mel_spectrogram

    audio = np.concatenate([speak("turn on the lights"), np.zeros(16000, np.float32)])
    model = home_recognizer.model
    encoded = model.encode(log_mel_spectrogram(audio, n_mels=model.dims.n_mels,
                                               n_frames=frames_for_duration(audio.size)))
    search = home_recognizer.search
    beam = search.decode(encoded, audio.size / 16000).hypotheses[0]
    words = home_recognizer.constraint.words_of_tokens(beam.tokens)
    assert words
    again = search.rescore(encoded, audio.size / 16000, [words, ["stop"]])
    same = [h for h in again if h.tokens == beam.tokens]
    assert len(same) == 1
    assert same[0].logprob == pytest.approx(beam.logprob, abs=0.1)
    assert same[0].regret == pytest.approx(beam.regret, abs=0.1)
    assert same[0].log_branching == pytest.approx(beam.log_branching)
    assert all(home_recognizer.constraint.words_of_tokens(h.tokens) in (words, ["stop"])
               for h in again)


TOGETHER = [("unmute the volume", "joe", "piper"),
            ("turn on the kitchen light", "en-us+f2", "espeak"),
            ("what time is it", "en-gb+m1", "espeak"),
            ("set a timer for five minutes", "en-us+m3", "espeak")]


@pytest.fixture(scope="module")
def together_audio(speak) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    return [speak(text, voice=voice, engine=engine) for text, voice, engine in TOGETHER]


def test_utterances_recognized_together_get_what_they_get_alone(  # type: ignore[no-untyped-def]
        home_assistant_context, together_audio) -> None:
    """FP32: the same transcripts and confidences, while the decoder ran several utterances
    at once (the first one's search goes on to the nearest-sentence rescue, too)."""
    from assistant.artifacts import SpeechModelSpec, ensure_speech_model
    from assistant.speech_model import SpeechModel

    fp32 = SpeechModel(ensure_speech_model(SpeechModelSpec("tiny.en", "fp32")), threads=2)
    recognizer = Recognizer(home_assistant_context, fp32)
    alone = [recognizer.recognize(a) for a in together_audio]
    runs: list[int] = []
    together = recognizer.recognize_many(together_audio, on_run=runs.append)
    assert max(runs) == len(TOGETHER)  # the decoder did run them together
    for a, t in zip(alone, together, strict=True):
        assert isinstance(t, Result)
        assert (t.transcript, t.heard, t.understood, t.intent, t.slots) == (
            a.transcript, a.heard, a.understood, a.intent, a.slots)
        assert t.confidence == pytest.approx(a.confidence, abs=1e-6)
    assert sum(r.understood for r in alone) >= 3


def test_int8_together_decides_as_alone_and_keeps_failures_apart(  # type: ignore[no-untyped-def]
        home_assistant_context, tiny_int8, together_audio, monkeypatch) -> None:
    """INT8 quantizes each decoder run's inputs as one, so confidences move a little with
    the company (docs/scaling.md); the answers stay. A bad utterance gets its own error."""
    recognizer = Recognizer(home_assistant_context, tiny_int8)
    alone = [recognizer.recognize(a) for a in together_audio]
    together = recognizer.recognize_many([*together_audio, np.zeros((2, 10), np.float32)])
    assert isinstance(together[-1], ConfigError)
    for a, t in zip(alone, together[:-1], strict=True):
        assert isinstance(t, Result)
        assert (t.understood, t.intent, t.slots) == (a.understood, a.intent, a.slots)
        assert t.confidence == pytest.approx(a.confidence, abs=0.05)
    # A decoder graph from before it could (graph version 1) runs them one by one: exactly.
    monkeypatch.setattr(tiny_int8, "decodes_together", False)
    runs: list[int] = []
    one_by_one = recognizer.recognize_many(together_audio, on_run=runs.append)
    assert set(runs) == {1}
    assert [(r.transcript, r.confidence) for r in one_by_one if isinstance(r, Result)] == [
        (a.transcript, a.confidence) for a in alone]


def test_a_failing_decoder_run_fails_only_its_own_utterance(
        home_assistant_context, tiny_int8, together_audio) -> None:  # type: ignore[no-untyped-def]
    """When onnxruntime fails the runs of one utterance (here the real model is told to, for
    the second one's length of encoder states), a shared run is retried one by one and only
    that utterance fails; the others get what they get alone."""
    from assistant.decoding import Failed, run_together
    from assistant.errors import ModelError
    from assistant.speech_model import CrossKeys

    recognizer = Recognizer(home_assistant_context, tiny_int8)
    lengths = [recognizer.encode(a).positions for a in together_audio]
    bad = lengths[1]
    assert lengths.count(bad) == 1

    class FailingFor:  # the real model, but any run attending to the second utterance fails
        decodes_together = True

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(tiny_int8, name)  # keys_together, gather_cache: the real ones

        def decode(self, tokens, cache, encoded):  # type: ignore[no-untyped-def]
            keys = encoded if isinstance(encoded, CrossKeys) else encoded.keys
            if bad in [int((row == 0).sum()) for row in keys.mask]:
                raise ModelError("onnxruntime failed")
            return tiny_int8.decode(tokens, cache, encoded)

    runs: list[int] = []
    outcomes = run_together(FailingFor(), [recognizer._analysis(a, True)  # type: ignore[arg-type]
                                           for a in together_audio], runs.append)
    assert isinstance(outcomes[1], Failed) and "onnxruntime failed" in str(outcomes[1].error)
    alone = [recognizer.recognize(a) for a in together_audio]
    for i in (0, 2, 3):
        outcome = outcomes[i]
        assert not isinstance(outcome, Failed) and outcome.annotation is not None
        assert outcome.annotation.intent == alone[i].intent
    assert max(runs) == 3  # the other three still ran together


def test_a_number_said_outside_the_grammar_is_not_answered_as_another(  # type: ignore[no-untyped-def]
        tiny_int8, speak, home_assistant_context) -> None:
    """The temperature slot takes 10..90: "ninety five" is decoded as an allowed number the
    model can spell ("85" or "35", confidence over 0.9), while the free decode heard "95";
    the answer is then "not understood", not a thermostat set to another number."""
    from assistant.recognizer import Reason

    recognizer = Recognizer(home_assistant_context, tiny_int8)
    said = recognizer.recognize(speak("set the temperature to ninety five degrees"))
    assert not said.understood and said.reason == Reason.NUMBER_NOT_IN_GRAMMAR
    assert said.intent is None and said.slots == {}
    assert "95" in said.heard and "95" not in said.transcript
    allowed = recognizer.recognize(speak("set the temperature to seventy five degrees"))
    assert allowed.understood and allowed.slots == {"temperature": 75}
