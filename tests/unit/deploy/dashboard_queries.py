"""The Grafana dashboard's PromQL, read with a real PromQL parser instead of regular expressions.

``promql-parser`` (PyPI) binds the Rust parser GreptimeDB uses, which follows Prometheus' own
grammar and type rules: an unclosed parenthesis, an unknown function or ``rate()`` over an
instant vector are refused, which a regex over the text would let through. The metric names come
from the parsed tree's vector selectors, so a name inside a label value or a legend is never
mistaken for a metric.

Shared by the offline deploy test and the integration test that scrapes the real processes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "dashboards" / "tgstream.json"

GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
"""Grafana's built-in range variables, replaced by a valid duration before parsing."""


class UnverifiableQuery(ValueError):
    """A query whose metrics cannot be named statically (a regex ``__name__``, an unknown variable)."""


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    expr: str
    metrics: frozenset[str]
    labels: frozenset[str]
    """Every label name the query matches on or groups by."""


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def parse(expr: str) -> Any:
    """The parsed tree; ``ValueError`` (from the parser) when the query is not valid PromQL."""
    text = expr
    for variable, value in GRAFANA_VARIABLES.items():
        text = text.replace(variable, value)
    if "$" in text:
        raise UnverifiableQuery(f"unknown Grafana variable in {expr!r}")
    return promql_parser.parse(text)


def analyse(expr: str, panel: str = "") -> PanelQuery:
    metrics: set[str] = set()
    labels: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    if matcher.op != promql_parser.MatchOp.Equal:
                        raise UnverifiableQuery(f"regex metric name in {expr!r}")
                    name = matcher.value
                else:
                    labels.add(matcher.name)
            if not name:
                raise UnverifiableQuery(f"selector without a metric name in {expr!r}")
            metrics.add(name)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            labels.update(node.modifier.labels)

    promql_parser.walk(parse(expr), visit)
    return PanelQuery(panel, expr, frozenset(metrics), frozenset(labels))


def dashboard_queries(dashboard: dict[str, Any] | None = None) -> list[PanelQuery]:
    """Every target of every panel (rows excluded), parsed."""
    loaded = load_dashboard() if dashboard is None else dashboard
    return [
        analyse(target["expr"], panel["title"])
        for panel in loaded["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def exposition_names(family_name: str, family_type: str) -> set[str]:
    """The sample names a family of the text format can carry, even when it has no sample yet.

    prometheus-client's parser strips ``_total`` from a counter family's name; a labelled family
    whose children were never created shows only its HELP and TYPE lines.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
        "stateset": ("",),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    }.get(family_type, ("",))
    return {family_name + suffix for suffix in suffixes}
