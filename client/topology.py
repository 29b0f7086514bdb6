"""Names and arguments of every exchange and queue jobq uses, and one place that declares them.

Both the client and the supervisor declare the topology on connect, so
whichever starts first creates it; the declarations are identical, so the
second is a no-op.
"""

from __future__ import annotations

from typing import Any

JOBS_QUEUE = "jobq.jobs"
DEAD_LETTER_QUEUE = "jobq.dead"
# One message per started run: the job and the worker running it. It is how a
# job whose worker is gone for good gets back on the jobs queue (docs/design.md).
CLAIMS_QUEUE = "jobq.claims"
# Jobs no live worker can fit wait here, out of the way, instead of spinning
# between workers; the sweeper moves them back once a big enough worker lives.
UNSCHEDULABLE_QUEUE = "jobq.unschedulable"
EVENTS_EXCHANGE = "jobq.events"
HISTORY_STREAM = "jobq.history"
# Recent heartbeats, so a client can see the live workers at once.
HEARTBEATS_STREAM = "jobq.heartbeats"
# Running jobs' output, for jobq-send --follow; a day of it at most.
OUTPUT_STREAM = "jobq.output"
HISTORY_EVENTS = ("started", "outcome", "requeued", "unschedulable", "cancel")
# Every cancel request, so a supervisor that starts later still knows them.
CANCELLATIONS_STREAM = "jobq.cancellations"
CANCELLATIONS_BINDING = "job.#.cancel"

# Header a supervisor sets on a dead-lettered message: why it was refused.
REASON_HEADER = "x-jobq-reason"
# Header on a job message: which run of the job it asks for (1 unless requeued).
ATTEMPT_HEADER = "x-jobq-attempt"

JOBS_ARGUMENTS: dict[str, Any] = {
    # Quorum: replicated and durable; survives a broker restart with the
    # persistent messages on it.
    "x-queue-type": "quorum",
}
DEAD_LETTER_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}
CLAIMS_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}
UNSCHEDULABLE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}
OUTPUT_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "stream",
    "x-max-age": "1D",
    "x-max-length-bytes": 1024**3,
    "x-stream-max-segment-size-bytes": 64 * 1024**2,
}
CANCELLATIONS_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "stream",
    "x-max-age": "30D",
    "x-max-length-bytes": 64 * 1024**2,
    "x-stream-max-segment-size-bytes": 8 * 1024**2,
}
HEARTBEATS_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "stream",
    "x-max-age": "1h",
    "x-max-length-bytes": 256 * 1024**2,
    "x-stream-max-segment-size-bytes": 16 * 1024**2,
}
# A worker's inbox outlives restarts, but not a week of disuse: a worker
# retired for good leaves nothing behind for ever.
INBOX_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum", "x-expires": 7 * 24 * 3600 * 1000}
# The history stream keeps every job event (outcomes first of all) for a month
# or 2 GiB, whichever is smaller, so outcomes can be read after the fact.
HISTORY_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "stream",
    "x-max-age": "30D",
    "x-max-length-bytes": 2 * 1024**3,
    "x-stream-max-segment-size-bytes": 64 * 1024**2,
}


def job_event_key(job_id: str, event: str) -> str:
    """Routing key of a job's event (started, outcome, requeued) on the events exchange."""
    return f"job.{job_id}.{event}"


def outcome_key(job_id: str) -> str:
    return job_event_key(job_id, "outcome")


def heartbeat_key(worker_id: str) -> str:
    return f"heartbeat.{worker_id}"


HEARTBEATS_BINDING = "heartbeat.*"


def inbox_queue(worker_id: str) -> str:
    """The durable queue of messages for one worker, such as "stop running job X"."""
    return f"jobq.worker.{worker_id}"


def inbox_key(worker_id: str, kind: str) -> str:
    return f"worker.{worker_id}.{kind}"


def job_events_binding(job_id: str) -> str:
    """Binding that receives every event of one job (check the body's id: ids may hold dots)."""
    return f"job.{job_id}.#"


def declare(channel: Any) -> None:
    """Declare the whole topology on a pika channel."""
    channel.queue_declare(JOBS_QUEUE, durable=True, arguments=JOBS_ARGUMENTS)
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True, arguments=DEAD_LETTER_ARGUMENTS)
    channel.queue_declare(CLAIMS_QUEUE, durable=True, arguments=CLAIMS_ARGUMENTS)
    channel.queue_declare(UNSCHEDULABLE_QUEUE, durable=True, arguments=UNSCHEDULABLE_ARGUMENTS)
    channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(HISTORY_STREAM, durable=True, arguments=HISTORY_ARGUMENTS)
    # Job events only, and not their output: heartbeats are for the living,
    # and output has its own, shorter-lived stream.
    channel.queue_unbind(HISTORY_STREAM, EVENTS_EXCHANGE, routing_key="job.#")  # before 0.2
    for event in HISTORY_EVENTS:
        channel.queue_bind(HISTORY_STREAM, EVENTS_EXCHANGE, routing_key=f"job.#.{event}")
    channel.queue_declare(OUTPUT_STREAM, durable=True, arguments=OUTPUT_ARGUMENTS)
    channel.queue_bind(OUTPUT_STREAM, EVENTS_EXCHANGE, routing_key="job.#.output")
    channel.queue_declare(HEARTBEATS_STREAM, durable=True, arguments=HEARTBEATS_ARGUMENTS)
    channel.queue_bind(HEARTBEATS_STREAM, EVENTS_EXCHANGE, routing_key=HEARTBEATS_BINDING)
    channel.queue_declare(CANCELLATIONS_STREAM, durable=True, arguments=CANCELLATIONS_ARGUMENTS)
    channel.queue_bind(CANCELLATIONS_STREAM, EVENTS_EXCHANGE, routing_key=CANCELLATIONS_BINDING)


def declare_inbox(channel: Any, worker_id: str) -> str:
    queue = inbox_queue(worker_id)
    channel.queue_declare(queue, durable=True, arguments=INBOX_ARGUMENTS)
    channel.queue_bind(queue, EVENTS_EXCHANGE, routing_key=f"worker.{worker_id}.#")
    return queue
