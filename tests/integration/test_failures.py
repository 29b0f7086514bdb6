"""Issue 3: workers gone for good, hosts that reboot, Docker restarts, poison messages, stops.

Worker timeouts here are seconds (FAST_LIVENESS), not the default 120 s.
"""

from __future__ import annotations

import json
import signal
import time

import pika
from harness import (
    FAST_LIVENESS,
    Cluster,
    OutcomeListener,
    containers_created,
    history_outcomes,
    job,
    restart_dockerd,
    send,
    settled_counts,
)

from jobq.client import topology


def test_jobs_of_a_worker_gone_for_good_run_again_elsewhere(
    cluster: Cluster, outcomes: OutcomeListener
):
    lost = cluster.worker(cpu=1, extra=FAST_LIVENESS, name="lost")
    doc = job(["sh", "-c", "sleep 3; echo finished"], cpu=1)
    assert send(cluster.broker_url, doc).returncode == 0
    lost.wait_for_log(f"job {doc['id']}: started container", timeout=30)
    heir = cluster.worker(cpu=1, extra=FAST_LIVENESS, name="heir")

    lost.kill_all()
    cluster.remove_containers(lost)
    gone_at = time.monotonic()

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert outcome.worker == heir.id
    assert outcome.attempt == 2
    assert outcome.output == "finished\n"
    # The worker timeout is 4 s; allow for sweeps, start-up and the 3 s job.
    assert time.monotonic() - gone_at < 4 + 15


def test_a_rebooted_host_runs_its_jobs_again(cluster: Cluster, outcomes: OutcomeListener):
    started = time.time()
    worker = cluster.worker(extra=FAST_LIVENESS)
    doc = job(["sh", "-c", "sleep 2; echo after reboot"])
    assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {doc['id']}: started container", timeout=30)

    worker.kill_all()
    cluster.remove_containers(worker)  # what a reboot does to containers
    worker.start(cluster.broker_url)

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert outcome.worker == worker.id and outcome.output == "after reboot\n"
    assert "its container is gone; starting the job again here" in worker.log_text()
    assert containers_created(cluster.docker_client, doc["id"], started) == 2
    time.sleep(1)
    assert len(outcomes.outcomes) == 1
    worker.wait_idle()


def test_a_host_back_after_its_jobs_moved_does_not_run_them_again(
    cluster: Cluster, outcomes: OutcomeListener
):
    away = cluster.worker(cpu=1, extra=FAST_LIVENESS, name="away")
    doc = job(["sh", "-c", "sleep 4; echo once"], cpu=1)
    assert send(cluster.broker_url, doc).returncode == 0
    away.wait_for_log(f"job {doc['id']}: started container", timeout=30)
    other = cluster.worker(cpu=1, extra=FAST_LIVENESS, name="other")
    away.kill_all()
    cluster.remove_containers(away)
    other.wait_for_log(f"job {doc['id']}: started container", timeout=40)

    back_at = time.time()
    away.start(cluster.broker_url)

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert outcome.worker == other.id
    away.wait_for_log("requeued while this worker was silent", timeout=10)
    assert cluster.containers(away) == []
    events = cluster.docker_client.events(
        since=int(back_at) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"event": "create", "label": f"jobq.worker={away.id}"},
    )
    assert list(events) == [], "the returning worker started a job that had moved"
    away.wait_idle()


def test_docker_restarting_during_a_job_does_not_fail_it(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker()
    doc = job(["sh", "-c", "echo before; sleep 8; echo after"])
    assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {doc['id']}: started container", timeout=30)
    time.sleep(1)

    restart_dockerd(down_seconds=2)

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert outcome.status.value == "succeeded"
    assert outcome.output == "before\nafter\n"
    assert "lost the Docker engine" in worker.log_text()


def test_a_poison_message_is_dead_lettered_after_a_bounded_number_of_crashes(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker(env={"JOBQ_FAULT_CRASH_ON_JOB_NAME": "poison"})
    poison = job(["true"], name="poison")
    assert send(cluster.broker_url, poison).returncode == 0
    healthy = job(["echo", "still working"])
    assert send(cluster.broker_url, healthy).returncode == 0

    (outcome,) = outcomes.wait_for(1, timeout=90)
    assert outcome.job_id == healthy["id"]
    assert worker.process.poll() is None
    connection = pika.BlockingConnection(pika.URLParameters(cluster.broker_url))
    method, properties, body = connection.channel().basic_get(
        topology.DEAD_LETTER_QUEUE, auto_ack=True
    )
    connection.close()
    assert method is not None, "the poison message was not dead-lettered"
    assert json.loads(body)["id"] == poison["id"]
    assert "the consumer died 3 times" in properties.headers[topology.REASON_HEADER]
    assert worker.log_text().count("consumer exited unexpectedly") == 3


def test_sigterm_stops_promptly_and_leaves_containers_running(cluster: Cluster):
    worker = cluster.worker()
    doc = job(["sleep", "30"])
    assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {doc['id']}: started container", timeout=30)

    asked = time.monotonic()
    assert worker.stop(signal.SIGTERM) == 0
    assert time.monotonic() - asked < 5
    assert [c.status for c in cluster.containers(worker)] == ["running"]


def test_drain_waits_for_running_jobs_and_takes_no_new_ones(
    cluster: Cluster, vhost: str, outcomes: OutcomeListener
):
    worker = cluster.worker(cpu=1)
    running = job(["sh", "-c", "sleep 3; echo drained"], cpu=1)
    queued = job(["true"], cpu=1)
    for doc in (running, queued):
        assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {running['id']}: started container", timeout=30)

    worker.process.send_signal(signal.SIGUSR1)
    assert worker.process.wait(30) == 0

    (outcome,) = outcomes.wait_for(1, timeout=5)
    assert outcome.job_id == running["id"] and outcome.output == "drained\n"
    assert cluster.containers(worker) == []
    assert settled_counts(vhost, topology.JOBS_QUEUE, (1, 0)) == (1, 0)


def test_a_job_that_ended_just_before_its_worker_stopped_does_not_run_again(
    cluster: Cluster, vhost: str, outcomes: OutcomeListener
):
    # The demo's pattern: a job ends, its worker stops within one heartbeat, and
    # a worker started later never hears a heartbeat that leaves the job out.
    liveness = "heartbeat_interval = 5\nworker_timeout = 15\n"
    first = cluster.worker(extra=liveness, name="first")
    done = job(["echo", "once"], cpu=0.5, memory="32m")
    assert send(cluster.broker_url, done).returncode == 0
    outcomes.wait_for(1, timeout=60)
    assert first.stop(signal.SIGTERM) == 0

    later = cluster.worker(extra=liveness, name="later")
    time.sleep(25)  # past the first worker's timeout, with sweeps on the way

    assert "requeued" not in later.log_text()
    assert [o.job_id for o in history_outcomes(cluster.broker_url)] == [done["id"]]
    assert settled_counts(vhost, topology.CLAIMS_QUEUE, (0, 0)) == (0, 0)
