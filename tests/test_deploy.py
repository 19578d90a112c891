"""The Grafana dashboard and the Prometheus alert rules in deploy/ parse, and name only
metrics the ingress and the worker really expose."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from ingress.console.app import console_app
from ingress.metrics import IngressMetrics
from schemas.settings import Settings
from streams import metrics as worker_metrics

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "zoho-cdp-pipeline.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
OUR_METRIC = re.compile(r"\b(?:ingress|worker|pipeline|console)_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exposed_names() -> set[str]:
    """Every series name the two processes can expose, with Prometheus's suffixes."""
    ingress = IngressMetrics()
    console_app(Settings(admin_token="an-admin-token-for-the-test"), _NoSources(), ingress.registry)
    families = [family for family in ingress.registry.collect()]
    for value in vars(worker_metrics).values():
        if isinstance(value, MetricWrapperBase):
            families += value.describe()
    names = set()
    for family in families:
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


class _NoSources:
    def sources(self) -> dict[str, Any]:
        return {}

    async def create(self, values: Any) -> Any:
        raise NotImplementedError


def dashboard_expressions() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in document["panels"] for target in panel["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_dashboard_is_grafana_json_with_panels() -> None:
    document = json.loads(DASHBOARD.read_text())
    assert document["uid"] and document["title"]
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids)) > 5
    assert all(panel["targets"] for panel in document["panels"])


def test_the_alert_rules_are_prometheus_rules() -> None:
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}
    assert {
        "DeadLettersAppearing",
        "ConsumerLagGrowing",
        "SpoolNotDraining",
        "NoWebhookFromSource",
    } <= names
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


@pytest.mark.parametrize(
    "expression", dashboard_expressions() + [rule["expr"] for rule in alert_rules()]
)
def test_only_metrics_that_exist_are_named(expression: str) -> None:
    named = set(OUR_METRIC.findall(expression))
    assert named, expression
    assert named <= exposed_names(), named - exposed_names()


def test_the_check_catches_a_metric_that_does_not_exist() -> None:
    # Control: a misspelt name is not among the exposed ones.
    assert "worker_cdp_rejected_totals" not in exposed_names()
    assert "worker_cdp_rejected_total" in exposed_names()
