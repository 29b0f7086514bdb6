"""Issue 3: supervisors, consumers and monitors die and come back; jobs run once and end reported.

Each test is bounded in time and its fixtures remove every container and
process it started.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from harness import (
    Cluster,
    OutcomeListener,
    containers_created,
    job,
    pid_in_log,
    send,
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_supervisor_restarted_while_jobs_run_adopts_them(
    cluster: Cluster, outcomes: OutcomeListener, sig: int
):
    started = time.time()
    worker = cluster.worker(cpu=2)
    long_job = job(["sh", "-c", "echo begin; sleep 8; echo end"])
    short_job = job(["sh", "-c", "sleep 2; echo short done"])
    for doc in (long_job, short_job):
        assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {short_job['id']}: started container", timeout=30)
    worker.wait_for_log(f"job {long_job['id']}: started container", timeout=30)

    if sig == signal.SIGKILL:
        worker.kill_all()
    else:
        assert worker.stop(signal.SIGTERM, timeout=15) == 0
    running = {c.labels["jobq.job-id"]: c.status for c in cluster.containers(worker)}
    assert set(running) == {long_job["id"], short_job["id"]}, "a container went with its supervisor"
    time.sleep(3)  # the short job ends while no supervisor runs
    worker.start(cluster.broker_url)

    done = {o.job_id: o for o in outcomes.wait_for(2, timeout=60)}
    assert done[short_job["id"]].output == "short done\n"
    assert done[long_job["id"]].output == "begin\nend\n"
    assert {o.status.value for o in done.values()} == {"succeeded"}
    assert "adopting its running container" in worker.log_text()
    for doc in (long_job, short_job):
        assert containers_created(cluster.docker_client, doc["id"], started) == 1
    time.sleep(1)
    assert len(outcomes.outcomes) == 2, "an outcome was reported twice"
    assert cluster.containers(worker) == []
    worker.wait_idle()


def test_killed_consumer_is_replaced_and_nothing_runs_twice(
    cluster: Cluster, outcomes: OutcomeListener
):
    started = time.time()
    worker = cluster.worker(cpu=1)
    running = job(["sleep", "4"], cpu=1)
    waiting = job(["echo", "second"], cpu=1)  # waits for the first: the worker has 1 CPU
    for doc in (running, waiting):
        assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {running['id']}: started container", timeout=30)

    os.kill(pid_in_log(worker, "jobq.consumer", "connected to"), signal.SIGKILL)

    done = {o.job_id: o for o in outcomes.wait_for(2, timeout=60)}
    assert {o.status.value for o in done.values()} == {"succeeded"}
    assert done[waiting["id"]].output == "second\n"
    assert "consumer exited unexpectedly (killed by SIGKILL)" in worker.log_text()
    worker.wait_idle()
    for doc in (running, waiting):
        assert containers_created(cluster.docker_client, doc["id"], started) == 1
    assert worker.process.poll() is None


def test_killed_monitor_is_replaced_and_adopts_its_container(
    cluster: Cluster, outcomes: OutcomeListener
):
    started = time.time()
    worker = cluster.worker()
    doc = job(["sh", "-c", "sleep 3; echo survived"])
    assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {doc['id']}: started container", timeout=30)

    os.kill(pid_in_log(worker, "jobq.monitor", f"job {doc['id']}: started"), signal.SIGKILL)

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert outcome.status.value == "succeeded"
    assert outcome.output == "survived\n"
    assert f"job {doc['id']}: adopted container" in worker.log_text()
    assert containers_created(cluster.docker_client, doc["id"], started) == 1
