"""Issue 3, must hold 1: a job longer than RabbitMQ's consumer_timeout runs once.

A private broker node has consumer_timeout = 60 s (checked about once a minute),
and a job sleeps 150 s. While it runs, a second job waits on the same 1-CPU
worker, its message held unacknowledged past the timeout: the broker closes the
channel on it, and the consumer must notice, reconnect and carry on.
"""

from __future__ import annotations

import time

from harness import Cluster, containers_created, history_outcomes, job, send
from private_broker import PrivateBroker

LONG_SECONDS = 150


def test_a_job_longer_than_consumer_timeout_runs_once(tmp_path, docker_client):
    started = time.time()
    with PrivateBroker(consumer_timeout_ms=60_000) as broker:
        cluster = Cluster(tmp_path, broker.url, docker_client)
        try:
            worker = cluster.worker(cpu=1)
            long_job = job(["sh", "-c", f"sleep {LONG_SECONDS}; echo long done"], cpu=1)
            waiting = job(["echo", "waited"], cpu=1)
            for doc in (long_job, waiting):
                assert send(broker.url, doc).returncode == 0

            deadline = time.monotonic() + LONG_SECONDS + 90
            outcomes = []
            while len(outcomes) < 2 and time.monotonic() < deadline:
                time.sleep(5)
                outcomes = history_outcomes(broker.url, idle=1)
            by_id = {o.job_id: o for o in outcomes}

            assert len(outcomes) == 2, f"outcomes: {outcomes}\n{worker.log_text()[-3000:]}"
            assert by_id[long_job["id"]].output == "long done\n"
            assert by_id[long_job["id"]].run_seconds >= LONG_SECONDS
            assert by_id[waiting["id"]].output == "waited\n"
            for doc in (long_job, waiting):
                assert containers_created(docker_client, doc["id"], started) == 1
        finally:
            cluster.cleanup()
