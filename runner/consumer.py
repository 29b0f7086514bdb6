"""The consumer process: the supervisor's only link to RabbitMQ.

It takes job messages from the queue and asks the placement policy which to
start. To start a job it books the job in the ledger, records the run on disk,
publishes a claim (the job and this worker) to the claims queue, and only then
acknowledges the job's message and asks the parent for a monitor. From then
on the job's message is gone and the claim stands for it: while this worker's
heartbeats list the run, nobody touches it; if they stop for longer than the
worker timeout, the supervisor sweeping the claims queue puts the job back on
the jobs queue (runner/sweeper.py). So no delivery is held for a job's whole
life, and RabbitMQ's consumer_timeout never fires on a running job.

pika's BlockingConnection answers heartbeats only inside its own calls, so
this process never blocks anywhere else: one loop alternates between
``process_data_events`` and short, non-blocking steps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions

from jobq.client import topology, workers
from jobq.client.broker import connect, redact
from jobq.client.errors import BrokerUnavailable, InvalidJob
from jobq.client.job import Job, decode
from jobq.client.outcome import Outcome, Status
from jobq.client.publish import job_properties
from jobq.client.units import NANO, Resources
from jobq.supervisor.ledger import Ledger
from jobq.supervisor.liveness import Claim, Heartbeat, Liveness, Release
from jobq.supervisor.placement import Candidate, Rules, place

from .cancels import Cancellations
from .outbox import MAX_REASON_CHARS, Outbox
from .output import OutputShipper
from .poison import PoisonGuard, message_key
from .runs import RunStore
from .sweeper import Sweeper

log = logging.getLogger("jobq.consumer")

RECONNECT_SECONDS = (1, 2, 5, 10, 30)
TICK_SECONDS = 0.2
# For tests of the poison-message guard only: a job with this name makes the
# consumer process die as it reads it, as a real poison message would.
FAULT_ENV = "JOBQ_FAULT_CRASH_ON_JOB_NAME"


@dataclass(frozen=True)
class Settings:
    window: int  # jobs held beyond those running, to choose from
    heartbeat_interval: float
    worker_timeout: float
    rules: Rules = field(default_factory=Rules)  # [placement]


@dataclass
class Held:
    """A job message this consumer holds but has not started."""

    job: Job
    tag: int | None  # None once kept: the message is acknowledged and a claim stands for it
    key: str  # for the poison guard
    attempt: int
    received: float = field(default_factory=time.monotonic)

    @property
    def kept(self) -> bool:
        return self.tag is None


class Consumer:
    def __init__(
        self,
        url: str,
        worker_id: str,
        ledger: Ledger,
        store: RunStore,
        parent: Any,
        settings: Settings,
    ) -> None:
        self.url = url
        self.worker_id = worker_id
        self.ledger = ledger
        self.store = store
        self.parent = parent  # our end of the pipe to the supervisor
        self.settings = settings
        self.rules = settings.rules
        self.poison = PoisonGuard(store.runs_dir.parent)
        self.output = OutputShipper(store, self._event)
        self.liveness = Liveness(worker_id, time.monotonic())
        self.stopping = False
        self.draining = False
        self.waiting: dict[str, Held] = {}
        self.deliveries: list[tuple[Any, Any, bytes]] = []
        self.inbox: list[tuple[int, bytes]] = []
        self.ended: set[str] = set()  # told by the parent; outcome not yet published
        self.cancellations = Cancellations()
        self.places: dict[str, Candidate] = {}  # running jobs' places in line, by id
        self.overran: set[str] = set()  # running jobs past their expected_runtime, logged

    # -- lifecycle -------------------------------------------------------

    def run(self) -> None:
        """Process body: connect, consume, and reconnect with backoff until told to stop."""
        signal.signal(signal.SIGTERM, self._request_stop)
        for key in self.poison.recover():
            log.error(
                "message %s was in hand when the last consumer died (%d of %d)",
                key,
                self.poison.crashes(key),
                self.poison.limit,
            )
        attempt = 0
        while not self.stopping:
            try:
                self._session()
                attempt = 0
            except (BrokerUnavailable, pika.exceptions.AMQPError, OSError) as exc:
                self._lost_connection(exc)
                # Back off, but try again well within our own worker timeout: a
                # worker still reconnecting when the broker is back would be
                # declared dead, and its jobs run twice.
                delay = min(
                    RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)],
                    self.settings.worker_timeout / 4,
                )
                attempt += 1
                self._sleep(delay)

    def _request_stop(self, *_: Any) -> None:
        self.stopping = True

    def _session(self) -> None:
        connection = connect(self.url, f"jobq-supervisor {self.worker_id}")
        try:
            self._open_channels(connection)
            self._discard_unclaimed()
            self._hold_kept()
            self._drain_inbox()
            self._tell_parent("sync", None)  # now the parent may (re)start our runs
            self.liveness.restart_watch(time.monotonic())
            self._beat()
            if self.draining:
                self._hand_back_kept()
            else:
                self._consume_jobs()
            log.info("connected to %s", redact(self.url))
            self._tell_parent("broker", True)
            while not self.stopping:
                connection.process_data_events(time_limit=TICK_SECONDS)
                for channel in (self.jobs, self.control, self.publisher, self.cancels):
                    if channel.is_closed:
                        raise BrokerUnavailable("the broker closed a channel")
                self._step()
        finally:
            if connection.is_open:
                with contextlib.suppress(pika.exceptions.AMQPError):
                    connection.close()

    def _open_channels(self, connection: pika.BlockingConnection) -> None:
        self.jobs = connection.channel()
        topology.declare(self.jobs)
        self.jobs.basic_qos(prefetch_count=self.settings.window)
        self.publisher = connection.channel()
        self.publisher.confirm_delivery()
        self.outbox = Outbox(self.publisher, self.worker_id)
        self.control = connection.channel()  # inbox, heartbeats, claims sweep
        self.inbox_queue = topology.declare_inbox(self.control, self.worker_id)
        beats = self.control.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.control.queue_bind(beats, topology.EVENTS_EXCHANGE, topology.HEARTBEATS_BINDING)
        self.control.basic_consume(beats, self._on_heartbeat, auto_ack=True)
        self.sweeper = Sweeper(
            self.control, self.outbox.publish, self.liveness, self.settings.heartbeat_interval
        )
        self.next_beat = 0.0
        self.cancels = self.cancellations.listen(connection)

    def _consume_jobs(self) -> None:
        self.jobs_tag = self.jobs.basic_consume(topology.JOBS_QUEUE, self._on_delivery)

    def _lost_connection(self, exc: Exception) -> None:
        log.warning("lost the broker: %s; reconnecting", exc)
        self._tell_parent("broker", False)
        # Unacknowledged deliveries went back to the queue with the channel:
        # only jobs not yet started, so nothing running is affected. Kept jobs
        # are claimed, not delivered: they stay.
        self.waiting = {job_id: held for job_id, held in self.waiting.items() if held.kept}
        self.deliveries.clear()
        self.inbox.clear()

    # -- the loop --------------------------------------------------------

    def _on_delivery(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.deliveries.append((method, properties, body))  # work in the loop, not in pika

    def _on_inbox(self, _channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        self.inbox.append((method.delivery_tag, body))

    def _on_heartbeat(self, _channel: Any, _method: Any, _properties: Any, body: bytes) -> None:
        try:
            self.liveness.heard(Heartbeat.from_dict(json.loads(body)), time.monotonic())
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignored an unreadable heartbeat: %r", exc)

    def _step(self) -> None:
        for job_id in self.cancellations.take_pending():
            self._act_on_cancel(job_id)
        while self.deliveries:
            self._take(*self.deliveries.pop(0))
        while self.inbox:
            tag, body = self.inbox.pop(0)
            self._handle_inbox(body)
            self.control.basic_ack(tag)
        self._read_parent()
        for job_id in sorted(self.ended):
            self._report(job_id)
        now = time.monotonic()
        self.output.ship_due(now)
        if now >= self.next_beat:
            self._beat()
            if self.liveness.is_sweeper(now):
                self.sweeper.sweep(now)
        self._place(now)
        self._note_overruns(time.time())

    def _read_parent(self) -> None:
        while self.parent.poll():
            kind, value = self.parent.recv()
            if kind == "ended":
                self.ended.add(value)
            elif kind == "drain":
                self._drain()

    # -- taking jobs -----------------------------------------------------

    def _take(self, method: Any, properties: Any, body: bytes) -> None:
        tag = method.delivery_tag
        key = message_key(properties, body)
        crashes = self.poison.crashes(key)
        if crashes >= self.poison.limit:
            self._dead_letter(
                tag,
                properties,
                body,
                f"the consumer died {crashes} times while handling this message",
            )
            self.poison.done(key)
            return
        self.poison.hold(key)
        try:
            job = decode(body, source=f"message {properties.message_id or tag}")
        except InvalidJob as exc:
            self._dead_letter(tag, properties, body, str(exc))
            self.poison.done(key)
            return
        except Exception as exc:  # anyone can publish: no message may crash the consumer
            self._dead_letter(tag, properties, body, f"cannot read the job: {exc!r}")
            self.poison.done(key)
            return
        if job.name is not None and job.name == os.environ.get(FAULT_ENV):
            os._exit(70)
        attempt = _attempt_of(properties)
        self._admit(job, tag, key, attempt, properties, body)
        self.poison.done(key)

    def _admit(
        self, job: Job, tag: int, key: str, attempt: int, properties: Any, body: bytes
    ) -> None:
        known = self._known_job(job.id, attempt)
        if known is not None:
            if _same_work(known, job):
                log.info("job %s: already in hand here; dropped a duplicate message", job.id)
                self.jobs.basic_ack(tag)
            else:
                self._dead_letter(
                    tag,
                    properties,
                    body,
                    f"job id {job.id} is already taken by a different job on "
                    f"{self.worker_id}; give each job its own id",
                )
            return
        if self.cancellations.covers(job):
            self._report_cancelled_waiting(job, attempt)
            self.jobs.basic_ack(tag)
            return
        runner = self.liveness.runner_of(job.id, attempt, time.monotonic())
        if runner is not None:
            log.info("job %s: already running on %s; dropped this copy", job.id, runner)
            self.jobs.basic_ack(tag)
            return
        self.waiting[job.id] = Held(job, tag, key, attempt)
        log.info("job %s: received (%s, attempt %d)", job.label, job.resources, attempt)

    def _act_on_cancel(self, job_id: str) -> None:
        held = self.waiting.get(job_id)
        if held is not None and self.cancellations.covers(held.job):
            del self.waiting[job_id]
            self._report_cancelled_waiting(held.job, held.attempt)
            if held.kept:
                self._release_claim(job_id, held.attempt)
                self.store.forget(job_id)
            else:
                self.jobs.basic_ack(held.tag)
        elif (
            self.store.has(job_id)
            and self.store.claimed(job_id)
            and self.store.outcome(job_id) is None
            and not self.store.cancelled(job_id)
            and self.cancellations.covers(self.store.job(job_id))
        ):
            self.store.mark_cancelled(job_id)
            self._tell_parent("cancel", job_id)

    def _report_cancelled_waiting(self, job: Job, attempt: int) -> None:
        """A cancelled job that never started: its outcome says so, and nothing runs."""
        outcome = Outcome.without_run(
            job, self.worker_id, Status.CANCELLED, "cancelled before it started", attempt
        )
        self.outbox.event(job.id, "outcome", {"outcome": outcome.to_dict()})
        self._tell_parent("cancelled-waiting", job.id)
        log.info("job %s: cancelled before it started", job.id)

    def _known_job(self, job_id: str, attempt: int) -> Job | None:
        """The job this worker already holds under this id (waiting or running), if any."""
        if job_id in self.waiting:
            return self.waiting[job_id].job
        if self.store.has(job_id) and self.store.attempt(job_id) >= attempt:
            return self.store.job(job_id)
        return None

    def _place(self, now: float) -> None:
        if not self.waiting:
            return
        wall = time.time()
        candidates = [
            Candidate(
                job_id,
                held.job.resources,
                waited=now - held.received,
                submitted_at=held.job.submitted_at or wall - (now - held.received),
                priority=held.job.priority,
                kept=held.kept,
                estimate=_estimate(held.job),
            )
            for job_id, held in self.waiting.items()
        ]
        running = self.ledger.running()
        decision = place(
            self.ledger.capacity,
            self.ledger.free(),
            self.ledger.max_jobs - len(running),
            candidates,
            now=wall,
            rules=self.rules,
            running=self._places_in_line(running),
        )
        for job_id in decision.start:
            self._start(self.waiting[job_id])
        for job_id in decision.give_back:
            self._give_back(self.waiting.pop(job_id), now)
        for job_id in decision.keep:
            self._keep(self.waiting[job_id])

    def _note_overruns(self, wall: float) -> None:
        """Say once when a running job passes its expected_runtime: placement distrusts it now."""
        running = self.ledger.running()
        self.overran &= set(running)
        for job_id, started in self.places.items():
            late = job_id in running and started.started_at + started.estimate < wall
            if late and job_id not in self.overran:
                self.overran.add(job_id)
                log.warning(
                    "job %s: still running past its expected_runtime (%g s); until it "
                    "ends, this worker starts no job on the strength of an estimate",
                    job_id,
                    started.estimate,
                )

    def _places_in_line(self, running: dict[str, Resources]) -> list[Candidate]:
        """The running jobs as placement sees them: what they hold and where they stood in line."""
        for job_id in set(self.places) - set(running):
            del self.places[job_id]
        for job_id, need in running.items():
            if job_id not in self.places:
                # Adopted after a restart, or started by an earlier consumer: read it
                # once. Its start is unknown (0): it passed any head before it was overdue,
                # and its estimate says nothing about when it ends.
                job = self.store.job(job_id) if self.store.has(job_id) else None
                self.places[job_id] = Candidate(
                    job_id,
                    need,
                    waited=0.0,
                    submitted_at=(job.submitted_at or 0.0) if job else 0.0,
                    priority=job.priority if job else 0,
                )
        return list(self.places.values())

    def _give_back(self, held: Held, now: float) -> None:
        """Hand a held job back to the queue, or park it if no live worker could ever run it."""
        need = held.job.resources
        if not need.fits_in(self.ledger.capacity) and self._nobody_fits(held.job, now):
            self._park(held)
            return
        log.info(
            "job %s: handing it back to the queue (needs %s; this worker has %s)",
            held.job.id,
            need,
            self.ledger.capacity,
        )
        if held.kept:  # e.g. the worker was made smaller since it kept the job
            self._hand_back(held, topology.JOBS_QUEUE)
        else:
            self.jobs.basic_nack(held.tag, requeue=True)

    def _nobody_fits(self, job: Job, now: float) -> bool:
        if not self.liveness.listened_long_enough(now, self.settings.heartbeat_interval):
            return False  # we may not have heard the big worker yet
        need = job.resources
        return self.liveness.worker_fitting(need.cpu, need.memory, now) is None

    def _park(self, held: Held) -> None:
        """Move a job no live worker fits to the unschedulable queue, where it does not spin."""
        job = held.job
        live = {b.worker: b.to_dict() for b in self.liveness.live_workers(time.monotonic())}
        reason = (
            f"no live worker can fit it (it needs {job.resources}; "
            f"{workers.largest(live)}); it waits until one that fits joins"
        )
        if held.kept:
            self._hand_back(held, topology.UNSCHEDULABLE_QUEUE, reason)
        else:
            props = job_properties(job, held.attempt)
            props.headers[topology.REASON_HEADER] = reason
            self.outbox.publish("", topology.UNSCHEDULABLE_QUEUE, job.encode(), props=props)
            self.jobs.basic_ack(held.tag)
        self.outbox.event(job.id, "unschedulable", {"reason": reason})
        self._tell_parent("parked", job.id)
        log.warning("job %s: unschedulable: %s", job.id, reason)

    def _start(self, held: Held) -> None:
        """Book, record, claim, acknowledge, then ask for a monitor: in that order.

        Each step is durable before the next, so a crash anywhere leaves the
        job either on the jobs queue (not yet acknowledged) or claimed.
        """
        job = held.job
        if not self.ledger.reserve(job.id, job.resources):
            return  # the same id still holds a slot (an earlier run ending)
        self.poison.hold(held.key)
        if held.kept:
            try:
                self.store.unmark_kept(job.id)  # claimed already, when it was kept
            except BaseException:
                self.ledger.release(job.id)  # still kept: booked by the next start
                raise
        else:
            self._claim(job, held.attempt)
            self.jobs.basic_ack(held.tag)
        del self.waiting[job.id]
        self.places[job.id] = Candidate(
            job.id,
            job.resources,
            waited=0.0,
            submitted_at=job.submitted_at or time.time(),
            priority=job.priority,
            started_at=time.time(),
            estimate=_estimate(job),
        )
        self.outbox.event(job.id, "started", {"attempt": held.attempt})
        self._tell_parent("start", job.id)
        self.poison.done(held.key)
        self.next_beat = 0.0  # announce the new run at once

    def _claim(self, job: Job, attempt: int) -> None:
        """Record the run on disk, then publish its claim (confirmed): from then on it is ours."""
        self.store.accept(job, attempt)
        claim = Claim(
            job_id=job.id,
            worker=self.worker_id,
            attempt=attempt,
            at=time.time(),
            timeout=self.settings.worker_timeout,
            job=job.to_wire(),
        )
        self.outbox.publish("", topology.CLAIMS_QUEUE, claim.to_dict())
        self.store.mark_claimed(job.id)

    def _release_claim(self, job_id: str, attempt: int) -> None:
        release = Release(job_id, self.worker_id, attempt, time.time())
        self.outbox.publish("", topology.CLAIMS_QUEUE, release.to_dict())

    def _keep(self, held: Held) -> None:
        """Claim the head of the line while it waits for room, and go on holding it.

        Handing it back at the hold limit would send the job this worker is
        clearing room for to the back of the queue. Claimed, its message is
        acknowledged, so RabbitMQ's consumer_timeout no longer applies, and
        the claim and the heartbeats stand for it as for a running job.
        """
        job = held.job
        self.store.accept(job, held.attempt)
        self.store.mark_kept(job.id)  # before the claim: a claimed run is never left unmarked
        self._claim(job, held.attempt)
        assert held.tag is not None
        self.jobs.basic_ack(held.tag)
        held.tag = None
        self.next_beat = 0.0  # announce it at once
        log.info("job %s: kept at the head of the line; claimed while it waits for room", job.id)

    def _hold_kept(self) -> None:
        """Take back into the line the kept runs an earlier consumer or session claimed."""
        for job_id in self.store.active():
            if job_id in self.waiting or not self.store.kept(job_id):
                continue
            if not self.store.claimed(job_id) or self.store.revoked(job_id):
                continue  # forgotten by _discard_unclaimed, or by the parent
            # A consumer that died inside _start may have booked it: start afresh.
            self.ledger.release(job_id)
            held = Held(self.store.job(job_id), None, f"kept {job_id}", self.store.attempt(job_id))
            if self.store.handing_back(job_id):
                # It died handing the job back: finish that. The queue may now hold
                # two copies; a worker that sees another run it drops its own.
                self._hand_back(held, topology.JOBS_QUEUE)
            else:
                self.waiting[job_id] = held

    def _hand_back_kept(self) -> None:
        """Put the kept jobs back on the jobs queue: draining."""
        for held in [held for held in self.waiting.values() if held.kept]:
            self._hand_back(held, topology.JOBS_QUEUE)

    def _hand_back(self, held: Held, queue: str, reason: str | None = None) -> None:
        """Publish a kept job to ``queue`` (confirmed), then forget it; its claim lapses."""
        job = held.job
        self.store.mark_handing_back(job.id)
        props = job_properties(job, held.attempt)
        if reason is not None:
            props.headers[topology.REASON_HEADER] = reason
        self.outbox.publish("", queue, job.encode(), props=props)
        self._release_claim(job.id, held.attempt)
        self.store.forget(job.id)
        self.waiting.pop(job.id, None)
        self.next_beat = 0.0  # tell the others at once that it is no longer ours
        log.info("job %s: kept job handed back to %s", job.id, queue)

    def _discard_unclaimed(self) -> None:
        """Runs recorded but never claimed: their messages went back to the queue. Forget them."""
        for job_id in self.store.active():
            if not self.store.claimed(job_id):
                log.info(
                    "job %s: was not claimed before the consumer stopped; its message "
                    "is back on the queue",
                    job_id,
                )
                self.ledger.release(job_id)
                self.store.forget(job_id)

    # -- reporting -------------------------------------------------------

    def _report(self, job_id: str) -> None:
        """Publish a recorded outcome (confirmed), release the claim, then forget the run."""
        outcome = self.store.outcome(job_id)
        if outcome is not None and not self.store.revoked(job_id):
            self.output.finish(job_id)
            self.outbox.event(job_id, "outcome", {"outcome": outcome.to_dict()})
            self._release_claim(job_id, self.store.attempt(job_id))
            log.info("job %s: outcome reported", job_id)
        self.store.forget(job_id)
        self.ended.discard(job_id)

    def _beat(self) -> None:
        allocated = self.ledger.allocated()
        beat = Heartbeat(
            worker=self.worker_id,
            sent_at=time.time(),
            timeout=self.settings.worker_timeout,
            running=self.store.held(),
            capacity={
                "cpu": self.ledger.capacity.nano_cpus / NANO,
                "memory": self.ledger.capacity.memory,
            },
            allocated={"cpu": allocated.nano_cpus / NANO, "memory": allocated.memory},
            kept=[job_id for job_id, held in self.waiting.items() if held.kept],
        )
        self.outbox.publish(
            topology.EVENTS_EXCHANGE,
            topology.heartbeat_key(self.worker_id),
            beat.to_dict(),
            mandatory=False,
        )
        self.next_beat = time.monotonic() + self.settings.heartbeat_interval
        depths = {}
        for queue in (
            topology.JOBS_QUEUE,
            topology.UNSCHEDULABLE_QUEUE,
            topology.DEAD_LETTER_QUEUE,
        ):
            depths[queue] = self.control.queue_declare(queue, passive=True).method.message_count
        self._tell_parent("queues", depths)

    # -- the inbox -------------------------------------------------------

    def _drain_inbox(self) -> None:
        """Act on every message left for us while we were away, before running anything."""
        while True:
            method, _properties, body = self.control.basic_get(self.inbox_queue)
            if method is None:
                break
            self._handle_inbox(body)
            self.control.basic_ack(method.delivery_tag)
        self.control.basic_consume(self.inbox_queue, self._on_inbox)

    def _handle_inbox(self, body: bytes) -> None:
        try:
            message = json.loads(body)
            kind, job_id, attempt = message["kind"], message["job_id"], int(message["attempt"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignored an unreadable inbox message: %r", exc)
            return
        if kind == "revoke" and self.store.has(job_id) and self.store.attempt(job_id) <= attempt:
            log.warning("job %s: requeued while this worker was silent; stopping our run", job_id)
            held = self.waiting.get(job_id)
            if held is not None and held.kept:  # its claim was the sweeper's to take
                del self.waiting[job_id]
            self.store.mark_revoked(job_id)
            self._tell_parent("revoke", job_id)

    # -- publishing ------------------------------------------------------

    def _event(self, job_id: str, event: str, fields: dict[str, Any]) -> None:
        self.outbox.event(job_id, event, fields)  # on this session's channel

    def _dead_letter(self, tag: int, properties: Any, body: bytes, reason: str) -> None:
        """Move a message to the dead-letter queue (confirmed), then acknowledge it."""
        self.outbox.dead_letter(properties, body, reason)
        self.jobs.basic_ack(tag)
        log.warning(
            "message %s: dead-lettered to %s: %s",
            properties.message_id or f"#{tag}",
            topology.DEAD_LETTER_QUEUE,
            reason[:MAX_REASON_CHARS].replace("\n", "; "),
        )

    # -- stopping --------------------------------------------------------

    def _drain(self) -> None:
        """Take no more jobs; hand back those held; keep reporting until the parent stops us."""
        self.draining = True
        if getattr(self, "jobs", None) is not None and self.jobs.is_open:
            if getattr(self, "jobs_tag", None):
                self.jobs.basic_cancel(self.jobs_tag)
            for held in self.waiting.values():
                if not held.kept:
                    self.jobs.basic_nack(held.tag, requeue=True)
            self._hand_back_kept()
        # Kept jobs not handed back yet (no broker now) go back once it returns (_session).
        self.waiting = {job_id: held for job_id, held in self.waiting.items() if held.kept}
        log.info("draining: taking no more jobs")

    def _tell_parent(self, kind: str, value: Any) -> None:
        self.parent.send((kind, value))

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            self._read_parent()  # keep the pipe drained so the parent never blocks on it
            time.sleep(0.1)


def _estimate(job: Job) -> float:
    """The job's expected run time for placement; a job that gave none may run for ever."""
    return job.expected_runtime if job.expected_runtime is not None else math.inf


def _same_work(one: Job, other: Job) -> bool:
    """Whether two jobs ask for the same run (they may have been sent at different times)."""
    return one.to_wire() | {"submitted_at": None} == other.to_wire() | {"submitted_at": None}


def _attempt_of(properties: Any) -> int:
    value = (properties.headers or {}).get(topology.ATTEMPT_HEADER, 1)
    return value if isinstance(value, int) and value >= 1 else 1
