"""Which workers are alive, what they run, and what becomes of a claim. Pure: no I/O.

Every supervisor publishes a heartbeat every few seconds listing the runs it
holds, and hears everyone's. From them, ``Liveness`` answers:

- is a job already running on a live worker (so a duplicate need not run)?
- which supervisor sweeps the claims queue (the live one with the smallest id)?
- for each claim (one per started run): keep it, drop it (the run is over), or
  requeue its job (its worker has been silent past its own timeout)?

Times: ``now`` is this process's monotonic clock and is compared only with
receive times, so clock skew between hosts cannot kill a worker. A claim's
``at`` and a heartbeat's ``sent_at`` both come from the claiming worker's own
clock, so comparing them is safe.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.Enum):
    KEEP = "keep"  # its worker is alive and still runs it, or we cannot tell yet
    DROP = "drop"  # its worker is alive and has finished with it
    REQUEUE = "requeue"  # its worker is gone: run the job again elsewhere


@dataclass(frozen=True)
class Heartbeat:
    worker: str
    sent_at: float  # the worker's clock
    timeout: float  # declare me dead after this many silent seconds
    running: dict[str, int]  # job id -> attempt, every run the worker holds
    capacity: dict[str, Any]
    allocated: dict[str, Any]
    kept: list[str] = field(default_factory=list)  # of ``running``: kept, not yet started

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "at": self.sent_at,
            "timeout": self.timeout,
            "running": self.running,
            "capacity": self.capacity,
            "allocated": self.allocated,
            "kept": self.kept,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Heartbeat:
        return cls(
            worker=str(doc["worker"]),
            sent_at=float(doc["at"]),
            timeout=float(doc["timeout"]),
            running={str(k): int(v) for k, v in dict(doc["running"]).items()},
            capacity=dict(doc.get("capacity", {})),
            allocated=dict(doc.get("allocated", {})),
            kept=[str(job_id) for job_id in doc.get("kept", [])],
        )


@dataclass(frozen=True)
class Release:
    """A run is over (reported, or a kept job handed back): the sweeper drops its claim.

    Without it a claim lasts until a sweeper hears a heartbeat that no longer
    lists the run, and a worker that stops before its next heartbeat, heard
    by nobody, would have its finished job run again after its timeout.
    """

    job_id: str
    worker: str
    attempt: int
    at: float  # the releasing worker's clock

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.job_id, self.worker, self.attempt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "release": True,
            "job_id": self.job_id,
            "worker": self.worker,
            "attempt": self.attempt,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Release:
        return cls(str(doc["job_id"]), str(doc["worker"]), int(doc["attempt"]), float(doc["at"]))


@dataclass(frozen=True)
class Claim:
    job_id: str
    worker: str
    attempt: int
    at: float  # the claiming worker's clock
    timeout: float  # the claiming worker's worker timeout
    job: dict[str, Any]  # the job, in wire form, to requeue if need be

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "worker": self.worker,
            "attempt": self.attempt,
            "at": self.at,
            "timeout": self.timeout,
            "job": self.job,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Claim:
        return cls(
            job_id=str(doc["job_id"]),
            worker=str(doc["worker"]),
            attempt=int(doc["attempt"]),
            at=float(doc["at"]),
            timeout=float(doc["timeout"]),
            job=dict(doc["job"]),
        )

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.job_id, self.worker, self.attempt)


@dataclass(frozen=True)
class _Seen:
    beat: Heartbeat
    received: float  # our monotonic clock


class Liveness:
    def __init__(self, me: str, now: float) -> None:
        self.me = me
        self.watching_since = now
        self._seen: dict[str, _Seen] = {}

    def restart_watch(self, now: float) -> None:
        """After we were cut off, others' silence proves nothing until we have listened again."""
        self.watching_since = now

    def heard(self, beat: Heartbeat, now: float) -> None:
        self._seen[beat.worker] = _Seen(beat, now)

    def alive(self, worker: str, now: float) -> bool:
        seen = self._seen.get(worker)
        return seen is not None and now - seen.received <= seen.beat.timeout

    def live_workers(self, now: float) -> list[Heartbeat]:
        return [s.beat for s in self._seen.values() if self.alive(s.beat.worker, now)]

    def runner_of(self, job_id: str, attempt: int, now: float) -> str | None:
        """Another live worker already running this job at this attempt or later, if any.

        A job another worker only keeps (claimed, not started) does not count: it
        may be handing it back, and the copy it hands back must run.
        """
        for beat in self.live_workers(now):
            if beat.worker == self.me or job_id in beat.kept:
                continue
            if beat.running.get(job_id, 0) >= attempt:
                return beat.worker
        return None

    def listened_long_enough(self, now: float, interval: float) -> bool:
        """Whether every live worker has had time to be heard since we (re)connected."""
        return now - self.watching_since > 2 * interval

    def worker_fitting(self, cpu: float, memory: int, now: float) -> Heartbeat | None:
        """A live worker whose whole capacity fits this need, if there is one."""
        for beat in self.live_workers(now):
            capacity = beat.capacity
            if capacity.get("cpu", 0) >= cpu and capacity.get("memory", 0) >= memory:
                return beat
        return None

    def is_sweeper(self, now: float) -> bool:
        return self.me == min([self.me, *(b.worker for b in self.live_workers(now))])

    def verdict(self, claim: Claim, now: float) -> Verdict:
        seen = self._seen.get(claim.worker)
        if self.alive(claim.worker, now):
            assert seen is not None
            if claim.job_id in seen.beat.running:
                return Verdict.KEEP
            # A heartbeat sent after the claim that does not list the job:
            # the run has been reported (or handed back) and forgotten.
            return Verdict.DROP if seen.beat.sent_at > claim.at else Verdict.KEEP
        timeout = seen.beat.timeout if seen is not None else claim.timeout
        silent_for = now - (seen.received if seen is not None else self.watching_since)
        listened_for = now - self.watching_since
        if silent_for > timeout and listened_for > timeout:
            return Verdict.REQUEUE
        return Verdict.KEEP
