"""Tests for assistant.vad: the ONNX Silero VAD against the official package, and the endpointer."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.audio import read_audio
from assistant.errors import AudioFormatError, ConfigError, MissingDependencyError, ModelError
from assistant.vad import (
    FRAME_SAMPLES,
    EndpointConfig,
    Endpointer,
    SileroVad,
    SpeechEnd,
    SpeechEvent,
    SpeechStart,
    VadState,
    default_model_path,
    find_speech,
    speech_span,
    speech_spans,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data from the repo
PROB_ATOL = 1e-4  # declared tolerance against the official implementation

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("silero_vad") is None, reason="needs the 'vad' extra (silero-vad)"
)


def _recordings() -> list[Path]:
    barista = sorted((DATA / "barista-dev" / "audio").glob("*.wav"))
    digits = sorted((DATA / "digits-dev" / "audio").glob("*.wav"))
    if not barista or not digits:
        pytest.skip(f"real recordings under {DATA} are not available")
    return barista[:4] + digits[:30:10]


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_audio(_recordings()[0])


def _official_probs(model: Any, audio: np.ndarray) -> np.ndarray:
    """Per-frame probabilities the way ``get_speech_timestamps`` computes them."""
    torch = pytest.importorskip("torch")
    model.reset_states()
    padded = np.zeros(-(-audio.size // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.float32)
    padded[: audio.size] = audio
    frames = padded.reshape(-1, FRAME_SAMPLES)
    return np.array([model(torch.from_numpy(f.copy()), 16000).item() for f in frames])


def _segments(events: list[SpeechEvent]) -> list[tuple[int, int]]:
    return [(e.start_sample, e.end_sample) for e in events if isinstance(e, SpeechEnd)]


def _run(probs: list[float], config: EndpointConfig, num_samples: int) -> list[SpeechEvent]:
    endpointer = Endpointer(config)
    events = [e for p in probs for e in endpointer.feed(p)]
    return events + endpointer.finalize(num_samples)


# --- model ---------------------------------------------------------------------------------


def test_import_and_load_do_not_pull_in_torch() -> None:
    code = (
        "import sys, assistant.vad; assistant.vad.SileroVad(); "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'silero_vad' not in sys.modules, 'silero_vad executed'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_default_model_is_inside_the_wheel() -> None:
    path = default_model_path()
    assert path.name == "silero_vad.onnx" and path.parent.name == "data"
    assert path.parent.parent.name == "silero_vad"


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"silero-vad.*voice-assistant\[vad\]"):
        SileroVad()


def test_explicit_model_path(tmp_path: Path, speech: np.ndarray, vad: SileroVad) -> None:
    other = SileroVad(default_model_path(), intra_op_threads=2)
    np.testing.assert_array_equal(
        other.probabilities(speech[:16000]), vad.probabilities(speech[:16000])
    )
    with pytest.raises(ModelError, match=r"nothing\.onnx.*does not exist"):
        SileroVad(tmp_path / "nothing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"could not load VAD model .*broken\.onnx"):
        SileroVad(broken)


def test_rejects_bad_frames(vad: SileroVad) -> None:
    with pytest.raises(AudioFormatError, match=r"512 samples .* got shape \(480,\)"):
        vad.process(np.zeros(480, dtype=np.float32), VadState())
    with pytest.raises(AudioFormatError, match="dtype int16"):
        vad.process(np.zeros(512, dtype=np.int16), VadState())
    with pytest.raises(AudioFormatError, match=r"got \(2, 512\)"):
        vad.process_batch(np.zeros((2, 512), dtype=np.float32), [VadState()])


@pytest.mark.parametrize("use_onnx", [True, False], ids=["onnx-wrapper", "torchscript"])
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_probabilities_match_official_model(vad: SileroVad, use_onnx: bool) -> None:
    pytest.importorskip("torch")
    from silero_vad import load_silero_vad

    model = load_silero_vad(onnx=use_onnx)
    for path in _recordings()[:2]:
        audio = read_audio(path)
        ours = vad.probabilities(audio)
        np.testing.assert_allclose(ours, _official_probs(model, audio), atol=PROB_ATOL, rtol=0)
        assert ours.max() > 0.9 and ours.min() < 0.1  # real speech and real silence


@pytest.mark.parametrize("min_silence_ms", [100, 400])
def test_find_speech_matches_get_speech_timestamps(vad: SileroVad, min_silence_ms: int) -> None:
    pytest.importorskip("torch")
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    model = load_silero_vad(onnx=True)
    config = EndpointConfig(min_silence_ms=min_silence_ms)
    for path in _recordings():
        audio = read_audio(path)
        ours = find_speech(audio, vad, config)
        official = get_speech_timestamps(
            torch.from_numpy(audio),
            model,
            threshold=0.5,
            min_speech_duration_ms=250,
            min_silence_duration_ms=min_silence_ms,
            speech_pad_ms=30,
        )
        assert len(ours) == len(official), path.name
        for (start, end), ref in zip(ours, official, strict=True):
            assert abs(start - ref["start"]) <= FRAME_SAMPLES
            assert abs(end - ref["end"]) <= FRAME_SAMPLES
    assert any(find_speech(read_audio(p), vad, config) for p in _recordings())


def test_streams_share_one_session(vad: SileroVad, speech: np.ndarray) -> None:
    a, b = speech[: 40 * FRAME_SAMPLES], speech[40 * FRAME_SAMPLES : 80 * FRAME_SAMPLES]
    state_a, state_b = VadState(), VadState()
    interleaved_a, interleaved_b = [], []
    for i in range(40):
        frame = slice(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES)
        interleaved_a.append(vad.process(a[frame], state_a))
        interleaved_b.append(vad.process(b[frame], state_b))
    np.testing.assert_array_equal(interleaved_a, vad.probabilities(a))
    np.testing.assert_array_equal(interleaved_b, vad.probabilities(b))


def test_batch_equals_one_stream_at_a_time(vad: SileroVad, speech: np.ndarray) -> None:
    streams = [speech[i * 8000 : i * 8000 + 30 * FRAME_SAMPLES] for i in range(4)]
    states = [VadState() for _ in streams]
    batched = np.stack(
        [
            vad.process_batch(np.stack([s[f * 512 : (f + 1) * 512] for s in streams]), states)
            for f in range(30)
        ],
        axis=1,
    )
    for stream, probs in zip(streams, batched, strict=True):
        np.testing.assert_allclose(probs, vad.probabilities(stream), atol=1e-5, rtol=0)


def test_look_ahead_gives_each_stream_what_it_computes_alone(vad: SileroVad,
                                                            speech: np.ndarray) -> None:
    streams = [speech[i * 8000 : i * 8000 + 30 * FRAME_SAMPLES].reshape(30, FRAME_SAMPLES)
               for i in range(4)]
    alone = [vad.probabilities(s.reshape(-1)) for s in streams]
    states = [VadState() for _ in streams]
    # Uneven look-aheads (10..13 frames), as streams whose audio came in different sizes.
    assert vad.look_ahead([(st, s[: 10 + i]) for i, (st, s) in
                           enumerate(zip(states, streams, strict=True))]) == 13
    for i, (state, stream, expected) in enumerate(zip(states, streams, alone, strict=True)):
        assert len(state.foreseen) == 10 + i
        got = []
        for k, frame in enumerate(stream):
            foreseen = state.foreseen[0].probability if state.foreseen else None
            got.append(vad.process(frame, state))
            if k < 10 + i:  # taken from the look-ahead, which then holds one fewer
                assert got[-1] == foreseen and len(state.foreseen) == 10 + i - k - 1
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_a_stream_that_goes_another_way_computes_afresh(vad: SileroVad,
                                                        speech: np.ndarray) -> None:
    frames = speech[20000 : 20000 + 8 * FRAME_SAMPLES].reshape(8, FRAME_SAMPLES)
    other = VadState()
    fresh = [vad.process(frame, VadState()) for frame in frames[3:5]]

    state = VadState()
    vad.look_ahead([(state, frames[:3]), (other, frames[:3])])
    # Another frame than the one foreseen: computed from the unchanged state.
    assert vad.process(frames[3], state) == fresh[0] and not state.foreseen
    state = VadState()
    vad.look_ahead([(state, frames[:3]), (other, frames[:3])])
    state.reset()  # e.g. a finalize between the look-ahead and the audio
    assert not state.foreseen
    assert vad.process(frames[4], state) == fresh[1]
    # The stream moved on without the look-ahead (here: a batch of its own): the frame is
    # the one foreseen, but not the state it was foreseen from.
    state, moved = VadState(), VadState()
    vad.look_ahead([(state, frames[:2]), (other, frames[:2])])
    vad.process_batch(frames[:1], [state])
    vad.process(frames[0], moved)
    assert vad.process(frames[0], state) == vad.process(frames[0], moved)
    assert state.foreseen_taken == 0 and not state.foreseen
    with pytest.raises(ConfigError, match="twice"):
        vad.look_ahead([(state, frames[:2]), (state, frames[:2])])
    with pytest.raises(AudioFormatError, match="shape"):
        vad.look_ahead([(state, frames[0])])


def test_many_recordings_batched_equal_one_at_a_time(vad: SileroVad) -> None:
    recordings = [read_audio(p) for p in _recordings()]
    # Different lengths in one batch (one shorter than a frame, one empty), and batches that
    # split the set unevenly.
    recordings += [recordings[0][: FRAME_SAMPLES // 2], np.zeros(0, np.float32),
                   recordings[1][: 7 * FRAME_SAMPLES + 3]]
    for batch_size in (1, 3, len(recordings)):
        many = vad.probabilities_many(recordings, batch_size=batch_size)
        assert [p.size for p in many] == [-(-r.size // FRAME_SAMPLES) for r in recordings]
        for audio, probs in zip(recordings, many, strict=True):
            np.testing.assert_allclose(probs, vad.probabilities(audio), atol=1e-5, rtol=0)
    assert speech_spans(recordings, vad) == [speech_span(r, vad) for r in recordings]
    assert speech_spans(recordings, vad)[-2] is None
    with pytest.raises(AudioFormatError, match="1-D float"):
        vad.probabilities_many([recordings[0], np.zeros((2, 2), np.float32)])
    with pytest.raises(ConfigError, match="batch_size"):
        vad.probabilities_many(recordings, batch_size=0)


def test_state_reset(vad: SileroVad, speech: np.ndarray) -> None:
    state = VadState()
    frame = speech[20000 : 20000 + FRAME_SAMPLES]
    first = vad.process(frame, state)
    vad.process(frame, state)
    state.reset()
    assert vad.process(frame, state) == first


# --- endpointer ----------------------------------------------------------------------------

SPEECH, SILENCE, UNSURE = 0.9, 0.05, 0.4  # UNSURE is between neg_threshold and threshold


def test_segment_with_padding_and_trailing_silence() -> None:
    config = EndpointConfig(min_silence_ms=400)
    endpointer = Endpointer(config)
    probs = [SILENCE] * 10 + [SPEECH] * 20 + [SILENCE] * 30
    timeline = [(i, e) for i, p in enumerate(probs) for e in endpointer.feed(p)]
    start_frame, end_frame = 10, 30
    pad, min_silence_frames = 480, -(-6400 // FRAME_SAMPLES)
    assert timeline == [
        (start_frame + 8, SpeechStart(start_frame * 512 - pad)),  # 8 frames > 250 ms
        (end_frame + min_silence_frames, SpeechEnd(start_frame * 512 - pad, end_frame * 512 + pad)),
    ]
    assert endpointer.finalize() == []


def test_unsure_frames_neither_start_nor_end_speech() -> None:
    probs = [UNSURE] * 20 + [SPEECH] * 10 + [UNSURE] * 40 + [SILENCE] * 20
    segments = _segments(_run(probs, EndpointConfig(), len(probs) * 512))
    assert segments == [(20 * 512 - 480, 70 * 512 + 480)]


def test_short_blips_are_dropped() -> None:
    probs = ([SILENCE] * 5 + [SPEECH] * 3) * 5 + [SILENCE] * 30  # 96 ms bursts
    assert _run(probs, EndpointConfig(min_silence_ms=100), len(probs) * 512) == []


def test_pause_shorter_than_min_silence_does_not_end() -> None:
    probs = [SPEECH] * 20 + [SILENCE] * 10 + [SPEECH] * 20 + [SILENCE] * 20
    events = _run(probs, EndpointConfig(min_silence_ms=400), len(probs) * 512)
    assert _segments(events) == [(0, 50 * 512 + 480)]


def test_max_utterance_forces_an_end() -> None:
    config = EndpointConfig(max_utterance_s=2.0)
    events = _run([SPEECH] * 200, config, 200 * 512)
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert ends[0].forced and not ends[-1].forced
    for end in ends:
        assert end.end_sample - end.start_sample <= 2.0 * 16000
    for before, after in itertools.pairwise(ends):
        assert after.start_sample >= before.end_sample


def test_finalize_closes_open_speech_and_resets() -> None:
    endpointer = Endpointer()
    for p in [SILENCE] * 3 + [SPEECH] * 20:
        endpointer.feed(p)
    assert endpointer.in_speech
    assert endpointer.finalize(23 * 512 - 100) == [SpeechEnd(3 * 512 - 480, 23 * 512 - 100)]
    assert not endpointer.in_speech and endpointer.samples_seen == 0


def test_config_validation() -> None:
    assert EndpointConfig().exit_threshold == pytest.approx(0.35)
    assert EndpointConfig(threshold=0.1).exit_threshold == 0.01
    with pytest.raises(ConfigError, match="threshold must be in"):
        EndpointConfig(threshold=1.5)
    with pytest.raises(ConfigError, match=r"neg_threshold .* got 0\.7"):
        EndpointConfig(neg_threshold=0.7)
    with pytest.raises(ConfigError, match="min_silence_ms must be >= 0, got -1"):
        EndpointConfig(min_silence_ms=-1)
    with pytest.raises(ConfigError, match=r"max_utterance_s .* got 0\.2"):
        EndpointConfig(max_utterance_s=0.2)


_probs = st.lists(st.sampled_from([0.02, 0.2, 0.34, 0.36, 0.45, 0.5, 0.7, 0.99]), max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    probs=_probs,
    threshold=st.sampled_from([0.3, 0.5, 0.6]),
    min_speech_ms=st.sampled_from([0, 64, 250]),
    min_silence_ms=st.sampled_from([64, 100, 400]),
    speech_pad_ms=st.sampled_from([0, 30]),
    short_by=st.integers(0, 511),
)
def test_endpointer_mirrors_get_speech_timestamps(
    probs: list[float],
    threshold: float,
    min_speech_ms: int,
    min_silence_ms: int,
    speech_pad_ms: int,
    short_by: int,
) -> None:
    pytest.importorskip("torch")
    from silero_vad import get_speech_timestamps_from_probs

    num_samples = max(0, len(probs) * FRAME_SAMPLES - short_by)
    config = EndpointConfig(
        threshold=threshold,
        min_speech_ms=min_speech_ms,
        min_silence_ms=min_silence_ms,
        speech_pad_ms=speech_pad_ms,
        max_utterance_s=1e6,
    )
    ours = _segments(_run(probs, config, num_samples))
    ours = [(start, min(end, num_samples)) for start, end in ours]
    official = get_speech_timestamps_from_probs(
        probs,
        threshold=threshold,
        min_speech_duration_ms=min_speech_ms,
        min_silence_duration_ms=min_silence_ms,
        speech_pad_ms=speech_pad_ms,
        audio_length_samples=num_samples,
    )
    assert ours == [(s["start"], s["end"]) for s in official]


@settings(max_examples=100, deadline=None)
@given(
    probs=_probs,
    min_silence_ms=st.sampled_from([0, 32, 400]),
    max_utterance_s=st.sampled_from([0.5, 1.0, 15.0]),
)
def test_every_start_has_one_end_and_segments_do_not_overlap(
    probs: list[float],
    min_silence_ms: int,
    max_utterance_s: float,
) -> None:
    config = EndpointConfig(
        min_speech_ms=0, min_silence_ms=min_silence_ms, max_utterance_s=max_utterance_s
    )
    events = _run(probs, config, len(probs) * FRAME_SAMPLES)
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd] * (len(events) // 2)
    previous_end = 0
    for start, end in zip(events[::2], events[1::2], strict=True):
        assert isinstance(start, SpeechStart) and isinstance(end, SpeechEnd)
        assert end.start_sample == start.start_sample >= previous_end
        assert start.start_sample <= end.end_sample <= len(probs) * FRAME_SAMPLES
        assert end.end_sample - end.start_sample <= max_utterance_s * 16000
        previous_end = end.end_sample


def test_a_soft_onset_moves_the_start_back() -> None:
    # Frames the model is unsure of (0.3) lead into clear speech: silero starts at the speech;
    # with onset_threshold the start goes back over them, at most max_onset_ms.
    probs = [SILENCE] * 10 + [UNSURE] * 12 + [SPEECH] * 20 + [SILENCE] * 30
    n = len(probs) * 512
    assert _segments(_run(probs, EndpointConfig(), n))[0][0] == 22 * 512 - 480
    soft = EndpointConfig(onset_threshold=0.2)
    assert _segments(_run(probs, soft, n))[0][0] == 10 * 512 - 480
    capped = EndpointConfig(onset_threshold=0.2, max_onset_ms=200)  # 6 frames back at most
    assert _segments(_run(probs, capped, n))[0][0] == (22 - 6) * 512 - 480
    with pytest.raises(ConfigError, match="onset_threshold"):
        EndpointConfig(onset_threshold=0.7)


def test_a_recording_the_vad_is_unsure_of_gets_a_second_look(vad: SileroVad) -> None:
    from assistant.vad import SecondLook, command_span
    from training.tts import Voice, synthesize

    word = synthesize("pause", Voice("espeak", "en-us+f3"))
    silence = np.zeros(16000, np.float32)
    clear = np.concatenate([silence, word / np.abs(word).max() * 0.5, silence])
    assert command_span(clear, vad)[1] == "vad"
    # The same word so quietly that the VAD stays under 0.5 (but over 0.25) on it: the
    # normal settings find nothing, the relaxed look finds it.
    quiet = np.concatenate([silence, word / np.abs(word).max() * 0.006, silence])
    probs = vad.probabilities(quiet)
    assert 0.25 < probs.max() < 0.5, probs.max()
    span, found = command_span(quiet, vad)
    assert found == "relaxed" and span is not None
    assert span[0] >= 16000 - 4000 and span[1] <= 16000 + word.size + 4000  # around the word
    assert span[1] - span[0] >= 2400  # 150 ms and more
    assert command_span(quiet, vad, second_look=None) == (None, "none")
    # Silence stays silence; the energy fallback (off by default) cuts around the loudest part.
    assert command_span(silence * 0, vad) == (None, "none")
    hum = (0.05 * np.sin(np.arange(32000) * 2 * np.pi * 100 / 16000)).astype(np.float32)
    assert command_span(hum, vad, second_look=SecondLook(energy=True))[1] == "energy"
    assert command_span(hum, vad)[1] == "none"
