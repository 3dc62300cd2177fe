"""The shipped Prometheus alert rules and Grafana dashboard ask only for what /metrics exports.

Every expression is read, and each metric it names, each label it matches or groups by,
and each literal label value it matches on must appear in a real scrape of known traffic.
When ``promtool`` is installed (Debian's ``prometheus`` package), it checks the rules'
PromQL and runs their unit tests too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.eventflow.test_metrics import traffic  # noqa: F401 - the known-traffic fixture

CONTRIB = Path(__file__).resolve().parents[2] / "eventflow" / "contrib"
RULES = CONTRIB / "prometheus" / "eventflow-alerts.yml"
RULE_TESTS = CONTRIB / "prometheus" / "eventflow-alerts.test.yml"
DASHBOARD = CONTRIB / "grafana" / "eventflow-dashboard.json"

SELECTOR = re.compile(r"\b(eventflow_[a-z_]+)\b(?:\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)")
LABEL_VALUES = re.compile(r"label_values\((eventflow_[a-z_]+),\s*(\w+)\)")


@pytest.fixture
def exported(client, traffic) -> dict[str, list[dict[str, str]]]:  # noqa: F811
    """Sample name -> the label sets it has, from a real scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    assert response.status_code == 200
    series: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            series.setdefault(sample.name, []).append(sample.labels)
    return series


def problems_in(expr: str, exported: dict[str, list[dict[str, str]]]) -> list[str]:
    """What in ``expr`` does not match the scrape: unknown metrics, labels or literal values."""
    found = SELECTOR.findall(expr)
    if not found:
        return [f"{expr!r} names no eventflow metric"]
    problems = []
    for name, matchers in found:
        if name not in exported:
            problems.append(f"{name} is not exported")
            continue
        for label, op, value in MATCHER.findall(matchers):
            values = {labels.get(label) for labels in exported[name]}
            if values == {None}:
                problems.append(f"{name} has no label {label!r}")
            elif op == "=" and "$" not in value and value not in values:
                problems.append(f"{name}{{{label}={value!r}}} matches no exported series")
    names = [name for name, _ in found if name in exported]
    for group in GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in group.split(","))):
            if not any(label in labels for name in names for labels in exported[name]):
                problems.append(f"grouping label {label!r} is on none of {names}")
    for name, label in LABEL_VALUES.findall(expr):
        if not any(label in labels for labels in exported.get(name, [])):
            problems.append(f"label_values: {name} has no label {label!r}")
    return problems


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries(dashboard: dict) -> list[str]:
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    return queries + [variable["query"]["query"] for variable in dashboard["templating"]["list"]]


def test_every_alert_rule_asks_for_exported_series(exported):
    found = {rule["alert"]: problems_in(rule["expr"], exported) for rule in rules()}

    assert len(found) >= 8
    assert {alert: problems for alert, problems in found.items() if problems} == {}


def test_every_alert_rule_has_a_severity_and_a_summary():
    for rule in rules():
        assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]


def test_the_problem_finder_catches_typos(exported):
    """The check above could pass by finding nothing; here it must find each kind of mistake."""
    assert problems_in('eventflow_consumer_health{status="STALL"} == 1', exported)
    assert problems_in("eventflow_consumer_lagg > 0", exported)
    assert problems_in('sum by (consumr) (eventflow_consumer_lag{consumer=~"$consumer"})', exported)
    assert problems_in("up == 0", exported)
    assert not problems_in('sum by (consumer) (eventflow_consumer_lag{consumer=~"$consumer"})', exported)


def test_every_grafana_query_asks_for_exported_series(exported):
    dashboard = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries(dashboard)

    assert len(queries) >= 12
    assert {q: p for q in queries if (p := problems_in(q, exported))} == {}


def test_the_grafana_dashboard_imports_with_a_chosen_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())

    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian: prometheus)")
def test_promtool_accepts_the_rules_and_their_unit_tests():
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        ["promtool", "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian: prometheus)")
def test_promtool_finds_nothing_to_lint_in_a_scrape(client, traffic):  # noqa: F811
    response = client.get("/metrics")

    lint = subprocess.run(["promtool", "check", "metrics"], input=response.content, capture_output=True)

    assert lint.returncode == 0, lint.stdout + lint.stderr
