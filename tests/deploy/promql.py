"""What the server exports to Prometheus, and which series a PromQL expression reads: the
shared checks of the Prometheus rules and the Grafana dashboard (tests/deploy).

The exported series come from a real :class:`serving.metrics.Metrics`: every labelled metric
gets one child, then the registry's own text output is parsed back (so a histogram with
negative buckets, which prometheus-client exports without ``_sum``, has no ``_sum`` here
either). PromQL is read by a small tokenizer, enough for selectors, functions and grouping
clauses; it is no full parser, and the rules are checked by ``promtool`` as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from prometheus_client.metrics_core import Metric

# Labels Prometheus adds to every scraped series, and its own series.
TARGET_LABELS = frozenset({"job", "instance"})
PROMETHEUS_SERIES: dict[str, frozenset[str]] = {"up": frozenset()}
KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                      "and", "or", "unless", "offset", "inf", "nan"})
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
_TOKEN = re.compile(rf"""
    (?P<string>{_STRING})
  | (?P<braces>\{{(?:{_STRING}|[^}}"'`])*\}})
  | (?P<range>\[[^\]]*\])
  | (?P<number>\d[\w.]*|\.\d[\w.]*)
  | (?P<ident>[a-zA-Z_:][\w:]*)
  | (?P<other>\S)
""", re.VERBOSE)
_MATCHER = re.compile(rf"([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*({_STRING})")
_DASHBOARD_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")


def _scrape() -> list[Metric]:
    """The metric families of a fresh server registry, every labelled metric with a child."""
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.parser import text_string_to_metric_families

    from serving.metrics import Metrics

    metrics = Metrics()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    return list(text_string_to_metric_families(metrics.render().decode()))


def exported_families() -> dict[str, frozenset[str]]:
    """Every metric family of a server's /metrics, with the series names it shows."""
    return {family.name: frozenset(sample.name for sample in family.samples)
            for family in _scrape()}


def exported_series() -> dict[str, frozenset[str]]:
    """Every series name a server's /metrics can show, with its label names (without the
    target labels Prometheus adds)."""
    series: dict[str, set[str]] = {}
    for family in _scrape():
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in series.items()}


@dataclass
class Query:
    """The series an expression selects (name and label matchers) and the labels it groups
    or matches on."""

    selectors: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)

    @property
    def names(self) -> set[str]:
        return {name for name, _ in self.selectors}


def parse(expr: str) -> Query:
    """See module docs. Dashboard variables (``$model``, ``${model}``,
    ``$__rate_interval``) are read as a number."""
    tokens = [(m.lastgroup, m.group()) for m in
              _TOKEN.finditer(_DASHBOARD_VARIABLE.sub("1", expr))]
    query = Query()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        after = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "ident" and text in GROUPING and after == ("other", "("):
            end = next(j for j in range(i + 2, len(tokens)) if tokens[j] == ("other", ")"))
            query.grouping |= {t for k, t in tokens[i + 2 : end] if k == "ident"}
            i = end + 1
            continue
        aggregation = after[0] == "ident" and after[1] in ("by", "without")  # sum by (...)
        if kind == "ident" and text not in KEYWORDS and after != ("other", "(") \
                and not aggregation:
            matchers = _matchers(after[1]) if after[0] == "braces" else {}
            query.selectors.append((text, matchers))
            i += 2 if after[0] == "braces" else 1
            continue
        if kind == "braces":  # a selector without a name: {__name__="..."}
            matchers = _matchers(text)
            query.selectors.append((matchers.pop("__name__", "{}"), matchers))
        i += 1
    return query


def _matchers(braces: str) -> dict[str, str]:
    return {name: value[1:-1] for name, _op, value in _MATCHER.findall(braces[1:-1])}


def recording_rules(path: Path) -> dict[str, frozenset[str]]:
    """The series a rules file records, with the labels it keeps (those it groups by)."""
    out: dict[str, frozenset[str]] = {}
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                out[rule["record"]] = frozenset(parse(rule["expr"]).grouping - {"le"})
    return out


def unknown_references(expr: str, known: Mapping[str, frozenset[str]]) -> list[str]:
    """What ``expr`` reads that no known series has: names, matcher labels, grouping labels
    (empty when it reads only what exists)."""
    query = parse(expr)
    problems = []
    for name, matchers in query.selectors:
        if name not in known:
            problems.append(f"{name} is not exported")
        elif extra := set(matchers) - known[name] - TARGET_LABELS:
            problems.append(f"{name} has no label {sorted(extra)}")
    labels = set().union(*(known.get(name, frozenset()) for name in query.names))
    if extra := query.grouping - labels - TARGET_LABELS - {"le"}:
        problems.append(f"no series read has the labels {sorted(extra)} it groups by")
    return problems


def known_series(rules: Path) -> dict[str, frozenset[str]]:
    """What a query may read: the server's series, Prometheus' own, the recorded ones."""
    return {**exported_series(), **PROMETHEUS_SERIES, **recording_rules(rules)}


def expressions(rules: Path) -> Iterable[tuple[str, str]]:
    """(rule name, expression) of every rule in a rules file."""
    for group in yaml.safe_load(rules.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("record") or rule["alert"], rule["expr"]
