"""The free-transcription baseline and the PyTorch runtime, on real weights and real TTS."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.grammar import context_from_yaml, parse

GRAMMAR = context_from_yaml("""
context:
  expressions:
    order:
      - "[can i get, i want] (a) $size:size $drink:drink (please)"
  slots:
    size: [small, large]
    drink: [latte, cappuccino, coffee]
""")


def test_free_transcript_then_parse_understands_a_clear_command(tiny_int8, speak) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.free_transcript import FreeTranscriber, TextMatchEngine

    transcriber = FreeTranscriber(tiny_int8)
    audio = speak("can I get a large latte please", pad_s=0.1)
    exact = TextMatchEngine(transcriber, GRAMMAR).recognize(audio)
    fuzzy = TextMatchEngine(transcriber, GRAMMAR, fuzzy=True).recognize(audio)
    assert "latte" in exact.heard.lower()
    # Greedy decoding may repeat the command after the pause: then only the fuzzy matcher
    # (which also reads the first sentence alone) understands it.
    assert exact.understood == (parse(GRAMMAR, exact.heard) is not None)
    assert fuzzy.understood, fuzzy
    assert (fuzzy.intent, fuzzy.slots) == ("order", {"size": "large", "drink": "latte"})
    assert fuzzy.timing_ms["transcribe"] == exact.timing_ms["transcribe"]  # decoded once
    rejected = TextMatchEngine(transcriber, GRAMMAR, fuzzy=True).recognize(
        speak("what is the weather like tomorrow", pad_s=0.1))
    assert not rejected.understood


def test_pytorch_runtime_computes_what_the_onnx_graphs_compute(speak) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from assistant.artifacts import SpeechModelSpec, ensure_speech_model
    from assistant.features import frames_for_duration, log_mel_spectrogram
    from assistant.speech_model import KVCache, SpeechModel
    from benchmarks.torch_model import TransformersSpeechModel, hidden_numpy

    onnx_model = SpeechModel(ensure_speech_model(SpeechModelSpec("tiny.en", "fp32")), threads=1)
    torch_model = TransformersSpeechModel("tiny.en", threads=1)
    assert torch_model.prompt == onnx_model.prompt
    audio = speak("set a timer for ten minutes", pad_s=0.1)
    mel = log_mel_spectrogram(audio, n_frames=frames_for_duration(audio.size))
    a, b = onnx_model.encode(mel), torch_model.encode(mel)
    np.testing.assert_allclose(hidden_numpy(b), a.hidden, atol=2e-3)
    prompt = np.array([onnx_model.prompt])
    la, ca = onnx_model.decode(prompt, KVCache.empty(onnx_model.dims, 1), a)
    lb, cb = torch_model.decode(prompt, KVCache.empty(onnx_model.dims, 1), b)
    for _ in range(3):  # through the cache, beams reordered as the beam search does
        np.testing.assert_allclose(lb, la, atol=2e-3)
        token = int(la[0, -1].argmax())
        rows = [0] * 3
        la, ca = onnx_model.decode(np.full((3, 1), token), ca.select(rows), a)
        lb, cb = torch_model.decode(np.full((3, 1), token), cb.select(rows), b)
    np.testing.assert_allclose(lb, la, atol=2e-3)
