"""Which waiting jobs a worker starts now, keeps, or gives back. Pure: no I/O, no clock.

The consumer calls ``place`` with what it can see: its capacity, what is free
now, and the jobs it holds but has not started, oldest first.
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


@dataclass(frozen=True)
class Decision:
    start: list[str] = field(default_factory=list)
    give_back: list[str] = field(default_factory=list)


def place(
    capacity: Resources,
    free: Resources,
    free_slots: int,
    waiting: Sequence[Candidate],
    give_back_after: float,
    hold_limit: float = float("inf"),
) -> Decision:
    """Start, oldest first, every held job that fits what is free.

    A job larger than the whole worker can never run here: it is given back
    to the queue for a bigger worker, but only after ``give_back_after``
    seconds, so a job no worker fits does not spin between workers. Any job
    held ``hold_limit`` seconds without starting goes back too, so another
    worker may take it.
    """
    decision = Decision()
    for candidate in waiting:
        if candidate.waited >= hold_limit:
            decision.give_back.append(candidate.job_id)
            continue
        if not candidate.need.fits_in(capacity):
            if candidate.waited >= give_back_after:
                decision.give_back.append(candidate.job_id)
            continue
        if free_slots > 0 and candidate.need.fits_in(free):
            decision.start.append(candidate.job_id)
            free -= candidate.need
            free_slots -= 1
    return decision
