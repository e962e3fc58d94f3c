"""The session state machine driven by random clients (Hypothesis, stateful): whatever comes
in, only documented messages, error codes and close codes come out, in a legal order.

Real pieces throughout: the Silero VAD, a catalogued model, espeak-ng speech, and every
recognition carried out by the real recognizer, as the connection does it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from assistant import protocol as p
from assistant.pipeline import recognize_request
from serving.catalog import ModelCatalog
from serving.config import LimitsConfig, ModelSource
from serving.ws.session import Cancelled, Close, Finish, Recognize, Send, Session, SessionState

HOME = Path(__file__).resolve().parents[2] / "assistant" / "contexts" / "home.yaml"
NON_FATAL = {"bad_message", "not_started", "already_started", "internal"}
LIMITS = LimitsConfig(max_frame_bytes=32768, max_messages_per_s=100, max_audio_speed=20.0,
                      idle_timeout_s=5.0, max_utterance_s=3.0)


@functools.cache
def _world() -> tuple[ModelCatalog, Any, Any, bytes]:
    from assistant.vad import SileroVad
    from serving.models import ModelRegistry
    from training.tts import Voice, synthesize

    catalog = ModelCatalog([ModelSource("home", "context", HOME)], {"threads": 1})
    catalog.load()
    recognizer = ModelRegistry(warm_up=False).recognizer(catalog.get("home"))
    speech = synthesize("turn off the bedroom lights", Voice("espeak", "en-us+m3"))
    audio = np.concatenate([np.zeros(4000, np.float32), speech, np.zeros(12000, np.float32)])
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    return catalog, SileroVad(), recognizer, pcm


_BENIGN = ['{"type": "finalize"}', '{"type": "cancel"}', '{"type": "start"}']
_FATAL = ['{"type": "start", "model": "nope"}', '{"type": "start", "protocol_version": 2}',
          '{"type": "stop"}']  # (stop ends the session too, normally)
_texts = st.one_of(  # mostly what clients send; now and then garbage or a session ender
    st.sampled_from(_BENIGN * 6 + _FATAL), st.just("[" * 5000), st.text(max_size=30),
    st.builds(lambda t: json.dumps({"type": t}), st.text(max_size=10)))


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.catalog, self.vad, self.recognizer, self.speech = _world()
        self.now = 0.0
        self.session = Session("fuzz", self.catalog.get, self.vad, LIMITS, self.now)
        self.pending: list[Recognize] = []
        self.closed = False
        self.finished = False
        self.answers: list[int] = []  # final answers' utterance ids, in the order sent
        self.offset = 0  # where in the speech the next audio comes from

    def _check(self, actions: list[Any], completing: bool = False) -> None:
        """Every action is legal; ``completing``: these answer a recognition."""
        if self.closed or (self.finished and not completing):
            assert not [a for a in actions if isinstance(a, Send | Recognize)], actions
        for i, action in enumerate(actions):
            if isinstance(action, Send):
                message = action.message
                assert message.sender == "server"
                assert p.parse(message.to_json()) == message  # documented and well-formed
                if isinstance(message, p.Error):
                    assert message.code in set(p.ErrorCode)
                    if message.fatal:
                        close = actions[i + 1]
                        assert isinstance(close, Close)
                        assert close.code == p.close_code(message.code)
                        assert len(close.reason.encode()) <= 123
                    else:
                        assert message.code in NON_FATAL, message
                if isinstance(message, p.Result) and not completing:
                    self.answers.append(message.utterance_id)  # answered in place
                elif isinstance(message, p.Result):
                    assert message.utterance_id in self.answers  # its place was kept
            elif isinstance(action, Recognize):
                assert not completing
                self.pending.append(action)
                if not action.partial:  # the outbox keeps its place for the result
                    self.answers.append(action.request.utterance_id)
            elif isinstance(action, Close):
                assert i == len(actions) - 1 and self.session.state is SessionState.CLOSED
                self.closed = True
            elif isinstance(action, Finish):
                self.finished = True
            else:
                assert isinstance(action, Cancelled)

    @initialize(start=st.sampled_from([
        '{"type": "start"}', '{"type": "start", "mode": "push_to_talk"}',
        '{"type": "start", "partials": true, "min_silence_ms": 200}',
        '{"type": "start", "sample_rate_hz": 8000}', None]))
    def begin(self, start: str | None) -> None:
        if start is not None:  # most sessions start; some get everything before a start
            self._check(self.session.on_text(start, self.now))

    @rule(text=_texts, wait_s=st.floats(0.0, 0.5))
    def text(self, text: str, wait_s: float) -> None:
        self.now += wait_s
        self._check(self.session.on_text(text, self.now))

    @rule(samples=st.integers(0, 16000), odd=st.sampled_from([False] * 30 + [True]))
    def audio(self, samples: int, odd: bool) -> None:
        self.now += samples / 16000  # real time
        chunk = self.speech[2 * self.offset : 2 * (self.offset + samples)]
        self.offset = (self.offset + samples) % (len(self.speech) // 2)
        self._check(self.session.on_audio(chunk + (b"\0" if odd else b""), self.now))

    @rule(abuse=st.sampled_from(["oversized", "idle", "drain"] + ["none"] * 20))
    def abuse(self, abuse: str) -> None:
        if abuse == "oversized":
            self._check(self.session.on_audio(b"\0" * (LIMITS.max_frame_bytes + 2), self.now))
        elif abuse == "idle":
            self.now += LIMITS.idle_timeout_s + 1
            if self.session.open:  # what the connection does when nothing came in time
                self._check(self.session.fatal(p.ErrorCode.IDLE_TIMEOUT, "idle"))
        elif abuse == "drain":
            self._check(self.session.drain(self.now))

    @rule(count=st.integers(1, 3))
    def complete(self, count: int) -> None:
        for work in self.pending[:count]:
            result = recognize_request(self.recognizer, work.request)
            self._check(self.session.complete(work, result, self.now), completing=True)
        del self.pending[:count]

    @invariant()
    def answers_come_in_order(self) -> None:
        assert self.answers == sorted(self.answers)
        assert len(set(self.answers)) == len(self.answers)


SessionMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_the_session_only_says_what_the_protocol_documents = SessionMachine.TestCase
