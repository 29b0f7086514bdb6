"""Publishing jobs: persistent messages, confirmed by the broker before we say "sent"."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
import pika.exceptions

from . import topology
from .broker import connect
from .errors import BrokerUnavailable
from .job import Job
from .outcome import Outcome


def job_properties(job: Job, attempt: int = 1) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=job.id,
        timestamp=int(job.submitted_at or time.time()),
        headers={topology.ATTEMPT_HEADER: attempt},
    )


class Publisher:
    """One connection and one confirmed channel.

    ``publish`` returns only once RabbitMQ has confirmed the message, i.e. it is
    on the durable queue; any other end raises BrokerUnavailable, so a caller
    never reports a job as sent that the broker does not hold.
    """

    def __init__(self, url: str, name: str = "jobq-send") -> None:
        self.url = url
        self.connection = connect(url, name)
        self.channel = self.connection.channel()
        topology.declare(self.channel)
        self.channel.confirm_delivery()

    def publish(self, job: Job) -> None:
        self._publish("", topology.JOBS_QUEUE, job.encode(), job_properties(job))

    def _publish(self, exchange: str, key: str, body: bytes, props: pika.BasicProperties) -> None:
        try:
            self.channel.basic_publish(exchange, key, body, props, mandatory=True)
        except pika.exceptions.UnroutableError:
            raise BrokerUnavailable(f"RabbitMQ could not route to {key!r}") from None
        except pika.exceptions.NackError:
            raise BrokerUnavailable(f"RabbitMQ refused to store the message for {key!r}") from None
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(f"lost the broker while publishing ({exc!r})") from None

    def watch_outcome(self, job_id: str, warn: Callable[[str], None]) -> OutcomeWatch:
        """Start listening for a job's outcome; call before publishing so none is missed."""
        return OutcomeWatch(self.url, self.connection, job_id, warn)

    def close(self) -> None:
        try:
            if self.connection.is_open:
                self.connection.close()
        except pika.exceptions.AMQPError:
            pass


class OutcomeWatch:
    """Waits for one job's outcome.

    It listens on a private queue bound to the job's events. If the connection
    drops (a broker restart, a network cut), it reconnects with backoff and
    reads the jobq.history stream from just before the watch began, so an
    outcome published while it was away is not missed.
    """

    RECONNECT_SECONDS = (1, 2, 5, 10)

    def __init__(
        self,
        url: str,
        connection: pika.BlockingConnection,
        job_id: str,
        warn: Callable[[str], None],
    ) -> None:
        self.url = url
        self.job_id = job_id
        self.warn = warn
        self.since = datetime.now(UTC) - timedelta(seconds=5)
        self._outcome: Outcome | None = None
        self.connection = connection
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(
            queue, topology.EVENTS_EXCHANGE, routing_key=topology.job_events_binding(job_id)
        )
        channel.basic_consume(queue, self._on_message, auto_ack=True)

    def _on_message(self, channel: Any, method: Any, _props: Any, body: bytes) -> None:
        if method.consumer_tag.startswith("history-"):
            channel.basic_ack(method.delivery_tag)  # a stream gives credit only for acks
        try:
            doc = json.loads(body)
            if doc.get("job_id") == self.job_id and doc.get("event") == "outcome":
                self._outcome = Outcome.from_dict(doc["outcome"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.warn(f"ignored an unreadable event for job {self.job_id}: {exc!r}")

    def wait(self, timeout: float | None) -> Outcome | None:
        """Block until the outcome arrives, or return None after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._outcome is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            try:
                self.connection.process_data_events(time_limit=0.5)
            except (pika.exceptions.AMQPError, OSError) as exc:
                self.warn(f"lost the broker while waiting ({exc!r}); reconnecting")
                self._follow_history(deadline)
        return self._outcome

    def _follow_history(self, deadline: float | None) -> None:
        for attempt in range(1_000_000):
            if deadline is not None and time.monotonic() >= deadline:
                return
            try:
                self.connection = connect(self.url, "jobq-send --wait")
                channel = self.connection.channel()
                channel.basic_qos(prefetch_count=500)
                channel.basic_consume(
                    topology.HISTORY_STREAM,
                    self._on_message,
                    consumer_tag=f"history-{self.job_id}",
                    arguments={"x-stream-offset": self.since},
                )
                return
            except (BrokerUnavailable, pika.exceptions.AMQPError):
                time.sleep(self.RECONNECT_SECONDS[min(attempt, len(self.RECONNECT_SECONDS) - 1)])
