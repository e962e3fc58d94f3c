"""Decoder targets: how Whisper would write a sentence, so fine-tuning matches its habits.

Whisper writes a capital first letter, ends with a full stop or a question mark, writes
numbers of two or more digits in digits ("25 minutes", "12-ounce") and clock times as "7:30".
Training targets follow one such form; the grammar constraint accepts all of them at
recognition time, so the exact choice only has to be consistent.
"""

from __future__ import annotations

from assistant.numbers import int_to_words, words_to_int

QUESTION_STARTS = frozenset({
    "what", "what's", "how", "how's", "when", "where", "who", "why", "is", "are", "can",
    "could", "may", "would", "will", "do", "does", "did", "should",
})
MAX_NUMBER_WORDS = 6


def _digits(words: list[str]) -> list[str]:
    """Replace runs of number words that spell a number >= 10 canonically by digits."""
    out: list[str] = []
    i = 0
    while i < len(words):
        best = None
        for j in range(min(len(words), i + MAX_NUMBER_WORDS), i, -1):
            run = words[i:j]
            value = words_to_int(run)
            if value is not None and int_to_words(value) == " ".join(run):
                best = (j, value)
                break
        if best is not None and best[1] >= 10:
            out.append(str(best[1]))
            i = best[0]
        else:
            out.append(words[i])
            i += 1
    return out


def written_form(text: str) -> str:
    """``"can i get a twelve ounce latte"`` -> ``" Can I get a 12 ounce latte?"``.

    The leading space is Whisper's: its first text token carries one.
    """
    words = text.split()
    if not words:
        return ""
    words = _digits(words)
    words = ["I" if w == "i" else ("I" + w[1:] if w.startswith("i'") else w) for w in words]
    words[0] = words[0][:1].upper() + words[0][1:]
    stop = "?" if text.split()[0] in QUESTION_STARTS else "."
    return " " + " ".join(words) + stop
