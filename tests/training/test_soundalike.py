"""Sound-alike words for near misses: one phone away, never a homophone."""

from __future__ import annotations

import pytest

from assistant.grammar import context_from_yaml, parse
from training.negatives import near_misses
from training.soundalike import FESTIVAL_CMU, Lexicon, load_lexicon, parse_festival_lexicon

SAMPLE = """\
MNCL
("four" nil (((f ao r) 1)))
("for" nil (((f ao r) 1)))
("for" nil (((f er) 0)))
("fort" nil (((f ao r t) 1)))
("door" nil (((d ao r) 1)))
("floor" nil (((f l ao r) 1)))
("or" nil (((ao r) 1)))
("fat" nil (((f ae t) 1)))
("forty" nil (((f ao r) 1) ((t iy) 0)))
("o'clock" nil (((ax) 0) ((k l aa k) 1)))
("three" nil (((th r iy) 1)))
("tree" nil (((t r iy) 1)))
"""


def test_festival_entries_are_read_with_every_pronunciation() -> None:
    lexicon = parse_festival_lexicon(SAMPLE)
    assert lexicon["for"] == {("f", "ao", "r"), ("f", "er")}
    assert lexicon["forty"] == {("f", "ao", "r", "t", "iy")}
    assert "o'clock" not in lexicon and "MNCL" not in lexicon


def test_one_phone_away_and_never_a_homophone() -> None:
    lexicon = Lexicon.of(parse_festival_lexicon(SAMPLE))
    # substituted (door), inserted (fort, floor), deleted (or); "for" sounds like "four";
    # "fat" is two phones away, "forty" two, "three" unrelated.
    assert lexicon.sound_alikes("four") == ["door", "floor", "fort", "or"]
    assert lexicon.sound_alikes("three") == ["tree"]
    assert lexicon.sound_alikes("unknown") == []


@pytest.mark.skipif(not FESTIVAL_CMU.is_file(), reason="festlex-cmu is not installed")
def test_digits_get_sound_alike_near_misses_from_the_installed_dictionary() -> None:
    lexicon = load_lexicon()
    assert lexicon is not None
    assert {"tree", "free"} <= set(lexicon.sound_alikes("three"))
    assert "fine" in lexicon.sound_alikes("five") and "won" not in lexicon.sound_alikes("one")
    digits = context_from_yaml("context:\n  expressions:\n    digit: ['$digit:digit']\n"
                               "  slots:\n    digit: [zero, one, two, three, four, five, six, "
                               "seven, eight, nine]\n")
    misses = near_misses(digits, 60, seed=4, lexicon=lexicon)
    assert len(misses) == 60 and all(parse(digits, m) is None for m in misses)
    alike = {w for d in ("zero", "one", "two", "three", "four", "five", "six", "seven",
                         "eight", "nine") for w in lexicon.sound_alikes(d)}
    assert 15 <= sum(m in alike for m in misses) <= 45  # about half are sound-alikes
    assert near_misses(digits, 60, seed=4, lexicon=lexicon) == misses
    assert near_misses(digits, 60, seed=4) != misses  # without one: distractors only
