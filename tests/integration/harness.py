"""Helpers for the integration tests: workers run as a user runs them, jobs, outcomes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pika
import pika.exceptions
import pytest

from jobq.client import topology
from jobq.client.outcome import Outcome, parse_time
from jobq.runner.containers import LABEL_JOB_ID, LABEL_WORKER

REPO = Path(__file__).resolve().parents[2]
IMAGE = "jobq/busybox:latest"
BIN = Path(sys.executable).parent


def unavailable(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not available; scripts/setup.sh should have started it")
    pytest.skip(f"{what} is not available; run scripts/setup.sh")


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr}")
    return result.stdout


def queue_counts(vhost: str, queue: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages on a queue."""
    for line in rabbitmqctl(
        "list_queues", "-p", vhost, "name", "messages_ready", "messages_unacknowledged"
    ).splitlines():
        parts = line.split("\t")
        if parts[0] == queue:
            return int(parts[1]), int(parts[2])
    raise AssertionError(f"no queue {queue} in {vhost}")


def settled_counts(vhost: str, queue: str, expected: tuple[int, int], timeout: float = 15):
    """Queue counts once they equal ``expected``, or as they are after ``timeout``.

    RabbitMQ refreshes these figures every few seconds, so a test polls.
    """
    deadline = time.monotonic() + timeout
    counts = queue_counts(vhost, queue)
    while counts != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        counts = queue_counts(vhost, queue)
    return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def job(cmd: list[str], cpu: float = 0.5, memory: str = "64m", **extra: Any) -> dict[str, Any]:
    doc = {
        "id": uuid.uuid4().hex,
        "image": IMAGE,
        "cmd": cmd,
        "resources": {"cpu": cpu, "memory": memory},
    }
    doc.update(extra)
    return doc


@dataclass
class Worker:
    """One jobq-supervisor, run as a user would run it."""

    id: str
    config: Path
    state_dir: Path
    log: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None

    def start(
        self, broker_url: str, wait_connected: bool = True, env: dict[str, str] | None = None
    ) -> Worker:
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [BIN / "jobq-supervisor", "-c", self.config, "--broker", broker_url],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        if wait_connected:
            self.wait_for_log("connected to", timeout=30)
        return self

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text()[self.offset :]:
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.id} exited {self.process.returncode}:\n{self.log_text()[-3000:]}"
                )
            time.sleep(0.1)
        raise AssertionError(f"{self.id}: no {text!r} in {timeout}s:\n{self.log_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            return self.process.wait(5)

    def metric(self, name: str, timeout: float = 5) -> float:
        """A sample from this worker's /metrics, e.g. "jobq_allocated_cpus"."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no metric {name} at {url}")

    def wait_idle(self, timeout: float = 10) -> None:
        """Wait until the ledger books nothing: every run has given back what it held."""
        deadline = time.monotonic() + timeout
        while self.metric("jobq_allocated_cpus") or self.metric("jobq_running_jobs"):
            assert time.monotonic() < deadline, (
                f"{self.id} still books {self.metric('jobq_allocated_cpus')} CPUs "
                f"for {self.metric('jobq_running_jobs')} jobs"
            )
            time.sleep(0.2)

    def kill_all(self) -> None:
        """SIGKILL the supervisor and every one of its children at once."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@dataclass
class Cluster:
    """The supervisors a test started, and cleanup of all they leave behind."""

    tmp: Path
    broker_url: str
    docker_client: docker.DockerClient
    workers: list[Worker] = field(default_factory=list)

    def worker(
        self,
        cpu: float = 2,
        memory: str = "512m",
        start: bool = True,
        extra: str = "",
        name: str = "w",
        env: dict[str, str] | None = None,
    ) -> Worker:
        worker_id = f"{name}-{uuid.uuid4().hex[:8]}"
        folder = self.tmp / worker_id
        folder.mkdir()
        port = free_port()
        config = folder / "worker.toml"
        config.write_text(
            f'[worker]\nid = "{worker_id}"\ncpu = {cpu}\nmemory = "{memory}"\n'
            f'state_dir = "state"\n{extra}\n'
            f'[metrics]\nport = {port}\naddress = "127.0.0.1"\n'
        )
        worker = Worker(worker_id, config, folder / "state", folder / "supervisor.log", port)
        self.workers.append(worker)
        if start:
            worker.start(self.broker_url, env=env)
        return worker

    def containers(self, worker: Worker | None = None) -> list[Any]:
        ids = [worker.id] if worker else [w.id for w in self.workers]
        found = []
        for worker_id in ids:
            found += self.docker_client.containers.list(
                all=True, filters={"label": f"{LABEL_WORKER}={worker_id}"}
            )
        return found

    def remove_containers(self, worker: Worker) -> None:
        for container in self.containers(worker):
            container.remove(force=True)

    def cleanup(self) -> None:
        for worker in self.workers:
            worker.stop()
        for container in self.containers():
            container.remove(force=True)


def send(
    broker_url: str,
    doc: dict[str, Any] | str,
    *args: str,
    timeout: float = 120,
    tmp: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run jobq-send as a user would, with the job on standard input."""
    text = doc if isinstance(doc, str) else json.dumps(doc)
    return subprocess.run(
        [BIN / "jobq-send", "--broker", broker_url, *args, "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class OutcomeListener:
    """Every outcome published on a vhost, from the moment it is made."""

    def __init__(self, broker_url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        channel = self.connection.channel()
        topology.declare(channel)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, topology.EVENTS_EXCHANGE, routing_key="job.*.outcome")
        channel.basic_consume(queue, self._on_message, auto_ack=True)
        self.outcomes: list[Outcome] = []

    def _on_message(self, _ch: Any, _method: Any, _props: Any, body: bytes) -> None:
        self.outcomes.append(Outcome.from_dict(json.loads(body)["outcome"]))

    def wait_for(self, count: int, timeout: float) -> list[Outcome]:
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < count and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.2)
        assert len(self.outcomes) >= count, (
            f"{len(self.outcomes)} of {count} outcomes in {timeout}s"
        )
        return list(self.outcomes)

    def close(self) -> None:
        self.connection.close()


def declare_topology(broker_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    topology.declare(connection.channel())
    connection.close()


def publish_raw(broker_url: str, body: bytes, **properties: Any) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = connection.channel()
    topology.declare(channel)
    channel.confirm_delivery()
    channel.basic_publish("", topology.JOBS_QUEUE, body, pika.BasicProperties(**properties))
    connection.close()


def label_of(container: Any) -> str:
    return container.labels[LABEL_JOB_ID]


def peak_usage(
    outcomes: list[Outcome], needs: dict[str, tuple[float, int]]
) -> tuple[float, int, int]:
    """The most CPU, memory and jobs in use at any one moment, from Docker's start and end times.

    Ends sort before starts at the same instant: a job that starts as another
    ends does not overlap it.
    """
    events = []
    for outcome in outcomes:
        assert outcome.started_at and outcome.finished_at, outcome
        cpu, memory = needs[outcome.job_id]
        events.append((parse_time(outcome.started_at), 1, cpu, memory))
        events.append((parse_time(outcome.finished_at), 0, -cpu, -memory))
    cpu = memory = jobs = 0
    peak = (0.0, 0, 0)
    for _when, starting, d_cpu, d_memory in sorted(events, key=lambda e: (e[0], e[1])):
        cpu, memory, jobs = cpu + d_cpu, memory + d_memory, jobs + (1 if starting else -1)
        peak = (max(peak[0], round(cpu, 6)), max(peak[1], memory), max(peak[2], jobs))
    return peak


def overlap(a: Outcome, b: Outcome) -> bool:
    return parse_time(a.started_at) < parse_time(b.finished_at) and parse_time(
        b.started_at
    ) < parse_time(a.finished_at)


def containers_created(client: docker.DockerClient, job_id: str, since: float) -> int:
    """How many containers Docker created for a job since ``since`` (from its event log)."""
    events = client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"event": "create", "label": f"{LABEL_JOB_ID}={job_id}"},
    )
    return sum(1 for _ in events)


def pid_in_log(worker: Worker, logger: str, text: str) -> int:
    """The pid of the process whose log line from ``logger`` (e.g. "jobq.consumer") has ``text``."""
    for line in reversed(worker.log_text().splitlines()):
        if f" {logger}[" in line and text in line:
            return int(line.split(f" {logger}[", 1)[1].split("]", 1)[0])
    raise AssertionError(f"no {logger} line with {text!r} in {worker.id}'s log")


FAST_LIVENESS = "heartbeat_interval = 0.5\nworker_timeout = 4\n"


def restart_dockerd(down_seconds: float = 3) -> None:
    """Stop Docker's engine and start it again as scripts/setup.sh does (live-restore)."""
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "stop", "docker"], check=True, timeout=60)
        time.sleep(down_seconds)
        subprocess.run(["systemctl", "start", "docker"], check=True, timeout=60)
    else:
        subprocess.run(["pkill", "-TERM", "-x", "dockerd"], timeout=10)
        deadline = time.monotonic() + 30
        while subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "dockerd did not stop"
            time.sleep(0.2)
        time.sleep(down_seconds)
        subprocess.Popen(
            "nohup dockerd --live-restore >>/var/log/jobq-dockerd.log 2>&1 &",
            shell=True,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            docker.from_env().ping()
            return
        except Exception:
            assert time.monotonic() < deadline, "dockerd did not come back"
            time.sleep(0.5)


def history_outcomes(broker_url: str, idle: float = 2.0, recover: float = 30.0) -> list[Outcome]:
    """Every outcome in the jobq.history stream: a record that survives broker restarts.

    A node that has just restarted answers before its stream is back ("home node
    ... is down or inaccessible"), so a read is tried again for up to ``recover`` s.
    """
    deadline = time.monotonic() + recover
    while True:
        try:
            return _read_history(broker_url, idle)
        except pika.exceptions.AMQPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _read_history(broker_url: str, idle: float) -> list[Outcome]:
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1000)
    found: list[Outcome] = []
    last = [time.monotonic()]

    def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
        ch.basic_ack(method.delivery_tag)
        last[0] = time.monotonic()
        doc = json.loads(body)
        if doc.get("event") == "outcome":
            found.append(Outcome.from_dict(doc["outcome"]))

    channel.basic_consume(
        topology.HISTORY_STREAM, on_message, arguments={"x-stream-offset": "first"}
    )
    while time.monotonic() - last[0] < idle:
        connection.process_data_events(time_limit=0.2)
    connection.close()
    return found
