"""deploy/grafana/assistant-dashboard.json: valid JSON, unique panel ids on a 24-column grid
without overlaps, a data source input and the `model` variable, and every query reads only
series the server exports (or the recording rules of deploy/prometheus/rules.yml); every
metric the server exports is on some panel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

from tests.deploy.promql import exported_families, known_series, parse, unknown_references

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "assistant-dashboard.json"
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
BUILT_IN_VARIABLES = {"__rate_interval", "__range", "__interval"}
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def _targets() -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in _panels(_dashboard()["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target


def test_the_dashboard_is_valid_with_unique_ids_on_the_grid() -> None:
    dashboard = _dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41 and dashboard["uid"] and dashboard["title"]
    panels = list(_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    boxes = []
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        boxes.append((panel["title"], grid))
    for (a, p), (b, q) in combinations(boxes, 2):
        overlap = (p["x"] < q["x"] + q["w"] and q["x"] < p["x"] + p["w"]
                   and p["y"] < q["y"] + q["h"] and q["y"] < p["y"] + p["h"])
        assert not overlap, (a, b)


def test_the_data_source_is_an_input_and_the_model_a_variable() -> None:
    dashboard = _dashboard()
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    model = variables["model"]
    assert model["type"] == "query" and model["datasource"] == DATASOURCE
    assert model["query"]["query"] == "label_values(assistant_results_total, model)"
    assert "model" in known_series(RULES)["assistant_results_total"]
    for panel in _panels(dashboard["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
    # Every variable a query uses is defined (or Grafana's own).
    used = {name for _, target in _targets()
            for name in re.findall(r"\$\{?(\w+)", target["expr"])}
    assert used <= set(variables) | BUILT_IN_VARIABLES


def test_every_query_reads_only_what_the_server_exports() -> None:
    known = known_series(RULES)
    problems = {f"{title} {target['refId']}": found for title, target in _targets()
                if (found := unknown_references(target["expr"], known))}
    assert not problems


def test_every_exported_metric_is_on_a_panel() -> None:
    read = {name for _, target in _targets() for name in parse(target["expr"]).names}
    missing = [family for family, series in exported_families().items()
               if not family.endswith("_created") and not series & read]
    assert not missing
