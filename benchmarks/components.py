"""Component workloads: each piece of the recognizer on fixed inputs, ready to be timed.

One definition serves both ``benchmarks/test_components.py`` (pytest-benchmark) and
``assistant bench`` (:func:`time_call`), so both measure the same work:

=============  ===========================================================================
features       Whisper log-mel features of ``audio_s`` seconds (numpy)
vad_frame      one 32 ms Silero VAD frame with its recurrent state (onnxruntime)
encoder        the encoder on an ``audio_s``-second window (the window the recognizer uses)
decoder_step   one decoder step for 5 rows (4 beams + the free decode) with 16 cached tokens
               over a 5 s window: the unit of the beam search
classifier     the fine-tuned model's intent classifier on 5 s of encoder states
parse          the recording's grammar loaded from its YAML, compiled, and 100 of its sentences
               parsed with the parser's cache empty (what a grammar reload costs)
recognize      a whole utterance: features, encoder, constrained beam search, confidence
=============  ===========================================================================

Models are the bundled tiny.en and base in INT8 and FP32 (onnxruntime), and the same FP32
weights in PyTorch/Transformers (:mod:`benchmarks.torch_model`); both runtimes get the
same number of threads (``threads``, default ``min(4, cores)`` as the recognizer).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.audio import SAMPLE_RATE_HZ
from assistant.features import frames_for_duration, log_mel_spectrogram

AUDIO_LENGTHS_S = (1.0, 2.0, 5.0, 10.0)
DECODER_ROWS = 5  # beam_size 4 + the free decode
DECODER_CACHED_TOKENS = 16
WINDOW_S = 5.0  # encoder window behind the decoder step and the classifier


@dataclass(frozen=True)
class Recording:
    """A real command and its grammar; ``span`` is where the speech is (samples)."""

    audio: np.ndarray
    span: tuple[int, int]
    grammar: Path
    source: str

    def window(self, seconds: float) -> np.ndarray:
        """``seconds`` of the recording centred on the speech (the middle of the speech when
        shorter than it; zeros beyond the recording's ends)."""
        size = int(seconds * SAMPLE_RATE_HZ)
        start = (self.span[0] + self.span[1] - size) // 2
        padded = np.pad(self.audio, (size, size))
        return padded[start + size : start + 2 * size]


def command_recording(data: Path) -> Recording:
    """One barista-dev recording (speech 2.4 s; the first one of a subset without it), or
    espeak-ng speech of the home grammar when the evaluation data is absent."""
    from assistant.audio import read_audio
    from assistant.vad import SileroVad, speech_span

    from .datasets import barista_grammar, barista_labels, have_data

    if have_data(data):
        path = data / "barista-dev" / "audio" / "53b77672-339f-461b-a232-bfd79cf20e3e.wav"
        if not path.is_file():  # a subset of the data: its first recording
            path = barista_labels(data, 1)[0].audio
        audio, grammar, source = read_audio(path), barista_grammar(data), path.name
    else:
        from training.tts import Voice, synthesize

        speech = synthesize("set a timer for five minutes", Voice("espeak", "en-us+m3"))
        audio = np.pad(speech, (8000, 8000))
        grammar = Path(__file__).resolve().parent.parent / "assistant" / "contexts" / "home.yaml"
        source = "espeak-ng: set a timer for five minutes"
    span = speech_span(audio, SileroVad()) or (0, audio.size)
    return Recording(audio, span, grammar, source)


@dataclass(frozen=True)
class Case:
    """One workload. Fields that do not apply to a component are left empty."""

    component: str
    model: str = ""  # "tiny.en" | "base"
    precision: str = ""  # "int8" | "fp32"
    runtime: str = ""  # "onnxruntime" | "pytorch"
    audio_s: float = 0.0

    @property
    def id(self) -> str:
        parts = [self.component, self.model, self.precision, self.runtime]
        if self.audio_s:
            parts.append(f"{self.audio_s:g}s")
        return "-".join(p for p in parts if p)


def cases(quick: bool = False, torch: bool = True) -> list[Case]:
    """The workloads of a run; ``quick`` keeps tiny.en, base INT8 and two lengths."""
    lengths = (2.0, 5.0) if quick else AUDIO_LENGTHS_S
    models: list[tuple[str, str, str]] = [("tiny.en", "int8", "onnxruntime"),
                                          ("tiny.en", "fp32", "onnxruntime"),
                                          ("base", "int8", "onnxruntime")]
    if not quick:
        models.append(("base", "fp32", "onnxruntime"))
    if torch:
        models.append(("tiny.en", "fp32", "pytorch"))
        if not quick:
            models.append(("base", "fp32", "pytorch"))
    out = [Case("features", audio_s=s) for s in lengths] + [Case("vad_frame")]
    out += [Case("encoder", m, p, r, s) for m, p, r in models for s in lengths]
    out += [Case("decoder_step", m, p, r) for m, p, r in models]
    out += [Case("classifier"), Case("parse")]
    out += [Case("recognize", m, p, r, s) for m, p, r in models for s in lengths
            if r == "onnxruntime" or s == lengths[-1]]
    return out


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


class Workbench:
    """Loads each model once and builds the callables of :func:`cases` over them."""

    def __init__(self, recording: Recording, threads: int | None = None,
                 model_dir: Path | None = None):
        self.recording = recording
        self.grammar = recording.grammar
        self.threads = threads
        self.model_dir = model_dir
        self._models: dict[tuple[str, str, str], Any] = {}
        self._recognizers: dict[tuple[str, str, str], Any] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-")
        self._vad: Any = None

    def close(self) -> None:
        self._tmp.cleanup()

    def speech_model(self, name: str, precision: str, runtime: str) -> Any:
        key = (name, precision, runtime)
        if key not in self._models:
            if runtime == "pytorch":
                from .torch_model import TransformersSpeechModel

                self._models[key] = TransformersSpeechModel(name, threads=self.threads)
            else:
                from assistant.artifacts import SpeechModelSpec, ensure_speech_model
                from assistant.speech_model import SpeechModel

                directory = ensure_speech_model(SpeechModelSpec(name, precision))
                self._models[key] = SpeechModel(directory, threads=self.threads)
        return self._models[key]

    def recognizer(self, name: str, precision: str, runtime: str) -> Any:
        key = (name, precision, runtime)
        if key not in self._recognizers:
            from assistant.grammar import load_context
            from assistant.recognizer import Recognizer, RecognizerConfig

            # The config's precision names a bundled build; fp16 (GPU) runs the fp32 weights.
            config = RecognizerConfig(speech_model=name,
                                      precision="int8" if precision == "int8" else "fp32",
                                      threads=self.threads)
            recognizer = Recognizer(load_context(self.grammar),
                                    self.speech_model(name, precision, runtime), config)
            recognizer.warm_up()
            self._recognizers[key] = recognizer
        return self._recognizers[key]

    def vad(self) -> Any:
        if self._vad is None:
            from assistant.vad import SileroVad

            self._vad = SileroVad()
        return self._vad

    def classifier(self) -> tuple[Any, int]:
        """The model directory's intent classifier (or a random one of its shape) and the
        width of the encoder states it reads."""
        import json

        from assistant.intent_classifier import CLASSIFIER_FILE, IntentClassifier

        if self.model_dir is not None and (self.model_dir / CLASSIFIER_FILE).is_file():
            metadata = json.loads((self.model_dir / "metadata.json").read_text())
            info = metadata["classifier"]
            return (IntentClassifier(self.model_dir / info["file"], info["labels"]),
                    int(metadata["dims"]["n_audio_state"]))
        return random_classifier(Path(self._tmp.name), d_model=384, classes=2), 384

    def build(self, case: Case) -> Callable[[], object]:
        """The callable that runs ``case`` once (inputs prepared outside it)."""
        rng = np.random.default_rng(0)
        if case.component == "features":
            audio = (0.1 * rng.standard_normal(int(case.audio_s * SAMPLE_RATE_HZ))).astype(
                np.float32)
            frames = frames_for_duration(audio.size)
            return lambda: log_mel_spectrogram(audio, n_frames=frames)
        if case.component == "vad_frame":
            from assistant.vad import FRAME_SAMPLES, VadState

            vad, state = self.vad(), VadState()
            frame = (0.1 * rng.standard_normal(FRAME_SAMPLES)).astype(np.float32)
            return lambda: vad.process(frame, state)
        if case.component == "parse":
            from assistant.grammar import context_from_yaml, parse, sample_sentences

            text = self.grammar.read_text()
            sentences = [a.text for a in sample_sentences(context_from_yaml(text), 100, seed=3)]

            def parse_fresh() -> object:
                context = context_from_yaml(text)
                context.automaton  # noqa: B018 - compile before parsing
                return [parse(context, s) for s in sentences]

            return parse_fresh
        if case.component == "classifier":
            classifier, width = self.classifier()
            hidden = rng.standard_normal((1, int(WINDOW_S * 50), width)).astype(np.float32)
            return lambda: classifier.classify(hidden)
        model = self.speech_model(case.model, case.precision, case.runtime)
        sync = getattr(model, "synchronize", lambda: None)
        if case.component == "encoder":
            mel = synthetic_mel(case.audio_s, model.dims.n_mels)

            def encode() -> object:
                out = model.encode(mel)
                sync()
                return out

            return encode
        if case.component == "decoder_step":
            encoded, cache = decoder_state(model)
            tokens = np.full((DECODER_ROWS, 1), 440, np.int64)
            return lambda: model.decode(tokens, cache, encoded)
        if case.component == "recognize":
            recognizer = self.recognizer(case.model, case.precision, case.runtime)
            audio = self.recording.window(case.audio_s)
            return lambda: recognizer.recognize(audio)
        raise ValueError(f"unknown component {case.component!r}")


def synthetic_mel(audio_s: float, n_mels: int) -> np.ndarray:
    """Log-mel features of ``audio_s`` seconds of noise (compute does not depend on content)."""
    audio = (0.1 * np.random.default_rng(1).standard_normal(
        int(audio_s * SAMPLE_RATE_HZ))).astype(np.float32)
    return log_mel_spectrogram(audio, n_mels=n_mels, n_frames=frames_for_duration(audio.size))


def decoder_state(model: Any, rows: int = DECODER_ROWS,
                  cached: int = DECODER_CACHED_TOKENS) -> tuple[Any, Any]:
    """Encoder output of a 5 s window and a cache of ``cached`` tokens for ``rows`` rows."""
    from assistant.speech_model import KVCache

    encoded = model.encode(synthetic_mel(WINDOW_S, model.dims.n_mels))
    prompt = list(model.prompt)
    tokens = np.array([prompt + [440] * (cached - len(prompt))] * rows, np.int64)
    _, cache = model.decode(tokens, KVCache.empty(model.dims, rows), encoded)
    return encoded, cache


def random_classifier(directory: Path, d_model: int, classes: int) -> Any:
    """An intent classifier of the fine-tuned models' shape with random weights (for timing)."""
    import onnx

    from assistant.intent_classifier import IntentClassifier
    from assistant.onnx_graph import build_classifier

    rng = np.random.default_rng(0)
    hidden = 256  # training/classifier.py's default

    def w(*shape: int) -> np.ndarray:
        return (0.05 * rng.standard_normal(shape)).astype(np.float32)

    weights = {"norm.weight": np.ones(d_model, np.float32), "norm.bias": w(d_model),
               "attention.weight": w(1, d_model), "attention.bias": w(1),
               "fc1.weight": w(hidden, d_model), "fc1.bias": w(hidden),
               "fc2.weight": w(classes, hidden), "fc2.bias": w(classes)}
    labels = [f"intent{i}" for i in range(classes - 1)] + ["<out-of-domain>"]
    path = directory / "classifier.onnx"
    onnx.save(build_classifier(weights, labels), str(path))
    return IntentClassifier(path, labels)


def time_call(fn: Callable[[], object], min_runs: int = 5, min_time_s: float = 0.5,
              max_runs: int = 200, warmup: int = 2) -> dict[str, float]:
    """Wall-clock milliseconds of ``fn`` (after ``warmup`` calls): median, p95, mean, runs."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs
                                     or time.perf_counter() - started < min_time_s):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    ordered = sorted(times)
    return {"median_ms": statistics.median(ordered),
            "p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "mean_ms": statistics.fmean(ordered), "runs": len(ordered)}
