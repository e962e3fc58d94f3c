"""The CTranslate2 -> Transformers conversion is exact: checked against the ctranslate2 package.

Encoder states agree to ~1e-3 and greedy transcripts are identical on real recordings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_data

torch = pytest.importorskip("torch")
ctranslate2 = pytest.importorskip("ctranslate2")
pytest.importorskip("transformers")

from assistant.audio import read_audio  # noqa: E402
from assistant.ct2 import read_ct2_model  # noqa: E402
from assistant.features import log_mel_spectrogram  # noqa: E402
from assistant.hf import build_hf_model  # noqa: E402
from assistant.pretrained import locate  # noqa: E402
from assistant.tokenizer import load_tokenizer  # noqa: E402
from assistant.whisper_weights import state_dict_from_ct2  # noqa: E402

RECORDINGS = [
    "05984e70-4ec7-4aaa-af56-8dbacf982486.wav",
    "05b2d348-4ab5-4ccc-a17e-3ccb3907b272.wav",
    "062522f9-261b-4cc5-9edb-c5183c6402af.wav",
]


def _ct2_dir(name: str, tmp: Path) -> Path:
    files = locate(name)
    if len(files.weight_parts) == 1:
        return files.weight_parts[0].parent
    (tmp / "model.bin").write_bytes(b"".join(p.read_bytes() for p in files.weight_parts))
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(files.weight_parts[0].parent / extra, tmp / extra)
    return tmp


def _recordings() -> list[Path]:
    audio = shared_data("barista-dev", "audio")
    return [audio / n for n in RECORDINGS]


@pytest.mark.parametrize("name", ["tiny.en", pytest.param("base", marks=pytest.mark.slow)])
def test_conversion_matches_ctranslate2(name: str, tmp_path: Path) -> None:
    files = locate(name)
    tokenizer = load_tokenizer(files.tokenizer)
    special = tokenizer.special_tokens()
    dims, state_dict = state_dict_from_ct2(read_ct2_model(files.weight_parts))
    model = build_hf_model(dims, state_dict, special)
    reference = ctranslate2.models.Whisper(str(_ct2_dir(name, tmp_path)), device="cpu",
                                           compute_type="float32")
    prompt = list(special.sot_sequence(dims.multilingual))
    for path in _recordings():
        mel = log_mel_spectrogram(read_audio(path), n_frames=3000)[None]
        with torch.no_grad():
            ours = model.model.encoder(torch.from_numpy(mel)).last_hidden_state.numpy()
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel))
        theirs = np.array(reference.encode(features, to_cpu=True))
        assert np.abs(ours - theirs).max() < 2e-3
        expected = reference.generate(features, [prompt], beam_size=1, max_length=80,
                                      suppress_tokens=[], suppress_blank=False)
        with torch.no_grad():
            generated = model.generate(torch.from_numpy(mel),
                                       decoder_input_ids=torch.tensor([prompt]),
                                       max_new_tokens=80, do_sample=False, num_beams=1)
        text = tokenizer.decode(generated[0].tolist())
        assert text == tokenizer.decode(expected[0].sequences_ids[0])
        assert len(text.split()) >= 3  # a real transcript, not an empty match
