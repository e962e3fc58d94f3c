"""The wire protocol: every message round-trips through JSON; bad frames name the problem."""

from __future__ import annotations

import dataclasses
import inspect
import json
import types
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant import protocol as p


def _example(annotation: Any, seed: int) -> Any:
    """A non-default value of ``annotation`` (varies with ``seed``)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _example(options[seed % len(options)], seed)
    if origin is dict:
        return {"room": "kitchen", "minutes": 5 + seed}
    if origin is tuple:
        return ("lightsOn", f"intent{seed}")
    if dataclasses.is_dataclass(annotation):
        return _instance(annotation, seed)
    return {bool: seed % 2 == 0, int: 3 + seed, float: 1.5 + seed, str: f"text {seed} é"}[
        annotation]


def _instance(cls: Any, seed: int = 0) -> Any:
    hints = typing.get_type_hints(cls)
    values = {f.name: _example(hints[f.name], seed) for f in dataclasses.fields(cls)}
    if cls is p.Start:
        values["mode"] = p.MODES[seed % 2]
        values["min_silence_ms"] = 500
        values["endpointing"] = p.ENDPOINTING[seed % 2]
    if cls is p.Error:
        values["code"] = p.ErrorCode.SERVER_FULL.value
    return cls(**values)


def test_every_message_class_is_registered() -> None:
    defined = {cls for _, cls in inspect.getmembers(p, inspect.isclass)
               if issubclass(cls, p.Message) and cls is not p.Message}
    assert defined == set(p.MESSAGES.values())
    assert set(p.MESSAGES) == p.CLIENT_MESSAGES | p.SERVER_MESSAGES
    assert not p.CLIENT_MESSAGES & p.SERVER_MESSAGES


@pytest.mark.parametrize("cls", list(p.MESSAGES.values()), ids=list(p.MESSAGES))
@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip(cls: type[p.Message], seed: int) -> None:
    message = _instance(cls, seed)
    text = message.to_json()
    assert json.loads(text)["type"] == cls.type
    assert p.parse(text) == message
    assert cls.from_json(text) == message
    assert cls.from_dict(json.loads(text)) == message


@pytest.mark.parametrize("cls", list(p.MESSAGES.values()), ids=list(p.MESSAGES))
def test_missing_fields_are_named(cls: type[p.Message]) -> None:
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for name in required:
        data = _instance(cls).to_dict()
        del data[name]
        with pytest.raises(p.ProtocolError, match=repr(name)):
            p.parse(json.dumps(data))


def test_unknown_fields_are_ignored() -> None:
    assert p.parse('{"type": "start", "future_field": [1, 2]}') == p.Start()


@pytest.mark.parametrize(("text", "needle"), [
    ("{", "not valid JSON"),
    ("[1]", "JSON object"),
    ('{"type": 3}', "unknown message type 3"),
    ('{"type": "hello"}', "unknown message type 'hello'"),
    ('{"type": "start", "sample_rate_hz": "16000"}', "start.sample_rate_hz must be an integer"),
    ('{"type": "start", "sample_rate_hz": true}', "must be an integer, got True"),
    ('{"type": "start", "partials": 1}', "must be a boolean"),
    ('{"type": "start", "mode": "shout"}', "mode must be one of"),
    ('{"type": "start", "min_silence_ms": 50}', "min_silence_ms must be in"),
    ('{"type": "result", "utterance_id": 0, "understood": true, "intent": null, "slots": [],'
     ' "confidence": 1, "transcript": "", "heard": "", "timing": {}}', "slots must be an object"),
])
def test_bad_frames_raise_protocol_errors(text: str, needle: str) -> None:
    with pytest.raises(p.ProtocolError, match=needle) as caught:
        p.parse(text)
    assert caught.value.code == p.ErrorCode.BAD_MESSAGE


def test_allowed_restricts_the_direction() -> None:
    ready = _instance(p.Ready).to_json()
    with pytest.raises(p.ProtocolError, match="unknown message type 'ready'"):
        p.parse(ready, p.CLIENT_MESSAGES)
    with pytest.raises(p.ProtocolError, match="expected a 'stop' message"):
        p.Stop.from_json(p.Cancel().to_json())


def test_every_error_code_has_a_close_code() -> None:
    assert set(p.CLOSE_CODES) == set(p.ErrorCode)
    assert p.close_code("server_full") == 4030
    assert p.close_code("no such code") == 1011


@given(st.dictionaries(st.text(min_size=1, max_size=8),
                       st.one_of(st.text(max_size=8), st.integers(-10**6, 10**6)), max_size=4),
       st.text(max_size=40), st.floats(0, 1))
def test_result_round_trips_any_slots_and_text(slots: dict[str, str | int], transcript: str,
                                               confidence: float) -> None:
    message = p.Result(1, True, "intent", slots, confidence, transcript, transcript,
                       p.Timing(1.0, 2.0, 3.0))
    assert p.parse(message.to_json()) == message


# Any JSON value, including the shapes that broke the parser: deep nesting, huge integers,
# floats that overflow, and every message type with fields of the wrong type.
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.integers(10**300, 10**320),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "model", "sample_rate_hz", "mode", "min_silence_ms",
                         "protocol_version", "partials", "client", "x"]), children, max_size=5),
    max_leaves=20)
_messages = st.fixed_dictionaries(
    {"type": st.sampled_from([*sorted(p.MESSAGES), "nope"])},
    optional={name: _json for name in ("model", "sample_rate_hz", "mode", "min_silence_ms",
                                       "protocol_version", "partials", "client", "utterance_id",
                                       "slots", "timing", "limits", "intents", "confidence")})


def _frames() -> st.SearchStrategy[str | bytes]:
    nested = st.integers(1, 30000).map(lambda n: "[" * n + "]" * n)
    deep_object = st.integers(1, 5000).map(
        lambda n: '{"type": "start", "client": ' + '{"a": ' * n + "1" + "}" * n + "}")
    huge_int = st.integers(4000, 6000).map(lambda n: '{"type": "start", "protocol_version": '
                                                     + "7" * n + "}")
    return st.one_of(_messages.map(json.dumps), _json.map(json.dumps), st.text(max_size=50),
                     st.binary(max_size=50), nested, deep_object, huge_int)


@settings(max_examples=400, deadline=None)
@given(_frames())
def test_any_frame_is_a_message_or_a_protocol_error(frame: str | bytes) -> None:
    try:
        message = p.parse(frame)
    except p.ProtocolError as e:
        assert e.code in set(p.ErrorCode) and len(str(e)) < 600
    else:
        assert isinstance(message, p.Message)
        assert p.parse(message.to_json()) == message
