"""The consumer process: the supervisor's only link to RabbitMQ.

It takes job messages from the queue, asks the placement policy which to run,
books them in the ledger, and asks the parent to start a monitor for each. When
the parent says a job has ended, it publishes the outcome (confirmed) and only
then acknowledges the job's message.

pika's BlockingConnection answers heartbeats only inside its own calls, so
this process never blocks anywhere else: one loop alternates between
``process_data_events`` and short, non-blocking steps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
from jobq.client import topology
from jobq.client.broker import connect, redact
from jobq.client.errors import BrokerUnavailable, InvalidJob
from jobq.client.job import Job, decode
from jobq.supervisor.ledger import Ledger
from jobq.supervisor.placement import Candidate, place

from .runs import RunStore

log = logging.getLogger("jobq.consumer")

RECONNECT_SECONDS = (1, 2, 5, 10, 30)
# How long a worker holds a job it can never fit before handing it back.
GIVE_BACK_AFTER = 2.0
TICK_SECONDS = 0.2


@dataclass
class Held:
    """A delivery this consumer holds: its job, and every tag carrying that job id."""

    job: Job
    tags: list[int]
    received: float = field(default_factory=time.monotonic)


class Consumer:
    def __init__(
        self, url: str, worker_id: str, ledger: Ledger, store: RunStore, parent: Any, window: int
    ) -> None:
        self.url = url
        self.worker_id = worker_id
        self.ledger = ledger
        self.store = store
        self.parent = parent  # our end of the pipe to the supervisor
        self.window = window
        self.stopping = False
        self.waiting: dict[str, Held] = {}
        self.running: dict[str, Held] = {}
        self.inbox: list[tuple[int, Any, bytes]] = []
        self.ended: set[str] = set()  # ended on the worker; outcome not yet acknowledged

    def run(self) -> None:
        """Process body: connect, consume, and reconnect with backoff until told to stop."""
        signal.signal(signal.SIGTERM, self._request_stop)
        attempt = 0
        while not self.stopping:
            try:
                self._session()
                attempt = 0
            except (BrokerUnavailable, pika.exceptions.AMQPError, OSError) as exc:
                self._lost_connection(exc)
                delay = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
                attempt += 1
                self._sleep(delay)

    def _request_stop(self, *_: Any) -> None:
        self.stopping = True

    def _session(self) -> None:
        connection = connect(self.url, f"jobq-supervisor {self.worker_id}")
        try:
            self.consume_channel = connection.channel()
            topology.declare(self.consume_channel)
            self.publish_channel = connection.channel()
            self.publish_channel.confirm_delivery()
            self._prefetch = 0
            self._update_prefetch()
            self.consume_channel.basic_consume(topology.JOBS_QUEUE, self._on_delivery)
            log.info("connected to %s", redact(self.url))
            self._tell_parent("broker", True)
            while not self.stopping:
                connection.process_data_events(time_limit=TICK_SECONDS)
                if self.consume_channel.is_closed or self.publish_channel.is_closed:
                    raise BrokerUnavailable("the broker closed our channel")
                self._step()
        finally:
            if connection.is_open:
                with contextlib.suppress(pika.exceptions.AMQPError):
                    connection.close()

    def _on_delivery(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        # Never work inside pika's callback: queue it for the loop.
        self.inbox.append((method.delivery_tag, properties, body))

    def _step(self) -> None:
        while self.inbox:
            self._take(*self.inbox.pop(0))
        self._read_parent()
        for job_id in sorted(self.ended):
            self._report(job_id)
        self._place()
        self._update_prefetch()

    def _take(self, tag: int, properties: Any, body: bytes) -> None:
        try:
            job = decode(body, source=f"message {properties.message_id or tag}")
        except InvalidJob as exc:
            self._dead_letter(tag, properties, body, str(exc))
            return
        except Exception as exc:  # anyone can publish: no message may crash the consumer
            self._dead_letter(tag, properties, body, f"cannot read the job: {exc!r}")
            return
        for held in (self.running.get(job.id), self.waiting.get(job.id)):
            if held is not None:
                # The same job id again: a redelivery after a reconnect, or a
                # duplicate send. Either way it rides on the run we have.
                held.tags.append(tag)
                return
        if job.id in self.ended or self.store.outcome(job.id) is not None:
            self.running[job.id] = Held(job, [tag])
            self.ended.add(job.id)
            return
        if self.ledger.holds(job.id):
            # Running here already (adopted after a restart): hold its message.
            self.running[job.id] = Held(job, [tag])
            return
        self.waiting[job.id] = Held(job, [tag])
        log.info("job %s: received (%s)", job.label, job.resources)

    def _place(self) -> None:
        if not self.waiting:
            return
        now = time.monotonic()
        candidates = [
            Candidate(job_id, held.job.resources, now - held.received)
            for job_id, held in self.waiting.items()
        ]
        decision = place(
            self.ledger.capacity,
            self.ledger.free(),
            self.ledger.max_jobs - len(self.ledger.running()),
            candidates,
            GIVE_BACK_AFTER,
        )
        for job_id in decision.start:
            held = self.waiting[job_id]
            if not self.ledger.reserve(job_id, held.job.resources):
                continue
            self.store.accept(held.job)
            self.running[job_id] = self.waiting.pop(job_id)
            self._tell_parent("start", job_id)
        for job_id in decision.give_back:
            held = self.waiting.pop(job_id)
            log.info(
                "job %s: needs %s, more than this worker's %s; handing it back",
                job_id,
                held.job.resources,
                self.ledger.capacity,
            )
            for tag in held.tags:
                self.consume_channel.basic_nack(tag, requeue=True)

    def _report(self, job_id: str) -> None:
        """Publish a recorded outcome, then acknowledge the job's message(s)."""
        held = self.running.get(job_id)
        if held is None:
            return  # its message comes back after a reconnect; report then
        outcome = self.store.outcome(job_id)
        if outcome is not None:
            event = {
                "event": "outcome",
                "job_id": job_id,
                "worker": self.worker_id,
                "at": time.time(),
                "outcome": outcome.to_dict(),
            }
            self._publish(
                topology.EVENTS_EXCHANGE,
                topology.outcome_key(job_id),
                json.dumps(event).encode(),
                mandatory=False,
            )
        for tag in held.tags:
            self.consume_channel.basic_ack(tag)
        del self.running[job_id]
        self.ended.discard(job_id)
        self.store.forget(job_id)
        log.info("job %s: outcome reported and message acknowledged", job_id)

    def _dead_letter(self, tag: int, properties: Any, body: bytes, reason: str) -> None:
        headers = dict(properties.headers or {})
        headers[topology.REASON_HEADER] = reason
        headers["x-jobq-worker"] = self.worker_id
        props = pika.BasicProperties(
            content_type=properties.content_type,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=properties.message_id,
            timestamp=properties.timestamp,
            headers=headers,
        )
        self._publish("", topology.DEAD_LETTER_QUEUE, body, props=props)
        self.consume_channel.basic_ack(tag)
        log.warning(
            "message %s: dead-lettered to %s: %s",
            properties.message_id or f"#{tag}",
            topology.DEAD_LETTER_QUEUE,
            reason.replace("\n", "; "),
        )

    def _publish(
        self, exchange: str, key: str, body: bytes, props: Any = None, mandatory: bool = True
    ) -> None:
        props = props or pika.BasicProperties(
            content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent
        )
        try:
            self.publish_channel.basic_publish(exchange, key, body, props, mandatory=mandatory)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            # Not confirmed: do not ack what depends on it; reconnecting retries it.
            raise BrokerUnavailable(
                f"publish to {exchange or key!r} not confirmed: {exc!r}"
            ) from None

    def _update_prefetch(self) -> None:
        # Messages of running jobs stay unacknowledged until their outcome is
        # recorded, so they count against prefetch; the window is on top.
        wanted = len(self.running) + self.window
        if wanted != self._prefetch:
            self.consume_channel.basic_qos(prefetch_count=wanted)
            self._prefetch = wanted

    def _lost_connection(self, exc: Exception) -> None:
        log.warning("lost the broker: %s; reconnecting", exc)
        self._tell_parent("broker", False)
        # Every unacknowledged delivery went back to the queue with the channel.
        # Waiting jobs are simply forgotten; running ones keep running and will
        # be matched to their redelivered messages.
        self.waiting.clear()
        self.inbox.clear()
        self.running.clear()

    def _tell_parent(self, kind: str, value: Any) -> None:
        self.parent.send((kind, value))

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            self._read_parent()  # keep the pipe drained so the parent never blocks on it
            time.sleep(0.1)

    def _read_parent(self) -> None:
        while self.parent.poll():
            kind, job_id = self.parent.recv()
            if kind == "ended":
                self.ended.add(job_id)
