"""The streaming state machine: chunking does not matter, rates are resampled, push-to-talk."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.errors import AudioFormatError, ConfigError
from assistant.resample import resample
from assistant.stream import (
    PartialResult,
    RecognizerSession,
    Segmenter,
    SpeechEnded,
    SpeechStarted,
    StreamConfig,
    UtteranceResult,
)
from assistant.vad import EndpointConfig


def _feed_all(session: RecognizerSession, audio: np.ndarray, chunk: int) -> list[object]:
    events: list[object] = []
    for start in range(0, len(audio), chunk):
        events += session.feed(audio[start : start + chunk])
    return events + session.finalize()


def _summary(events: list[object]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for e in events:
        if isinstance(e, UtteranceResult | PartialResult):
            r = e.result
            out.append((type(e).__name__, e.utterance_id, r.understood, r.intent,
                        tuple(sorted(r.slots.items())), r.confidence, r.transcript))
        else:
            out.append((type(e).__name__, *vars(e).values()))
    return out


@pytest.fixture(scope="module")
def two_commands(speak) -> np.ndarray:  # type: ignore[no-untyped-def]
    silence = np.zeros(16000, np.float32)
    return np.concatenate([silence, speak("turn off the bedroom lights"), silence,
                           speak("set a timer for five minutes"), silence])


def _pcm16(audio: np.ndarray) -> np.ndarray:
    return np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)


@pytest.mark.parametrize("rate", [16000, 48000, 8000])
def test_same_events_whatever_the_chunk_size(home_recognizer, vad, two_commands,
                                              rate: int) -> None:  # type: ignore[no-untyped-def]
    audio = two_commands if rate == 16000 else resample(two_commands, 16000, rate)
    pcm = _pcm16(audio)
    runs = []
    for chunk in (160, 1280, 4000):
        session = RecognizerSession(home_recognizer, vad, StreamConfig(sample_rate_hz=rate))
        runs.append(_summary(_feed_all(session, pcm, chunk * rate // 16000)))
    assert runs[0] == runs[1] == runs[2]
    results = [r for r in runs[0] if r[0] == "UtteranceResult"]
    assert [(r[3], dict(r[4])) for r in results] == [
        ("lightsOff", {"room": "bedroom"}),
        ("setTimer", {"duration": 5, "unit": "minutes"}),
    ]
    kinds = [r[0] for r in runs[0]]
    assert kinds == ["SpeechStarted", "SpeechEnded", "UtteranceResult"] * 2


def test_bytes_float_and_int16_inputs_agree(home_recognizer, vad, two_commands) -> None:  # type: ignore[no-untyped-def]
    pcm = _pcm16(two_commands)
    as_bytes = RecognizerSession(home_recognizer, vad)
    as_float = RecognizerSession(home_recognizer, vad)
    a = _summary(_feed_all(as_bytes, pcm.tobytes(), 3200))  # type: ignore[arg-type]
    b = _summary(_feed_all(as_float, pcm.astype(np.float32) / 32768, 1600))
    assert a == b


def test_push_to_talk_finalize_ends_the_utterance(home_recognizer, vad, speak) -> None:  # type: ignore[no-untyped-def]
    session = RecognizerSession(home_recognizer, vad)
    audio = speak("pause the music", pad_s=0.3)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    audio = audio[: loud[-1] + 800]  # the button is released 50 ms after the last sound
    events = session.feed(audio)
    assert not any(isinstance(e, UtteranceResult) for e in events)
    events += session.finalize()
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    results = [e for e in events if isinstance(e, UtteranceResult)]
    assert len(ended) == 1 and ended[0].forced
    assert len(results) == 1 and results[0].result.intent == "mediaPause"
    # The next turn starts from a clean stream with the next utterance id.
    more = _feed_all(session, speak("stop"), 1600)
    assert [e.utterance_id for e in more if isinstance(e, UtteranceResult)] == [1]


def test_finalize_with_nothing_said_answers_not_understood(home_recognizer, vad) -> None:  # type: ignore[no-untyped-def]
    session = RecognizerSession(home_recognizer, vad)
    session.feed(np.zeros(8000, np.float32))
    events = session.finalize()
    assert len(events) == 1 and isinstance(events[0], UtteranceResult)
    assert not events[0].result.understood
    # After a result the VAD already delivered, finalize adds nothing.
    assert session.finalize()[0].utterance_id == 1


def test_long_speech_is_cut_at_max_utterance(home_recognizer, vad, speak) -> None:  # type: ignore[no-untyped-def]
    config = StreamConfig(endpoint=EndpointConfig(max_utterance_s=2.0, speech_pad_ms=200))
    session = RecognizerSession(home_recognizer, vad, config)
    talk = np.concatenate([speak("the quick brown fox jumps over the lazy dog", pad_s=0)] * 3)
    events = _feed_all(session, talk, 1600)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert ended and ended[0].forced
    assert all(e.end_ms - e.start_ms <= 2000 + 1e-6 for e in ended)
    assert len([e for e in events if isinstance(e, UtteranceResult)]) == len(ended)


def test_partials_come_while_speaking(home_recognizer, vad, speak) -> None:  # type: ignore[no-untyped-def]
    session = RecognizerSession(home_recognizer, vad,
                                StreamConfig(partials=True, partial_interval_ms=300))
    events = _feed_all(session, speak("set the thermostat to sixty eight degrees"), 1600)
    kinds = [type(e) for e in events]
    assert PartialResult in kinds
    assert kinds.index(SpeechStarted) < kinds.index(PartialResult) < kinds.index(SpeechEnded)
    final = next(e for e in events if isinstance(e, UtteranceResult)).result
    assert final.intent == "setThermostat" and final.slots == {"temperature": 68}


def test_bad_chunks_are_rejected_and_lose_nothing(home_recognizer, vad, two_commands) -> None:  # type: ignore[no-untyped-def]
    session = RecognizerSession(home_recognizer, vad)
    pcm = _pcm16(two_commands).tobytes()
    events = session.feed(pcm[:32000])
    with pytest.raises(AudioFormatError, match="1001 bytes"):
        session.feed(b"\0" * 1001)
    with pytest.raises(AudioFormatError):
        session.feed(np.zeros((2, 10), np.float32))
    events += session.feed(pcm[32000:]) + session.finalize()
    reference = _summary(_feed_all(RecognizerSession(home_recognizer, vad), pcm, 32000))  # type: ignore[arg-type]
    assert _summary(events) == reference


@pytest.mark.parametrize("rate", [16000, 48000])
def test_looking_ahead_changes_no_event(vad, two_commands, rate: int) -> None:  # type: ignore[no-untyped-def]
    """Two streams whose VAD runs ahead in batches (as the server's feeder runs it) give the
    events each gives alone; the frames foreseen are exactly the ones the VAD is then given."""
    audio = two_commands if rate == 16000 else resample(two_commands, 16000, rate)
    pcm = _pcm16(audio).tobytes()
    step = 2 * (1000 * rate // 16000 + 7)  # odd-sized chunks: frames straddle them
    chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
    config = StreamConfig(sample_rate_hz=rate)
    alone = Segmenter(vad, config)
    expected = [e for c in chunks for e in alone.feed(c)]
    first, second = Segmenter(vad, config), Segmenter(vad, config)
    got: list[object] = []
    for i in range(0, len(chunks), 3):
        ahead = chunks[i : i + 3]
        other = chunks[-i - 3 : len(chunks) - i]  # the second stream feeds other audio
        (state, frames), seen = first.upcoming_frames(ahead), first.samples_seen
        vad.look_ahead([(state, frames), second.upcoming_frames(other)])
        assert len(state.foreseen) == frames.shape[0]
        last = state.foreseen[-1].state if state.foreseen else state.state
        resampler = first._converted[-1].resampler_after
        # Every other time the same audio comes in other objects: converted afresh.
        same_objects = i % 6 == 0
        for chunk in ahead:
            got += first.feed(chunk if same_objects else bytes(bytearray(chunk)))
        # The audio converted ahead was used, not converted twice (the resampler's state is
        # the one the look-ahead left), unless other objects came.
        assert (first._resampler is resampler) == (same_objects or rate == 16000)
        # Every foreseen frame was used (the state is the last one foreseen, which only
        # taking them all in order leads to), and no other frame was run.
        assert state.state is last and not state.foreseen
        assert first.samples_seen - seen == frames.size
        for chunk in other:
            second.feed(chunk)
    assert got == expected and any(isinstance(e, SpeechEnded) for e in got)
    assert first.upcoming_frames([b"\0" * 1001])[1].shape == (0, 512)  # will not convert


def test_audio_converted_ahead_is_not_used_after_a_reset(vad, two_commands) -> None:  # type: ignore[no-untyped-def]
    pcm = _pcm16(resample(two_commands, 16000, 48000)).tobytes()
    speech = 2 * int(1.3 * 48000)  # bytes: chunks of speech, whose history matters
    chunks = [pcm[speech + i : speech + i + 9602] for i in range(0, 4 * 9602, 9602)]
    segmenter, fresh = Segmenter(vad, StreamConfig(sample_rate_hz=48000)), \
        Segmenter(vad, StreamConfig(sample_rate_hz=48000))
    segmenter.feed(chunks[0])
    segmenter.upcoming_frames(chunks[1:])  # converted from the state after chunks[0] ...
    segmenter.reset()  # ... which a reset (a finalize, a cancel) throws away
    for chunk in chunks[1:]:
        segmenter.feed(chunk)
        fresh.feed(chunk)
    end = fresh.samples_seen
    np.testing.assert_array_equal(segmenter._buffer.slice(0, end), fresh._buffer.slice(0, end))


def test_config_validation() -> None:
    with pytest.raises(AudioFormatError):
        StreamConfig(sample_rate_hz=0)
    with pytest.raises(ConfigError):
        StreamConfig(partial_interval_ms=10)


def test_memory_stays_bounded_while_idle(vad) -> None:  # type: ignore[no-untyped-def]
    segmenter = Segmenter(vad)
    noise = (0.001 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    for _ in range(20):
        segmenter.feed(noise)
    assert segmenter._buffer.size <= 2 * 16000 + 512
    assert segmenter._buffer.capacity <= 4 * 16000  # 20 s fed, the array never grew


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("append"), st.integers(0, 9000)),
                          st.tuples(st.just("drop"), st.integers(0, 40000))), max_size=40))
def test_audio_buffer_matches_a_plain_array(ops: list[tuple[str, int]]) -> None:
    from assistant.segmenter import AudioBuffer

    buffer = AudioBuffer(capacity=1024)
    reference = np.zeros(0, np.float32)
    start = total = 0
    for op, n in ops:
        if op == "append":
            chunk = np.arange(total, total + n, dtype=np.float32)
            buffer.append(chunk)
            reference = np.concatenate([reference, chunk])
            total += n
        else:
            drop = min(max(0, n - start), reference.size)
            reference, start = reference[drop:], start + drop
            buffer.drop_before(n)
        assert (buffer.start, buffer.end) == (start, start + reference.size)
        assert np.array_equal(buffer.slice(start, buffer.end), reference)
        mid = start + reference.size // 3
        expected = reference[mid - start : mid - start + 500]
        assert np.array_equal(buffer.slice(mid, mid + 500), expected)
        assert buffer.slice(0, start).size == 0
