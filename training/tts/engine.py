"""What a TTS engine is, and the one map of engines by name.

An engine is a class with the attributes and methods of :class:`Engine`; adding one is a
module with that class plus one line in :data:`TTS_ENGINES` (or, at run time,
``TTS_ENGINES.register("name", MyEngine)``). Everything else (voice validation, the cache
key, which voices exist and which are held out, how a clip varies a voice, the data card's
versions, synthesis) asks the engine, so nothing else needs an edit. An unknown engine name
is a :class:`~assistant.errors.ConfigError` that names the known ones.

The class-level parts (``available``, ``check``, ``voices``, ...) never load a model; an
instance is made once per process, on first use, by :func:`load_engine`, and may then load
its models (lazily, per voice if it likes).
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from assistant.registry import Registry

if TYPE_CHECKING:
    from .voice import Voice

TTS_ENGINES: Registry[Engine] = Registry("TTS engine", {
    "espeak": "training.tts.command_line:EspeakEngine",
    "flite": "training.tts.command_line:FliteEngine",
    "festival": "training.tts.command_line:FestivalEngine",
    "piper": "training.tts.piper:PiperEngine",
    "kokoro": "training.tts.kokoro:KokoroEngine",
})

# The built-in engines' names, in registration order (dataset defaults, CLI choices).
ENGINES: tuple[str, ...] = tuple(TTS_ENGINES.names())


class Engine(Protocol):
    """One TTS engine (see module docs)."""

    # The Voice settings it honours besides rate and conversion: "pitch", "noise_scale",
    # "noise_w", "seed". A voice that sets any other is refused.
    settings: ClassVar[frozenset[str]]
    # Whether clips of its voices may be pitch/formant-converted into new speakers.
    convertible: ClassVar[bool]

    @classmethod
    def available(cls) -> bool:
        """Installed here (binaries, packages), without loading anything big."""
        ...

    @classmethod
    def check(cls, voice: Voice) -> None:
        """Raise ConfigError for a voice name or setting this engine cannot speak."""
        ...

    @classmethod
    def voices(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Base voice names: (those training may use, those held out for unseen-voice tests)."""
        ...

    @classmethod
    def vary(cls, rng: random.Random) -> dict[str, Any]:
        """The engine's own settings of one clip (e.g. ``{"pitch": 40}``), drawn from rng."""
        ...

    @classmethod
    def settings_id(cls, voice: Voice) -> str:
        """The engine's settings of ``voice`` as text for the cache key ("" if none)."""
        ...

    @classmethod
    def versions(cls) -> dict[str, str]:
        """What the audio depends on (packages, binaries and their versions)."""
        ...

    def speak(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        """float32 mono samples of ``text`` and their sample rate in Hz."""
        ...


class EngineDefaults:
    """The parts of :class:`Engine` most engines leave as they are: no settings of their own,
    convertible, every voice name accepted, nothing drawn per clip, nothing in the cache key."""

    settings: ClassVar[frozenset[str]] = frozenset()
    convertible: ClassVar[bool] = True

    @classmethod
    def check(cls, voice: Voice) -> None:
        return None

    @classmethod
    def vary(cls, rng: random.Random) -> dict[str, Any]:
        return {}

    @classmethod
    def settings_id(cls, voice: Voice) -> str:
        return ""


def engine_class(name: str) -> type[Engine]:
    """The engine called ``name`` (ConfigError naming the known ones if there is none)."""
    return TTS_ENGINES.get(name)


def engine_available(name: str) -> bool:
    return engine_class(name).available()


_loaded: dict[type[Engine], Engine] = {}
_lock = threading.Lock()


def load_engine(name: str) -> Engine:
    """This process's instance of engine ``name`` (made on first use)."""
    cls = engine_class(name)
    engine = _loaded.get(cls)
    if engine is None:
        with _lock:
            engine = _loaded.get(cls)
            if engine is None:
                engine = _loaded[cls] = cls()
    return engine
