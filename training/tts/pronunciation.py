"""Ear-proxy for pronunciation: does Whisper hear the word an engine was asked to say?

    python -m training.tts.pronunciation CONTEXT.yaml [--engines flite festival] [--words latte]

Synthesizes each word of a grammar's vocabulary (in a short carrier phrase, "say WORD again")
with one plain voice per engine, transcribes it with the bundled Whisper model's unconstrained
greedy decoding, and lists the words that were not heard: candidates for a respelling in
:data:`training.tts.lexicon.RESPELLINGS`. A miss is a hint, not proof (Whisper may also mishear
a rare word); listen to the cached audio before adding an entry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from assistant.artifacts import SpeechModelSpec, ensure_speech_model
from assistant.audio import SAMPLE_RATE_HZ
from assistant.features import frames_for_duration, log_mel_spectrogram
from assistant.grammar import compile_word_graph, load_context, normalize_text
from assistant.speech_model import KVCache, SpeechModel

from .catalog import engine_available
from .synthesize import synthesize
from .voice import ENGINES, Voice

PLAIN_VOICES = {
    "espeak": Voice("espeak", "en-us+m3"),
    "flite": Voice("flite", "slt"),
    "festival": Voice("festival", "kal"),
    "piper": Voice("piper", "joe"),
    "kokoro": Voice("kokoro", "jf_alpha"),
}
CARRIER = "say {} again"
MAX_TOKENS = 16  # the carrier is a few tokens; tiny.en loops on short clips


def transcribe(model: SpeechModel, audio: np.ndarray) -> str:
    """Greedy, unconstrained Whisper transcript of ``audio`` (float32 mono 16 kHz)."""
    pad = np.zeros(SAMPLE_RATE_HZ // 4, np.float32)
    padded = np.concatenate([pad, audio, pad])
    mel = log_mel_spectrogram(padded, n_mels=model.dims.n_mels,
                              n_frames=frames_for_duration(padded.size))
    encoded = model.encode(mel)
    special = model.special
    logprobs, cache = model.decode(np.array([model.prompt], np.int64),
                                   KVCache.empty(model.dims, 1), encoded)
    tokens: list[int] = []
    for _ in range(MAX_TOKENS):
        scores = logprobs[0, -1].copy()
        scores[special.eot + 1 :] = -np.inf  # text tokens and end-of-text only
        token = int(np.argmax(scores))
        if token == special.eot:
            break
        tokens.append(token)
        if "again" in model.tokenizer.decode(tokens).lower():
            break
        logprobs, cache = model.decode(np.array([[token]], np.int64), cache, encoded)
    return model.tokenizer.decode(tokens).strip()


def heard(model: SpeechModel, word: str, voice: Voice) -> tuple[bool, str]:
    transcript = transcribe(model, synthesize(CARRIER.format(word), voice))
    words = normalize_text(transcript)
    target = normalize_text(word)
    hit = any(words[i : i + len(target)] == target for i in range(len(words)))
    return hit, transcript


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("context", type=Path)
    parser.add_argument("--engines", nargs="*", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--words", nargs="*", help="check only these words")
    args = parser.parse_args(argv)
    context = load_context(args.context)
    words = args.words or sorted(compile_word_graph(context).vocabulary)
    model = SpeechModel(ensure_speech_model(SpeechModelSpec("tiny.en", "int8")))
    misses = 0
    for engine in args.engines:
        if not engine_available(engine):
            print(f"{engine}: not installed", file=sys.stderr)
            continue
        for word in words:
            ok, transcript = heard(model, word, PLAIN_VOICES[engine])
            if not ok:
                misses += 1
                print(f"{engine}\t{word}\theard: {transcript!r}")
    print(f"{misses} misses over {len(words)} words x {len(args.engines)} engines",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
