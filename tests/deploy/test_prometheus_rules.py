"""deploy/prometheus: the rules pass promtool's checks and its unit tests (rules_test.yml),
every alert is covered by them, and the rules read only series the server exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql import expressions, known_series, unknown_references

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules.yml"
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (apt-get install prometheus; .ci/run installs it)")


def _promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=PROMETHEUS, input=stdin,
                          capture_output=True, text=True, timeout=120)


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@needs_promtool
def test_the_rules_and_the_example_config_pass_promtool_checks() -> None:
    rules = _promtool("check", "rules", "rules.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = _promtool("check", "config", "prometheus.yml")  # loads rules.yml too
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_the_alerts_fire_and_stay_silent_as_the_unit_tests_say() -> None:
    result = _promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    cases = [case for test in yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())
             ["tests"] for case in test.get("alert_rule_test", [])]
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    names = {alert["alert"] for alert in _alerts()}
    assert names and fired == names and silent == names


def test_every_alert_waits_has_a_severity_and_says_what_to_look_at() -> None:
    for alert in _alerts():
        name = alert["alert"]
        assert "for" in alert, name
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        summary, description = (alert["annotations"][k] for k in ("summary", "description"))
        assert "$labels.instance" in summary or "$labels.model" in summary, name
        assert len(description.split()) >= 15, name


def test_the_rules_read_only_what_the_server_exports() -> None:
    known = known_series(RULES)
    problems = {name: found for name, expr in expressions(RULES)
                if (found := unknown_references(expr, known))}
    assert not problems


def test_the_export_check_finds_what_the_server_does_not_have() -> None:
    known = known_series(RULES)
    assert unknown_references("rate(assistant_results_total[5m])", known) == []
    assert unknown_references("assistant_result_total", known) == [
        "assistant_result_total is not exported"]
    # prometheus-client exports no _sum for a histogram with negative buckets
    assert unknown_references("assistant_audio_level_dbfs_sum", known) == [
        "assistant_audio_level_dbfs_sum is not exported"]
    assert unknown_references('assistant_drift_alarm{signl="snr_db"}', known) == [
        "assistant_drift_alarm has no label ['signl']"]
    assert unknown_references("sum by (reason) (assistant_results_total)", known) == [
        "no series read has the labels ['reason'] it groups by"]


@needs_promtool
def test_what_the_server_exports_passes_promtool_lint() -> None:
    from serving.metrics import Metrics

    metrics = Metrics()
    metrics.results.labels("home", "lightsOn", "true").inc()
    metrics.confidence.labels("home").observe(0.9)
    metrics.drift_score.labels("home", "snr_db").set(0.1)
    result = _promtool("check", "metrics", stdin=metrics.render().decode())
    assert result.returncode == 0, result.stdout + result.stderr
