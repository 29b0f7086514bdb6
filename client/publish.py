"""Publishing jobs: persistent messages, confirmed by the broker before we say "sent"."""

from __future__ import annotations

import json
import time
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

    def watch_outcome(self, job_id: str) -> OutcomeWatch:
        """Start listening for a job's outcome; call before publishing so none is missed."""
        return OutcomeWatch(self.connection, job_id)

    def close(self) -> None:
        try:
            if self.connection.is_open:
                self.connection.close()
        except pika.exceptions.AMQPError:
            pass


class OutcomeWatch:
    """A private queue bound to one job's events on the events exchange."""

    def __init__(self, connection: pika.BlockingConnection, job_id: str) -> None:
        self.connection = connection
        self.job_id = job_id
        self.channel = connection.channel()
        declared = self.channel.queue_declare("", exclusive=True, auto_delete=True)
        self.queue = declared.method.queue
        self.channel.queue_bind(
            self.queue, topology.EVENTS_EXCHANGE, routing_key=topology.job_events_binding(job_id)
        )
        self._outcome: Outcome | None = None
        self.channel.basic_consume(self.queue, self._on_message, auto_ack=True)

    def _on_message(self, _ch: Any, _method: Any, _props: Any, body: bytes) -> None:
        try:
            doc = json.loads(body)
        except ValueError:
            return
        if doc.get("job_id") == self.job_id and doc.get("event") == "outcome":
            self._outcome = Outcome.from_dict(doc["outcome"])

    def wait(self, timeout: float | None) -> Outcome | None:
        """Block until the outcome arrives, or return None after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while self._outcome is None:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                self.connection.process_data_events(time_limit=0.5)
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(
                f"lost the broker while waiting for the outcome ({exc!r})"
            ) from None
        return self._outcome
