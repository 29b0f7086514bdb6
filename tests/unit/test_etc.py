"""etc/: the Grafana dashboard, Prometheus config, systemd unit and worker.toml agree with the code.

The dashboard may only query series the supervisor exports: a renamed or
misspelt metric leaves a panel silently empty, so every name is checked against
the exposition of a real ``Metrics``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from jobq.client.outcome import Outcome, Status
from jobq.client.units import NANO, Resources
from jobq.supervisor.config import DEFAULT_METRICS_PORT, Host, load
from jobq.supervisor.ledger import Ledger
from jobq.supervisor.metrics import Metrics
from jobq.supervisor.placement import Rules

ETC = Path(__file__).resolve().parents[2] / "etc"
DASHBOARD = ETC / "grafana-dashboard.json"
PROMETHEUS = ETC / "prometheus.yml"
UNIT = ETC / "jobq-supervisor.service"
WORKER_TOML = ETC / "worker.toml"

GIB = 1024**3
WORKER = "worker-1"

# A PromQL identifier that starts with jobq_. The whole identifier is taken
# (upper case and colons too), so a name with a stray suffix is not read as a
# shorter, valid one; the look-behind keeps out names like my_jobq_x.
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:])jobq_[A-Za-z0-9_:]+")
SAMPLE_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]")


# -- what the supervisor exports ---------------------------------------------


def exported_names() -> set[str]:
    """Every sample name a real Metrics exposes once each metric has a labelled series.

    A labelled metric shows no sample until a label set is used, so each one is
    exercised here. A metric added to supervisor/metrics.py that the dashboard
    uses needs a line here too, or this test reports it as unknown.
    """
    ledger = Ledger(Resources(4 * NANO, 8 * GIB), max_jobs=4)
    ledger.reserve("job-1", Resources(NANO, GIB))
    metrics = Metrics(WORKER, ledger)
    metrics.job_finished(
        Outcome(
            job_id="job-1",
            worker=WORKER,
            status=Status.SUCCEEDED,
            exit_code=0,
            oom_killed=False,
            started_at="2024-01-01T00:00:10.000000000Z",
            finished_at="2024-01-01T00:01:10.000000000Z",
            submitted_at=1704067200.0,
            image_pull_seconds=2.5,
        )
    )
    metrics.broker_state(True)
    metrics.broker_state(False)  # a lost connection: counts a reconnect
    metrics.broker_state(True)
    metrics.process_restarted("monitor")
    metrics.container_adopted()
    metrics.parked.labels(WORKER).inc()
    metrics.queue_depth.labels(WORKER, "jobq.jobs").set(1)
    text = generate_latest(metrics.registry).decode()
    return {
        match.group(1)
        for line in text.splitlines()
        if not line.startswith("#") and (match := SAMPLE_LINE.match(line))
    }


@pytest.fixture(scope="module")
def exported() -> set[str]:
    return exported_names()


def test_exported_names_include_every_kind_of_sample(exported):
    # Guards the parsing above: gauges, counters (_total) and histograms
    # (_bucket, _sum, _count) all come through, and family names alone do not.
    for name in (
        "jobq_capacity_cpus",
        "jobq_queue_messages",
        "jobq_jobs_finished_total",
        "jobq_job_run_seconds_bucket",
        "jobq_job_queue_wait_seconds_sum",
        "jobq_image_pull_seconds_count",
        "jobq_broker_reconnects_total",
    ):
        assert name in exported
    assert "jobq_jobs_finished" not in exported
    assert "jobq_job_run_seconds" not in exported


# -- what the dashboard queries ----------------------------------------------


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        where = f"variable {variable.get('name')!r}"
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if query:
            yield where, query
        if variable.get("definition"):
            yield where, variable["definition"]


def used_names(dashboard: dict[str, Any]) -> dict[str, set[str]]:
    """Each jobq_ metric name the dashboard queries, with where it is used."""
    used: dict[str, set[str]] = {}
    for where, expr in queries(dashboard):
        for name in METRIC_NAME.findall(expr):
            used.setdefault(name, set()).add(where)
    return used


def unknown_names(dashboard: dict[str, Any], exported: set[str]) -> list[str]:
    """Names queried that the supervisor does not export as a sample, with where."""
    return sorted(
        f"{name} (in {', '.join(sorted(places))})"
        for name, places in used_names(dashboard).items()
        if name not in exported
    )


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_queries_only_metrics_the_supervisor_exports(dashboard, exported):
    # Exact sample names: a counter is queried as jobq_x_total and a histogram
    # as jobq_x_bucket/_sum/_count; the bare family name matches no series.
    unknown = unknown_names(dashboard, exported)
    assert not unknown, "the dashboard queries metrics the supervisor does not export:\n" + (
        "\n".join(unknown)
    )


def test_the_metric_check_catches_a_made_up_name(exported):
    made_up_expr = "sum(rate(jobq_not_a_metric[5m])) / sum(jobq_running_jobs)"
    family_expr = "rate(jobq_jobs_finished[5m])"
    made_up = {
        "panels": [
            {
                "type": "row",
                "panels": [
                    {
                        "title": "bogus",
                        "targets": [
                            {"refId": "A", "expr": made_up_expr},
                            {"refId": "B", "expr": family_expr},
                        ],
                    }
                ],
            }
        ],
        "templating": {
            "list": [
                {"type": "query", "name": "w", "query": {"query": "label_values(jobq_nope, w)"}}
            ]
        },
    }
    unknown = unknown_names(made_up, exported)
    assert [entry.split()[0] for entry in unknown] == [
        "jobq_jobs_finished",  # the counter without _total
        "jobq_nope",
        "jobq_not_a_metric",
    ]


def test_dashboard_uses_every_exported_metric_family(dashboard, exported):
    # Not required of a dashboard, but today it covers all of them; a metric
    # the supervisor gains later is fine to leave out, so only these are checked.
    used = set(used_names(dashboard))
    for family in (
        "jobq_capacity_cpus",
        "jobq_capacity_memory_bytes",
        "jobq_allocated_cpus",
        "jobq_allocated_memory_bytes",
        "jobq_running_jobs",
        "jobq_jobs_finished_total",
        "jobq_job_run_seconds_bucket",
        "jobq_job_queue_wait_seconds_bucket",
        "jobq_image_pull_seconds_bucket",
        "jobq_broker_connected",
        "jobq_broker_reconnects_total",
        "jobq_process_restarts_total",
        "jobq_containers_adopted_total",
        "jobq_jobs_unschedulable_total",
        "jobq_queue_messages",
    ):
        assert family in used, family


def test_dashboard_imports_with_a_datasource_choice(dashboard):
    assert dashboard["uid"] == "jobq"
    assert dashboard["title"] == "jobq"
    assert dashboard["id"] is None
    assert [(i["name"], i["type"], i["pluginId"]) for i in dashboard["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["worker"]["definition"] == "label_values(jobq_capacity_cpus, worker)"
    assert variables["worker"]["datasource"]["uid"] == "${DS_PROMETHEUS}"
    for panel in _panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert 'worker=~"$worker"' in target["expr"], panel["title"]
    ids = [panel["id"] for panel in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))


# -- prometheus.yml ------------------------------------------------------------


def test_prometheus_config_scrapes_the_metrics_path():
    text = PROMETHEUS.read_text()
    assert re.search(r"^\s*metrics_path: /metrics\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*- job_name: jobq\s*$", text, re.MULTILINE)
    assert f"worker-1:{DEFAULT_METRICS_PORT}" in text


def test_prometheus_config_is_yaml():
    import yaml  # the [test] extra installs it

    doc = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = [job for job in doc["scrape_configs"] if job["job_name"] == "jobq"]
    assert job["metrics_path"] == "/metrics"
    assert job["scrape_interval"] == "15s"
    assert job["static_configs"][0]["targets"] == [f"worker-1:{DEFAULT_METRICS_PORT}"]


# -- the systemd unit ----------------------------------------------------------


def unit_settings(text: str) -> dict[str, list[str]]:
    """key -> values in the unit file, comments and section headers left out."""
    settings: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_starts_the_supervisor_and_stops_only_its_main_process():
    settings = unit_settings(UNIT.read_text())
    (exec_start,) = settings["ExecStart"]
    program, *args = exec_start.split()
    assert program.endswith("/jobq-supervisor")
    assert args[0] == "-c" and args[1].endswith(".toml")
    assert settings["KillMode"] == ["mixed"]
    assert settings["Restart"] == ["on-failure"]
    assert "ExecReload" not in settings
    assert "docker.service" in " ".join(settings["After"])


# -- worker.toml ---------------------------------------------------------------


def test_sample_worker_config_loads():
    config = load(WORKER_TOML, Host(nano_cpus=64 * NANO, memory=256 * GIB))
    assert config.worker.id == "worker-1"
    assert config.worker.capacity == Resources(2 * NANO, GIB)
    # The port etc/prometheus.yml scrapes for worker-1.
    assert config.metrics.port == DEFAULT_METRICS_PORT


def test_sample_worker_config_shows_the_real_defaults(tmp_path):
    # Every commented-out "# key = value" line, switched on, must change nothing.
    text = re.sub(r"(?m)^# ([a-z_]+ = )", r"\1", WORKER_TOML.read_text())
    switched_on = tmp_path / "worker.toml"
    switched_on.write_text(text)
    host = Host(nano_cpus=64 * NANO, memory=256 * GIB)
    plain, explicit = load(WORKER_TOML, host), load(switched_on, host)
    assert explicit.placement == plain.placement == Rules()
    assert explicit.broker.prefetch == plain.broker.prefetch
    assert explicit.metrics == plain.metrics
    assert explicit.worker.max_jobs == plain.worker.max_jobs
