"""Names and arguments of every exchange and queue jobq uses, and one place that declares them.

Both the client and the supervisor declare the topology on connect, so
whichever starts first creates it; the declarations are identical, so the
second is a no-op.
"""

from __future__ import annotations

from typing import Any

JOBS_QUEUE = "jobq.jobs"
DEAD_LETTER_QUEUE = "jobq.dead"
EVENTS_EXCHANGE = "jobq.events"
HISTORY_STREAM = "jobq.history"

# Header a supervisor sets on a dead-lettered message: why it was refused.
REASON_HEADER = "x-jobq-reason"

JOBS_ARGUMENTS: dict[str, Any] = {
    # Quorum: replicated and durable; survives a broker restart with the
    # persistent messages on it.
    "x-queue-type": "quorum",
}
DEAD_LETTER_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}
# The history stream keeps every job event (outcomes first of all) for a month
# or 2 GiB, whichever is smaller, so outcomes can be read after the fact.
HISTORY_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "stream",
    "x-max-age": "30D",
    "x-max-length-bytes": 2 * 1024**3,
    "x-stream-max-segment-size-bytes": 64 * 1024**2,
}


def outcome_key(job_id: str) -> str:
    """Routing key of a job's outcome on the events exchange."""
    return f"job.{job_id}.outcome"


def job_events_binding(job_id: str) -> str:
    """Binding that receives every event of one job (check the body's id: ids may hold dots)."""
    return f"job.{job_id}.#"


def declare(channel: Any) -> None:
    """Declare the whole topology on a pika channel."""
    channel.queue_declare(JOBS_QUEUE, durable=True, arguments=JOBS_ARGUMENTS)
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True, arguments=DEAD_LETTER_ARGUMENTS)
    channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(HISTORY_STREAM, durable=True, arguments=HISTORY_ARGUMENTS)
    channel.queue_bind(HISTORY_STREAM, EVENTS_EXCHANGE, routing_key="#")
