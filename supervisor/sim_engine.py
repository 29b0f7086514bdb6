"""The discrete-event core of jobq-sim: one shared queue, workers, and a policy.

It has the real system's limits and no more knowledge than it:

- One FIFO queue. RabbitMQ delivers its head to a worker with a free window
  slot (``prefetch`` held-but-not-started jobs at most), round-robin among the
  workers that have one, at once. A job given back goes to the BACK of the
  queue, as RabbitMQ 3.10 quorum queues do with a requeued message.
- A worker looks (calls its policy) when something changes for it: a delivery,
  one of its jobs ending, or a timer of the rules (a held job reaching
  ``give_back_after`` or ``hold_limit``). With ``decision_latency`` it looks
  that long after the change instead, as the real consumer polls.
- The policy sees what the consumer passes to ``place()``: capacity, what is
  free, free job slots, the held jobs' needs, held time, submit time, priority
  and whether it kept them, and the running jobs' needs and places in line.
  Never a runtime. A kept job (claimed while waiting) no longer fills a
  window slot, as an acknowledged message no longer counts against prefetch.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from jobq.client.units import Resources
from jobq.supervisor.placement import Candidate, Decision, Rules

Policy = Callable[
    [Resources, Resources, int, Sequence[Candidate], float, Rules, Sequence[Candidate]], Decision
]

_ARRIVE, _END, _WAKE, _LOOK = 0, 1, 2, 3
# A simulation that goes this many events without a job starting, ending or
# arriving is spinning (a policy that never starts what fits): stop it.
_MAX_IDLE_EVENTS = 1_000_000


class SimulationError(RuntimeError):
    """The policy broke a rule (overran a worker) or the simulation cannot end."""


@dataclass(frozen=True)
class SimJob:
    id: str
    submit: float  # seconds; the same clock as the simulation's
    runtime: float  # seconds; the simulator knows it, the policy never does
    need: Resources
    priority: int = 0
    estimate: float = math.inf  # the run time the job says it expects; policies may see it


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    capacity: Resources


@dataclass(frozen=True)
class Settings:
    window: int = 20  # prefetch: held-but-not-started jobs per worker
    rules: Rules = field(default_factory=Rules)
    decision_latency: float = 0.0  # a worker looks this long after a change
    start_overhead: float = 0.0  # booked before the job's runtime begins (container start)
    end_overhead: float = 0.0  # booked after it ends (outcome recorded, container removed)
    max_jobs: int = 256  # running jobs per worker, as [worker] max_jobs


@dataclass(frozen=True)
class Run:
    job: SimJob
    worker: int
    start: float  # when the policy started it (booked it): its wait ends here
    end: float


@dataclass
class Outcome:
    runs: list[Run]
    give_backs: int  # nacks: messages put back on the queue
    looks: int  # policy calls


class _Worker:
    __slots__ = (
        "capacity",
        "dirty",
        "free",
        "held",
        "index",
        "kept",
        "look_at",
        "running",
        "wake_at",
    )

    def __init__(self, index: int, capacity: Resources) -> None:
        self.index = index
        self.capacity = capacity
        self.free = capacity
        self.running: dict[str, tuple[SimJob, float]] = {}  # with when it started
        # In delivery order: the job, when it came, and when the rules give it back.
        self.held: dict[str, tuple[SimJob, float, float]] = {}
        # Held jobs the policy kept (claimed): no longer in the prefetch window.
        self.kept: set[str] = set()
        self.wake_at = math.inf  # the one timer that counts
        self.look_at = math.inf  # a look already scheduled (decision latency)
        self.dirty = False


def due(since: float, delay: float) -> float:
    """The first float time ``t`` with ``t - since >= delay``: when a timer really fires."""
    at = since + delay
    while at - since < delay:
        at = math.nextafter(at, math.inf)
    return at


def deadline(job: SimJob, received: float, capacity: Resources, rules: Rules) -> float:
    """When the rules would give back a held job, though nothing else changed."""
    at = due(received, rules.hold_limit)
    if not job.need.fits_in(capacity):
        at = min(at, due(received, rules.give_back_after))
    return at


def simulate(
    jobs: Sequence[SimJob],
    workers: Sequence[WorkerSpec],
    policy: Policy,
    settings: Settings = Settings(),
) -> Outcome:
    """Replay ``jobs`` (each must fit some worker) on ``workers`` under ``policy``."""
    rules = settings.rules
    if settings.window < 1:
        raise ValueError("the window (prefetch) must be at least 1")
    if not rules.give_back_after > 0 or not rules.hold_limit > 0:
        # A job given back at once would bounce between workers forever in one instant.
        raise ValueError("give_back_after and hold_limit must be greater than 0")
    for job in jobs:
        if not any(job.need.fits_in(w.capacity) for w in workers):
            raise ValueError(f"job {job.id} ({job.need}) fits no worker; leave it out")

    pool = [_Worker(i, w.capacity) for i, w in enumerate(workers)]
    events: list[tuple[float, int, int, int, SimJob | None]] = []
    seq = 0
    for job in sorted(jobs, key=lambda j: j.submit):  # stable: file order among equals
        events.append((job.submit, seq, _ARRIVE, -1, job))
        seq += 1
    heapq.heapify(events)
    queue: deque[SimJob] = deque()
    dirty: list[_Worker] = []
    runs: list[Run] = []
    next_rr = 0
    give_backs = looks = idle_events = 0
    latency = settings.decision_latency

    def mark(worker: _Worker) -> None:
        if not worker.dirty:
            worker.dirty = True
            dirty.append(worker)

    def dispatch(now: float) -> None:
        # RabbitMQ hands the queue's head to the next consumer, in turn, with credit.
        nonlocal next_rr
        count = len(pool)
        while queue:
            for step in range(count):
                worker = pool[(next_rr + step) % count]
                if len(worker.held) - len(worker.kept) < settings.window:
                    job = queue.popleft()
                    worker.held[job.id] = (job, now, deadline(job, now, worker.capacity, rules))
                    next_rr = (worker.index + 1) % count
                    mark(worker)
                    break
            else:
                return

    def look(worker: _Worker, now: float) -> None:
        nonlocal seq, give_backs, looks, idle_events
        looks += 1
        held = worker.held
        waiting = [
            Candidate(
                job_id,
                job.need,
                now - received,
                job.submit,
                job.priority,
                job_id in worker.kept,
                estimate=job.estimate,
            )
            for job_id, (job, received, _) in held.items()
        ]
        running = [
            Candidate(
                job.id,
                job.need,
                0.0,
                job.submit,
                job.priority,
                started_at=started,
                estimate=job.estimate,
            )
            for job, started in worker.running.values()
        ]
        decision = policy(
            worker.capacity,
            worker.free,
            settings.max_jobs - len(worker.running),
            waiting,
            now,
            rules,
            running,
        )
        for job_id in decision.start:
            job = held.pop(job_id)[0]
            worker.kept.discard(job_id)
            free = worker.free - job.need
            if free.nano_cpus < 0 or free.memory < 0 or len(worker.running) >= settings.max_jobs:
                raise SimulationError(
                    f"policy started job {job.id} ({job.need}) on worker {worker.index} "
                    f"with only {worker.free} free and {len(worker.running)} running"
                )
            worker.free = free
            worker.running[job.id] = (job, now)
            end = now + settings.start_overhead + job.runtime + settings.end_overhead
            runs.append(Run(job, worker.index, now, end))
            heapq.heappush(events, (end, seq, _END, worker.index, job))
            seq += 1
            idle_events = 0
        for job_id in decision.give_back:
            queue.append(held.pop(job_id)[0])
            worker.kept.discard(job_id)
            give_backs += 1
        for job_id in decision.keep:
            job, received, _ = held[job_id]
            held[job_id] = (job, received, math.inf)
            worker.kept.add(job_id)  # its window slot is free for the next delivery
        wake = min([entry[2] for entry in held.values()], default=math.inf)
        if wake != worker.wake_at:
            worker.wake_at = wake
            if wake < math.inf:
                heapq.heappush(events, (wake, seq, _WAKE, worker.index, None))
                seq += 1

    def settle(now: float) -> None:
        dispatch(now)
        while dirty:
            worker = dirty.pop(0)
            worker.dirty = False
            if latency > 0:
                nonlocal seq
                if worker.look_at == math.inf:
                    worker.look_at = now + latency
                    heapq.heappush(events, (worker.look_at, seq, _LOOK, worker.index, None))
                    seq += 1
                continue
            look(worker, now)
            dispatch(now)

    while events:
        now = events[0][0]
        while events and events[0][0] == now:
            _, _, kind, index, job = heapq.heappop(events)
            idle_events += 1
            if kind == _ARRIVE:
                assert job is not None
                queue.append(job)
                idle_events = 0
            elif kind == _END:
                assert job is not None
                worker = pool[index]
                worker.free += job.need
                del worker.running[job.id]
                mark(worker)
                idle_events = 0
            elif kind == _WAKE:
                worker = pool[index]
                if worker.wake_at == now:  # else superseded by a later look
                    worker.wake_at = math.inf
                    mark(worker)
            else:  # _LOOK: the delayed look itself
                worker = pool[index]
                worker.look_at = math.inf
                look(worker, now)
                dispatch(now)
        if idle_events > _MAX_IDLE_EVENTS:
            raise SimulationError(f"no job started or ended for {_MAX_IDLE_EVENTS} events")
        settle(now)

    if len(runs) != len(jobs):
        raise SimulationError(f"{len(jobs) - len(runs)} jobs never started")
    return Outcome(runs, give_backs, looks)
