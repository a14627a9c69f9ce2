"""The Grafana dashboard in stacks/dashboards/: every panel queries a metric something actually exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stacks.constructs.serving_metrics import NEURON_MONITOR, scrape_configuration
from workloads.bert.k8s import SERIES_LABELS

DASHBOARD = Path(__file__).resolve().parents[2] / "stacks" / "dashboards" / "bert-serving.json"
# neuron-monitor-prometheus.py's series the dashboard reads, and Prometheus's own `up`.
NEURON_MONITOR_SERIES = {"neuroncore_utilization_ratio", "execution_errors_total"}


def server_series() -> set[str]:
    """Return every series name the BERT server's registry exports (histograms: _bucket/_sum/_count)."""
    pytest.importorskip("fastapi")
    from workloads.bert.server import Metrics

    names = set()
    for metric in Metrics().registry.collect():
        names |= {sample.name for sample in metric.samples}
        if metric.type == "counter":  # a labelled counter has no sample until a label value is used
            names.add(f"{metric.name}_total")
    return names


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"])
    for word in ("throughput", "p50", "p99", "queue", "batch size", "neuroncore"):
        assert word in titles, word


def test_every_queried_series_exists() -> None:
    known = server_series() | NEURON_MONITOR_SERIES | {"up"}
    used = set()
    for expr in expressions():
        used |= {m for m in re.findall(r"\b([a-z_][a-z0-9_]*)\{", expr)}
    assert used, "no series found in the dashboard"
    assert used <= known, used - known


def test_label_selectors_use_labels_the_collector_writes() -> None:
    jobs = {job["job_name"] for job in scrape_configuration("bert", "kube-system")["scrape_configs"]}
    assert NEURON_MONITOR in jobs
    allowed = set(SERIES_LABELS) | {"job", "le", "code", "neuroncore"}
    for expr in expressions():
        for label in re.findall(r"([a-z_]+)=~?\"", expr):
            assert label in allowed, (label, expr)
        for by in re.findall(r"by \(([^)]*)\)", expr):
            assert {b.strip() for b in by.split(",")} <= allowed, expr
