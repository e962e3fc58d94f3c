"""Named, shared, read-only recognizers, and their reload without dropping connections.

Every grammar (``--context``) with the same speech model shares one loaded
:class:`~assistant.speech_model.SpeechModel`; model directories (``--model``) load their own.
A reload builds the new recognizers first and swaps them in one assignment: sessions look the
recognizer up by name for each utterance, so the next utterance uses the new one and utterances
already being recognized finish on the old one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from assistant.artifacts import SpeechModelSpec, ensure_speech_model
from assistant.errors import ConfigError, ModelError
from assistant.grammar import load_context
from assistant.protocol import ErrorCode, ProtocolError
from assistant.recognizer import Recognizer, RecognizerConfig
from assistant.speech_model import SpeechModel

from .config import ModelSource

logger = logging.getLogger("assistant.serving.models")


@dataclass(frozen=True)
class LoadedModel:
    source: ModelSource
    recognizer: Recognizer
    loaded_at_s: float  # unix time
    warm_up_s: float

    def describe(self) -> dict[str, Any]:
        speech = self.recognizer.model
        return {
            "name": self.source.name,
            "kind": self.source.kind,
            "path": str(self.source.path),
            "speech_model": speech.name,
            "precision": speech.precision,
            "intents": list(self.recognizer.context.intent_names),
            "grammar_sha256": self.recognizer.context.sha256,
            "threshold": self.recognizer.config.threshold,
            "loaded_at": round(self.loaded_at_s, 3),
        }


class ModelRegistry:
    """Loads the configured sources; ``get(name)`` for sessions, ``reload()`` from any thread."""

    def __init__(self, sources: Sequence[ModelSource], config: RecognizerConfig,
                 warm_up: bool = True, progress: Callable[[str], None] | None = None):
        if not sources:
            raise ConfigError("at least one --context or --model is needed")
        self.sources = tuple(sources)
        self.config = config
        self.warm_up = warm_up
        self.progress = progress
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()  # one load or reload at a time

    @property
    def default_name(self) -> str:
        return self.sources[0].name

    @property
    def loaded(self) -> bool:
        return len(self._models) == len(self.sources)

    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def get(self, name: str | None) -> LoadedModel:
        """The model called ``name`` (None: the default); ProtocolError when there is none."""
        key = name or self.default_name
        model = self._models.get(key)
        if model is None:
            raise ProtocolError(f"no model named {key!r} (available: {self.names()})",
                                ErrorCode.UNKNOWN_MODEL)
        return model

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for source in self.sources:
            model = self._models.get(source.name)
            row = model.describe() if model else {"name": source.name, "kind": source.kind,
                                                  "path": str(source.path), "loaded": False}
            row["default"] = source.name == self.default_name
            out.append(row)
        return out

    def load(self) -> None:
        """Load every source (blocking: call from a thread)."""
        self.reload(None)

    def reload(self, name: str | None = None) -> list[str]:
        """Rebuild the named model (None: all) from its files, then swap it in. Blocking."""
        chosen = [s for s in self.sources if name is None or s.name == name]
        if not chosen:
            raise ConfigError(f"no model named {name!r} (available: {self.names()})")
        with self._lock:
            shared: dict[tuple[str, str], SpeechModel] = {}
            fresh = {s.name: self._build(s, shared) for s in chosen}
            self._models = {**self._models, **fresh}  # one assignment: readers see old or new
        return list(fresh)

    def _build(self, source: ModelSource, shared: dict[tuple[str, str], SpeechModel]
               ) -> LoadedModel:
        started = time.perf_counter()
        if not source.path.exists():
            raise ModelError(f"{source.kind} {source.name!r}: {source.path} does not exist")
        if source.kind == "model":
            recognizer = Recognizer.from_model_dir(source.path, self.config)
        else:
            spec = SpeechModelSpec(self.config.speech_model, self.config.precision)
            key = (spec.pretrained, spec.precision)
            if key not in shared:
                directory = ensure_speech_model(spec, self.progress)
                current = next((m.recognizer.model for m in self._models.values()
                                if m.source.kind == "context"
                                and m.recognizer.model.directory == directory), None)
                shared[key] = current or SpeechModel(directory, threads=self.config.threads)
            context = load_context(source.path)
            recognizer = Recognizer(context, shared[key], self.config)
        warm = recognizer.warm_up() if self.warm_up else 0.0
        logger.info("loaded %s %r from %s in %.1f s (warm-up %.2f s)", source.kind,
                    source.name, source.path, time.perf_counter() - started, warm)
        return LoadedModel(source, recognizer, time.time(), warm)


def serving_config(config: RecognizerConfig) -> RecognizerConfig:
    """One onnxruntime intra-op thread per recognition unless set: the pool gives parallelism."""
    return config if config.threads is not None else replace(config, threads=1)
