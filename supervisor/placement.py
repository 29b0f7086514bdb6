"""Which waiting jobs a worker starts now, keeps, or gives back. Pure: no I/O, no clock.

The consumer calls ``place`` about every 0.2 s with what it can see: its
capacity, what is free, how many more jobs it may run, the jobs it holds but
has not started (its window: at most ``prefetch`` of them, besides those it
kept), and the running jobs' places in line. It starts ``start`` in order,
claims ``keep``, and hands ``give_back`` to the queue, whose BACK they join
(RabbitMQ 3.10 quorum queues). It knows no runtimes, only the estimates
jobs may give (``expected_runtime``, docs/job-format.md). jobq-sim
(supervisor/simulator.py) replays a workload through the same function, and
through the two baselines below; docs/placement.md has the figures.

``place`` (ours):

1. Line order: higher priority first, then the oldest submit time. In that
   order every held job that can start now (it fits what is free, and a job
   slot is free) starts, until the first that cannot: the head of the line.
   So among jobs of one priority the oldest that fits runs first, and a job
   passed over stays held, in its place.
2. Backfill: a job behind the head may start if it fits what is free and
   leaves the head room once the jobs ahead of it have ended: the room is
   the capacity less the head's need and the backfills started in this call.
   A job that expects to end before the head can fit may start in what is
   free whatever the room: when the head can fit is read from the running
   jobs' estimates and start times (EASY backfilling's reservation). Any
   running job past its estimate, or one the head waits for that gave none,
   leaves that time unknown, and then only the room counts.
3. Overdue heads cannot starve. A head sent ``rules.overdue_after`` ago or
   more is overdue, and its room is also less every running job sent after
   it (or of lower priority), whichever call started it (``running``): so
   backfills never add up to more than it leaves free, and it starts once
   the jobs ahead of it end, however many small jobs keep coming. A head not
   yet overdue is passed more freely, which keeps small jobs flowing: making
   every head wait so costs more in mean wait than it saves (docs/placement.md
   has the figures).
4. Give-back rules: a job the worker can never fit goes back after
   ``rules.give_back_after``, so a bigger worker can take it. A job held
   ``rules.hold_limit`` goes back too, before RabbitMQ's consumer_timeout
   closes the channel on it, where another worker may start it sooner; all
   but an overdue head, which is *kept* instead (``Decision.keep``): the
   consumer claims it as it would a started run, so it no longer counts
   against the consumer_timeout or the prefetch window, and it stays at the
   head here rather than going to the back of the queue.

Why it beats the two obvious consumers: ``head_of_line`` leaves everything
behind a large job idle; ``greedy`` lets small jobs take every CPU that frees,
so a large job waits as long as small ones keep coming. Ours reserves only
what the head needs and backfills the rest, and the time until it fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from jobq.client.units import ZERO, Resources


@dataclass(frozen=True)
class Candidate:
    job_id: str
    need: Resources
    waited: float  # seconds this worker has held the job
    submitted_at: float  # when it was sent (same clock as ``now``): its place in line
    priority: int = 0  # higher runs first when both fit
    kept: bool = False  # claimed by this worker while waiting (``Decision.keep``)
    started_at: float = 0.0  # a running job's start (same clock as ``now``); 0 if unknown
    estimate: float = math.inf  # the job's expected run time in seconds, if it gave one


@dataclass(frozen=True)
class Rules:
    # How long a worker holds a job it can never fit before handing it back,
    # so a bigger worker can take it without the job spinning between workers.
    give_back_after: float = 2.0
    # How long a worker holds any job it has not started before handing it back
    # (or keeping it, if it is the head of the line): well under RabbitMQ's
    # default consumer_timeout (30 min).
    hold_limit: float = 600.0
    # How long after it was sent a job is overdue: at the head of a line, an
    # overdue job is kept past the hold limit, and no job sent after it may
    # take the room it needs. Until then it is passed like any other, which
    # keeps small jobs flowing; after, it cannot starve. docs/placement.md.
    overdue_after: float = 6 * 86400.0


@dataclass(frozen=True)
class Decision:
    start: list[str] = field(default_factory=list)
    give_back: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)  # claim it, and go on holding it


def _line_key(candidate: Candidate) -> tuple[int, float, str]:
    return (-candidate.priority, candidate.submitted_at, candidate.job_id)


def in_line(waiting: Sequence[Candidate]) -> list[Candidate]:
    """Higher priority first; among equals, the oldest first (then by id, to be stable)."""
    return sorted(waiting, key=_line_key)


def _sort_out(
    capacity: Resources,
    waiting: Sequence[Candidate],
    rules: Rules,
    decision: Decision,
    hold_limit: float,
) -> list[Candidate]:
    """Apply the give-back rules every policy shares; return the jobs kept, in line order."""
    line = []
    for candidate in in_line(waiting):
        if candidate.waited >= hold_limit and not candidate.kept:
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
    running: Sequence[Candidate] = (),
) -> Decision:
    """Start in line order up to the head of the line; backfill only around the head."""
    decision = Decision()
    head: Candidate | None = None
    room = ZERO  # beside the head, once the jobs ahead of it end
    head_fits_at = -math.inf  # when the head should fit, by the running jobs' estimates
    for candidate in _sort_out(capacity, waiting, rules, decision, math.inf):
        can_start = free_slots > 0 and candidate.need.fits_in(free)
        # Done, by its estimate, before the head can fit: then it takes none of its room.
        ends_in_time = now + candidate.estimate <= head_fits_at  # never before a head
        if head is None and not can_start:
            head = candidate
            room = capacity - candidate.need
            overdue_since = head.submitted_at + rules.overdue_after
            if now >= overdue_since:
                room -= _passed_since(head, overdue_since, running)
            head_fits_at = _expected_fit(head, free, running, now)
        elif can_start and (head is None or ends_in_time or candidate.need.fits_in(room)):
            decision.start.append(candidate.job_id)
            free -= candidate.need
            free_slots -= 1
            if head is not None and not ends_in_time:
                room -= candidate.need
        elif candidate.waited >= rules.hold_limit and not candidate.kept:
            decision.give_back.append(candidate.job_id)
    if head is not None and head.waited >= rules.hold_limit and not head.kept:
        overdue = now - head.submitted_at >= rules.overdue_after
        (decision.keep if overdue else decision.give_back).append(head.job_id)
    return decision


def _expected_fit(
    head: Candidate, free: Resources, running: Sequence[Candidate], now: float
) -> float:
    """When ``head`` should fit, if the running jobs end when they said; -inf if unknown.

    Unknown when a job it waits for gave no estimate, or any running job has
    run past its own (those sort first): an estimate once broken is not
    trusted again while that job runs, so a job that says it is short and is
    not can delay a head once, not starve it.
    """
    for job in sorted(running, key=lambda job: job.started_at + job.estimate):
        ends = job.started_at + job.estimate
        if ends < now or ends == math.inf:
            return -math.inf
        free += job.need
        if head.need.fits_in(free):
            return ends
    return -math.inf


def _passed_since(head: Candidate, since: float, running: Sequence[Candidate]) -> Resources:
    """What the running jobs that passed ``head`` after ``since`` hold: its backfills.

    Those sent after the head, or of lower priority, and started since it is
    overdue. Jobs that passed it before will end, and no more may pass it than
    its room allows, so it starts once they and the jobs ahead of it have ended.
    """
    total = ZERO
    for job in running:
        behind = job.priority < head.priority or (
            job.priority == head.priority and job.submitted_at > head.submitted_at
        )
        if behind and job.started_at >= since:
            total += job.need
    return total


def greedy(
    capacity: Resources,
    free: Resources,
    free_slots: int,
    waiting: Sequence[Candidate],
    now: float,
    rules: Rules = Rules(),
    running: Sequence[Candidate] = (),
) -> Decision:
    """Baseline: start whatever fits, first fit in line order; hold the rest.

    The same give-back rules as ``place``; jobq-sim gives it an unlimited
    hold limit unless told otherwise, as greedy is usually defined.
    """
    decision = Decision()
    for candidate in _sort_out(capacity, waiting, rules, decision, rules.hold_limit):
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
    running: Sequence[Candidate] = (),
) -> Decision:
    """Baseline: take the next job and wait until it fits.

    Starts jobs in line order and stops at the first that does not fit now.
    jobq-sim runs it with a window of one. A job the worker can never fit is
    given back after ``rules.give_back_after``, or it would block forever.
    """
    decision = Decision()
    for candidate in _sort_out(capacity, waiting, rules, decision, rules.hold_limit):
        if free_slots <= 0 or not candidate.need.fits_in(free):
            break
        decision.start.append(candidate.job_id)
        free -= candidate.need
        free_slots -= 1
    return decision
