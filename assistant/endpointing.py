"""When a streamed utterance ends: a fixed trailing silence, or one the grammar shortens.

What a person feels is the time from the end of their last word to the answer. The ``fixed``
policy waits the endpointer's ``min_silence_ms`` of silence (400 ms by default), then
recognizes. The ``grammar`` policy uses what the grammar knows about the sentence heard:

1. When a pause inside an utterance reaches ``speculate_ms``, the audio so far is recognized
   *speculatively* (:class:`~assistant.segmenter.Speculation`); if speech resumes, the
   speculation is dropped and the utterance goes on. It waits while the last sounds are
   still loud (a soft final consonant the VAD does not count as speech), so that it hears
   the whole last word.
2. Its result decides how long the pause must last before the utterance ends with that very
   result (:meth:`GrammarEndpointing.wait_ms`):

   * **not understood**; the free decode (what the model heard without the grammar)
     **agrees with less than half** of the sentence (``min_heard_match``: the grammar may
     have forced a command onto a fragment) or **begins a sentence but stops before it
     ends** ("set a timer for"); or the last **slot value may go on** ("set it to eighty"
     ... "seven"): the speaker is likely to go on, so the endpointer's own
     ``min_silence_ms`` ends it, which this policy raises to ``incomplete_ms`` (1000 ms,
     Rhino's default);
   * understood, and no longer sentence of the grammar beginning with it **means something
     else** ("what time is it": "... please" or "... thank you" change nothing):
     ``complete_ms`` (150 ms);
   * understood, but the grammar **can extend it to another meaning** ("turn on the
     lights" ... "in the kitchen"): ``extendable_ms`` (400 ms, the fixed policy's wait, so
     these are never slower than under it). With ``use_finality`` (off by default) the
     speech itself decides where the speech model has a finality probe
     (:mod:`assistant.finality`): a last word that **sounds finished** commits after
     ``complete_ms``, one that **sounds unfinished** waits ``incomplete_ms``. On synthesized
     speech each threshold lets through at most 2 % of the other kind; on real barista
     orders speakers paused after words that sounded finished ("I want a medium mocha" ...
     "with whole milk and sweetener"), and 6 of 100 were answered before they ended
     (``benchmarks/endpointing.py``, README), so it stays off.

   Committing on a sentence whose extensions mean the same thing is safe for the answer:
   when the speaker does add "please", that answer was already right, and the word becomes
   an utterance of its own (answered "not understood").

A result is sent once the utterance is committed and never retracted. The decision is
pure: the segmenter (:mod:`assistant.segmenter`) emits speculations and ends utterances when
told, and the pipeline (:mod:`assistant.pipeline`) joins the two, so every shell (the
in-process session, the WebSocket server) gets the same behaviour.

The defaults were chosen without real recordings: 150 ms is the short wait the design
names, 400 ms keeps extendable commands as fast as the fixed rule, 1000 ms is Rhino's
default, ``speculate_ms`` is two VAD frames (a one-frame dip inside a word starts no
recognition), and ``min_heard_match`` 0.5 came from synthesized selection runs of
``benchmarks/endpointing.py --selection`` (1.0 kept most commands at the longer waits;
lower values let fragments such as "turn the", accepted as a command, end the utterance).
``benchmarks/endpointing.py`` measures the policies side by side (benchmarks/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from .errors import ConfigError
from .grammar.extension import Extension

if TYPE_CHECKING:  # the segmenter's config holds these settings; it does not recognize
    from .recognizer import Result


class EndpointingPolicy(StrEnum):
    FIXED = "fixed"  # the endpointer's min_silence_ms, always
    GRAMMAR = "grammar"  # shorter when the grammar says the command is complete


POLICIES = tuple(p.value for p in EndpointingPolicy)


@dataclass(frozen=True)
class GrammarEndpointing:
    """The grammar policy's waits (see module docs), in ms of silence after the last word."""

    speculate_ms: int = 64
    complete_ms: int = 150
    extendable_ms: int = 400
    incomplete_ms: int = 1000  # the endpointer's min_silence_ms under this policy
    min_heard_match: float = 0.5  # free-decode agreement needed to end before incomplete_ms
    use_finality: bool = False  # extendable sentences: let the finality probe decide
    # The VAD calls a soft last sound ("lights": the s) silence. A speculation waits until the
    # last speculate_ms of audio are quiet: quiet_db under the utterance's loudest frame, or
    # within floor_margin_db of the background (the quietest tenth of the last 2 s), and at
    # most until the endpointer's padding is all there (then its audio is the final one).
    quiet_db: float = 35.0
    floor_margin_db: float = 6.0

    def __post_init__(self) -> None:
        if not (0 < self.speculate_ms <= self.complete_ms <= self.extendable_ms
                <= self.incomplete_ms):
            raise ConfigError(
                "grammar endpointing needs 0 < speculate_ms <= complete_ms <= extendable_ms "
                f"<= incomplete_ms, got {self.speculate_ms}, {self.complete_ms}, "
                f"{self.extendable_ms}, {self.incomplete_ms}")
        if not 0.0 <= self.min_heard_match <= 1.0:
            raise ConfigError(f"min_heard_match must be in [0, 1], got {self.min_heard_match}")

    def waiting(self, incomplete_ms: int) -> GrammarEndpointing:
        """These waits with ``incomplete_ms`` for an incomplete command (a client's trailing
        silence); the shorter waits are lowered to it where they were longer."""
        return replace(self, incomplete_ms=incomplete_ms,
                       speculate_ms=min(self.speculate_ms, incomplete_ms),
                       complete_ms=min(self.complete_ms, incomplete_ms),
                       extendable_ms=min(self.extendable_ms, incomplete_ms))

    def wait_ms(self, result: Result) -> int | None:
        """How long the pause must last before the utterance ends with ``result``; None: let
        the endpointer end it (``incomplete_ms``), recognizing it again if its audio differs."""
        heard = (result.features or {}).get("heard_match", 0.0)
        if (result.heard_unfinished or not result.understood or heard < self.min_heard_match
                or result.extension is Extension.CONTINUES_VALUE):
            return None
        if result.extension is Extension.NONE:
            return self.complete_ms
        if self.use_finality and result.sounds_finished is not None:
            return self.complete_ms if result.sounds_finished else None
        return self.extendable_ms  # no probe, or it cannot tell


DEFAULT_GRAMMAR_ENDPOINTING = GrammarEndpointing()


def parse_policy(value: str) -> EndpointingPolicy:
    try:
        return EndpointingPolicy(value)
    except ValueError:
        raise ConfigError(f"endpointing must be one of {list(POLICIES)}, got {value!r}") from None
