"""Voice-command assistant: spoken commands to intent and slots, from a grammar, on ONNX Runtime.

``import assistant`` is light: it never imports torch or transformers. The public names below
are imported lazily on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "AssistantError": "assistant.errors",
    "load_context": "assistant.grammar",
    "Recognizer": "assistant.recognizer",
    "RecognizerConfig": "assistant.recognizer",
    "Result": "assistant.recognizer",
    "RecognizerSession": "assistant.stream",
    "Pipeline": "assistant.pipeline",
    "PipelineConfig": "assistant.pipeline",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
