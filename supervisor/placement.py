"""Which waiting jobs a worker starts now, keeps, or gives back. Pure: no I/O, no clock.

The consumer calls ``place`` with what it can see: its capacity, what is free
now, and the jobs it holds but has not started. The simulator (jobq-sim) calls
the same function, and the baselines beside it, with the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


def in_line(waiting: Sequence[Candidate]) -> list[Candidate]:
    """Higher priority first; among equals, the oldest first."""
    return sorted(waiting, key=lambda c: (-c.priority, c.submitted_at, c.job_id))


def _sort_out(
    capacity: Resources, waiting: Sequence[Candidate], rules: Rules, decision: Decision
) -> list[Candidate]:
    """The give-back rules every policy shares; returns the rest, in line order."""
    kept = []
    for candidate in in_line(waiting):
        if candidate.waited >= rules.hold_limit:
            decision.give_back.append(candidate.job_id)
        elif not candidate.need.fits_in(capacity):
            if candidate.waited >= rules.give_back_after:
                decision.give_back.append(candidate.job_id)
        else:
            kept.append(candidate)
    return kept


def place(
    capacity: Resources,
    free: Resources,
    free_slots: int,
    waiting: Sequence[Candidate],
    now: float,
    rules: Rules = Rules(),
) -> Decision:
    """Start, in line order, every held job that fits what is free."""
    return greedy(capacity, free, free_slots, waiting, now, rules)


def greedy(
    capacity: Resources,
    free: Resources,
    free_slots: int,
    waiting: Sequence[Candidate],
    now: float,
    rules: Rules = Rules(),
) -> Decision:
    """Baseline: first fit in line order over every held job."""
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
    """Baseline: start jobs in line order and stop at the first that does not fit now."""
    decision = Decision()
    for candidate in _sort_out(capacity, waiting, rules, decision):
        if free_slots <= 0 or not candidate.need.fits_in(free):
            break
        decision.start.append(candidate.job_id)
        free -= candidate.need
        free_slots -= 1
    return decision
