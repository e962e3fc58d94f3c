"""Old module paths of the WebSocket listener, kept working with a DeprecationWarning.

The v1 protocol's session, connection and HTTP router moved into :mod:`serving.ws` when the
listener became a shell over :mod:`serving.services`. ``from serving.session import
Session`` still works (and warns) until the next minor release.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved(old: str, new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds names of ``old`` in ``new``, with a warning."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(importlib.import_module(new), name)
        warnings.warn(f"{old}.{name} moved to {new}.{name}; {old} will be removed",
                      DeprecationWarning, stacklevel=2)
        return value

    return __getattr__
