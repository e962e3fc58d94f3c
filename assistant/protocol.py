"""The streaming protocol, version 1: every message a frozen dataclass, JSON on the wire. No I/O.

The server (:mod:`serving`) and the SDK (:mod:`clients.sdk`) both speak through this module;
``docs/protocol.md`` describes the same thing for people writing their own clients.

* Text frames carry one JSON object with a ``"type"``; :func:`parse` turns it into the
  dataclass, :meth:`Message.to_json` goes back. Unknown fields are ignored (a newer peer may add
  some), missing or mistyped ones raise :class:`ProtocolError` naming the field.
* Binary frames carry raw 16-bit little-endian mono PCM at the rate given in :class:`Start`.
* Errors carry an :class:`ErrorCode`; the fatal ones close the connection with the
  :data:`CLOSE_CODES` entry for their code.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, ClassVar, TypeVar

from .endpointing import POLICIES as ENDPOINTING
from .errors import AssistantError
from .pcm import SAMPLE_RATE_HZ

PROTOCOL_VERSION = 1
DEFAULT_SAMPLE_RATE_HZ = SAMPLE_RATE_HZ  # what a start message assumes
MODES = ("vad", "push_to_talk")  # who ends an utterance: the server's endpointer, or finalize

SlotValue = str | int
M = TypeVar("M", bound="Message")


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (RFC 6455 ones and the 4xxx private range)."""

    NORMAL = 1000  # after "closed": the session ended as asked
    GOING_AWAY = 1001  # server shutting down (after draining)
    INVALID_DATA = 1007  # a text frame that is not UTF-8 (the WebSocket library closes it)
    MESSAGE_TOO_BIG = 1009  # a frame over limits.max_frame_bytes
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # models still loading
    BAD_REQUEST = 4000  # protocol misuse: audio before start, unknown model or version
    UNAUTHORIZED = 4001  # no or wrong API key or token
    BAD_AUDIO_FORMAT = 4002  # odd byte count, unsupported sample rate
    RATE_LIMITED = 4029  # too many connections for the key, or a message/audio flood
    SERVER_FULL = 4030  # max sessions reached; "error" carries retry_after_s
    IDLE_TIMEOUT = 4031  # nothing received for limits.idle_timeout_s
    SLOW_CONSUMER = 4032  # the client does not read its events


class ErrorCode(StrEnum):
    BAD_MESSAGE = "bad_message"  # malformed JSON, unknown type, missing field (not fatal)
    NOT_STARTED = "not_started"  # audio or a command before "start"
    ALREADY_STARTED = "already_started"  # a second "start" (not fatal)
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_MODEL = "unknown_model"
    BAD_AUDIO_FORMAT = "bad_audio_format"
    FRAME_TOO_LARGE = "frame_too_large"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    SERVER_FULL = "server_full"
    IDLE_TIMEOUT = "idle_timeout"
    SLOW_CONSUMER = "slow_consumer"
    NOT_READY = "not_ready"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"


CLOSE_CODES: dict[ErrorCode, CloseCode] = {
    ErrorCode.BAD_MESSAGE: CloseCode.BAD_REQUEST,
    ErrorCode.NOT_STARTED: CloseCode.BAD_REQUEST,
    ErrorCode.ALREADY_STARTED: CloseCode.BAD_REQUEST,
    ErrorCode.UNSUPPORTED_VERSION: CloseCode.BAD_REQUEST,
    ErrorCode.UNKNOWN_MODEL: CloseCode.BAD_REQUEST,
    ErrorCode.BAD_AUDIO_FORMAT: CloseCode.BAD_AUDIO_FORMAT,
    ErrorCode.FRAME_TOO_LARGE: CloseCode.MESSAGE_TOO_BIG,
    ErrorCode.UNAUTHORIZED: CloseCode.UNAUTHORIZED,
    ErrorCode.RATE_LIMITED: CloseCode.RATE_LIMITED,
    ErrorCode.SERVER_FULL: CloseCode.SERVER_FULL,
    ErrorCode.IDLE_TIMEOUT: CloseCode.IDLE_TIMEOUT,
    ErrorCode.SLOW_CONSUMER: CloseCode.SLOW_CONSUMER,
    ErrorCode.NOT_READY: CloseCode.TRY_AGAIN_LATER,
    ErrorCode.SHUTTING_DOWN: CloseCode.GOING_AWAY,
    ErrorCode.INTERNAL: CloseCode.INTERNAL_ERROR,
}


class ProtocolError(AssistantError):
    """A message that breaks the protocol; ``code`` says how (see :class:`ErrorCode`)."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.BAD_MESSAGE):
        self.code = code
        super().__init__(message)


class UnknownMessageType(ProtocolError):
    """A well-formed message of a type this side does not know (or may not receive). Receivers
    of a newer peer skip it ("Versioning" in docs/protocol.md); the server answers it with a
    non-fatal ``bad_message``."""


# -- encoding and checking of fields --------------------------------------------------------

def _check(value: Any, annotation: Any, where: str) -> Any:
    """``value`` (parsed JSON) as the Python value for ``annotation``, or ProtocolError."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _check(value, option, where)
            except ProtocolError:
                continue
        raise ProtocolError(f"{where} must be {_describe(annotation)}, got {_short(value)}")
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        if not isinstance(value, dict):
            raise ProtocolError(f"{where} must be an object, got {_short(value)}")
        return {_check(k, key_type, where): _check(v, value_type, f"{where}.{k}")
                for k, v in value.items()}
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if not isinstance(value, list | tuple):
            raise ProtocolError(f"{where} must be an array, got {_short(value)}")
        return tuple(_check(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ProtocolError(f"{where} must be an object, got {_short(value)}")
        return _from_fields(annotation, value, where)
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise ProtocolError(f"{where} is too large for a number") from None
    elif annotation is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a field type this module does not use
        raise TypeError(f"unsupported field type {annotation!r}")
    raise ProtocolError(f"{where} must be {_describe(annotation)}, got {_short(value)}")


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (error messages quote what was sent)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # e.g. an int past the digit limit
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(annotation: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             type(None): "null"}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _from_fields(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in data:
            values[f.name] = _check(data[f.name], hints[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ProtocolError(f"{where} is missing the field {f.name!r}")
    try:
        return cls(**values)
    except ProtocolError as e:
        raise ProtocolError(f"{where}: {e}", e.code) from e


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Message:
    """Base of every message; ``type`` is the wire name of the subclass."""

    type: ClassVar[str] = ""
    sender: ClassVar[str] = ""  # "client" or "server"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = _to_plain(self)
        return {"type": self.type, **body}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls: builtins.type[M], data: dict[str, Any]) -> M:
        kind = data.get("type")
        if kind != cls.type:
            raise ProtocolError(f"expected a {cls.type!r} message, got type {kind!r}")
        message: M = _from_fields(cls, data, cls.type)
        return message

    @classmethod
    def from_json(cls: builtins.type[M], text: str | bytes) -> M:
        message = parse(text)
        if not isinstance(message, cls):
            raise ProtocolError(f"expected a {cls.type!r} message, got {message.type!r}")
        return message


# -- nested values --------------------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    """What the server enforces on this session (sent in :class:`Ready`)."""

    max_frame_bytes: int  # larger frames close the connection (1009)
    max_utterance_s: float  # longer speech is cut there and recognized
    idle_timeout_s: float  # nothing received for this long closes the connection (4031)
    max_messages_per_s: float  # sustained text + binary frames per second (4029 above)
    max_audio_speed: float  # audio faster than this many times real time is refused (4029)


@dataclass(frozen=True)
class Timing:
    audio_ms: float  # length of the utterance's speech
    processing_ms: float  # time spent recognizing it
    end_of_speech_to_result_ms: float  # from receiving the frame that ended it to sending this


# -- client to server -----------------------------------------------------------------------

@dataclass(frozen=True)
class Start(Message):
    """Open a session: the audio format, the model, and how utterances end."""

    type: ClassVar[str] = "start"
    sender: ClassVar[str] = "client"
    protocol_version: int = PROTOCOL_VERSION
    sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ  # of the binary frames that follow
    model: str | None = None  # a name from /v1/models; None: the server's default
    partials: bool = False  # send "partial" results while the user speaks
    mode: str = "vad"  # "vad": the server ends utterances; "push_to_talk": only finalize does
    min_silence_ms: int | None = None  # trailing silence that ends an utterance (vad mode)
    client: str = ""  # free text naming the client, for the server's logs
    # "fixed": end after min_silence_ms; "grammar": sooner once the grammar says the command
    # is complete (min_silence_ms is then the wait for an incomplete one); None: the server's
    # default (its endpointing setting). vad mode only.
    endpointing: str | None = None

    def __post_init__(self) -> None:
        if self.model is not None and not self.model.strip():
            raise ProtocolError("model must be a model's name, or left out for the default; "
                                "got an empty string")
        if self.mode not in MODES:
            raise ProtocolError(f"mode must be one of {list(MODES)}, got {_short(self.mode)}")
        if self.min_silence_ms is not None and not 100 <= self.min_silence_ms <= 5000:
            raise ProtocolError(f"min_silence_ms must be in [100, 5000], got "
                                f"{self.min_silence_ms}")
        if self.endpointing is not None and self.endpointing not in ENDPOINTING:
            raise ProtocolError(f"endpointing must be one of {list(ENDPOINTING)}, got "
                                f"{_short(self.endpointing)}")


@dataclass(frozen=True)
class Finalize(Message):
    """End the utterance now (push-to-talk release); answered by a result, maybe empty."""

    type: ClassVar[str] = "finalize"
    sender: ClassVar[str] = "client"


@dataclass(frozen=True)
class Cancel(Message):
    """Drop the utterance in progress and every result not yet sent."""

    type: ClassVar[str] = "cancel"
    sender: ClassVar[str] = "client"


@dataclass(frozen=True)
class Stop(Message):
    """End the session: the speech in progress is recognized, results sent, then "closed"."""

    type: ClassVar[str] = "stop"
    sender: ClassVar[str] = "client"


@dataclass(frozen=True)
class KeepAlive(Message):
    """Nothing to do: keeps an idle session (push-to-talk between presses) from the idle
    timeout. Not answered."""

    type: ClassVar[str] = "keepalive"
    sender: ClassVar[str] = "client"


# -- server to client -----------------------------------------------------------------------

@dataclass(frozen=True)
class Ready(Message):
    type: ClassVar[str] = "ready"
    sender: ClassVar[str] = "server"
    session_id: str
    protocol_version: int
    model: str  # the name of the model serving this session
    sample_rate_hz: int
    intents: tuple[str, ...]
    limits: Limits


@dataclass(frozen=True)
class SpeechStarted(Message):
    type: ClassVar[str] = "speech_started"
    sender: ClassVar[str] = "server"
    utterance_id: int
    start_ms: float  # from the start of the session's audio


@dataclass(frozen=True)
class SpeechEnded(Message):
    type: ClassVar[str] = "speech_ended"
    sender: ClassVar[str] = "server"
    utterance_id: int
    start_ms: float
    end_ms: float
    forced: bool  # cut at max_utterance_s, or ended by finalize/stop


@dataclass(frozen=True)
class Partial(Message):
    """The best reading of the speech so far (best effort: dropped when the server is busy)."""

    type: ClassVar[str] = "partial"
    sender: ClassVar[str] = "server"
    utterance_id: int
    understood: bool
    intent: str | None
    slots: dict[str, SlotValue]
    confidence: float
    transcript: str


@dataclass(frozen=True)
class Result(Message):
    type: ClassVar[str] = "result"
    sender: ClassVar[str] = "server"
    utterance_id: int
    understood: bool
    intent: str | None
    slots: dict[str, SlotValue]
    confidence: float
    transcript: str  # the grammar sentence recognized ("" if none)
    heard: str  # what the model wrote without the grammar
    timing: Timing


@dataclass(frozen=True)
class Error(Message):
    type: ClassVar[str] = "error"
    sender: ClassVar[str] = "server"
    code: str  # an ErrorCode value
    message: str
    fatal: bool  # the connection closes right after, with CLOSE_CODES[code]
    retry_after_s: float | None = None  # server_full, rate_limited, not_ready


@dataclass(frozen=True)
class Closed(Message):
    """The last message of a session that ended on "stop"; the connection then closes (1000)."""

    type: ClassVar[str] = "closed"
    sender: ClassVar[str] = "server"
    session_id: str
    utterances: int  # results sent in this session
    reason: str = "stop"


ClientMessage = Start | Finalize | Cancel | Stop | KeepAlive
ServerMessage = Ready | SpeechStarted | SpeechEnded | Partial | Result | Error | Closed

MESSAGES: dict[str, type[Message]] = {
    cls.type: cls
    for cls in (Start, Finalize, Cancel, Stop, KeepAlive, Ready, SpeechStarted, SpeechEnded,
                Partial, Result, Error, Closed)
}
CLIENT_MESSAGES = frozenset(n for n, c in MESSAGES.items() if c.sender == "client")
SERVER_MESSAGES = frozenset(n for n, c in MESSAGES.items() if c.sender == "server")


def parse(text: str | bytes, allowed: frozenset[str] | None = None) -> Message:
    """The message in one text frame; ``allowed`` restricts the types (e.g. CLIENT_MESSAGES)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ProtocolError("text frame is nested too deeply to be a message") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, the int digit limit
        raise ProtocolError(f"text frame is not valid JSON: {_cut(str(e))}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"a message is a JSON object, got {type(data).__name__}")
    kind = data.get("type")
    cls = MESSAGES.get(kind) if isinstance(kind, str) else None
    if cls is None or (allowed is not None and kind not in allowed):
        expected = sorted(allowed if allowed is not None else MESSAGES)
        raise UnknownMessageType(
            f"unknown message type {_short(kind)} (expected one of {expected})")
    try:
        return cls.from_dict(data)
    except RecursionError:
        raise ProtocolError(f"{kind!r} message is nested too deeply") from None


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error(code: ErrorCode, message: str, fatal: bool,
          retry_after_s: float | None = None) -> Error:
    """An ``error`` message; ``retry_after_s`` goes out rounded up to hundredths (never 0 for
    a wait that is not over)."""
    retry = math.ceil(retry_after_s * 100.0 - 1e-9) / 100.0 if retry_after_s is not None else None
    return Error(code.value, message, fatal, retry)


def close_code(code: ErrorCode | str) -> int:
    """The close code that follows a fatal error of ``code``."""
    try:
        return int(CLOSE_CODES[ErrorCode(code)])
    except (KeyError, ValueError):
        return int(CloseCode.INTERNAL_ERROR)


__all__ = [
    "CLIENT_MESSAGES", "CLOSE_CODES", "MESSAGES", "MODES", "PROTOCOL_VERSION",
    "SERVER_MESSAGES", "Cancel", "ClientMessage", "CloseCode", "Closed", "Error", "ErrorCode",
    "Finalize", "KeepAlive", "Limits", "Message", "Partial", "ProtocolError", "Ready", "Result",
    "ServerMessage", "SpeechEnded", "SpeechStarted", "Start", "Stop", "Timing",
    "UnknownMessageType", "close_code", "error", "parse",
]
