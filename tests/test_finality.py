"""Does the speech sound finished: the probe's features, its file, the shipped tiny.en probe
on real TTS speech, and how training.finality fits and sets its thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.errors import ModelError
from assistant.finality import (
    SAMPLES_PER_STATE,
    FinalityProbe,
    builtin_probe,
    finality_features,
)
from assistant.levels import level_dips
from training.finality import fit, speculation_clip, thresholds


def _clip(seconds_speech: float, seconds_after: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    speech = 0.3 * rng.standard_normal(int(seconds_speech * 16000))
    quiet = 1e-4 * rng.standard_normal(int(seconds_after * 16000))
    return np.concatenate([1e-4 * rng.standard_normal(1600), speech, quiet]).astype(np.float32)


def test_features_are_the_states_around_the_end_of_the_speech() -> None:
    d = 6
    audio = _clip(1.0, 0.1)  # the speech ends at 1.1 s: state 55
    hidden = np.repeat(np.arange(100, dtype=np.float64)[:, None], d, axis=1)
    x = finality_features(hidden, audio)
    assert x is not None and x.shape == (3 * d,)
    end = int(1.1 * 16000) // SAMPLES_PER_STATE
    assert x[:d] == pytest.approx(np.arange(end - 10, end).mean())  # the last 200 ms
    assert x[d : 2 * d] == pytest.approx(np.arange(end - 20, end - 10).mean())
    assert x[2 * d :] == pytest.approx(np.arange(end, end + 5).mean())  # 100 ms after
    assert finality_features(hidden, np.zeros(16000, np.float32)) is None  # no speech
    assert finality_features(hidden[:40], audio) is None  # states end before the speech


def test_a_probe_file_round_trips_and_is_checked() -> None:
    probe = FinalityProbe("m", np.array([1.0, -2.0, 0.5]), 0.25, 0.9, 0.1, {"k": 1})
    again = FinalityProbe.from_json(probe.to_json())
    assert again.weights.tolist() == [1.0, -2.0, 0.5] and again.bias == 0.25
    assert (again.finished_at, again.unfinished_below, again.info) == (0.9, 0.1, {"k": 1})
    assert [probe.judge(p) for p in (0.95, 0.9, 0.5, 0.05, None)] == [
        True, True, None, False, None]
    with pytest.raises(ModelError, match="thresholds"):
        FinalityProbe("m", np.zeros(3), 0.0, 0.1, 0.9, {})
    with pytest.raises(ModelError, match="lacks or garbles"):
        FinalityProbe.from_json({"speech_model": "m"})
    with pytest.raises(ModelError, match="takes 3 features"):
        probe.probability(np.zeros((100, 2)), _clip(1.0, 0.1))
    assert builtin_probe("no-such-model") is None


def test_the_shipped_probe_hears_a_finished_sentence_from_a_pause_inside_it(
        tiny_int8, speak) -> None:  # type: ignore[no-untyped-def]
    """Real espeak-ng speech through the real encoder: the whole sentence sounds more
    finished than the same sentence cut at a pause inside it, for each of these sentences
    (a voice variant the probe was not fitted on)."""
    from assistant.grammar import load_context
    from assistant.recognizer import Recognizer
    from tests.conftest import HOME_CONTEXT

    recognizer = Recognizer(load_context(HOME_CONTEXT), tiny_int8)
    assert recognizer.finality is not None and recognizer.finality.speech_model == "tiny.en"
    rng = np.random.default_rng(1)
    texts = ["turn on the lights in the living room", "set a timer for twenty minutes",
             "what is the weather like tomorrow", "play some jazz music in the kitchen"]
    finished, cut = [], []
    for text in texts:
        speech = speak(text, voice="en-us+steph", pad_s=0.0)
        inside = level_dips(speech)
        assert inside, text
        for at, out in ((speech.size, finished), (inside[len(inside) // 2], cut)):
            clip = speculation_clip(speech, at, rng)
            result = recognizer.recognize(clip)
            assert result.finality is not None
            out.append(result.finality)
    assert all(f > c for f, c in zip(finished, cut, strict=True)), (finished, cut)


def test_a_fine_tuned_encoder_gets_no_probe(tiny_int8, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from assistant.confidence import builtin_calibration
    from assistant.grammar import load_context
    from assistant.recognizer import Recognizer
    from tests.conftest import HOME_CONTEXT

    monkeypatch.setattr(tiny_int8, "name", "tiny.en-commands")  # what `assistant train` writes
    recognizer = Recognizer(load_context(HOME_CONTEXT), tiny_int8,
                            calibration=builtin_calibration("tiny.en"))
    result = recognizer.recognize(_clip(1.0, 0.1))
    assert recognizer.finality is None and result.finality is None
    assert result.sounds_finished is None


def test_fit_and_thresholds() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 5)) * [1, 2, 3, 4, 5] + 10
    y = (x[:, 0] - 10 + 0.2 * rng.standard_normal(400) > 0).astype(float)
    weights, bias = fit(x, y, l2=1.0)
    p = 1 / (1 + np.exp(-(x @ weights + bias)))
    assert np.mean((p > 0.5) == (y == 1)) > 0.9  # the best possible: about 0.94
    assert abs(weights[0]) > 5 * np.abs(weights[1:]).max()  # the informative input
    finished_at, unfinished_below = thresholds(p, y, 0.02)
    assert np.mean(p[y == 0] >= finished_at) <= 0.02
    assert np.mean(p[y == 1] < unfinished_below) <= 0.02
    assert unfinished_below <= finished_at


@pytest.mark.slow
def test_training_a_probe_end_to_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``python -m training.finality`` on one sentence per grammar and engine: a probe file
    the recognizer can load, with its held-out report."""
    import json

    from training.finality import main

    out = tmp_path / "probe.json"
    assert main(["--out", str(out), "--per-grammar", "1", "--seed", "3"]) == 0
    probe = FinalityProbe.from_json(json.loads(out.read_text()))
    assert probe.speech_model == "tiny.en" and probe.weights.shape == (3 * 384,)
    assert set(probe.info["held_out_auc_by_engine"]) >= {"espeak", "flite"}
    assert probe.info["clips"]["finished"] > 20 and probe.info["clips"]["cut"] > 10
