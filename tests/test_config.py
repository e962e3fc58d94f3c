from __future__ import annotations

import argparse

import pytest

from assistant import config
from assistant.errors import ConfigError
from assistant.recognizer import RecognizerConfig


def test_flags_beat_environment_beat_defaults() -> None:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, RecognizerConfig)
    env = {"ASSISTANT_BEAM_SIZE": "6", "ASSISTANT_THRESHOLD": "0.7",
           "ASSISTANT_FREE_DECODING": "false"}
    built = config.build(RecognizerConfig, parser.parse_args(["--threshold", "0.9"]), env=env)
    assert built == RecognizerConfig(beam_size=6, threshold=0.9, free_decoding=False)
    assert config.build(RecognizerConfig, parser.parse_args([]), env={}) == RecognizerConfig()


@pytest.mark.parametrize(("env", "message"), [
    ({"ASSISTANT_BEAM_SIZE": "x"}, "ASSISTANT_BEAM_SIZE='x' is not a valid int"),
    ({"ASSISTANT_FREE_DECODING": "maybe"}, "not a boolean"),
    ({"ASSISTANT_THRESHOLD": "2"}, "threshold must be in"),
])
def test_bad_values_name_their_source(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.build(RecognizerConfig, {}, env=env)
