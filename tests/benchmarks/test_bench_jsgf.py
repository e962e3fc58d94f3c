"""The grammar as JSGF: valid for PocketSphinx, words and pronunciations accounted for, and a
spoken command recognized and parsed back through the PocketSphinx baseline."""

from __future__ import annotations

import re

import pytest

from assistant.grammar import context_from_yaml, load_context
from benchmarks.jsgf import context_to_jsgf, rule_name, vocabulary
from benchmarks.pronounce import ipa_to_arpabet, pronounce
from tests.conftest import HOME_CONTEXT, shared_data

pocketsphinx = pytest.importorskip("pocketsphinx")

SMALL = """
context:
  expressions:
    lightsOn:
      - "(please) turn on the $room:room [light, lights]"
    setTimer:
      - "set a timer for $pv.SingleDigitInteger:minutes minutes (@thanks)"
  slots:
    room:
      - kitchen
      - {value: living room, synonyms: [lounge]}
  macros:
    thanks: ["thanks", "thank you"]
"""


def _decoder():  # type: ignore[no-untyped-def]
    return pocketsphinx.Decoder(samprate=16000, lm=None, loglevel="FATAL")


def test_small_grammar_converts_rule_by_rule() -> None:
    jsgf = context_to_jsgf(context_from_yaml(SMALL), "small")
    lines = jsgf.splitlines()
    assert lines[:3] == ["#JSGF V1.0;", "grammar small;",
                         "public <command> = <intent_lightsOn> | <intent_setTimer>;"]
    assert "<intent_lightsOn> = [ please ] turn on the <slot_room> ( light | lights );" in lines
    assert "<slot_room> = kitchen | living room | lounge;" in lines
    assert "<macro_thanks> = thanks | thank you;" in lines
    assert "<slot_pv_SingleDigitInteger> = zero | one | two | three | four | five | six | " \
           "seven | eight | nine;" in lines
    # Every rule used is defined, every line ends with ';'.
    used = set(re.findall(r"<[A-Za-z0-9_]+>", jsgf)) - {"<VOID>", "<NULL>"}
    defined = {line.split(" = ")[0].removeprefix("public ") for line in lines[2:]}
    assert used == defined
    assert all(line.endswith(";") for line in lines[1:])


def test_pocketsphinx_loads_it_and_void_words_drop_their_sentences() -> None:
    context = context_from_yaml(SMALL)
    decoder = _decoder()
    decoder.add_jsgf_string("small", context_to_jsgf(context, "small"))
    decoder.activate_search("small")
    jsgf = context_to_jsgf(context, "small", void_words=["lounge"])
    assert "living room | <VOID>;" in jsgf
    decoder.add_jsgf_string("void", jsgf)


def test_words_missing_from_the_dictionary_get_phones_or_are_reported() -> None:
    decoder = _decoder()
    found = pronounce(["kitchen", "frappuccino", "zzzq"], decoder.lookup_word,
                      g2p=lambda w: {"frappuccino": "fɹˌæpuːtʃˈiːnoʊ"}.get(w))
    assert found.phones["kitchen"] == decoder.lookup_word("kitchen")
    assert found.phones["frappuccino"] == "F R AE P UW CH IY N OW"
    assert found.from_g2p == ("frappuccino",) and found.missing == ("zzzq",)
    assert ipa_to_arpabet("θˈɜːməstˌæt") == "TH ER M AH S T AE T"
    assert ipa_to_arpabet("ʘ") is None  # a click has no ARPAbet phone


@pytest.mark.parametrize("which", ["home", "barista"])
def test_shipped_and_benchmark_grammars_load_in_pocketsphinx(which: str) -> None:
    from benchmarks.sphinx import PocketSphinxEngine

    path = HOME_CONTEXT if which == "home" else shared_data("barista-dev", "coffee_maker.yaml")
    engine = PocketSphinxEngine(path)
    assert not engine.pronunciations.missing
    words = set(vocabulary(load_context(path)))
    assert words == set(engine.pronunciations.phones)
    assert rule_name("intent", load_context(path).intents[0].name) in engine.jsgf


def test_the_baseline_recognizes_and_parses_a_spoken_command(speak) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.sphinx import PocketSphinxEngine

    engine = PocketSphinxEngine(context_from_yaml(SMALL))
    result = engine.recognize(speak("turn on the kitchen lights", pad_s=0.2))
    assert result.understood, result
    assert (result.intent, result.slots) == ("lightsOn", {"room": "kitchen"})
    assert result.timing_ms["total"] > 0
