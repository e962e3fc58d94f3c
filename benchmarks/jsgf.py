"""A command grammar (context) written as JSGF, for classic grammar recognizers (PocketSphinx).

The conversion follows the grammar's syntax trees, so the JSGF reads like the YAML it came
from: one public rule ``<command>`` choosing an intent, one rule per intent (its
expressions as alternatives, written as a prefix tree), one rule per slot type used (its
spoken forms, synonyms and numbers included) and one per macro::

    #JSGF V1.0;
    grammar coffee_maker;
    public <command> = <intent_orderDrink>;
    <intent_orderDrink> = ( brew | can i get ) ( a | an ) ( <slot_size> ( <slot_roast> ...
    <slot_size> = small | medium | large | eight ounce | ...;

Words are the grammar's normalized words (lowercase, numbers spelled out), the same words
:func:`assistant.grammar.parse` reads, so a recognizer's hypothesis parses back to intent and
slots. Words listed in ``void_words`` (for example ones no pronunciation could be found for)
become ``<VOID>``: every sentence through them is dropped from the JSGF, and the converter's
caller reports them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from assistant.grammar import Context
from assistant.grammar.expression import Choice, MacroRef, Node, Sequence, SlotRef, Word

_RULE_CHARS = re.compile(r"[^A-Za-z0-9_]")


def rule_name(kind: str, name: str) -> str:
    """A JSGF rule name (letters, digits, ``_``) for an intent, slot type or macro."""
    return f"<{kind}_{_RULE_CHARS.sub('_', name)}>"


def _token(word: str) -> str:
    # JSGF tokens may hold apostrophes ("i'd", "o'clock"); grammar words never hold spaces
    # or JSGF's special characters (normalize_text keeps letters and inner apostrophes).
    return word


class _Writer:
    def __init__(self, context: Context, void_words: frozenset[str]):
        self.context = context
        self.void_words = void_words
        self.slot_types: dict[str, None] = {}  # in order of first use
        self.macros: dict[str, None] = {}

    def node(self, node: Node) -> str:
        if isinstance(node, Word):
            return "<VOID>" if node.text in self.void_words else _token(node.text)
        if isinstance(node, SlotRef):
            self.slot_types.setdefault(node.slot_type)
            return rule_name("slot", node.slot_type)
        if isinstance(node, MacroRef):
            if node.name not in self.macros:
                self.macros[node.name] = None
                for phrase in self.context.macro(node.name).phrases:
                    self.node(phrase.tree)  # collect what the macro uses
            return rule_name("macro", node.name)
        if isinstance(node, Sequence):
            return " ".join(self.node(item) for item in node.items)
        assert isinstance(node, Choice)
        alternatives = " | ".join(self.node(a) for a in node.alternatives)
        return f"[ {alternatives} ]" if node.optional else f"( {alternatives} )"

    def alternatives(self, trees: Iterable[Node]) -> str:
        """Alternatives written as a prefix tree: alternatives that begin alike share their
        beginning (``a b c | a b d`` becomes ``a b ( c | d )``), which keeps the search
        graph a recognizer builds from the JSGF from running the same words in parallel."""
        sequences = [t.items if isinstance(t, Sequence) else (t,) for t in trees]
        return self._prefix_tree(sequences, top=True)

    def _prefix_tree(self, sequences: list[tuple[Node, ...]], top: bool = False) -> str:
        groups: dict[str, list[tuple[Node, ...]]] = {}
        ended = False
        for items in sequences:
            if not items:
                ended = True
                continue
            groups.setdefault(self.node(items[0]), []).append(items[1:])
        parts = []
        for first, rests in groups.items():
            rest = self._prefix_tree(rests)
            parts.append(f"{first} {rest}" if rest else first)
        body = " | ".join(parts)
        if not parts:
            return ""
        if ended:
            return f"[ {body} ]"
        return body if top or len(parts) == 1 else f"( {body} )"

    def phrases(self, words: Iterable[tuple[str, ...]]) -> str:
        seen: dict[str, None] = {}
        for phrase in words:
            seen.setdefault(" ".join("<VOID>" if w in self.void_words else _token(w)
                                     for w in phrase))
        return " | ".join(seen)


def context_to_jsgf(context: Context, name: str = "commands",
                    void_words: Iterable[str] = ()) -> str:
    """The JSGF text of ``context`` (see the module docs)."""
    writer = _Writer(context, frozenset(void_words))
    grammar_name = _RULE_CHARS.sub("_", name) or "commands"
    intents = [rule_name("intent", intent.name) for intent in context.intents]
    lines = ["#JSGF V1.0;", f"grammar {grammar_name};",
             f"public <command> = {' | '.join(intents)};"]
    for intent, rule in zip(context.intents, intents, strict=True):
        body = writer.alternatives(e.tree for e in intent.expressions)
        lines.append(f"{rule} = {body};")
    for macro in list(writer.macros):
        body = writer.alternatives(p.tree for p in context.macro(macro).phrases)
        lines.append(f"{rule_name('macro', macro)} = {body};")
    for slot_type in writer.slot_types:
        forms = (words for _, words in context.slot_type(slot_type).spoken_forms())
        lines.append(f"{rule_name('slot', slot_type)} = {writer.phrases(forms)};")
    return "\n".join(lines) + "\n"


def vocabulary(context: Context) -> tuple[str, ...]:
    """Every word a sentence of ``context`` can hold, sorted (what needs a pronunciation)."""
    from assistant.grammar import compile_word_graph

    return compile_word_graph(context).vocabulary
