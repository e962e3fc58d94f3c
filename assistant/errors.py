"""The one exception tree of the project.

Every error raised on purpose by the assistant derives from :class:`AssistantError`, so a
caller can catch the whole family with one clause and still tell the cases apart::

    AssistantError
    ├── GrammarError            a command grammar (context) is invalid
    ├── AudioError              audio could not be read or has the wrong shape
    │   └── AudioFormatError    bytes/samples in an unsupported format or rate
    ├── ModelError              a model directory or weight package is missing or broken
    ├── ConfigError             a configuration value is out of range
    └── MissingDependencyError  an optional extra is needed for this feature

Messages name the values involved: ``"chunk of 1001 bytes is not whole 16-bit samples"``.
"""

from __future__ import annotations

from pathlib import Path


class AssistantError(Exception):
    """Base class of every error the assistant raises on purpose."""


class GrammarError(AssistantError):
    """A context file or expression is invalid.

    ``source`` is the file (or ``"<string>"``), ``line`` the 1-based line where the problem
    is, when known.
    """

    def __init__(self, message: str, *, source: str | Path | None = None, line: int | None = None):
        self.source = str(source) if source is not None else None
        self.line = line
        where = ""
        if self.source is not None:
            where = self.source + (f":{line}" if line is not None else "") + ": "
        elif line is not None:
            where = f"line {line}: "
        self.detail = message
        super().__init__(where + message)


class AudioError(AssistantError):
    """Audio could not be read or decoded."""


class AudioFormatError(AudioError):
    """Audio is in a format, layout or sample rate that is not supported."""


class ModelError(AssistantError):
    """A model, weight package or model directory is missing, corrupt or inconsistent."""


class ConfigError(AssistantError):
    """A configuration value is invalid."""


class MissingDependencyError(AssistantError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, module: str, extra: str, feature: str):
        self.module = module
        self.extra = extra
        super().__init__(
            f"{feature} needs the '{module}' package: pip install 'voice-assistant[{extra}]'"
        )
