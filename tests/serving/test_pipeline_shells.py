"""One pipeline, three shells: a gate and a result sink added as one module each run the same
under ``assistant recognize``, :class:`~assistant.stream.RecognizerSession` and the server;
and the server runs a model directory with the settings stored in it."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from assistant.audio import read_audio
from assistant.pipeline import PipelineConfig, UtteranceResult
from assistant.recognizer import Recognizer, RecognizerConfig
from assistant.recording import RECORDING_ENDPOINT
from assistant.stream import RecognizerSession
from assistant.vad import speech_span
from serving.config import ModelSource
from tests.serving.conftest import HOME, ServerThread, make_settings
from tests.serving.test_server import DocClient, doc_client

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, speak) -> list[Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("shells")
    out = []
    for name, text in (("stop", "stop"), ("lights", "turn off the bedroom lights")):
        path = folder / f"{name}.wav"
        sf.write(path, np.concatenate([speak(text), np.zeros(16000, np.float32)]), 16000,
                 subtype="PCM_16")
        out.append(path)
    return out


def _rows(path: Path) -> list[tuple[Any, ...]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["gate"], r["understood"], r["intent"], r["reason"]) for r in rows
            if not r["partial"]]


def _stream(server: ServerThread, file: Path) -> list[dict[str, Any]]:
    with doc_client(server) as ws:
        client = DocClient(ws)
        client.start()
        client.audio(read_audio(file))
        client.command("stop")
        return [e for e in client.rest() if e["type"] == "result"]


def test_the_same_gate_and_sink_in_every_shell(files: list[Path], vad: Any,  # type: ignore[no-untyped-def]
                                               home_recognizer, tmp_path: Path) -> None:
    spans = [speech_span(read_audio(f), vad, RECORDING_ENDPOINT) for f in files]
    short, long = (1000 * (end - start) / 16000 for start, end in spans)  # type: ignore[misc]
    gate = f"tests.stages:DropShort,min_ms={(short + long) / 2:.0f}"
    expected = [("drop_short", False, None, "gated"), (None, True, "lightsOff", None)]

    cli_log = tmp_path / "cli.jsonl"
    proc = subprocess.run([sys.executable, "-m", "assistant.cli", "recognize", "--context",
                           str(HOME), "--gate", gate, "--sink",
                           f"tests.stages:Record,path={cli_log}", *map(str, files)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert _rows(cli_log) == expected

    config = PipelineConfig(gates=(gate,), sinks=(f"tests.stages:Record,path={tmp_path}/in.jsonl",))
    sinks = config.make_sinks()
    for file in files:
        session = RecognizerSession(home_recognizer, vad, gates=config.make_gates(), sinks=sinks)
        audio = read_audio(file)
        events = session.feed(audio) + session.finalize()
        assert len([e for e in events if isinstance(e, UtteranceResult)]) == 1
    assert _rows(tmp_path / "in.jsonl") == expected

    server_log = tmp_path / "server.jsonl"
    settings = make_settings(pipeline=PipelineConfig(
        gates=(gate,), sinks=(f"tests.stages:Record,path={server_log}",)))
    with ServerThread(settings, vad) as server:
        answers = [_stream(server, f) for f in files]
    assert [[(a["understood"], a["intent"]) for a in answer] for answer in answers] == [
        [(False, None)], [(True, "lightsOff")]]
    assert _rows(server_log) == expected


def test_the_server_runs_a_model_directory_with_its_stored_settings(files: list[Path], vad,  # type: ignore[no-untyped-def]
                                                                    home_recognizer,
                                                                    tmp_path: Path) -> None:
    from assistant.grammar import DEFAULT_CONTEXT
    from assistant.model_dir import export_model_dir

    strict = Recognizer(home_recognizer.context, home_recognizer.model,
                        RecognizerConfig(threshold=0.9999, beam_size=2))
    export_model_dir(strict, tmp_path / "strict", DEFAULT_CONTEXT)
    source = (ModelSource("strict", "model", tmp_path / "strict"),)
    for overrides, threshold, understood in (({}, 0.9999, False),
                                             ({"threshold": 0.5}, 0.5, True)):
        with ServerThread(make_settings(source, recognizer=overrides), vad) as server:
            with urllib.request.urlopen(f"{server.http}/v1/models") as r:
                (model,) = json.load(r)["models"]
            assert (model["threshold"], model["beam_size"]) == (threshold, 2)
            (result,) = _stream(server, files[1])
            assert result["understood"] is understood and result["transcript"]


def test_process_workers_load_the_models_the_main_process_only_catalogues(files: list[Path],  # type: ignore[no-untyped-def]
                                                                          vad) -> None:
    def recognizers() -> int:
        gc.collect()
        # type(), not isinstance(): isinstance asks some torch objects for __class__, which
        # warns (and warnings are errors here).
        return sum(type(o) is Recognizer for o in gc.get_objects())

    before = recognizers()
    with ServerThread(make_settings(worker_kind="process", workers=1), vad) as server:
        assert recognizers() == before  # intents, /v1/models: all from the catalogue
        (result,) = _stream(server, files[1])
        assert result["intent"] == "lightsOff"
        assert recognizers() == before
