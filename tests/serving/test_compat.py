"""Names that moved in the pipeline redesign keep working, with a DeprecationWarning."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.recognizer import RecognizerConfig
from tests.serving.conftest import make_settings


@pytest.mark.parametrize(("old", "name", "new"), [
    ("serving.session", "Session", "serving.ws.session"),
    ("serving.session", "result_message", "serving.ws.session"),
    ("serving.connection", "Connection", "serving.ws.connection"),
    ("serving.http", "origin_allowed", "serving.ws.http"),
])
def test_old_module_paths_warn_and_still_work(old: str, name: str, new: str) -> None:
    import importlib

    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{old}.{name} moved to {new}.{name}"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_app_with_a_full_recognizer_config_warns_and_overrides_what_differs(vad: Any) -> None:
    from serving.server import App

    settings = make_settings(recognizer={"beam_size": 3})
    with pytest.warns(DeprecationWarning, match="Settings.recognizer"):
        app = App(settings, RecognizerConfig(threshold=0.9, beam_size=2), vad)
    # What was given as Settings.recognizer wins; defaults in the old config override nothing.
    assert app.services.settings.recognizer == {"threshold": 0.9, "beam_size": 3}
    assert App(settings, vad=vad).services.settings.recognizer == {"beam_size": 3}
