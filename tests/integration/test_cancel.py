"""Issue 5: cancel. A cancelled queued job never starts; a cancelled running job is stopped,
its resources freed, and its outcome says cancelled."""

from __future__ import annotations

import subprocess
import time

from harness import BIN, Cluster, OutcomeListener, containers_created, job, send


def cancel(broker_url: str, *job_ids: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "jobq-cancel", "--broker", broker_url, *job_ids],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_cancelled_running_job_is_stopped_and_its_resources_freed(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker(cpu=1)
    doc = job(["sleep", "120"], cpu=1)
    assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {doc['id']}: started container", timeout=30)

    asked = time.monotonic()
    result = cancel(cluster.broker_url, doc["id"])

    assert result.returncode == 0, result.stderr
    (outcome,) = outcomes.wait_for(1, timeout=40)
    assert outcome.status.value == "cancelled"
    assert time.monotonic() - asked < 20
    assert cluster.containers(worker) == []
    worker.wait_idle()


def test_a_cancelled_queued_job_never_starts(cluster: Cluster, outcomes: OutcomeListener):
    started = time.time()
    worker = cluster.worker(cpu=1)
    blocker = job(["sleep", "4"], cpu=1)
    victim = job(["echo", "should not run"], cpu=1)
    for doc in (blocker, victim):
        assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {blocker['id']}: started container", timeout=30)

    assert cancel(cluster.broker_url, victim["id"]).returncode == 0

    done = {o.job_id: o for o in outcomes.wait_for(2, timeout=60)}
    assert done[victim["id"]].status.value == "cancelled"
    assert done[victim["id"]].reason == "cancelled before it started"
    assert done[blocker["id"]].status.value == "succeeded"
    assert containers_created(cluster.docker_client, victim["id"], started) == 0


def test_a_job_cancelled_before_any_worker_saw_it_never_starts(
    cluster: Cluster, outcomes: OutcomeListener
):
    started = time.time()
    doc = job(["echo", "should not run"])
    assert send(cluster.broker_url, doc).returncode == 0
    assert cancel(cluster.broker_url, doc["id"]).returncode == 0

    cluster.worker()

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert outcome.status.value == "cancelled"
    assert containers_created(cluster.docker_client, doc["id"], started) == 0


def test_cancel_refuses_a_malformed_id(broker_url: str):
    result = cancel(broker_url, "not an id!")
    assert result.returncode == 2 and "not a job id" in result.stderr
