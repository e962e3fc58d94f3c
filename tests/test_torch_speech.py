"""The speech model on PyTorch (assistant/torch_speech.py), the path ``--device cuda`` takes,
checked on the CPU (``cpu-pytorch``) against ONNX Runtime running the same directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.artifacts import SpeechModelSpec, ensure_speech_model
from assistant.errors import ConfigError
from assistant.recognizer import Recognizer, RecognizerConfig, Result
from assistant.speech_model import KVCache, SpeechModel, load_speech_model

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / "assistant" / "contexts" / "home.yaml"


@pytest.fixture(scope="module")
def fp32_dir() -> Path:
    return ensure_speech_model(SpeechModelSpec("tiny.en", "fp32"))


@pytest.fixture(scope="module")
def models(fp32_dir: Path) -> tuple[SpeechModel, SpeechModel]:
    return SpeechModel(fp32_dir, threads=2), load_speech_model(fp32_dir, 2, "cpu-pytorch")


def _mel(frames: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((80, frames)) * 0.3).astype(np.float32)


def test_the_encoder_and_decoder_compute_what_the_onnx_graphs_do(
        models: tuple[SpeechModel, SpeechModel]) -> None:
    onnx_model, torch_model = models
    assert torch_model.describe()["runtime"] == "pytorch"
    mel = _mel(300, 0)
    ours, theirs = torch_model.encode(mel), onnx_model.encode(mel)
    assert isinstance(ours.hidden, np.ndarray)  # the classifier and monitor read it on the CPU
    np.testing.assert_allclose(ours.hidden, theirs.hidden, atol=1e-3)
    for name, value in theirs.cross.items():
        np.testing.assert_allclose(ours.cross[name].numpy(), value, atol=1e-3)
    prompt = np.array([onnx_model.prompt], np.int64)
    ours_lp, ours_cache = torch_model.decode(prompt, KVCache.empty(torch_model.dims, 1), ours)
    theirs_lp, theirs_cache = onnx_model.decode(prompt, KVCache.empty(onnx_model.dims, 1),
                                                theirs)
    np.testing.assert_allclose(ours_lp, theirs_lp, atol=1e-3)
    # A next step on three beams made of the first row, from each runtime's own cache.
    tokens = np.array([[262], [257], [317]], np.int64)
    ours_lp, _ = torch_model.decode(tokens, ours_cache.select([0, 0, 0]), ours)
    theirs_lp, _ = onnx_model.decode(tokens, theirs_cache.select([0, 0, 0]), theirs)
    np.testing.assert_allclose(ours_lp, theirs_lp, atol=1e-3)
    assert ours_lp.shape == (3, 1, torch_model.dims.n_vocab)


def test_several_utterances_decode_together_as_in_the_onnx_graph(
        models: tuple[SpeechModel, SpeechModel]) -> None:
    """Two utterances of different lengths in one run: padded keys, masked, and each
    utterance's rows (two and two) against its own audio only."""
    onnx_model, torch_model = models
    mels = [_mel(300, 1), _mel(160, 2)]
    prompt = np.array([onnx_model.prompt] * 4, np.int64)
    out = []
    for model in (torch_model, onnx_model):
        keys = model.keys_together([model.encode(m).keys for m in mels])
        cache = model.gather_cache([(KVCache.empty(model.dims, 1), np.array([0, 0]))] * 2)
        out.append(model.decode(prompt, cache, keys)[0])
    np.testing.assert_allclose(out[0], out[1], atol=1e-3)
    # The shorter utterance's rows see only its own audio: as when decoded alone.
    alone, _ = torch_model.decode(prompt[:2], KVCache.empty(torch_model.dims, 2),
                                  torch_model.encode(mels[1]))
    np.testing.assert_allclose(out[0][2:], alone, atol=1e-4)
    assert np.abs(out[0][0] - out[0][2]).max() > 0.1  # the two utterances differ


def test_int8_weights_are_dequantized_per_output_channel(fp32_dir: Path) -> None:
    """An INT8 directory runs on the GPU with the weights its CPU graphs multiply by: each
    within one quantization step (per output column) of the FP32 model's."""
    from assistant.torch_speech import read_graph_weights

    int8 = read_graph_weights(ensure_speech_model(SpeechModelSpec("tiny.en", "int8"))
                              / "decoder.onnx")
    fp32 = read_graph_weights(fp32_dir / "decoder.onnx")
    assert set(int8) == set(fp32)
    for name in ("model.decoder.layers.0.fc1.weight_t", "proj_out.weight_t",
                 "model.decoder.layers.3.encoder_attn.q_proj.weight_t"):
        step = np.abs(fp32[name]).max(axis=0) / 127  # per output column
        error = np.abs(int8[name] - fp32[name])
        assert (error <= step + 1e-6).all(), name
        assert error.max() > 0  # dequantized, not the FP32 weights read twice


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_recognizer_on_pytorch_hears_what_onnx_runtime_hears(speak, precision: str) -> None:  # type: ignore[no-untyped-def]
    """FP32: the same transcripts and confidences. INT8: the same weights, but ONNX Runtime's
    INT8 kernels also quantize each activation, which PyTorch does not: the same answers
    for clear commands, confidences near (docs/scaling.md)."""
    onnx_recognizer = Recognizer.from_context(HOME, RecognizerConfig(precision=precision,
                                                                     threads=2))
    torch_recognizer = Recognizer.from_context(HOME, RecognizerConfig(
        precision=precision, threads=2, device="cpu-pytorch"))
    audio = [speak("turn off the bedroom lights"),
             speak("set a timer for five minutes", voice="en-us+f2"),
             speak("what is the capital of france", voice="en-gb+m1")]
    alone = [torch_recognizer.recognize(a) for a in audio]
    together = torch_recognizer.recognize_many(audio)
    for a, ours, theirs in zip(audio, alone, together, strict=True):
        expected = onnx_recognizer.recognize(a)
        for result in (ours, theirs):
            assert isinstance(result, Result)
            assert (result.intent, result.slots, result.understood) == (
                expected.intent, expected.slots, expected.understood)
            if precision == "fp32":
                assert result.transcript == expected.transcript
            assert result.confidence == pytest.approx(
                expected.confidence, abs=0.01 if precision == "fp32" else 0.1)
    assert [r.intent for r in alone[:2]] == ["lightsOff", "setTimer"]


def test_a_device_is_checked_before_anything_runs_on_it(fp32_dir: Path) -> None:
    with pytest.raises(ConfigError, match="device must be cpu, cuda, cuda:N or cpu-pytorch"):
        RecognizerConfig(device="gpu")
    RecognizerConfig(device="cuda:1")  # a name is fine; whether it exists is seen on load
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(ConfigError, match="finds no CUDA GPU here"):
        load_speech_model(fp32_dir, device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_serving_on_a_missing_gpu_stops_with_the_reason(tmp_path: Path) -> None:
    """``assistant serve --device cuda`` where there is none: exit 2 and say why (the
    workers' load fails; the server does not hang or print a broken pool's traceback)."""
    done = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "serve", "--port", "0", "--device", "cuda",
         "--workers", "1", "--context", f"home={HOME}"],
        capture_output=True, text=True, timeout=240, cwd=REPO)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "could not load the models: device 'cuda': PyTorch" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_exported_model_does_not_keep_the_device(tmp_path: Path) -> None:
    """The device is where this machine runs a model, not part of the model."""
    from assistant.model_dir import export_model_dir

    recognizer = Recognizer.from_context(HOME, RecognizerConfig(precision="fp32",
                                                                device="cpu-pytorch"))
    export_model_dir(recognizer, tmp_path / "model", HOME)
    stored = json.loads((tmp_path / "model" / "metadata.json").read_text())["recognizer"]
    assert "device" not in stored and stored["precision"] == "fp32"
    again = Recognizer.from_model_dir(tmp_path / "model")
    assert type(again.model) is SpeechModel  # ONNX Runtime, the default device
