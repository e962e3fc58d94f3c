"""Deprecated: moved to :mod:`serving.ws.http` (see :mod:`serving._moved`)."""

from ._moved import moved

__getattr__ = moved(__name__, "serving.ws.http")
