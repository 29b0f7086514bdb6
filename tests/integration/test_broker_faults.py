"""Issue 3, must hold 4: the broker stops and starts, or connections are cut, while jobs
run and others wait. A private broker node takes the faults; the shared one is untouched."""

from __future__ import annotations

import time

import pytest
from harness import (
    FAST_LIVENESS,
    Cluster,
    containers_created,
    history_outcomes,
    job,
    send,
)
from private_broker import PrivateBroker


@pytest.fixture
def private(tmp_path, docker_client):
    with PrivateBroker() as broker:
        cluster = Cluster(tmp_path, broker.url, docker_client)
        try:
            yield broker, cluster
        finally:
            cluster.cleanup()


def wait_for_outcomes(url: str, count: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    outcomes = history_outcomes(url, idle=1)
    while len(outcomes) < count and time.monotonic() < deadline:
        time.sleep(2)
        outcomes = history_outcomes(url, idle=1)
    return outcomes


@pytest.mark.parametrize("fault", ["restart", "cut"])
def test_jobs_survive_the_broker_going_away_and_none_runs_twice(private, docker_client, fault):
    broker, cluster = private
    started = time.time()
    workers = [cluster.worker(cpu=1, extra=FAST_LIVENESS, name=f"w{i}") for i in range(2)]
    running = [job(["sh", "-c", "sleep 10; echo ran"], cpu=1) for _ in range(2)]
    waiting = [job(["echo", "waited"], cpu=1) for _ in range(3)]
    for doc in running + waiting:
        assert send(broker.url, doc).returncode == 0
    for doc in running:
        _wait_started(workers, doc["id"])

    if fault == "restart":
        broker.stop()
        refused = send(broker.url, job(["true"]))
        time.sleep(6)  # longer than the 4 s worker timeout
        broker.start()
    else:
        broker.close_connections()
        refused = None

    outcomes = wait_for_outcomes(broker.url, len(running + waiting), timeout=90)
    by_id = {}
    for outcome in outcomes:
        assert outcome.job_id not in by_id, f"job {outcome.job_id} reported twice"
        by_id[outcome.job_id] = outcome
    assert set(by_id) == {d["id"] for d in running + waiting}, "a job was lost"
    assert {o.status.value for o in outcomes} == {"succeeded"}
    for doc in running + waiting:
        assert containers_created(docker_client, doc["id"], started) == 1
    for worker in workers:
        assert worker.process.poll() is None
        assert "lost the broker" in worker.log_text()
        worker.wait_idle()
    if refused is not None:
        assert refused.returncode == 3
        assert "cannot reach RabbitMQ" in refused.stderr and refused.stdout == ""


def _wait_started(workers, job_id: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(f"job {job_id}: started container" in w.log_text() for w in workers):
            return True
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never started")


def test_a_job_sent_before_the_broker_restarts_is_kept(private):
    broker, cluster = private
    doc = job(["echo", "kept"])
    assert send(broker.url, doc).returncode == 0  # no worker yet: it waits on the queue
    broker.restart()
    cluster.worker()

    outcomes = wait_for_outcomes(broker.url, 1, timeout=60)
    assert [o.job_id for o in outcomes] == [doc["id"]]
    assert outcomes[0].output == "kept\n"
