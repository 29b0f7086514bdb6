"""Which waiting jobs a worker starts now, keeps, or gives back. Pure: no I/O, no clock.

The consumer calls ``place`` about every 0.2 s with what it can see: its
capacity, what is free, how many more jobs it may run, and the jobs it holds
but has not started (its window: at most ``prefetch`` of them). It starts
``start`` in order and hands ``give_back`` to the queue, whose BACK they join
(RabbitMQ 3.10 quorum queues). It knows no runtimes. jobq-sim
(supervisor/simulator.py) replays a workload through the same function, and
through the two baselines below; docs/placement.md has the figures.

``place`` (ours):

1. Line order: higher priority first, then the oldest submit time. Every
   held job that fits what is free starts, in that order, so among jobs of
   one priority the oldest that fits runs first, and a job skipped keeps its
   place: it stays held and is first in line again at the next look.
2. Starvation bound: a held job that fits the worker but not what is free
   now, and is ``rules.reserve_after`` older than the youngest job the worker
   holds (jobs that much younger compete with it), reserves what it needs:
   no job behind it in line starts until it has. What it lacks can then only
   grow free as running jobs end, so it is certain to start. (Backfilling
   beside the reservation would need runtimes: a job started into the room
   it waits for could run for days.)
3. Give-back rules: a job the worker can never fit goes back after
   ``rules.give_back_after``, so a bigger worker can take it; any job held
   ``rules.hold_limit`` goes back, before RabbitMQ's consumer_timeout closes
   the channel on it.

Why it beats the two obvious consumers:

- ``head_of_line`` takes the next job and waits until it fits: whatever is
  free behind a large job stays idle, and a job that never fits blocks until
  given back.
- ``greedy`` starts whatever fits, first fit in line order, and holds the rest
  until it fits: small jobs fill every CPU that frees, so a large job waits
  as long as small ones keep coming, and it blocks a window slot meanwhile.
- Ours starts what fits like greedy while nobody is starving, so nothing
  idles behind a job that will fit soon; it reserves like head-of-line only
  for a job younger jobs have passed for long; and the hold limit hands back
  what it cannot start, so its window keeps showing it new jobs.

The starvation bound is relative to the jobs held, not to the clock: when
everything waits long (an overload, or a batch sent all at once), nothing is
starving relative to the rest, and the worker packs greedily; a job that was
handed back and comes round again is older than the jobs around it, and its
reservation follows it to whichever worker holds it.
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
    # A held job this much older than the youngest job held is starving and
    # reserves what it needs (place only). Measured on the HPC2N trace, whose
    # jobs run hours (docs/placement.md): shorter bounds make workers idle for
    # reservations the hold limit ends before they pay off.
    reserve_after: float = 72 * 3600.0


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
    """Start, in line order, every held job that fits; a starving job reserves first.

    See the module docstring for the rules and why.
    """
    decision = Decision()
    line = _sort_out(capacity, waiting, rules, decision)
    if not line:
        return decision
    # Age relative to the window, not to ``now``: a job is starving when much
    # younger jobs compete with it, not merely because everything waits.
    youngest = max(candidate.submitted_at for candidate in line)
    for candidate in line:
        if free_slots <= 0:
            break
        if candidate.need.fits_in(free):
            decision.start.append(candidate.job_id)
            free -= candidate.need
            free_slots -= 1
        elif youngest - candidate.submitted_at >= rules.reserve_after:
            # Starving: reserve all it needs. It lacks some CPU or memory, so
            # beside it nothing is left for younger jobs; and without runtimes
            # any job started now could outlast those running, so only their
            # ending may make its room. Jobs ahead of it in line have started.
            break
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
