"""The claims sweep: putting back on the queue the jobs of workers that are gone.

One claim message per started run sits on the claims queue, and one release
message per run that is over. The live supervisor with the smallest id sweeps
it every heartbeat: it takes each message once, drops every claim that has a
release (and the release), and asks ``Liveness`` for a verdict on the rest. A
kept claim goes back to the queue (to its end, so the next one comes up); a
finished run's claim is dropped;
the claim of a worker silent past its timeout is turned back into a job
message, and the worker is told (in its inbox, for when it returns) that the
run is no longer its own.

Taking a claim off the queue makes one sweeper its only holder, so two
sweepers that briefly disagree on who sweeps cannot both requeue it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from jobq.client import topology
from jobq.client.errors import InvalidJob
from jobq.client.job import decode
from jobq.client.publish import job_properties
from jobq.supervisor.liveness import Claim, Liveness, Release, Verdict

log = logging.getLogger("jobq.sweeper")

Publish = Callable[..., None]
PARKED_LOOK_SECONDS = 60.0
RELEASE_KEPT_SECONDS = 600.0


class Sweeper:
    def __init__(
        self, channel: Any, publish: Publish, liveness: Liveness, heartbeat_interval: float
    ) -> None:
        self.channel = channel
        self.publish = publish  # confirmed publish: returns once the broker holds it
        self.liveness = liveness
        self.heartbeat_interval = heartbeat_interval
        self._capacities_seen: frozenset[tuple[float, int]] = frozenset()
        self._next_parked_look = 0.0

    def sweep(self, now: float) -> dict[Verdict, int]:
        counts = dict.fromkeys(Verdict, 0)
        claims, releases = self._read_claims()
        released = {release.key for _, release in releases}
        for method, claim in claims:
            if claim.key in released:
                released.discard(claim.key)
                counts[Verdict.DROP] += 1
                self.channel.basic_ack(method.delivery_tag)
                continue
            verdict = self.liveness.verdict(claim, now)
            counts[verdict] += 1
            if verdict is Verdict.KEEP:
                self.channel.basic_nack(method.delivery_tag, requeue=True)
                continue
            if verdict is Verdict.REQUEUE:
                self._requeue(claim)
            self.channel.basic_ack(method.delivery_tag)
        for method, release in releases:
            # One whose claim this pass did not see (in another sweeper's hands a
            # moment, or already dropped) waits for a later pass, for a while.
            fresh = time.time() - release.at < RELEASE_KEPT_SECONDS
            if release.key in released and fresh:
                self.channel.basic_nack(method.delivery_tag, requeue=True)
            else:
                self.channel.basic_ack(method.delivery_tag)
        self._release_parked(now)
        return counts

    def _read_claims(self) -> tuple[list[tuple[Any, Claim]], list[tuple[Any, Release]]]:
        """Every message on the claims queue once, as claims and releases."""
        claims, releases = [], []
        for method, _properties, body in self._each_message(topology.CLAIMS_QUEUE):
            try:
                doc = json.loads(body)
                if doc.get("release"):
                    releases.append((method, Release.from_dict(doc)))
                else:
                    claims.append((method, Claim.from_dict(doc)))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.error("dropped an unreadable claim: %r", exc)
                self.channel.basic_ack(method.delivery_tag)
        return claims, releases

    def _each_message(self, queue: str) -> Iterator[tuple[Any, Any, bytes]]:
        """Each message on ``queue`` once: those put back go to its end, after the last one."""
        ready = self.channel.queue_declare(queue, passive=True).method.message_count
        for _ in range(ready):
            method, properties, body = self.channel.basic_get(queue)
            if method is None:
                return
            yield method, properties, body

    def _release_parked(self, now: float) -> None:
        """Move parked jobs back to the jobs queue once a live worker can fit them.

        Only when the live workers' capacities change, or once a minute, so a
        job that waits for a bigger worker costs the broker next to nothing.
        """
        if not self.liveness.listened_long_enough(now, self.heartbeat_interval):
            return
        capacities = frozenset(
            (b.capacity.get("cpu", 0), b.capacity.get("memory", 0))
            for b in self.liveness.live_workers(now)
        )
        if capacities == self._capacities_seen and now < self._next_parked_look:
            return
        self._capacities_seen = capacities
        self._next_parked_look = now + PARKED_LOOK_SECONDS
        for method, properties, body in self._each_message(topology.UNSCHEDULABLE_QUEUE):
            try:
                job = decode(body, source=f"parked message {properties.message_id}")
            except InvalidJob as exc:
                log.error("dropped an unreadable parked job: %s", exc)
                self.channel.basic_ack(method.delivery_tag)
                continue
            need = job.resources
            fitting = self.liveness.worker_fitting(need.cpu, need.memory, now)
            if fitting is None:
                self.channel.basic_nack(method.delivery_tag, requeue=True)
                continue
            self.publish("", topology.JOBS_QUEUE, body, props=properties)
            self.channel.basic_ack(method.delivery_tag)
            log.info(
                "job %s: worker %s can fit it now; back on the jobs queue", job.id, fitting.worker
            )

    def _requeue(self, claim: Claim) -> None:
        job = decode(json.dumps(claim.job).encode(), source=f"claim of job {claim.job_id}")
        attempt = claim.attempt + 1
        self.publish("", topology.JOBS_QUEUE, job.encode(), props=job_properties(job, attempt))
        self.publish(
            topology.EVENTS_EXCHANGE,
            topology.inbox_key(claim.worker, "revoke"),
            {"kind": "revoke", "job_id": claim.job_id, "attempt": claim.attempt},
            mandatory=False,
        )
        self.publish(
            topology.EVENTS_EXCHANGE,
            topology.job_event_key(claim.job_id, "requeued"),
            {
                "event": "requeued",
                "job_id": claim.job_id,
                "worker": claim.worker,
                "attempt": attempt,
                "at": time.time(),
            },
            mandatory=False,
        )
        log.warning(
            "job %s: worker %s silent past its %gs timeout; job requeued as attempt %d",
            claim.job_id,
            claim.worker,
            claim.timeout,
            attempt,
        )
