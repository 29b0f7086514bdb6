"""Which waiting jobs a worker starts now, keeps, or gives back. Pure: no I/O, no clock.

The consumer calls ``place`` about every 0.2 s with what it can see: its
capacity, what is free, how many more jobs it may run, and the jobs it holds
but has not started (its window: at most ``prefetch`` of them). It starts
``start`` in order and hands ``give_back`` to the queue, whose BACK they join
(RabbitMQ 3.10 quorum queues). It knows no runtimes. jobq-sim
(supervisor/simulator.py) replays a workload through the same function, and
through the two baselines below; docs/placement.md has the figures.

``place`` (ours):

1. Line order: higher priority first, then the oldest submit time. In that
   order every held job that fits what is free starts, until the first that
   does not: the head of the line. So among jobs of one priority the oldest
   that fits runs first, and a job passed over stays held, in its place.
2. The head keeps its place: a job behind it may start (backfill) only if it
   fits what is free *and* leaves the head room once the jobs running now
   have ended, i.e. it fits in the capacity left after the head's need and
   the backfills already started in this call. A job that needs the whole
   worker therefore waits only for the jobs running when it reached the head.
   LIMIT (open, docs/placement.md): place() keeps no memory between calls, so
   a backfilled job is merely "running" at the next call and the room is
   counted afresh; a head smaller than the worker can still be passed by a
   steady stream of small jobs.
3. Give-back rules: a job the worker can never fit goes back after
   ``rules.give_back_after``, so a bigger worker can take it; any job held
   ``rules.hold_limit`` goes back, before RabbitMQ's consumer_timeout closes
   the channel on it.

Why it beats the two obvious consumers: ``head_of_line`` leaves everything
behind a large job idle; ``greedy`` lets small jobs take every CPU that frees,
so a large job waits as long as small ones keep coming. Ours reserves only
what the head needs and backfills the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from jobq.client.units import Resources


@dataclass(frozen=True)
class Candidate:
    job_id: str
    need: Resources
    waited: float  # seconds this worker has held the job
    submitted_at: float  # when it was sent (same clock as ``now``): its place in line
    priority: int = 0  # higher runs first when both fit


@dataclass(frozen=True)
class Rules:
    # How long a worker holds a job it can never fit before handing it back,
    # so a bigger worker can take it without the job spinning between workers.
    give_back_after: float = 2.0
    # How long a worker holds any job it has not started before handing it back:
    # well under RabbitMQ's default consumer_timeout (30 min).
    hold_limit: float = 600.0


@dataclass(frozen=True)
class Decision:
    start: list[str] = field(default_factory=list)
    give_back: list[str] = field(default_factory=list)


_BY_AGE = attrgetter("submitted_at", "job_id")
_BY_PRIORITY = attrgetter("priority")


def in_line(waiting: Sequence[Candidate]) -> list[Candidate]:
    """Higher priority first; among equals, the oldest first (then by id, to be stable)."""
    line = sorted(waiting, key=_BY_AGE)
    line.sort(key=_BY_PRIORITY, reverse=True)  # stable: equal priorities stay oldest first
    return line


def _sort_out(
    capacity: Resources, waiting: Sequence[Candidate], rules: Rules, decision: Decision
) -> list[Candidate]:
    """Apply the give-back rules every policy shares; return the jobs kept, in line order."""
    line = []
    for candidate in in_line(waiting):
        if candidate.waited >= rules.hold_limit:
            decision.give_back.append(candidate.job_id)
        elif not candidate.need.fits_in(capacity):
            if candidate.waited >= rules.give_back_after:
                decision.give_back.append(candidate.job_id)
            # else: kept a moment, so a job no worker fits does not spin
        else:
            line.append(candidate)
    return line


def place(
    capacity: Resources,
    free: Resources,
    free_slots: int,
    waiting: Sequence[Candidate],
    now: float,
    rules: Rules = Rules(),
) -> Decision:
    """Start in line order up to the head of the line; backfill only around the head."""
    decision = Decision()
    room: Resources | None = None  # beside the head, once the running jobs end
    for candidate in _sort_out(capacity, waiting, rules, decision):
        if free_slots <= 0:
            break
        if room is None and not candidate.need.fits_in(free):
            room = capacity - candidate.need  # the head of the line
            continue
        if room is not None and not candidate.need.fits_in(room):
            continue
        if candidate.need.fits_in(free):
            decision.start.append(candidate.job_id)
            free -= candidate.need
            free_slots -= 1
            if room is not None:
                room -= candidate.need
    return decision


def greedy(
    capacity: Resources,
    free: Resources,
    free_slots: int,
    waiting: Sequence[Candidate],
    now: float,
    rules: Rules = Rules(),
) -> Decision:
    """Baseline: start whatever fits, first fit in line order; hold the rest.

    The same give-back rules as ``place``; jobq-sim gives it an unlimited
    hold limit unless told otherwise, as the issue defines it.
    """
    decision = Decision()
    for candidate in _sort_out(capacity, waiting, rules, decision):
        if free_slots > 0 and candidate.need.fits_in(free):
            decision.start.append(candidate.job_id)
            free -= candidate.need
            free_slots -= 1
    return decision


def head_of_line(
    capacity: Resources,
    free: Resources,
    free_slots: int,
    waiting: Sequence[Candidate],
    now: float,
    rules: Rules = Rules(),
) -> Decision:
    """Baseline: take the next job and wait until it fits.

    Starts jobs in line order and stops at the first that does not fit now.
    jobq-sim runs it with a window of one. A job the worker can never fit is
    given back after ``rules.give_back_after``, or it would block forever.
    """
    decision = Decision()
    for candidate in _sort_out(capacity, waiting, rules, decision):
        if free_slots <= 0 or not candidate.need.fits_in(free):
            break
        decision.start.append(candidate.job_id)
        free -= candidate.need
        free_slots -= 1
    return decision
