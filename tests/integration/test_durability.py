"""Issue 2, must hold 5: no job is lost. Durable quorum queue, persistent confirmed messages.

A job's message is acknowledged once its run is claimed (issue 3 replaced "once its outcome
is recorded", which RabbitMQ's consumer_timeout breaks for long jobs; see docs/design.md)."""

from __future__ import annotations

import subprocess

import pika
from harness import BIN, Cluster, OutcomeListener, job, rabbitmqctl, send, settled_counts

from jobq.client import topology


def test_jobs_queue_is_durable_quorum_and_messages_persistent(cluster: Cluster, vhost: str):
    doc = job(["true"])
    assert send(cluster.broker_url, doc).returncode == 0

    listing = rabbitmqctl("list_queues", "-p", vhost, "name", "type", "durable")
    assert f"{topology.JOBS_QUEUE}\tquorum\ttrue" in listing
    connection = pika.BlockingConnection(pika.URLParameters(cluster.broker_url))
    channel = connection.channel()
    method, properties, _body = channel.basic_get(topology.JOBS_QUEUE)
    assert method is not None, "the sent job is not on the queue"
    assert properties.delivery_mode == 2
    assert properties.message_id == doc["id"]
    channel.basic_nack(method.delivery_tag, requeue=True)
    connection.close()


def test_a_requeued_message_goes_to_the_back_of_the_jobs_queue(cluster: Cluster):
    """Issue 4, must hold 4: why placement orders by submit time, not queue order.

    On RabbitMQ 3.10 a quorum-queue message rejected with requeue is appended
    behind the others, so a job a worker looks at and hands back would lose its
    place if the line were the queue's order.
    """
    first, second = job(["true"]), job(["true"])
    for doc in (first, second):
        assert send(cluster.broker_url, doc).returncode == 0
    connection = pika.BlockingConnection(pika.URLParameters(cluster.broker_url))
    channel = connection.channel()
    method, properties, _ = channel.basic_get(topology.JOBS_QUEUE)
    assert properties.message_id == first["id"]
    channel.basic_nack(method.delivery_tag, requeue=True)
    order = []
    for _ in range(2):
        method, properties, _ = channel.basic_get(topology.JOBS_QUEUE, auto_ack=True)
        order.append(properties.message_id)
    connection.close()
    assert order == [second["id"], first["id"]]


def test_a_started_job_is_acknowledged_and_held_by_a_claim(
    cluster: Cluster, vhost: str, outcomes: OutcomeListener
):
    worker = cluster.worker()
    doc = job(["sleep", "30"])
    assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log("started container", timeout=30)

    # The job's message is gone from the jobs queue; its claim stands for it.
    assert settled_counts(vhost, topology.JOBS_QUEUE, (0, 0)) == (0, 0)
    assert settled_counts(vhost, topology.CLAIMS_QUEUE, (1, 0)) == (1, 0)
    assert outcomes.outcomes == []


def test_the_claim_is_dropped_after_the_outcome(
    cluster: Cluster, vhost: str, outcomes: OutcomeListener
):
    cluster.worker()
    assert send(cluster.broker_url, job(["true"])).returncode == 0
    outcomes.wait_for(1, timeout=60)
    assert settled_counts(vhost, topology.JOBS_QUEUE, (0, 0)) == (0, 0)
    assert settled_counts(vhost, topology.CLAIMS_QUEUE, (0, 0), timeout=30) == (0, 0)


def test_send_fails_clearly_when_the_broker_is_unreachable(tmp_path):

    result = subprocess.run(
        [BIN / "jobq-send", "--broker", "amqp://guest:guest@127.0.0.1:1/%2F", "-"],
        input='{"image": "x", "resources": {"cpu": 1, "memory": "64m"}}',
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/%2F" in result.stderr
    assert result.stdout == "", "a job id was printed for a job that was not sent"
