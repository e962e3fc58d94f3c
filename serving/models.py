"""Loaded recognizers, built from catalogue entries where recognition runs.

A :class:`ModelRegistry` lives in each worker process (or, with thread workers, once in the
server process). ``recognizer(entry)`` returns the recognizer of that entry's name and
generation, building it the first time it is asked for: after a reload the first utterance
that carries the new entry builds the new recognizer, and nothing is read from disk that the
catalogue did not validate (a grammar comes as the entry's text). Grammars served zero-shot
with the same speech model share one loaded :class:`~assistant.speech_model.SpeechModel`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from assistant.errors import ModelError
from assistant.grammar import context_from_yaml
from assistant.recognizer import Recognizer
from assistant.speech_model import SpeechModel, load_speech_model

from .catalog import ModelEntry

logger = logging.getLogger("assistant.serving.models")


class ModelRegistry:
    """Recognizers by model name and generation (see module docs); safe from any thread."""

    def __init__(self, warm_up: bool = True):
        self.warm_up = warm_up
        self._recognizers: dict[str, tuple[int, Recognizer]] = {}
        self._speech: dict[tuple[Path, int | None, str], SpeechModel] = {}
        self._model_dirs: dict[str, tuple[int, Recognizer]] = {}  # by name: files generation
        self._lock = threading.Lock()

    def recognizer(self, entry: ModelEntry) -> Recognizer:
        """The recognizer of ``entry``'s generation or a newer one (built on first use)."""
        found = self._recognizers.get(entry.name)
        if found is not None and found[0] >= entry.generation:
            return found[1]
        with self._lock:
            found = self._recognizers.get(entry.name)
            if found is None or found[0] < entry.generation:
                found = (entry.generation, self._build(entry))
                self._recognizers[entry.name] = found
        return found[1]

    def _from_model_dir(self, entry: ModelEntry) -> Recognizer:
        """A model directory's recognizer; with new slot values only (same files), the
        loaded speech model, classifier and calibration are reused with the new grammar."""
        context = (context_from_yaml(entry.grammar_text, source=str(entry.source.path))
                   if entry.grammar_text is not None else None)
        built = self._model_dirs.get(entry.name)
        if built is not None and built[0] == entry.files_generation and context is not None:
            base = built[1]
            return Recognizer(context, base.model, entry.config, base.calibration,
                              base.classifier)
        config = entry.config
        overrides = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        recognizer = Recognizer.from_model_dir(entry.speech_dir, overrides, context)
        self._model_dirs[entry.name] = (entry.files_generation, recognizer)
        return recognizer

    def load(self, entries: Sequence[ModelEntry]) -> None:
        """Build (and warm up) every entry now, e.g. before reporting ready."""
        for entry in entries:
            self.recognizer(entry)

    def _build(self, entry: ModelEntry) -> Recognizer:
        started = time.perf_counter()
        config = entry.config
        if entry.source.kind == "model":
            recognizer = self._from_model_dir(entry)
            if recognizer.context.sha256 != entry.grammar_sha256:
                raise ModelError(f"model {entry.name!r}: {entry.speech_dir} changed since it "
                                 f"was (re)loaded; reload it to serve the new files")
        else:
            assert entry.grammar_text is not None
            key = (entry.speech_dir, config.threads, config.device)
            if key not in self._speech:
                self._speech[key] = load_speech_model(entry.speech_dir, config.threads,
                                                      config.device)
            context = context_from_yaml(entry.grammar_text, source=str(entry.source.path))
            recognizer = Recognizer(context, self._speech[key], config)
        warm = recognizer.warm_up() if self.warm_up else 0.0
        logger.info("loaded %s %r generation %d in %.1f s (warm-up %.2f s)", entry.source.kind,
                    entry.name, entry.generation, time.perf_counter() - started, warm)
        return recognizer
