"""Per-engine pronunciation fixes: words an engine says wrong, respelled so it says them right.

Found with an ear-proxy (``python -m training.tts.pronunciation``, and "can I get a large
WORD please" transcribed by Whisper tiny.en for each engine and candidate spelling):

* flite and festival say "latte" as "lat"/"let"/"left"; "lah tay" is heard as "latte" for
  flite slt/rms and festival kal (festival ked still says "lot tay");
* flite slt says "cappuccino" as "capucino"; "cap a chino" is heard right;
* espeak-ng, Piper and Kokoro (both phonemize with espeak-ng) say these words right.
  espeak-ng's "mocha" is phonemized right (mˈoʊkə) but its US voices are heard as "milk";
  no respelling fixed it, so it is left alone. A miss of tiny.en is a hint, not proof.
"""

from __future__ import annotations

import re
from functools import lru_cache

_COFFEE_RESPELLINGS = {
    "latte": "lah tay",
    "lattes": "lah tays",
    "cafe": "ca fay",
}

RESPELLINGS: dict[str, dict[str, str]] = {
    "flite": {**_COFFEE_RESPELLINGS, "cappuccino": "cap a chino"},
    "festival": dict(_COFFEE_RESPELLINGS),
    "espeak": {},
    "piper": {},
    "kokoro": {},
}


@lru_cache(maxsize=16)
def _pattern(engine: str) -> re.Pattern[str] | None:
    table = RESPELLINGS.get(engine, {})
    if not table:
        return None
    return re.compile(r"\b(" + "|".join(map(re.escape, table)) + r")\b", re.IGNORECASE)


def respell(text: str, engine: str) -> str:
    """``text`` with the words ``engine`` mispronounces replaced by respellings."""
    pattern = _pattern(engine)
    if pattern is None:
        return text
    table = RESPELLINGS[engine]
    return pattern.sub(lambda m: table[m.group(1).lower()], text)
