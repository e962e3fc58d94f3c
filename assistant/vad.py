"""Silero VAD on onnxruntime, and an endpointer that turns its probabilities into utterances.

* :class:`SileroVad` holds one read-only onnxruntime session of the ONNX model shipped in the
  ``silero-vad`` wheel (found without importing the package, whose ``__init__`` imports torch).
  Any number of streams share it; each keeps its own :class:`VadState`.
  ``vad.process(frame, state)`` reproduces ``silero_vad.utils_vad.OnnxWrapper.__call__`` at
  16 kHz: the model sees ``[64 samples of context | 512-sample frame]`` and its recurrent state.
* :class:`Endpointer` is a pure state machine fed one probability per frame. It mirrors the
  hysteresis of silero's ``get_speech_timestamps`` (start at ``prob >= threshold``; silence
  only below ``neg_threshold``; an end after ``min_silence_ms`` of silence; segments not longer
  than ``min_speech_ms`` dropped; ``speech_pad_ms`` of padding) but decides online, emitting
  :class:`SpeechStart` once a segment is certain to be kept and :class:`SpeechEnd` when it ends.
* :func:`find_speech` runs both over a whole recording, like ``get_speech_timestamps``.

With the same settings and ``max_utterance_s`` not reached, :func:`find_speech` returns exactly
the samples ``get_speech_timestamps`` returns (tested on random probability sequences and real
recordings). Two differences, both outside that path: at ``max_utterance_s`` the endpointer
cuts at the current frame (silero's choice when the segment had no pause over 98 ms; silero
would otherwise go back and cut at the longest such pause, which an online endpointer cannot
take back); and when two segments are closer than ``2 * speech_pad_ms`` (only after such a cut,
or with ``min_silence_ms < 2 * speech_pad_ms``) the earlier one keeps its padding and the later
one starts where it ended, instead of the gap being split in half.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AudioFormatError, ConfigError, MissingDependencyError, ModelError
from assistant.onnx_session import session_options
from assistant.pcm import SAMPLE_RATE_HZ

FRAME_SAMPLES = 512  # 32 ms at 16 kHz, the only frame size silero v5/v6 takes at 16 kHz
CONTEXT_SAMPLES = 64  # samples of the previous frame prepended to each frame
STATE_SHAPE = (2, 1, 128)  # LSTM (h, c) x batch x units
MODEL_FILE = "silero_vad.onnx"
# How long one streamed utterance may run before it is cut and recognized; the server's
# limits.max_utterance_s defaults to this too. (The recognizer's own bound is
# assistant.recognizer.MAX_UTTERANCE_S, the most its 30 s encoder window can take.)
DEFAULT_MAX_UTTERANCE_S = 15.0

logger = logging.getLogger("assistant.vad")


def default_model_path() -> Path:
    """Path of ``silero_vad/data/silero_vad.onnx`` inside the installed ``silero-vad`` wheel.

    Uses ``importlib.util.find_spec``, which locates the package without executing it.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("silero-vad", "vad", "voice activity detection")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"the installed silero-vad package has no data/{MODEL_FILE} "
        f"(looked in {list(spec.submodule_search_locations)})"
    )


@dataclass(frozen=True)
class _Foreseen:
    """One frame's result computed ahead (:meth:`SileroVad.look_ahead`): valid while the
    stream's state is still ``state_before`` / ``context_before`` (the very arrays) and the
    frame it is given is ``frame``."""

    frame: np.ndarray
    state_before: np.ndarray
    context_before: np.ndarray
    probability: float
    state: np.ndarray
    context: np.ndarray


@dataclass
class VadState:
    """Per-stream recurrent state of the VAD; create one per stream, reset between streams."""

    state: np.ndarray = field(default_factory=lambda: np.zeros(STATE_SHAPE, dtype=np.float32))
    context: np.ndarray = field(
        default_factory=lambda: np.zeros((1, CONTEXT_SAMPLES), dtype=np.float32)
    )
    # Results computed ahead by SileroVad.look_ahead, next frame first, and how many of
    # them process has taken so far.
    foreseen: collections.deque[_Foreseen] = field(default_factory=collections.deque)
    foreseen_taken: int = 0

    def reset(self) -> None:
        self.state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self.context = np.zeros((1, CONTEXT_SAMPLES), dtype=np.float32)
        self.foreseen.clear()

    def _take_foreseen(self, frame: np.ndarray) -> float | None:
        """The probability of ``frame`` if it was computed ahead from this very state (the
        state then moves on as :meth:`SileroVad.process` would move it), else None (and
        whatever was foreseen is dropped: the stream went another way, e.g. a reset)."""
        if not self.foreseen:
            return None
        first = self.foreseen.popleft()
        if (first.state_before is self.state and first.context_before is self.context
                and np.array_equal(first.frame, frame)):
            self.state, self.context = first.state, first.context
            self.foreseen_taken += 1
            return first.probability
        self.foreseen.clear()
        return None


class SileroVad:
    """A shared, read-only Silero VAD session (16 kHz, 512-sample frames).

    ``model_path`` defaults to the model inside the installed ``silero-vad`` wheel.
    ``intra_op_threads=1`` (as silero's own wrapper) suits many concurrent streams.
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, intra_op_threads: int = 1):
        try:
            import onnxruntime
        except ImportError as e:
            raise MissingDependencyError("onnxruntime", "vad", "voice activity detection") from e
        if intra_op_threads < 1:
            raise ConfigError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise ModelError(f"VAD model file {str(path)!r} does not exist")
        options = session_options(intra_op_threads)
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own, unexported exception types
            raise ModelError(f"could not load VAD model {str(path)!r}: {e}") from e
        inputs = {i.name for i in self._session.get_inputs()}
        if inputs != {"input", "state", "sr"}:
            raise ModelError(
                f"VAD model {str(path)!r} has inputs {sorted(inputs)}, expected "
                "['input', 'sr', 'state'] (silero v5/v6)"
            )
        self.model_path = path
        self._sr = np.array(SAMPLE_RATE_HZ, dtype=np.int64)
        # Frames run one at a time by process, and in batches by look_ahead (for metrics).
        self.frames_alone = 0
        self.frames_batched = 0
        logger.debug("loaded VAD model %s", path)

    def process(self, frame: Any, state: VadState) -> float:
        """Speech probability of one 512-sample float frame; updates ``state``."""
        x = _check_frame(frame)
        foreseen = state._take_foreseen(x)
        if foreseen is not None:
            return foreseen
        self.frames_alone += 1
        model_input = np.concatenate([state.context, x[None, :]], axis=1)
        prob, new_state = self._session.run(
            None, {"input": model_input, "state": state.state, "sr": self._sr}
        )
        state.state = new_state
        state.context = model_input[:, -CONTEXT_SAMPLES:]
        return float(prob[0, 0])

    def process_batch(self, frames: Any, states: list[VadState]) -> np.ndarray:
        """Probabilities of one frame per stream in one run: ``frames[i]`` with ``states[i]``."""
        batch = np.asarray(frames)
        if batch.ndim != 2 or batch.shape != (len(states), FRAME_SAMPLES):
            raise AudioFormatError(
                f"expected frames of shape ({len(states)}, {FRAME_SAMPLES}), got {batch.shape}"
            )
        if not np.issubdtype(batch.dtype, np.floating):
            raise AudioFormatError(f"expected float samples, got dtype {batch.dtype}")
        if not states:
            return np.zeros(0, dtype=np.float32)
        rows = self._run_rows([s.state for s in states], [s.context for s in states],
                              batch.astype(np.float32, copy=False))
        for s, (_, state_after, context_after) in zip(states, rows, strict=True):
            s.state, s.context = state_after, context_after
        return np.array([prob for prob, _, _ in rows], dtype=np.float32)

    def _run_rows(self, states: Sequence[np.ndarray], contexts: Sequence[np.ndarray],
                  frames: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """One model run for one frame per stream (``frames[i]`` after ``contexts[i]``, from
        ``states[i]``): each stream's probability, state and context after it."""
        model_input = np.concatenate([np.concatenate(contexts, axis=0), frames], axis=1)
        probs, new_state = self._session.run(None, {
            "input": model_input, "state": np.concatenate(states, axis=1), "sr": self._sr})
        self.frames_batched += len(states)
        return [(float(probs[i, 0]), np.ascontiguousarray(new_state[:, i : i + 1, :]),
                 model_input[i : i + 1, -CONTEXT_SAMPLES:].copy()) for i in range(len(states))]

    def look_ahead(self, streams: Sequence[tuple[VadState, np.ndarray]]) -> int:
        """Compute ahead the probabilities of the frames that several streams will be given
        next: ``(state, frames [n, 512])`` per stream (each stream once), one model run per
        frame position across all of them, kept in each ``state.foreseen``; the states
        themselves do not move. Each stream's :meth:`process` then returns the foreseen
        probability without a run when its state and frame are the ones foreseen, and
        computes afresh otherwise, so the results are those of running each stream alone,
        as far as a batched row rounds like a single one (bitwise equal here, 2-100 rows).

        One frame alone costs about as much as four in a batch (0.22 ms against 0.06 ms per
        frame at 32-100 streams on 2 cores), so a server feeding many real-time streams
        looks ahead for all of them at once (:mod:`serving.feeder`). Returns the model runs
        made. Replaces whatever was foreseen for those streams before."""
        work: list[tuple[VadState, np.ndarray]] = []
        for state, frames in streams:
            state.foreseen.clear()
            batch = np.asarray(frames)
            if batch.ndim != 2 or batch.shape[1] != FRAME_SAMPLES:
                raise AudioFormatError(f"expected frames of shape (n, {FRAME_SAMPLES}), "
                                       f"got {batch.shape}")
            if not np.issubdtype(batch.dtype, np.floating):
                raise AudioFormatError(f"expected float samples, got dtype {batch.dtype}")
            if batch.shape[0]:
                work.append((state, batch.astype(np.float32, copy=False)))
        if len({id(state) for state, _ in work}) != len(work):
            raise ConfigError("look_ahead: a stream is listed twice")
        states = [state.state for state, _ in work]
        contexts = [state.context for state, _ in work]
        runs = 0
        for k in range(max((frames.shape[0] for _, frames in work), default=0)):
            rows = [i for i, (_, frames) in enumerate(work) if frames.shape[0] > k]
            results = self._run_rows([states[i] for i in rows], [contexts[i] for i in rows],
                                     np.stack([work[i][1][k] for i in rows]))
            runs += 1
            for i, (prob, state_after, context_after) in zip(rows, results, strict=True):
                work[i][0].foreseen.append(_Foreseen(
                    work[i][1][k], states[i], contexts[i], prob, state_after, context_after))
                states[i], contexts[i] = state_after, context_after
        return runs

    def probabilities(self, audio: Any) -> np.ndarray:
        """Per-frame probabilities of a whole recording (last frame zero-padded), fresh state."""
        return self.probabilities_many([audio], batch_size=1)[0]

    def probabilities_many(self, audios: Sequence[Any], batch_size: int = 32) -> list[np.ndarray]:
        """:meth:`probabilities` of many recordings, ``batch_size`` of them per model run.

        The model is causal, so the zeros that pad a shorter recording to its batch's
        longest never reach its own frames; one run per frame for a whole batch instead of
        one per frame per recording is what makes cutting thousands of training clips fast
        (3.3x on one core here; 32 per batch beat 256, which spills the caches).
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        xs = [_check_recording(a) for a in audios]
        out = [np.zeros(0, dtype=np.float32) for _ in xs]
        order = sorted(range(len(xs)), key=lambda i: xs[i].size)  # similar lengths together
        for first in range(0, len(order), batch_size):
            index = order[first : first + batch_size]
            counts = [-(-xs[i].size // FRAME_SAMPLES) for i in index]
            width = max(counts)
            if width == 0:
                continue
            padded = np.zeros((len(index), width * FRAME_SAMPLES), dtype=np.float32)
            for row, i in enumerate(index):
                padded[row, : xs[i].size] = xs[i]
            frames = padded.reshape(len(index), width, FRAME_SAMPLES)
            state = np.zeros((STATE_SHAPE[0], len(index), STATE_SHAPE[2]), dtype=np.float32)
            context = np.zeros((len(index), CONTEXT_SAMPLES), dtype=np.float32)
            probs = np.empty((len(index), width), dtype=np.float32)
            for k in range(width):
                model_input = np.concatenate([context, frames[:, k]], axis=1)
                prob, state = self._session.run(
                    None, {"input": model_input, "state": state, "sr": self._sr}
                )
                context = model_input[:, -CONTEXT_SAMPLES:]
                probs[:, k] = prob[:, 0]
            for row, i in enumerate(index):
                out[i] = probs[row, : counts[row]].copy()
        return out


def _check_recording(audio: Any) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.floating):
        raise AudioFormatError(
            f"expected 1-D float samples, got shape {x.shape} and dtype {x.dtype}"
        )
    return x


def _check_frame(frame: Any) -> np.ndarray:
    x = np.asarray(frame)
    if x.shape != (FRAME_SAMPLES,):
        raise AudioFormatError(
            f"a VAD frame is {FRAME_SAMPLES} samples (32 ms at 16 kHz), got shape {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioFormatError(f"expected float samples, got dtype {x.dtype}")
    return x.astype(np.float32, copy=False)


@dataclass(frozen=True)
class EndpointConfig:
    """When speech starts and ends. Defaults follow silero, but wait 400 ms to end.

    threshold: a frame with probability >= threshold is speech.
    neg_threshold: while in speech, a frame is silence only below this (hysteresis);
        ``None`` means ``max(threshold - 0.15, 0.01)`` like silero.
    min_speech_ms: segments not longer than this are dropped (never started).
    min_silence_ms: trailing silence that ends a segment.
    speech_pad_ms: padding added before the start and after the end.
    max_utterance_s: a segment is cut at this length (padding included).
    onset_threshold: when a segment starts, its start moves back over the frames just before
        it whose probability is at least this (a soft onset: a quiet first word the model is
        unsure of), up to ``max_onset_ms``; ``None`` (silero's behaviour) keeps the start at
        the first frame over ``threshold``.
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_ms: int = 250
    min_silence_ms: int = 400
    speech_pad_ms: int = 30
    max_utterance_s: float = DEFAULT_MAX_UTTERANCE_S
    onset_threshold: float | None = None
    max_onset_ms: int = 1000

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.neg_threshold is not None and not 0.0 <= self.neg_threshold <= self.threshold:
            raise ConfigError(
                f"neg_threshold must be in [0, threshold={self.threshold}], "
                f"got {self.neg_threshold}"
            )
        if self.onset_threshold is not None and not 0.0 < self.onset_threshold <= self.threshold:
            raise ConfigError(f"onset_threshold must be in (0, threshold={self.threshold}], "
                              f"got {self.onset_threshold}")
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms", "max_onset_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.max_speech_samples > self.min_speech_samples:
            shortest_s = (
                self.min_speech_samples + FRAME_SAMPLES + 2 * self.pad_samples
            ) / SAMPLE_RATE_HZ
            raise ConfigError(
                f"max_utterance_s must be > {shortest_s:.3f} (min_speech_ms plus one frame "
                f"and padding), got {self.max_utterance_s}"
            )

    @property
    def exit_threshold(self) -> float:
        """The threshold below which a frame counts as silence while in speech."""
        if self.neg_threshold is not None:
            return self.neg_threshold
        return max(self.threshold - 0.15, 0.01)

    @property
    def pad_samples(self) -> int:
        return self.speech_pad_ms * SAMPLE_RATE_HZ // 1000

    @property
    def min_speech_samples(self) -> int:
        return self.min_speech_ms * SAMPLE_RATE_HZ // 1000

    @property
    def max_onset_frames(self) -> int:
        return self.max_onset_ms * SAMPLE_RATE_HZ // 1000 // FRAME_SAMPLES

    @property
    def min_silence_samples(self) -> int:
        return self.min_silence_ms * SAMPLE_RATE_HZ // 1000

    @property
    def max_speech_samples(self) -> float:
        """Unpadded length beyond which a segment is cut (silero's ``max_speech_samples``)."""
        return self.max_utterance_s * SAMPLE_RATE_HZ - FRAME_SAMPLES - 2 * self.pad_samples


@dataclass(frozen=True)
class SpeechStart:
    """Speech started at ``start_sample`` (padded).

    Reported once the segment is sure to last over ``min_speech_ms`` (with the defaults about
    290 ms after the first speech frame, later if the speech pauses).
    """

    start_sample: int


@dataclass(frozen=True)
class SpeechEnd:
    """The segment ``[start_sample, end_sample)`` (padded) ended; ``forced`` at max length."""

    start_sample: int
    end_sample: int
    forced: bool = False


SpeechEvent = SpeechStart | SpeechEnd


class Endpointer:
    """Online speech segmentation from per-frame probabilities (one per 512-sample frame).

    ``feed(prob)`` returns the events the frame causes; ``finalize()`` closes the stream.
    Sample offsets count from the start of the stream at 16 kHz. A :class:`SpeechStart`
    comes once the segment is certain to last longer than ``min_speech_ms`` (so callers
    keep at least ``min_speech_ms + speech_pad_ms`` of audio buffered); every
    :class:`SpeechStart` is followed by exactly one :class:`SpeechEnd`.
    """

    def __init__(self, config: EndpointConfig | None = None):
        self.config = config if config is not None else EndpointConfig()
        self.reset()

    def reset(self) -> None:
        self._frames = 0
        self._recent: collections.deque[float] = collections.deque(
            maxlen=self.config.max_onset_frames if self.config.onset_threshold else 0)
        self._triggered = False
        self._start = 0  # unpadded start sample of the open segment
        self._temp_end = 0  # first silent sample of the current pause, 0 if none
        self._started: int | None = None  # padded start once SpeechStart was emitted
        self._last_end = 0  # padded end of the last emitted segment

    @property
    def in_speech(self) -> bool:
        """Whether a SpeechStart was emitted and its SpeechEnd is still to come."""
        return self._started is not None

    @property
    def samples_seen(self) -> int:
        return self._frames * FRAME_SAMPLES

    @property
    def pause_start(self) -> int | None:
        """The first silent sample of the pause the open segment is in, or None (no segment,
        or speech now)."""
        return self._temp_end if self._started is not None and self._temp_end else None

    def close_pause(self, limit: int) -> list[SpeechEvent]:
        """End the open segment at its current pause now, its padding cut at ``limit`` (the
        grammar said the command is complete); [] when there is no such pause."""
        events: list[SpeechEvent] = []
        if self.pause_start is not None:
            self._close(events, self._temp_end, forced=False, limit=limit)
        return events

    def feed(self, speech_prob: float) -> list[SpeechEvent]:
        """Advance by one frame with its speech probability; return the events it causes."""
        cfg = self.config
        cur = self._frames * FRAME_SAMPLES
        self._frames += 1
        events: list[SpeechEvent] = []
        if speech_prob >= cfg.threshold and self._temp_end:
            self._temp_end = 0
        if speech_prob >= cfg.threshold and not self._triggered:
            self._triggered = True
            self._start = self._onset(cur)
            self._recent.clear()
            return events
        if not self._triggered:
            self._recent.append(speech_prob)
            return events
        if cur - self._start > cfg.max_speech_samples:
            self._confirm(events, cur)
            self._close(events, cur, forced=True)
            return events
        if speech_prob < cfg.exit_threshold:
            if not self._temp_end:
                self._temp_end = cur
            self._confirm(events, self._temp_end)
            if cur - self._temp_end >= cfg.min_silence_samples:
                self._close(events, self._temp_end, forced=False)
        else:
            # A pending pause may still end the segment at its start; otherwise it ends after
            # this frame's first sample, even if the stream ends right here.
            self._confirm(events, self._temp_end or cur)
        return events

    def _onset(self, cur: int) -> int:
        """Where a segment triggered at sample ``cur`` starts (see ``onset_threshold``)."""
        threshold = self.config.onset_threshold
        if threshold is None:
            return cur
        frames = 0
        for prob in reversed(self._recent):
            if prob < threshold:
                break
            frames += 1
        return max(cur - frames * FRAME_SAMPLES, self._last_end)

    def finalize(self, num_samples: int | None = None) -> list[SpeechEvent]:
        """End of stream after ``num_samples`` samples (default: every frame fed); reset."""
        end = self.samples_seen if num_samples is None else num_samples
        events: list[SpeechEvent] = []
        if self._triggered:
            self._confirm(events, end)
            self._close(events, end, forced=False, limit=end)
        self.reset()
        return events

    def _confirm(self, events: list[SpeechEvent], earliest_end: int) -> None:
        """Emit SpeechStart if a segment ending no earlier than ``earliest_end`` is kept."""
        if self._started is None and earliest_end - self._start > self.config.min_speech_samples:
            self._started = max(0, self._start - self.config.pad_samples, self._last_end)
            events.append(SpeechStart(self._started))

    def _close(
        self, events: list[SpeechEvent], end: int, forced: bool, limit: int | None = None
    ) -> None:
        if self._started is not None:
            if limit is None:
                limit = self._frames * FRAME_SAMPLES
            padded_end = max(self._started, min(end + self.config.pad_samples, limit))
            events.append(SpeechEnd(self._started, padded_end, forced))
            self._last_end = padded_end
        self._triggered = False
        self._temp_end = 0
        self._started = None


def find_speech(
    audio: Any, vad: SileroVad, config: EndpointConfig | None = None
) -> list[tuple[int, int]]:
    """Speech segments ``(start_sample, end_sample)`` (padded) of a whole 16 kHz recording."""
    x = np.asarray(audio)
    return _segments(vad.probabilities(x), x.size, config)


def _segments(
    probabilities: np.ndarray, num_samples: int, config: EndpointConfig | None
) -> list[tuple[int, int]]:
    endpointer = Endpointer(config)
    segments: list[tuple[int, int]] = []
    for prob in probabilities:
        for event in endpointer.feed(float(prob)):
            if isinstance(event, SpeechEnd):
                segments.append((event.start_sample, min(event.end_sample, num_samples)))
    for event in endpointer.finalize(num_samples):
        if isinstance(event, SpeechEnd):
            segments.append((event.start_sample, event.end_sample))
    return segments


def speech_span(
    audio: Any, vad: SileroVad, config: EndpointConfig | None = None
) -> tuple[int, int] | None:
    """From the first speech start to the last speech end of a recording, or None.

    A command is one utterance: pauses inside it must not split it, so a recording is cut
    to the span of all its speech (leading and trailing silence removed).
    """
    return _span(find_speech(audio, vad, config))


def speech_spans(
    audios: Sequence[Any], vad: SileroVad, config: EndpointConfig | None = None
) -> list[tuple[int, int] | None]:
    """:func:`speech_span` of many recordings, their VAD run in batches (the same spans)."""
    probabilities = vad.probabilities_many(audios)
    return [_span(_segments(p, np.asarray(a).size, config))
            for a, p in zip(audios, probabilities, strict=True)]


def _span(segments: list[tuple[int, int]]) -> tuple[int, int] | None:
    if not segments:
        return None
    return segments[0][0], segments[-1][1]


@dataclass(frozen=True)
class SecondLook:
    """What a recording gets when the VAD finds no speech in it with the normal settings.

    A one-word command said softly, or speech the model is unsure of, can stay under
    ``EndpointConfig.threshold`` all along. Rather than let the VAD veto it, the recording is
    looked at again with a lower ``threshold`` and a shorter ``min_speech_ms``; the recognizer
    then decides (its no-speech probability is one of the confidence features). With
    ``energy`` on, a recording that even that finds nothing in is cut to the frames within
    ``energy_range_db`` of its loudest (unless that is below ``energy_floor_dbfs``).

    Chosen on synthesized speech only (``benchmarks/segmentation.py``: 240 commands of the
    calibration grammars by training voices, normal, soft-onset, quiet and noisy, and 72
    noise-only clips): the relaxed VAD raised acceptance of quiet commands from 57 % to 68 %
    with no false accept; the energy fallback added no acceptance and 17 % false accepts on
    the noise, so it is off.
    """

    threshold: float = 0.25
    min_speech_ms: int = 64
    energy: bool = False
    energy_floor_dbfs: float = -55.0
    energy_range_db: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0 or self.min_speech_ms < 0:
            raise ConfigError(f"second look: threshold must be in (0, 1] and min_speech_ms "
                              f">= 0, got {self.threshold} and {self.min_speech_ms}")


DEFAULT_SECOND_LOOK = SecondLook()


def command_span(audio: Any, vad: SileroVad, config: EndpointConfig | None = None,
                 second_look: SecondLook | None = DEFAULT_SECOND_LOOK
                 ) -> tuple[tuple[int, int] | None, str]:
    """The span of a recording's command and how it was found: ``"vad"``, ``"relaxed"``
    (the second look's VAD settings), ``"energy"``, or ``"none"`` (span None)."""
    x = np.asarray(audio)
    config = config or EndpointConfig()
    probabilities = vad.probabilities(x)
    span = _span(_segments(probabilities, x.size, config))
    if span is not None or second_look is None:
        return span, "vad" if span is not None else "none"
    relaxed = replace(config, threshold=min(config.threshold, second_look.threshold),
                      neg_threshold=None, min_speech_ms=second_look.min_speech_ms,
                      onset_threshold=None)
    span = _span(_segments(probabilities, x.size, relaxed))
    if span is not None:
        return span, "relaxed"
    span = energy_span(x, second_look, config.pad_samples) if second_look.energy else None
    return span, "energy" if span is not None else "none"


def energy_span(audio: np.ndarray, look: SecondLook, pad_samples: int
                ) -> tuple[int, int] | None:
    """From the first to the last frame within ``look.energy_range_db`` of the loudest."""
    frames = audio.size // FRAME_SAMPLES
    if frames == 0:
        return None
    power = np.square(audio[: frames * FRAME_SAMPLES].astype(np.float64)).reshape(
        frames, FRAME_SAMPLES).mean(axis=1)
    level_db = 10 * np.log10(power + 1e-20)
    loudest = float(level_db.max())
    if loudest < look.energy_floor_dbfs:
        return None
    loud = np.flatnonzero(level_db >= loudest - look.energy_range_db)
    start = max(0, int(loud[0]) * FRAME_SAMPLES - pad_samples)
    end = min(audio.size, (int(loud[-1]) + 1) * FRAME_SAMPLES + pad_samples)
    return start, end
