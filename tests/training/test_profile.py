"""Reference profiles from synthesized speech (training.profile, ``assistant profile``) and
``assistant monitor`` offline on them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.grammar import load_context, parse
from assistant.profile import ReferenceProfile, find_profile
from training.profile import plan_clips
from training.tts import Voice

from .conftest import need_engine

HOME = Path(__file__).resolve().parents[2] / "assistant" / "contexts" / "home.yaml"


def test_plan_mixes_other_speech_and_takes_engines_in_turn() -> None:
    context = load_context(HOME)
    voices = [Voice("espeak", "en-us+m3"), Voice("flite", "slt"), Voice("flite", "rms")]
    clips = plan_clips(context, HOME, 100, voices, 0.2, seed=1)
    others = [c for c in clips if c.kind == "other"]
    assert len(clips) == 100 and len(others) == 20
    assert all(parse(context, c.text) is None for c in others)
    assert all(parse(context, c.text) is not None for c in clips if c.kind == "command")
    engines = [c.voice.engine for c in clips]
    assert engines.count("espeak") == engines.count("flite") == 50
    assert plan_clips(context, HOME, 100, voices, 0.2, seed=1) == clips  # seeded


def test_assistant_profile_then_monitor_offline(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for engine in ("espeak", "flite"):
        need_engine(engine)
    grammar = tmp_path / "home.yaml"
    shutil.copy(HOME, grammar)
    assert main(["profile", "--context", str(grammar), "--clips", "140", "--other-share",
                 "0.2", "--engines", "espeak,flite"]) == 0
    capsys.readouterr()
    path = tmp_path / "home.profile.json"
    profile = ReferenceProfile.load(path)
    assert profile.utterances == 140 and profile.encoder is not None
    # It knows which clips were commands: the two confidence distributions, apart.
    other = profile.other_speech
    assert other is not None and (other.commands, other.others) == (112, 28)
    assert other.other[0] > other.command[0] and other.command[-1] > other.other[-1]
    assert set(profile.source["engines"]) == {"espeak", "flite"}
    assert 0.2 < profile.signals["outcome"].shares["understood"] < 1  # type: ignore[union-attr]
    assert find_profile(grammar, "context", "tiny.en", "int8",
                        load_context(grammar).sha256) is not None
    # A results log of the same kind of answers: no drift...
    rows = [{"understood": True, "intent": "lightsOff", "slots": {}, "confidence": 0.97,
             "transcript": "turn off the lights", "heard": "turn off the lights",
             "audio_ms": 1800.0, "reason": None, "audio_dbfs": -25.0, "snr_db": 20.0}]
    log = tmp_path / "answers.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows * 5))
    assert main(["monitor", "--log", str(log), "--context", str(grammar)]) == 0
    out = capsys.readouterr().out
    assert "warming_up; 5 answers" in out
    # the other-speech estimate, in words: these five sure answers look like commands
    assert "speech that is no command: about 0 % of the window, 20 % in the reference" in out
    # ...and a log of answers nobody understood: drift, and the exit code says so.
    rows = [{**rows[0], "understood": False, "intent": None, "confidence": 0.05,
             "reason": "no_grammar_path", "heard": "what's on the telly tonight",
             "transcript": ""}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows * 80))
    assert main(["monitor", "--log", str(log), "--profile", str(path),
                 "--fail-on-drift", "--json"]) == 3
    report = json.loads(capsys.readouterr().out)["offline"]
    assert report["drift"]["status"] == "drift" and "outcome" in report["drift"]["drifting"]
    # A server's monitor log names its model: so does the report.
    log.write_text("".join(json.dumps({**rows[0], "model": "home"}) + "\n" for _ in range(80)))
    assert main(["monitor", "--log", str(log), "--profile", str(path), "--json"]) == 0
    named = json.loads(capsys.readouterr().out)
    assert list(named) == ["home"] and named["home"]["models_in_log"] == ["home"]
    log.write_text("not json\n")
    assert main(["monitor", "--log", str(log), "--profile", str(path)]) == 2
    assert "answers.jsonl:1" in capsys.readouterr().err


def test_remaking_a_model_directory_profile_keeps_the_model_valid(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A model directory lists its files with sizes and checksums (assistant train lists its
    # profile.json): remaking the profile updates that list, so the model still loads and
    # verifies, and the profile it serves is the new one.
    from assistant.artifacts import read_metadata

    need_engine("espeak")
    model = tmp_path / "model"
    assert main(["export", "--context", str(HOME), "--out", str(model)]) == 0
    for clips in ("40", "48"):  # the second run replaces a listed profile.json
        assert main(["profile", "--model", str(model), "--clips", clips,
                     "--engines", "espeak"]) == 0
        metadata = read_metadata(model, verify=True)
        assert metadata["files"]["profile.json"]["bytes"] == (model / "profile.json").stat(
        ).st_size
        assert ReferenceProfile.load(model / "profile.json").utterances == int(clips)
    capsys.readouterr()
    assert main(["models", "verify", str(model)]) == 0
    # Another file of the model directory is never overwritten with a profile.
    assert main(["profile", "--model", str(model), "--out", str(model / "metadata.json"),
                 "--clips", "40", "--engines", "espeak"]) == 2
    assert "profile.json" in capsys.readouterr().err
    assert main(["models", "verify", str(model)]) == 0
