"""Everything a consumer publishes, on one channel with publisher confirms.

A publish returns only once RabbitMQ has confirmed it; any other end raises
BrokerUnavailable, so the consumer never goes on (acknowledges, forgets) as if
a claim, an outcome or a dead letter were stored when it is not.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pika
import pika.exceptions

from jobq.client import topology
from jobq.client.errors import BrokerUnavailable

# A reason travels in a header, and a header must fit an AMQP frame with room
# to spare, whatever the message held.
MAX_REASON_CHARS = 2000
JSON = pika.BasicProperties(
    content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent
)


class Outbox:
    def __init__(self, channel: Any, worker_id: str) -> None:
        self.channel = channel
        self.worker_id = worker_id

    def publish(
        self,
        exchange: str,
        key: str,
        document: dict[str, Any] | bytes,
        props: Any = None,
        mandatory: bool = True,
    ) -> None:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        try:
            self.channel.basic_publish(exchange, key, body, props or JSON, mandatory=mandatory)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            # Not confirmed: do not go on as if it were; reconnecting retries.
            raise BrokerUnavailable(
                f"publish to {exchange or key!r} not confirmed: {exc!r}"
            ) from None

    def event(self, job_id: str, event: str, fields: dict[str, Any]) -> None:
        """A job event (started, outcome, output...) on the events exchange."""
        body = {"event": event, "job_id": job_id, "worker": self.worker_id, "at": time.time()}
        self.publish(
            topology.EVENTS_EXCHANGE,
            topology.job_event_key(job_id, event),
            {**body, **fields},
            mandatory=False,
        )

    def dead_letter(self, properties: Any, body: bytes, reason: str) -> None:
        """Copy a message to the dead-letter queue, unchanged but for headers saying why."""
        headers = dict(properties.headers or {})
        headers[topology.REASON_HEADER] = reason[:MAX_REASON_CHARS]
        headers["x-jobq-worker"] = self.worker_id
        # Drop user_id (the broker checks it against our login) and expiration
        # (a dead letter must wait for a person, not vanish).
        kept = {k: v for k, v in vars(properties).items() if k not in ("user_id", "expiration")}
        props = pika.BasicProperties(
            **{**kept, "headers": headers, "delivery_mode": pika.DeliveryMode.Persistent}
        )
        self.publish("", topology.DEAD_LETTER_QUEUE, body, props=props)
