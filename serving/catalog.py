"""What the server serves, known without loading a speech model: the model catalogue.

The main process keeps one :class:`ModelEntry` per configured source: its name, the settings
it runs with (a model directory's stored settings, overridden by what the operator gave), its
intents and grammar hash, and, for a grammar served zero-shot, the exact grammar text that
was validated. Sessions read intents from it, ``/v1/models`` describes it, and every
recognition carries its entry to the worker that runs it, which builds (or reuses) the
recognizer of that entry's generation (:mod:`serving.models`). So what ``/v1/models`` reports
is what runs, and a grammar edited on disk after a reload is never picked up behind the
server's back.

A reload validates the new files first and swaps the entries in one assignment: the next
utterance of every session uses them; utterances being recognized finish on the old ones.

Slot values change at run time the same way (:meth:`ModelCatalog.set_slot_values`, the
user's own device names, areas, list items): the grammar text is edited
(:mod:`assistant.grammar.edit`), checked, and a new generation swapped in; workers build its
recognizer on first use, reusing the speech model they have. Such values come from the
slots file (read at load and reload, written back on each change) or the HTTP API, and
outlive reloads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.artifacts import SpeechModelSpec, ensure_speech_model, read_metadata
from assistant.errors import ConfigError, GrammarError, ModelError
from assistant.grammar import Context, compile_word_graph, context_from_yaml, sample_sentences
from assistant.grammar.edit import edit_context, slot_values
from assistant.profile import ReferenceProfile, find_profile
from assistant.recognizer import (
    RecognizerConfig,
    model_dir_config,
    model_dir_context,
    resolve_config,
)

from .config import ModelSource

logger = logging.getLogger("assistant.serving.catalog")

EXAMPLES = 8  # sentences /v1/models shows per model ("what can I say?")


class UnknownModel(ConfigError):
    """No model of that name is served."""

    def __init__(self, name: str, names: Sequence[str]):
        self.name = name
        self.names = list(names)
        super().__init__(f"no model named {name!r} (available: {self.names})")


@dataclass(frozen=True)
class ModelEntry:
    """One served model as the main process knows it (see module docs). Pickled to workers."""

    source: ModelSource
    generation: int  # bumped by each reload of this model
    config: RecognizerConfig  # the settings it runs with
    intents: tuple[str, ...]
    grammar_sha256: str
    speech_dir: Path  # the speech model's files (a pretrained build, or the model directory)
    grammar_text: str | None  # the grammar exactly as validated (None: a model directory's own)
    loaded_at_s: float  # unix time
    examples: tuple[str, ...] = ()  # a few sentences of the grammar, one per intent first
    files_generation: int = 0  # bumped when the files are read again (not by slot changes)
    resolved: Path | None = None  # a model directory's real path when catalogued (symlinks
    # followed: a registry's ``current`` names the version; see serving.services)

    @property
    def name(self) -> str:
        return self.source.name

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.source.name,
            "kind": self.source.kind,
            "path": str(self.source.path),
            "resolved_path": None if self.resolved is None else str(self.resolved),
            "speech_model": self.config.speech_model,
            "precision": self.config.precision,
            "device": self.config.device,
            "intents": list(self.intents),
            "grammar_sha256": self.grammar_sha256,
            "threshold": self.config.threshold,
            "beam_size": self.config.beam_size,
            "generation": self.generation,
            "loaded_at": round(self.loaded_at_s, 3),
            "examples": list(self.examples),
        }


class ModelCatalog:
    """The configured sources as :class:`ModelEntry` values; ``get`` is safe from any thread."""

    def __init__(self, sources: Sequence[ModelSource], overrides: Mapping[str, Any],
                 progress: Callable[[str], None] | None = None):
        if not sources:
            raise ConfigError("at least one --context or --model is needed")
        self.sources = tuple(sources)
        self.overrides = dict(overrides)
        self.progress = progress
        self._entries: dict[str, ModelEntry] = {}
        self._contexts: dict[str, Context] = {}  # each entry's grammar, parsed (text intents)
        self._slots: dict[str, dict[str, list[Any]]] = {}  # model -> slot type -> values
        self._profiles: dict[str, ReferenceProfile | None] = {}  # read at load and reload
        self._lock = threading.Lock()  # one load or reload at a time

    @property
    def default_name(self) -> str:
        return self.sources[0].name

    @property
    def loaded(self) -> bool:
        return len(self._entries) == len(self.sources)

    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def entries(self) -> list[ModelEntry]:
        return [self._entries[s.name] for s in self.sources if s.name in self._entries]

    def get(self, name: str | None) -> ModelEntry:
        """The entry called ``name`` (None: the default); :class:`UnknownModel` if none."""
        key = name or self.default_name
        entry = self._entries.get(key)
        if entry is None:
            raise UnknownModel(key, self.names())
        return entry

    def context(self, name: str | None) -> Context:
        """The grammar of the entry called ``name`` (None: the default), as it runs."""
        key = self.get(name).name
        return self._contexts[key]

    def profile(self, name: str | None) -> ReferenceProfile | None:
        """The reference profile of a model (monitoring), None when it has none."""
        return self._profiles.get(self.get(name).name)

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for source in self.sources:
            entry = self._entries.get(source.name)
            row = entry.describe() if entry else {"name": source.name, "kind": source.kind,
                                                  "path": str(source.path), "loaded": False}
            row["default"] = source.name == self.default_name
            out.append(row)
        return out

    def load(self) -> list[str]:
        """Read and check every source (blocking; builds speech models on first use)."""
        return self.reload(None)

    def reload(self, name: str | None = None,
               slots: tuple[str, Mapping[str, Mapping[str, list[Any]]]] | None = None
               ) -> list[str]:
        """Re-read the named source (None: all) and swap the new entries in. Blocking.

        ``slots`` (where from, {model: {slot type: values}}: a slots file) replace the slot
        values set at run time of the models reloaded; nothing changes, those values
        included, when any of the entries cannot be built."""
        chosen = [s for s in self.sources if name is None or s.name == name]
        if not chosen:
            raise UnknownModel(str(name), self.names())
        with self._lock:
            values = self._slots
            origin = None
            if slots is not None:
                origin, given = slots
                unknown = sorted(set(given) - set(self.names()))
                if unknown:
                    raise ConfigError(f"{origin}: slots for models that are not served: "
                                      f"{unknown} (served: {self.names()})")
                # Only the models rebuilt now take the file's values; the others take theirs
                # at their own reload (so a mistake in another model's part waits for it).
                values = {**self._slots, **{s.name: dict(given.get(s.name, {}))
                                            for s in chosen}}
            built = {s.name: self._entry(s, values.get(s.name, {}), origin=origin)
                     for s in chosen}
            self._slots = values
            fresh = {name: entry for name, (entry, _) in built.items()}
            self._contexts = {**self._contexts, **{n: c for n, (_, c) in built.items()}}
            self._profiles = {**self._profiles, **{
                n: find_profile(e.resolved or e.source.path, e.source.kind, e.config.speech_model,
                                e.config.precision, e.grammar_sha256)
                for n, e in fresh.items()}}
            self._entries = {**self._entries, **fresh}  # one assignment: readers see old or new
        return list(fresh)

    def _entry(self, source: ModelSource, slots: Mapping[str, list[Any]] | None = None,
               reread: bool = True, origin: str | None = None) -> tuple[ModelEntry, Context]:
        """A new entry of ``source`` with ``slots`` (None: its current slot values), which
        came from ``origin`` (named in their errors); ``reread``: the files were read again
        (a load or reload, not a slot change)."""
        if not source.path.exists():
            raise ModelError(f"{source.kind} {source.name!r}: {source.path} does not exist")
        previous = self._entries.get(source.name)
        generation = previous.generation + 1 if previous else 0
        files_generation = (previous.files_generation + int(reread)) if previous else 0
        slots = self._slots.get(source.name, {}) if slots is None else slots
        resolved = None
        if source.kind == "model":
            # Read (and have the workers load) the directory the path names now, so that a
            # symlink flipped later (a registry promotion) changes nothing until a reload.
            resolved = source.path.resolve() if reread or previous is None \
                or previous.resolved is None else previous.resolved
            # (a slot change keeps the version being served: a promotion since then is the
            # watcher's to load, with its own files)
            metadata = read_metadata(resolved)
            context = model_dir_context(resolved, metadata)
            config = model_dir_config(resolved, metadata, self.overrides)
            speech_dir, text = resolved, None
            if slots:
                text = (resolved / metadata["grammar"]["file"]).read_text(encoding="utf-8")
        else:
            text = _read(source.path)
            context = context_from_yaml(text, source=str(source.path))
            config = resolve_config(None, self.overrides)
            spec = SpeechModelSpec(config.speech_model, config.precision)
            speech_dir = ensure_speech_model(spec, self.progress)
        if slots:
            assert text is not None
            text, context = edit_context(text, slots, source=str(source.path),
                                         origin=origin or "the slot values set at run time")
        compile_word_graph(context)  # fails here, named, rather than in every worker
        logger.info("catalogued %s %r from %s (generation %d)", source.kind, source.name,
                    source.path, generation)
        examples = tuple(dict.fromkeys(a.text for a in sample_sentences(context, EXAMPLES, 0)))
        return ModelEntry(source, generation, config, tuple(context.intent_names),
                          context.sha256, speech_dir, text, time.time(), examples,
                          files_generation, resolved), context

    # -- slot values at run time ----------------------------------------------------------

    def slot_values(self, name: str | None) -> dict[str, list[Any]]:
        """The list slot types of a model's grammar as it runs, and their values."""
        return slot_values(self.context(name))

    def set_slot_values(self, name: str | None, values: Mapping[str, list[Any]],
                        origin: str = "the request") -> ModelEntry:
        """Replace the values of the given slot types of one model (GrammarError naming
        ``origin``: nothing changed). The next utterance of every session uses them."""
        source = next((s for s in self.sources if s.name == (name or self.default_name)),
                      None)
        if source is None:
            raise UnknownModel(str(name), self.names())
        with self._lock:
            slots = {**self._slots.get(source.name, {}), **values}
            entry, context = self._entry(source, slots, reread=False, origin=origin)
            self._slots = {**self._slots, source.name: slots}
            self._contexts = {**self._contexts, source.name: context}
            self._entries = {**self._entries, source.name: entry}
        return entry

    def overridden_slots(self) -> dict[str, dict[str, list[Any]]]:
        """Every slot value set at run time, by model (what a slots file holds)."""
        return {name: dict(types) for name, types in self._slots.items() if types}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GrammarError(f"cannot read context file: {e}", source=path) from e
