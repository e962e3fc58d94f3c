"""The server's configuration: frozen dataclasses fed by flags, ``ASSISTANT_*`` env and a file.

Precedence, highest first: command-line flags, environment variables, the config file
(``--config FILE`` or ``ASSISTANT_CONFIG``; TOML or YAML), defaults. Field ``max_sessions``
is ``--max-sessions``, ``ASSISTANT_MAX_SESSIONS`` and ``max_sessions = 64`` in the file
(:mod:`assistant.config` does the mapping). Models are named sources: ``--context NAME=FILE``
and ``--model NAME=DIR`` (repeatable, the first is the default), ``ASSISTANT_CONTEXTS`` /
``ASSISTANT_MODELS`` (``name=path,name=path``) or ``[contexts]`` / ``[models]`` tables.

Recognizer settings (``beam_size``, ``threshold``, ...) come the same three ways and are kept
as *overrides*: a model directory runs with its stored settings except the ones given here
(:func:`assistant.recognizer.resolve_config`). Gates and result sinks of the utterance
pipeline are ``--gate SPEC`` / ``--sink SPEC``, ``ASSISTANT_GATES`` / ``ASSISTANT_SINKS``
(``;``-separated) or ``gates = [...]`` / ``sinks = [...]`` in the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assistant import config
from assistant.endpointing import parse_policy
from assistant.errors import ConfigError
from assistant.grammar import DEFAULT_CONTEXT
from assistant.monitor import MonitorConfig
from assistant.pipeline import PipelineConfig
from assistant.recognizer import MAX_UTTERANCE_S, RecognizerConfig
from assistant.segmenter import DEFAULT_ENDPOINT

from .capture import CaptureConfig
from .shadow import ShadowConfig

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class PoolConfig:
    """The recognition workers (:class:`serving.inference.InferencePool`)."""

    workers: int = 2
    worker_kind: str = "process"
    queue_size: int = 32
    warm_up: bool = True
    trim_memory_s: float = 0.5
    batch_utterances: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.batch_utterances <= 64:
            raise ConfigError(f"batch_utterances must be in 1..64, got {self.batch_utterances}")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"workers must be in 1..64, got {self.workers}")
        if self.worker_kind not in ("process", "thread"):
            raise ConfigError(f"worker_kind must be 'process' or 'thread', got "
                              f"{self.worker_kind!r}")
        if self.queue_size < self.workers:
            raise ConfigError(f"queue_size ({self.queue_size}) must be >= workers "
                              f"({self.workers})")
        if not math.isfinite(self.trim_memory_s):
            raise ConfigError(f"trim_memory_s must be a finite number of seconds (negative: "
                              f"never), got {self.trim_memory_s}")


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the server listens. Change with ``dataclasses.replace``."""

    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (tests)
    # The pool's settings default to PoolConfig's (one source of truth) and are checked there.
    workers: int = PoolConfig.workers  # inference workers (one onnxruntime thread each)
    worker_kind: str = PoolConfig.worker_kind  # "process" (every core) or "thread" (less memory)
    queue_size: int = PoolConfig.queue_size  # utterances waiting or running; then readers wait
    api_keys: str = ""  # comma-separated keys (prefer ASSISTANT_API_KEYS or api_keys_file)
    api_keys_file: str | None = None  # one key per line; '#' starts a comment
    token_secret: str | None = None  # signs browser tokens; random per process when unset
    token_ttl_s: float = 300.0  # lifetime of a token from POST /v1/token
    insecure: bool = False  # allow listening beyond localhost without API keys
    allowed_origins: str = ""  # comma-separated browser origins besides this server's own; "*": any
    # A server without API keys answers only requests whose Host is an IP address, localhost
    # or one of these names (comma-separated; "*": any): DNS rebinding cannot reach it.
    allowed_hosts: str = ""
    tls_cert: str | None = None  # PEM certificate chain: serve wss:// and https://
    tls_key: str | None = None  # PEM private key for tls_cert
    log_json: bool = False  # structured logs: one JSON object a line
    log_level: str = "INFO"
    warm_up: bool = PoolConfig.warm_up  # run each model once before reporting ready
    # A worker process idle this long after a recognition, and the server process this long
    # after its last session closed, hand the memory they freed back to the system (0: at
    # once, which costs a worker latency; negative: never).
    trim_memory_s: float = PoolConfig.trim_memory_s
    # Final recognitions waiting together go to a worker together, up to this many in one
    # call, their decoder runs shared. 1 (one by one) is quicker per answer on a CPU with the
    # INT8 model (docs/scaling.md); raise it for FP32 or GPU models. INT8 rounding then makes
    # confidences depend slightly on which utterances came together.
    batch_utterances: int = PoolConfig.batch_utterances
    # Slot values set at run time (device names, areas, items), by model and slot type: read at
    # start and reload, written back by PUT /v1/models/NAME/slots/TYPE (YAML).
    slots_file: str | None = None
    # Also serve Home Assistant's Wyoming protocol here (tcp://HOST:PORT or unix://PATH).
    wyoming_uri: str | None = None
    # What a Wyoming transcript says when nothing was understood: "empty" (Home Assistant then
    # says it did not understand) or "heard" (what the model heard, for an agent to try).
    wyoming_fallback: str = "empty"
    # How often to look whether a model directory path now names another directory (a model
    # registry's ``current`` symlink after a promotion): then that model is reloaded. 0: never.
    model_watch_s: float = 2.0
    # How WebSocket streams end utterances unless their start message says: "fixed" (after
    # the trailing silence) or "grammar" (sooner once the command is complete; see
    # assistant.endpointing).
    endpointing: str = "fixed"

    def __post_init__(self) -> None:
        parse_policy(self.endpointing)
        if self.log_level.upper() not in logging.getLevelNamesMapping():
            raise ConfigError(f"log_level must be one of DEBUG, INFO, WARNING, ERROR, "
                              f"CRITICAL, got {self.log_level!r}")
        if self.model_watch_s < 0:
            raise ConfigError(f"model_watch_s must be >= 0, got {self.model_watch_s}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        _ = self.pool  # PoolConfig validates the worker settings
        if self.token_ttl_s <= 0:
            raise ConfigError(f"token_ttl_s must be > 0, got {self.token_ttl_s}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key go together; got only one of them")
        if self.wyoming_fallback not in ("empty", "heard"):
            raise ConfigError(f"wyoming_fallback must be 'empty' or 'heard', got "
                              f"{self.wyoming_fallback!r}")

    @property
    def pool(self) -> PoolConfig:
        return PoolConfig(self.workers, self.worker_kind, self.queue_size, self.warm_up,
                          self.trim_memory_s, self.batch_utterances)

    @property
    def is_local(self) -> bool:
        return self.host in LOCAL_HOSTS

    def origins(self) -> frozenset[str]:
        """The extra browser origins allowed, normalized (``scheme://host[:port]``, lower case)."""
        return frozenset(o.strip().rstrip("/").lower() for o in self.allowed_origins.split(",")
                         if o.strip())

    def hosts(self) -> frozenset[str]:
        """The extra Host names a keyless server answers, lower case."""
        return frozenset(h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip())

    def keys(self) -> tuple[str, ...]:
        """Every configured API key (inline and from api_keys_file), without duplicates."""
        keys = [k.strip() for k in self.api_keys.split(",") if k.strip()]
        if self.api_keys_file:
            path = Path(self.api_keys_file)
            try:
                lines = path.read_text().splitlines()
            except OSError as e:
                raise ConfigError(f"cannot read api_keys_file {str(path)!r}: {e}") from e
            keys += [ln.split("#", 1)[0].strip() for ln in lines]
        return tuple(dict.fromkeys(k for k in keys if k))


@dataclass(frozen=True)
class LimitsConfig:
    """What one client may do; the first five are announced in ``ready.limits``."""

    max_frame_bytes: int = 65536  # one binary or text frame (about 2 s of 16 kHz audio)
    max_utterance_s: float = DEFAULT_ENDPOINT.max_utterance_s  # speech is cut and recognized here
    idle_timeout_s: float = 60.0  # nothing received for this long: close 4031
    max_messages_per_s: float = 100.0  # sustained frames per second per connection
    max_audio_speed: float = 20.0  # audio faster than this x real time: close 4029
    max_sessions: int = 64  # concurrent connections; more are closed 4030
    retry_after_s: float = 5.0  # the hint sent with 4030 server full
    connections_per_min: float = 120.0  # new connections per API key (or address) a minute
    # (a burst of a quarter of that may come at once)
    auth_failures_per_min: float = 10.0  # failed authentications per address; then 429/4029
    outbox_size: int = 256  # events waiting for a slow reader before 4032
    drain_timeout_s: float = 10.0  # on shutdown, time for in-flight utterances to finish

    def __post_init__(self) -> None:
        if not 1024 <= self.max_frame_bytes <= 16 * 2**20:
            raise ConfigError(f"max_frame_bytes must be in 1024..16 MiB, got "
                              f"{self.max_frame_bytes}")
        if not 1.0 <= self.max_utterance_s <= MAX_UTTERANCE_S:
            raise ConfigError(f"max_utterance_s must be in [1, {MAX_UTTERANCE_S:g}], got "
                              f"{self.max_utterance_s}")
        for name in ("idle_timeout_s", "max_messages_per_s", "max_audio_speed",
                     "retry_after_s", "connections_per_min", "auth_failures_per_min",
                     "drain_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_sessions < 1 or self.outbox_size < 8:
            raise ConfigError(f"max_sessions must be >= 1 and outbox_size >= 8, got "
                              f"{self.max_sessions} and {self.outbox_size}")


@dataclass(frozen=True)
class ModelSource:
    """A named model: a grammar served zero-shot ("context") or a model directory ("model")."""

    name: str
    kind: str  # "context" or "model"
    path: Path

    def __post_init__(self) -> None:
        if self.kind not in ("context", "model"):
            raise ConfigError(f"model source kind must be 'context' or 'model', got "
                              f"{self.kind!r}")
        if not self.name or not self.name.replace("-", "").replace("_", "").replace(
                ".", "").isalnum():
            raise ConfigError(f"model name {self.name!r} must be letters, digits, '-', '_' "
                              f"or '.'")


def parse_source(kind: str, text: str) -> ModelSource:
    """``NAME=PATH`` (or a bare PATH, named after its file) as a :class:`ModelSource`."""
    name, sep, path = text.partition("=")
    if not sep:
        path, name = text, Path(text).stem if kind == "context" else Path(text).name
    return ModelSource(name.strip(), kind, Path(path.strip()).expanduser())


class _SourceAction(argparse.Action):
    """Appends ``(kind, value)`` so that --context and --model keep their given order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        sources = list(getattr(namespace, self.dest, None) or [])
        sources.append((self.const, values))
        setattr(namespace, self.dest, sources)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a TOML or YAML file of settings (env ASSISTANT_CONFIG)")
    parser.add_argument("--context", dest="sources", action=_SourceAction, const="context",
                        metavar="NAME=FILE.yaml",
                        help="serve a grammar zero-shot (repeatable; the first is the default)")
    parser.add_argument("--model", dest="sources", action=_SourceAction, const="model",
                        metavar="NAME=DIR", help="serve a model directory (repeatable)")
    config.add_arguments(parser, ServerConfig)
    config.add_arguments(parser, LimitsConfig)
    config.add_arguments(parser, PipelineConfig)
    config.add_arguments(parser, MonitorConfig)
    config.add_arguments(parser, CaptureConfig)
    config.add_arguments(parser, ShadowConfig)
    # max_utterance_s is shared: the server's limit (above) also bounds what the recognizer
    # sees, so it is not a second flag.
    config.add_arguments(parser, RecognizerConfig, skip=SHARED_SETTINGS)


SHARED_SETTINGS = ("max_utterance_s",)  # one flag and key for LimitsConfig and the recognizer


def _known_settings() -> set[str]:
    return ({f.name for f in dataclasses.fields(ServerConfig)}
            | {f.name for f in dataclasses.fields(LimitsConfig)}
            | {f.name for f in dataclasses.fields(RecognizerConfig)}
            | {f.name for f in dataclasses.fields(PipelineConfig)}
            | {f.name for f in dataclasses.fields(MonitorConfig)}
            | {f.name for f in dataclasses.fields(CaptureConfig)}
            | {f.name for f in dataclasses.fields(ShadowConfig)} | {"contexts", "models"})


def read_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML (``.toml``) or YAML file as a flat mapping of field names."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {str(path)!r}: {e}") from e
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"config file {str(path)!r} is not valid: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of settings")
    unknown = sorted(set(data) - _known_settings())
    if unknown:
        raise ConfigError(f"config file {str(path)!r} has unknown settings {unknown}")
    return data


def _env_sources(env: Mapping[str, str]) -> list[tuple[str, str]]:
    out = []
    for kind, var in (("context", "ASSISTANT_CONTEXTS"), ("model", "ASSISTANT_MODELS")):
        out += [(kind, item.strip()) for item in env.get(var, "").split(",") if item.strip()]
    return out


def _file_sources(data: Mapping[str, Any], base: Path) -> list[tuple[str, str]]:
    out = []
    for kind, key in (("context", "contexts"), ("model", "models")):
        table = data.get(key) or {}
        if not isinstance(table, dict):
            raise ConfigError(f"config setting {key!r} must be a table of name = path")
        for name, path in table.items():
            resolved = Path(str(path)).expanduser()
            out.append((kind, f"{name}={resolved if resolved.is_absolute() else base / resolved}"))
    return out


@dataclass(frozen=True)
class Settings:
    """Everything ``assistant serve`` needs, built once by :func:`load`."""

    server: ServerConfig
    limits: LimitsConfig
    sources: tuple[ModelSource, ...]
    recognizer: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # overrides
    pipeline: PipelineConfig = dataclasses.field(default_factory=PipelineConfig)
    monitor: MonitorConfig = dataclasses.field(default_factory=MonitorConfig)
    capture: CaptureConfig = dataclasses.field(default_factory=CaptureConfig)
    shadow: ShadowConfig = dataclasses.field(default_factory=ShadowConfig)


class _Layered(dict[str, str]):
    """Environment variables with the config file's settings filled in under them;
    ``origins`` names where a file's value came from (for its errors)."""

    origins: dict[str, str]


def _file_value(value: Any) -> str:
    """A config-file value as the text an ``ASSISTANT_*`` variable would hold."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return config.LIST_SEPARATOR.join(str(v) for v in value)
    return str(value)


def load(args: argparse.Namespace | Mapping[str, Any] | None = None,
         env: Mapping[str, str] | None = None) -> Settings:
    """Flags, then env, then the config file, then defaults (see module docs)."""
    env = dict(os.environ if env is None else env)
    flags = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    config_file = flags.get("config") or env.get("ASSISTANT_CONFIG")
    data = read_file(config_file) if config_file else {}
    # File settings sit under the environment: they fill in the env names not set.
    layered = _Layered({config.ENV_PREFIX + k.upper(): _file_value(v) for k, v in data.items()
                        if k not in ("contexts", "models")})
    layered.origins = {name: f"{config_file}: {name[len(config.ENV_PREFIX):].lower()}"
                       for name in layered if name not in env}
    layered.update(env)
    server = config.build(ServerConfig, flags, layered)
    limits = config.build(LimitsConfig, flags, layered)
    pipeline = config.build(PipelineConfig, flags, layered)
    monitor = config.build(MonitorConfig, flags, layered)
    capture = config.build(CaptureConfig, flags, layered)
    shadow = config.build(ShadowConfig, flags, layered)
    recognizer = config.given(RecognizerConfig, flags, layered)
    RecognizerConfig(**recognizer)  # refuse bad values now, named, not at the first model
    given: Sequence[tuple[str, str]] = flags.get("sources") or []
    if not given:
        given = _env_sources(env)
    if not given and config_file:
        given = _file_sources(data, Path(config_file).resolve().parent)
    if not given:
        given = [("context", f"home={DEFAULT_CONTEXT}")]
    sources = tuple(parse_source(kind, text) for kind, text in given)
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"model names must be unique, got {duplicates} more than once")
    if shadow.enabled and shadow.model not in names:
        raise ConfigError(f"shadow: no served model {shadow.model!r} (serving {names})")
    return Settings(server, limits, sources, recognizer, pipeline, monitor, capture, shadow)
