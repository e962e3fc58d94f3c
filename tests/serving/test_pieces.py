"""The pure pieces of the server: auth tokens, rate limits, metrics text, configuration."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from assistant.errors import ConfigError
from serving.auth import Authenticator, bearer, key_id
from serving.config import add_arguments, load, parse_source
from serving.limits import KeyedLimiter, TokenBucket
from serving.metrics import Metrics


def test_keys_and_tokens() -> None:
    auth = Authenticator(["alpha", "beta"], secret=b"s" * 32, ttl_s=60)
    assert auth.required
    assert auth.check_key("beta") is not None and auth.check_key("gamma") is None
    assert bearer("Bearer  beta ") == "beta" and bearer("Basic beta") is None
    principal = auth.check_key("alpha")
    assert principal is not None and principal.key_id == key_id("alpha")
    token, expires = auth.issue_token(principal, now_s=1000.0)
    assert expires == 1060.0
    assert auth.check_token(token, now_s=1059.0) == type(principal)(principal.key_id, "token")
    assert auth.check_token(token, now_s=1061.0) is None  # expired
    assert auth.check_token(token.replace("v1.", "v2."), 1000.0) is None
    assert auth.check_token(token[:-1] + ("A" if token[-1] != "A" else "B"), 1000.0) is None
    other = Authenticator(["alpha"], secret=b"t" * 32)
    assert other.check_token(token, 1000.0) is None  # another server's secret
    assert Authenticator(["beta"], secret=b"s" * 32).check_token(token, 1000.0) is None
    assert auth.authenticate(None, token, 1000.0) is not None
    assert auth.authenticate("Bearer alpha", None, 1000.0) is not None
    assert auth.authenticate(None, None, 1000.0) is None
    open_server = Authenticator([])
    assert open_server.authenticate(None, None, 0.0) is not None


def test_token_bucket_on_a_fake_clock() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3.0, now_s=0.0)
    assert [bucket.take(1, 0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after_s(1, 0.0) == pytest.approx(0.5)
    assert bucket.take(1, 0.5) and not bucket.take(1, 0.5)
    assert bucket.take(3, 100.0) and not bucket.take(0.1, 100.0)  # capped at the burst
    limiter = KeyedLimiter(1.0, 1.0, max_keys=2)
    assert limiter.take("a", 0.0) and not limiter.take("a", 0.0) and limiter.take("b", 0.0)
    limiter.take("c", 0.0)
    assert len(limiter) == 2  # the least recent key was forgotten
    with pytest.raises(ConfigError):
        TokenBucket(0, 1, 0)


def test_metrics_exposition_parses_with_the_prometheus_parser() -> None:
    metrics = Metrics()
    metrics.end_of_speech_to_result.labels("home").observe(0.12)
    metrics.end_of_speech_to_result.labels("home").observe(7.0)
    metrics.results.labels("home", "lightsOn", "true").inc()
    metrics.errors.labels('we"ird').inc()
    metrics.active_sessions.set(3)
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    latency = {(s.name, s.labels.get("le")): s.value
               for s in families["assistant_end_of_speech_to_result_seconds"].samples}
    assert latency[("assistant_end_of_speech_to_result_seconds_bucket", "0.15")] == 1
    assert latency[("assistant_end_of_speech_to_result_seconds_bucket", "+Inf")] == 2
    assert metrics.value("assistant_results_total", model="home", intent="lightsOn",
                         understood="true") == 1
    assert metrics.value("assistant_errors_total", code='we"ird') == 1
    assert metrics.value("assistant_active_sessions") == 3
    assert metrics.value("assistant_errors_total", code="never") == 0


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_then_env_then_file_then_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "server.toml"
    toml.write_text('port = 9000\nworkers = 3\nmax_sessions = 7\nlog_json = true\n'
                    '[contexts]\nkitchen = "kitchen.yaml"\n')
    env = {"ASSISTANT_WORKERS": "4", "ASSISTANT_CONFIG": str(toml)}
    settings = load(_parse("--max-sessions", "9"), env)
    assert settings.server.port == 9000  # file
    assert settings.server.workers == 4  # env over file
    assert settings.limits.max_sessions == 9  # flag over file
    assert settings.server.log_json is True
    assert [(s.name, s.kind, s.path) for s in settings.sources] == [
        ("kitchen", "context", tmp_path / "kitchen.yaml")]
    yaml_file = tmp_path / "server.yaml"
    yaml_file.write_text("idle_timeout_s: 5\n")
    assert load(_parse("--config", str(yaml_file)), {}).limits.idle_timeout_s == 5.0


def test_sources_keep_their_order_and_default() -> None:
    settings = load(_parse("--model", "tuned=/m", "--context", "home=/h.yaml"), {})
    assert [(s.name, s.kind) for s in settings.sources] == [("tuned", "model"),
                                                           ("home", "context")]
    assert load(_parse(), {"ASSISTANT_MODELS": "a=/x,b=/y"}).sources[1].name == "b"
    assert load(_parse(), {}).sources[0].path.name == "home.yaml"
    assert parse_source("context", "/some/coffee.yaml").name == "coffee"


@pytest.mark.parametrize(("argv", "env", "needle"), [
    (("--port", "70000"), {}, "port must be in"),
    (("--workers", "lots"), {}, "--workers='lots' is not a valid int"),
    ((), {"ASSISTANT_MAX_SESSIONS": "0"}, "max_sessions must be >= 1"),
    (("--context", "a=/x", "--context", "a=/y"), {}, "unique"),
    (("--context", "bad name=/x"), {}, "must be letters"),
    (("--tls-cert", "/c.pem"), {}, "go together"),
    (("--config", "/nonexistent.toml"), {}, "cannot read config file"),
    (("--log-level", "bogus"), {}, "log_level must be one of DEBUG"),
])
def test_bad_settings_name_the_value(argv: tuple[str, ...], env: dict[str, str],
                                     needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load(_parse(*argv), env)


def test_a_bad_file_setting_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('port = "abc"\nthreshold = "high"\n')
    with pytest.raises(ConfigError, match=rf"^{bad}: port='abc' is not a valid int$"):
        load(_parse("--config", str(bad)), {})
    # The environment still wins over the file, and is named as itself.
    with pytest.raises(ConfigError, match=r"^ASSISTANT_PORT='x' is not a valid int$"):
        load(_parse("--config", str(bad)), {"ASSISTANT_PORT": "x"})


def test_unknown_file_settings_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown settings \['prot'\]"):
        load(_parse("--config", str(bad)), {})


def test_recognizer_and_pipeline_settings_from_flags_env_and_file(tmp_path: Path) -> None:
    toml = tmp_path / "server.toml"
    toml.write_text('beam_size = 2\nthreshold = 0.7\nmax_utterance_s = 12\n'
                    'gates = ["min_duration,min_ms=150"]\n'
                    f'sinks = ["jsonl,path={tmp_path / "r.jsonl"}"]\n')
    settings = load(_parse("--config", str(toml), "--beam-size", "3"),
                    {"ASSISTANT_THRESHOLD": "0.6"})
    # Only what was given: a model directory's other stored settings stay as they are.
    assert settings.recognizer == {"beam_size": 3, "threshold": 0.6, "max_utterance_s": 12.0}
    assert settings.limits.max_utterance_s == 12.0  # one setting for the stream and the model
    assert settings.pipeline.gates == ("min_duration,min_ms=150",)
    assert load(_parse("--gate", "min_duration", "--gate", "min_duration,min_ms=9"),
                {}).pipeline.gates == ("min_duration", "min_duration,min_ms=9")
    assert load(_parse(), {"ASSISTANT_GATES": "min_duration;min_duration,min_ms=9"}
                ).pipeline.gates == ("min_duration", "min_duration,min_ms=9")
    with pytest.raises(ConfigError, match="beam_size must be >= 1"):
        load(_parse("--beam-size", "0"), {})
    with pytest.raises(ConfigError, match="unknown gate 'wake'"):
        load(_parse("--gate", "wake"), {})
    assert not (tmp_path / "r.jsonl").exists()  # sinks are checked, not opened, by load


def test_a_reload_of_one_model_takes_only_its_part_of_the_slots_file() -> None:
    """Reloading model ``a`` with a slots file whose part for ``b`` has a mistake changes
    ``a`` and leaves ``b``'s values (and its later updates) alone."""
    from assistant.errors import GrammarError
    from serving.catalog import ModelCatalog
    from serving.config import ModelSource

    home = Path(__file__).resolve().parents[2] / "assistant" / "contexts" / "home.yaml"
    catalog = ModelCatalog([ModelSource("a", "context", home),
                            ModelSource("b", "context", home)], {"threads": 1})
    catalog.load()
    given = {"a": {"room": ["attic", "cellar"]}, "b": {"room": ["lamp", "lamp"]}}
    assert catalog.reload("a", ("slots file s.yaml", given)) == ["a"]
    assert catalog.slot_values("a")["room"] == ["attic", "cellar"]
    # b's part of the file was not taken: another slot type of b can still change.
    catalog.set_slot_values("b", {"day": ["today", "tomorrow", "sunday"]})
    assert catalog.slot_values("b")["day"] == ["today", "tomorrow", "sunday"]
    assert catalog.slot_values("b")["room"][0] == "kitchen"
    with pytest.raises(GrammarError, match=r"^slots file s\.yaml: .*listed twice"):
        catalog.reload("b", ("slots file s.yaml", given))
    assert catalog.slot_values("b")["room"][0] == "kitchen"
