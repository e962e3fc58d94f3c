"""Command grammars ("contexts"): load, validate, count, enumerate, sample, parse, compile.

A context file is YAML in Picovoice Rhino's format (``context:`` with ``expressions:``,
``slots:`` and ``macros:``) plus a few extensions; see ``docs/grammar.md``::

    context = load_context("assistant/contexts/home.yaml")
    parse(context, "Turn on the kitchen lights, please")
    # Annotation(text='turn on the kitchen lights please', intent='lightsOn',
    #            slots={'room': 'kitchen'})
    sample_sentences(context, n=100, seed=0)
    compile_word_graph(context)   # the automaton a speech decoder walks
"""

from assistant.grammar.annotation import Annotation
from assistant.grammar.context import Context, Expression, Intent, Macro
from assistant.grammar.generate import (
    compile_word_graph,
    count_sentences,
    enumerate_sentences,
    sample_sentences,
)
from assistant.grammar.loader import DEFAULT_CONTEXT, context_from_yaml, load_context
from assistant.grammar.normalize import normalize_text
from assistant.grammar.parser import parse, parse_words
from assistant.grammar.slots import (
    BUILTIN_SLOT_TYPES,
    IntegerSlotType,
    ListSlotType,
    SlotType,
    SlotValue,
    SlotValueT,
)
from assistant.grammar.wordgraph import WordGraph

__all__ = [
    "BUILTIN_SLOT_TYPES",
    "DEFAULT_CONTEXT",
    "Annotation",
    "Context",
    "Expression",
    "IntegerSlotType",
    "Intent",
    "ListSlotType",
    "Macro",
    "SlotType",
    "SlotValue",
    "SlotValueT",
    "WordGraph",
    "compile_word_graph",
    "context_from_yaml",
    "count_sentences",
    "enumerate_sentences",
    "load_context",
    "normalize_text",
    "parse",
    "parse_words",
    "sample_sentences",
]
