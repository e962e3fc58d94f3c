"""The hand-written ONNX graphs equal the Transformers model (declared tolerances).

* A tiny random-config Whisper (fast): encoder and decoder outputs within 1e-4.
* The real tiny.en weights in FP32: within 2e-3 on real speech features.
* INT8: same greedy tokens as FP32 on a real recording (decisions, not values).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
onnx = pytest.importorskip("onnx")

from assistant.artifacts import write_speech_model  # noqa: E402
from assistant.hf import build_hf_model, state_dict_from_hf  # noqa: E402
from assistant.speech_model import KVCache, SpeechModel  # noqa: E402
from assistant.tokenizer import SpecialTokens  # noqa: E402
from assistant.whisper_weights import WhisperDims  # noqa: E402

FP32_ATOL = 1e-4  # random tiny model, float32 on both sides
REAL_FP32_ATOL = 2e-3  # real weights: longer sums, same order of float error as CTranslate2's

TINY_DIMS = WhisperDims(n_mels=80, n_audio_ctx=60, n_audio_state=64, n_audio_head=4,
                        n_audio_layer=2, n_vocab=300, n_text_ctx=40, n_text_state=64,
                        n_text_head=4, n_text_layer=2)
TINY_SPECIAL = SpecialTokens(eot=256, sot=257, transcribe=258, translate=259,
                             no_timestamps=260, no_speech=261, timestamp_begin=262,
                             english=None)


def _tokenizer_json() -> dict[str, object]:
    from assistant.tokenizer import _byte_to_unicode

    vocab = {c: i for i, c in enumerate(_byte_to_unicode().values())}
    added = [{"id": i, "content": c, "special": True} for c, i in [
        ("<|endoftext|>", 256), ("<|startoftranscript|>", 257), ("<|transcribe|>", 258),
        ("<|translate|>", 259), ("<|notimestamps|>", 260), ("<|nospeech|>", 261)]]
    return {"model": {"type": "BPE", "vocab": vocab, "merges": []}, "added_tokens": added}


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    from transformers import WhisperForConditionalGeneration

    from assistant.hf import whisper_config

    hf = WhisperForConditionalGeneration(whisper_config(TINY_DIMS, TINY_SPECIAL)).eval()
    out = tmp_path_factory.mktemp("random_whisper")
    write_speech_model(out, TINY_DIMS, state_dict_from_hf(hf), _tokenizer_json(),
                       TINY_SPECIAL, "random-tiny", "fp32")
    return hf, SpeechModel(out, threads=1)


def test_random_encoder_matches_transformers(random_model) -> None:  # type: ignore[no-untyped-def]
    hf, model = random_model
    mel = np.random.default_rng(1).standard_normal((2, 80, 90)).astype(np.float32)
    encoded = model.encode(mel)
    with torch.no_grad():
        # A window shorter than 30 s: the positional table is sliced (what the graph does).
        enc = hf.model.encoder
        x = torch.nn.functional.gelu(enc.conv1(torch.from_numpy(mel)))
        x = torch.nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        for layer in enc.layers:
            x = layer(x, attention_mask=None)
            x = x[0] if isinstance(x, tuple) else x
        expected = enc.layer_norm(x).numpy()
    assert encoded.hidden.shape == (2, 45, 64)
    np.testing.assert_allclose(encoded.hidden, expected, atol=FP32_ATOL)


def test_random_decoder_with_cache_matches_transformers(random_model) -> None:  # type: ignore[no-untyped-def]
    hf, model = random_model
    mel = np.random.default_rng(2).standard_normal((1, 80, 60)).astype(np.float32)
    encoded = model.encode(mel)
    tokens = [257, 260, 17, 42, 99, 3]
    with torch.no_grad():
        out = hf.model.decoder(input_ids=torch.tensor([tokens]),
                               encoder_hidden_states=torch.from_numpy(encoded.hidden))
        expected = torch.log_softmax(hf.proj_out(out.last_hidden_state), -1).numpy()
    # All at once ...
    logprobs, _ = model.decode(np.array([tokens]), KVCache.empty(model.dims, 1), encoded)
    np.testing.assert_allclose(logprobs, expected, atol=FP32_ATOL)
    # ... and one token at a time through the cache, with a batch of 3 sharing the encoder.
    cache = KVCache.empty(model.dims, 3)
    for i, token in enumerate(tokens):
        step, cache = model.decode(np.full((3, 1), token), cache, encoded)
        for row in range(3):
            np.testing.assert_allclose(step[row, 0], expected[0, i], atol=FP32_ATOL)
    assert cache.length == len(tokens)


def test_real_tiny_fp32_matches_transformers_and_int8_decides_the_same(
    tmp_path: Path, speak
) -> None:  # type: ignore[no-untyped-def]
    from assistant.artifacts import SpeechModelSpec, ensure_speech_model
    from assistant.ct2 import read_ct2_model
    from assistant.features import frames_for_duration, log_mel_spectrogram
    from assistant.pretrained import locate
    from assistant.tokenizer import load_tokenizer
    from assistant.whisper_weights import state_dict_from_ct2

    files = locate("tiny.en")
    special = load_tokenizer(files.tokenizer).special_tokens()
    dims, sd = state_dict_from_ct2(read_ct2_model(files.weight_parts))
    hf = build_hf_model(dims, sd, special)
    audio = speak("set a timer for ten minutes please")
    mel = log_mel_spectrogram(audio, n_frames=frames_for_duration(audio.size))
    fp32 = SpeechModel(ensure_speech_model(SpeechModelSpec("tiny.en", "fp32")))
    int8 = SpeechModel(ensure_speech_model(SpeechModelSpec("tiny.en", "int8")))
    encoded = fp32.encode(mel)

    def greedy(model: SpeechModel) -> list[int]:
        enc = model.encode(mel)
        tokens = list(model.prompt)
        logprobs, cache = model.decode(np.array([tokens]), KVCache.empty(model.dims, 1), enc)
        for _ in range(30):
            token = int(logprobs[0, -1].argmax())
            if token == special.eot:
                break
            tokens.append(token)
            logprobs, cache = model.decode(np.array([[token]]), cache, enc)
        return tokens

    tokens = greedy(fp32)
    with torch.no_grad():
        out = hf.model.decoder(input_ids=torch.tensor([tokens]),
                               encoder_hidden_states=torch.from_numpy(encoded.hidden))
        expected = torch.log_softmax(hf.proj_out(out.last_hidden_state), -1).numpy()
    logprobs, _ = fp32.decode(np.array([tokens]), KVCache.empty(dims, 1), encoded)
    np.testing.assert_allclose(logprobs, expected, atol=REAL_FP32_ATOL)
    assert "timer" in fp32.tokenizer.decode(tokens).lower()
    assert greedy(int8) == tokens


def test_utterances_of_different_lengths_decode_together_as_alone(random_model) -> None:  # type: ignore[no-untyped-def]
    """Several utterances in one decoder run (their keys padded and masked, each with its
    own rows) give every row what it gets alone, to float rounding."""
    from assistant.speech_model import CrossKeys

    _, model = random_model
    rng = np.random.default_rng(3)
    encoded = [model.encode(rng.standard_normal((1, 80, frames)).astype(np.float32))
               for frames in (60, 24, 90)]
    rows = 3
    tokens = rng.integers(0, 256, (rows * len(encoded), 1))
    past = {name: rng.standard_normal((rows * len(encoded), *a.shape[1:2], 4, *a.shape[3:]))
            .astype(np.float32) for name, a in KVCache.empty(model.dims, 1).arrays.items()}
    together, cache = model.decode(tokens, KVCache(past),
                                   CrossKeys.together([e.keys for e in encoded]))
    assert together.shape[0] == rows * len(encoded) and cache.length == 5
    for u, enc in enumerate(encoded):
        span = slice(u * rows, (u + 1) * rows)
        alone, alone_cache = model.decode(tokens[span], KVCache({k: v[span] for k, v in
                                                                 past.items()}), enc)
        np.testing.assert_allclose(together[span], alone, atol=1e-5)
        np.testing.assert_allclose(cache.arrays["past_k_0"][span],
                                   alone_cache.arrays["past_k_0"], atol=1e-5)
    with pytest.raises(Exception, match="cannot be shared evenly"):
        model.decode(tokens[:4], KVCache({k: v[:4] for k, v in past.items()}),
                     CrossKeys.together([e.keys for e in encoded]))
