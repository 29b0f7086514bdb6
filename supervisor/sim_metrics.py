"""What jobq-sim reports for one policy, and the lower bound it is judged against."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from jobq.supervisor.sim_engine import Run, SimJob, WorkerSpec

# Bounded slowdown does not let a job of a few seconds count a short wait as a
# huge slowdown: runtimes under this count as this long (the usual 10 s).
SLOWDOWN_BOUND = 10.0


@dataclass(frozen=True)
class Metrics:
    jobs: int
    makespan: float  # first submit to last end, seconds
    lower_bound: float
    cpu_utilisation: float  # used cpu-seconds / (total cpu x makespan)
    memory_utilisation: float
    mean_wait: float  # wait = start - submit
    p95_wait: float
    max_wait: float
    mean_bounded_slowdown: float  # max(1, (wait + run) / max(run, 10))
    give_backs: int
    looks: int

    @property
    def ratio(self) -> float:
        """Makespan / lower bound: 1.0 would be a perfect schedule."""
        return self.makespan / self.lower_bound if self.lower_bound > 0 else math.nan


def lower_bound(jobs: Sequence[SimJob], workers: Sequence[WorkerSpec]) -> float:
    """No schedule ends sooner than the largest of: total CPU-time / total CPU,
    total memory-time / total memory, and the latest submit + runtime (from the
    first submit)."""
    if not jobs:
        return 0.0
    first = min(job.submit for job in jobs)
    total_cpu = sum(w.capacity.nano_cpus for w in workers)
    total_memory = sum(w.capacity.memory for w in workers)
    cpu_time = sum(job.need.nano_cpus * job.runtime for job in jobs)
    memory_time = sum(job.need.memory * job.runtime for job in jobs)
    latest = max(job.submit - first + job.runtime for job in jobs)
    return max(cpu_time / total_cpu, memory_time / total_memory, latest)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with ``fraction`` of them at or below it."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def measure(
    runs: Sequence[Run], workers: Sequence[WorkerSpec], give_backs: int = 0, looks: int = 0
) -> Metrics:
    jobs = [run.job for run in runs]
    if not runs:
        nan = math.nan
        return Metrics(0, 0.0, 0.0, nan, nan, nan, nan, nan, nan, give_backs, looks)
    first = min(job.submit for job in jobs)
    makespan = max(run.end for run in runs) - first
    total_cpu = sum(w.capacity.nano_cpus for w in workers)
    total_memory = sum(w.capacity.memory for w in workers)
    # Booked time counts as used, start overhead included: the worker could not
    # give it to anything else.
    cpu_used = sum(run.job.need.nano_cpus * (run.end - run.start) for run in runs)
    memory_used = sum(run.job.need.memory * (run.end - run.start) for run in runs)
    waits = [run.start - run.job.submit for run in runs]
    slowdowns = [
        max(1.0, (wait + run.job.runtime) / max(run.job.runtime, SLOWDOWN_BOUND))
        for wait, run in zip(waits, runs, strict=True)
    ]
    span = makespan if makespan > 0 else math.nan
    return Metrics(
        jobs=len(runs),
        makespan=makespan,
        lower_bound=lower_bound(jobs, workers),
        cpu_utilisation=cpu_used / (total_cpu * span),
        memory_utilisation=memory_used / (total_memory * span),
        mean_wait=sum(waits) / len(waits),
        p95_wait=percentile(waits, 0.95),
        max_wait=max(waits),
        mean_bounded_slowdown=sum(slowdowns) / len(slowdowns),
        give_backs=give_backs,
        looks=looks,
    )
