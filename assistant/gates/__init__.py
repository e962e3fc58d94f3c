"""Gates: stages between segmentation and recognition (see :mod:`assistant.utterance`).

A gate is a dataclass whose fields are its options, with ``admit(utterance)``. Add one as a
module here plus one line in :data:`GATES`; or name any importable class in a spec
(``--gate my_package.gates:WakeWord,word=computer``) without registering it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from assistant.registry import Registry, Spec, create

if TYPE_CHECKING:
    from assistant.utterance import Gate

GATES: Registry[Gate] = Registry("gate", {
    "min_duration": "assistant.gates.min_duration:MinDurationGate",
})


def create_gates(specs: Sequence[str | Spec]) -> list[Gate]:
    """New gate instances (one set per stream: gates may keep per-stream state)."""
    return [create(GATES, spec) for spec in specs]
