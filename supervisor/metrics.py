"""Every Prometheus metric the supervisor exports, and the /metrics endpoint.

Only the parent process touches metrics. Children report what happened to
the parent (the monitor through the outcome it records, the consumer through
its pipe), and CPU, memory and running jobs are read from the shared ledger at
scrape time. So there is one registry in one process: no multiprocess mode,
no files left behind per dead monitor, and scrapes stay fast however many
containers come and go.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobq.client.outcome import Outcome, Status, parse_time

from .ledger import Ledger

RUN_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600, float("inf"))
WAIT_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, float("inf"))
PULL_BUCKETS = (0.5, 1, 5, 15, 60, 300, float("inf"))


class LedgerCollector(Collector):
    """Capacity, allocation and running jobs, read from the ledger on every scrape."""

    def __init__(self, ledger: Ledger, worker_id: str) -> None:
        self.ledger = ledger
        self.worker_id = worker_id

    def collect(self) -> Iterator[GaugeMetricFamily]:
        running = self.ledger.running()
        allocated_cpu = sum(need.nano_cpus for need in running.values()) / 1e9
        allocated_memory = sum(need.memory for need in running.values())
        for name, text, value in (
            ("jobq_capacity_cpus", "CPUs this worker may give to jobs", self.ledger.capacity.cpu),
            (
                "jobq_capacity_memory_bytes",
                "Memory this worker may give to jobs",
                self.ledger.capacity.memory,
            ),
            ("jobq_allocated_cpus", "CPUs booked by running jobs", allocated_cpu),
            ("jobq_allocated_memory_bytes", "Memory booked by running jobs", allocated_memory),
            ("jobq_running_jobs", "Jobs running on this worker", len(running)),
        ):
            family = GaugeMetricFamily(name, text, labels=["worker"])
            family.add_metric([self.worker_id], value)
            yield family


class Metrics:
    def __init__(self, worker_id: str, ledger: Ledger) -> None:
        self.worker_id = worker_id
        self.registry = CollectorRegistry()
        self.registry.register(LedgerCollector(ledger, worker_id))
        labels = ["worker"]
        self.finished = Counter(
            "jobq_jobs_finished",
            "Jobs that ended here, by outcome",
            [*labels, "outcome"],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "jobq_job_run_seconds",
            "Container run time",
            labels,
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.wait_seconds = Histogram(
            "jobq_job_queue_wait_seconds",
            "From submit to container start",
            labels,
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.pull_seconds = Histogram(
            "jobq_image_pull_seconds",
            "Image pull time",
            labels,
            buckets=PULL_BUCKETS,
            registry=self.registry,
        )
        self.broker_connected = Gauge(
            "jobq_broker_connected",
            "1 while the consumer is connected to RabbitMQ",
            labels,
            registry=self.registry,
        )
        self.reconnects = Counter(
            "jobq_broker_reconnects", "Connections to RabbitMQ lost", labels, registry=self.registry
        )
        self.restarts = Counter(
            "jobq_process_restarts",
            "Child processes restarted after an unexpected exit",
            [*labels, "process"],
            registry=self.registry,
        )
        self.adopted = Counter(
            "jobq_containers_adopted",
            "Running containers taken over after a supervisor restart",
            labels,
            registry=self.registry,
        )
        self.parked = Counter(
            "jobq_jobs_unschedulable",
            "Jobs this worker found no live worker could fit, and parked on jobq.unschedulable",
            labels,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "jobq_queue_messages",
            "Messages ready on a jobq queue, as this worker last saw it",
            [*labels, "queue"],
            registry=self.registry,
        )
        self.broker_connected.labels(worker_id).set(0)
        self._connected = False
        self._start_every_series_at_zero()
        # The supervisor's own CPU, memory and file descriptors, and its start time.
        ProcessCollector(registry=self.registry)

    def _start_every_series_at_zero(self) -> None:
        """Create each labelled series now, at 0, so rate() and increase() see its first event."""
        for outcome in [*(status.value for status in Status), "requeued"]:
            self.finished.labels(self.worker_id, outcome)
        for kind in ("consumer", "monitor"):
            self.restarts.labels(self.worker_id, kind)
        for metric in (
            self.run_seconds,
            self.wait_seconds,
            self.pull_seconds,
            self.reconnects,
            self.adopted,
            self.parked,
        ):
            metric.labels(self.worker_id)

    def serve(self, address: str, port: int) -> Any:
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return server

    def job_finished(self, outcome: Outcome) -> None:
        self.finished.labels(self.worker_id, outcome.status.value).inc()
        if outcome.run_seconds is not None:
            self.run_seconds.labels(self.worker_id).observe(outcome.run_seconds)
        if outcome.started_at and outcome.submitted_at:
            waited = parse_time(outcome.started_at).timestamp() - outcome.submitted_at
            self.wait_seconds.labels(self.worker_id).observe(max(0.0, waited))
        if outcome.image_pull_seconds is not None:
            self.pull_seconds.labels(self.worker_id).observe(outcome.image_pull_seconds)

    def broker_state(self, connected: bool) -> None:
        if self._connected and not connected:
            self.reconnects.labels(self.worker_id).inc()
        self._connected = connected
        self.broker_connected.labels(self.worker_id).set(1 if connected else 0)

    def process_restarted(self, kind: str) -> None:
        self.restarts.labels(self.worker_id, kind).inc()

    def container_adopted(self) -> None:
        self.adopted.labels(self.worker_id).inc()
