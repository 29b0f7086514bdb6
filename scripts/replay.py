#!/usr/bin/env python3
"""Replay part of the shared trace through the real system, and compare with jobq-sim.

    .venv/bin/python scripts/replay.py --jobs 300 --target-seconds 600

It takes a slice of the HPC2N trace, scales it to this 2-core machine (the
trace's 240 CPUs become three workers of 2, 1.2 and 0.8 CPUs: a factor of
1/60 on CPU and memory) and compresses time so the whole replay lasts a few
minutes. Each job becomes a container that sleeps its run time, and says it
expects to run its trace's requested time (SWF field 9), compressed the
same way: the expected_runtime placement backfills on. Then:

1. the simulator predicts the run, with the same jobs, workers and window,
   the consumer's 0.2 s decision tick, and the time a job is booked before
   its container runs and after it exits (--start-overhead, --end-overhead,
   0.6 s each; docs/placement.md compares them with what runs measured);
2. three real supervisors (one RabbitMQ vhost of its own, real Docker) run it,
   jobs sent at their compressed submit times;
3. the same metrics are computed from what the system recorded, and printed
   next to the prediction with the difference. The target is within 15%.
   As in the simulator, a job's wait ends when its worker books it (the
   "started" event in the jobq.history stream) and its run lasts until the
   worker releases it (the "outcome" event). The overheads this run had are
   printed too, with the prediction they would have given.

The workload is saved as JSON lines (--save), so `jobq-sim` can replay it again.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import docker

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
import pika  # noqa: E402
from harness import Cluster, OutcomeListener, rabbitmqctl  # noqa: E402

from jobq.client import topology  # noqa: E402
from jobq.client.job import Job  # noqa: E402
from jobq.client.outcome import parse_time  # noqa: E402
from jobq.client.publish import Publisher  # noqa: E402
from jobq.client.units import NANO, Resources  # noqa: E402
from jobq.supervisor.placement import place  # noqa: E402
from jobq.supervisor.sim_engine import Run, Settings, SimJob, WorkerSpec, simulate  # noqa: E402
from jobq.supervisor.sim_metrics import Metrics, measure  # noqa: E402
from jobq.supervisor.sim_workload import read_swf  # noqa: E402

TRACE = REPO.parent / "shared" / "traces" / "HPC2N-2002-2.1-cln.slice20k.swf"
SCALE = 1 / 60  # trace CPUs and memory to this machine's
MIB = 1024**2
# The trace's 240 CPUs (512 MB each) as 120 + 72 + 48, scaled.
WORKERS = [
    WorkerSpec("big", Resources(round(120 * SCALE * NANO), round(120 * 512 * MIB * SCALE))),
    WorkerSpec("medium", Resources(round(72 * SCALE * NANO), round(72 * 512 * MIB * SCALE))),
    WorkerSpec("small", Resources(round(48 * SCALE * NANO), round(48 * 512 * MIB * SCALE))),
]
MIN_CPU = round(0.01 * NANO)
MIN_MEMORY = 6 * MIB
MIN_RUNTIME = 1.0  # seconds: shorter sleeps drown in the container start-up
TOLERANCE = 0.15
# Booked-but-not-running time per job in the model (docs/placement.md compares it with
# what the run measured, printed as "hindsight").
START_OVERHEAD = 0.6
END_OVERHEAD = 0.6
COMPARED = (
    "makespan",
    "mean_wait",
    "cpu_utilisation",
    "memory_utilisation",
    "mean_bounded_slowdown",
)


def scaled_workload(count: int, skip: int, target_seconds: float, window: int) -> list[SimJob]:
    with TRACE.open() as lines:
        trace = read_swf(lines, source=TRACE.name).jobs[skip:]
    jobs = []
    for job in trace:
        need = Resources(
            max(MIN_CPU, round(job.need.nano_cpus * SCALE)),
            max(MIN_MEMORY, round(job.need.memory * SCALE)),
        )
        if any(need.fits_in(w.capacity) for w in WORKERS):
            jobs.append(replace(job, need=need))
        if len(jobs) == count:
            break
    first = min(job.submit for job in jobs)
    jobs = [replace(job, submit=job.submit - first) for job in jobs]
    # Compress time so the predicted makespan is about the target.
    plain = measure(simulate(jobs, WORKERS, place, Settings(window=window)).runs, WORKERS)
    factor = target_seconds / plain.makespan
    return [
        replace(
            job,
            submit=job.submit * factor,
            runtime=max(MIN_RUNTIME, job.runtime * factor),
            estimate=max(MIN_RUNTIME, job.estimate * factor),  # inf stays inf
        )
        for job in jobs
    ]


DECISION_LATENCY = 0.2  # the consumer's tick


def predict(jobs: list[SimJob], start: float, end: float, window: int) -> Metrics:
    settings = Settings(
        window=window, start_overhead=start, end_overhead=end, decision_latency=DECISION_LATENCY
    )
    result = simulate(jobs, WORKERS, place, settings)
    return measure(result.runs, WORKERS, result.give_backs, result.looks)


@dataclass
class Measured:
    metrics: Metrics
    failed: int
    start_overhead: float  # mean seconds from booking to the container running
    end_overhead: float  # mean seconds from the container's exit to the release
    spread: str  # how those times are spread, for people


def booking_times(url: str, count: int) -> dict[str, dict[str, float]]:
    """When each job was booked ("started") and released ("outcome"), from jobq.history."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1000)
    times: dict[str, dict[str, float]] = {}

    def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
        ch.basic_ack(method.delivery_tag)
        doc = json.loads(body)
        if doc.get("event") in ("started", "outcome"):
            times.setdefault(doc["job_id"], {}).setdefault(doc["event"], doc["at"])

    channel.basic_consume(
        topology.HISTORY_STREAM, on_message, arguments={"x-stream-offset": "first"}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(len(t) == 2 for t in times.values()) < count:
        connection.process_data_events(time_limit=0.5)
    connection.close()
    return times


def run_for_real(jobs: list[SimJob], window: int) -> Measured:
    """Send the jobs at their times to three real supervisors; measure what they record."""
    client = docker.from_env()
    vhost = f"jobq-replay-{int(time.time())}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    url = f"amqp://guest:guest@localhost:5672/{vhost}"
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, client)
        listener = OutcomeListener(url)
        try:
            names = {}
            for spec in WORKERS:
                worker = cluster.worker(
                    cpu=spec.capacity.nano_cpus / NANO,
                    memory=str(spec.capacity.memory),
                    extra=f"[broker]\nprefetch = {window}\n",
                    name=spec.name,
                )
                names[worker.id] = WORKERS.index(spec)
            time.sleep(2)
            started = time.time()
            sender = threading.Thread(target=send_on_time, args=(url, jobs, started))
            sender.start()
            outcomes = listener.wait_for(len(jobs), timeout=jobs[-1].submit + 3600)
            sender.join()
            booked = booking_times(url, len(jobs))
        finally:
            listener.close()
            cluster.cleanup()
            rabbitmqctl("delete_vhost", vhost)
    by_id = {job.id: job for job in jobs}
    runs = []
    before, after = [], []
    for outcome in outcomes:
        job = by_id[outcome.job_id]
        times = booked[outcome.job_id]
        runs.append(
            Run(
                job=replace(job, submit=outcome.submitted_at - started),
                worker=names[outcome.worker],
                start=times["started"] - started,
                end=times["outcome"] - started,
            )
        )
        if outcome.started_at and outcome.finished_at:
            before.append(parse_time(outcome.started_at).timestamp() - times["started"])
            after.append(times["outcome"] - parse_time(outcome.finished_at).timestamp())
    failed = sum(1 for o in outcomes if o.status.value != "succeeded")
    return Measured(
        measure(runs, WORKERS),
        failed,
        statistics.fmean(before),
        statistics.fmean(after),
        f"before a run: {spread(before)}; after: {spread(after)}",
    )


def spread(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"median {statistics.median(ordered):.2f}s, p95 {p95:.2f}s, max {ordered[-1]:.2f}s, "
        f"min {ordered[0]:.2f}s"
    )


def send_on_time(url: str, jobs: list[SimJob], started: float) -> None:
    publisher = Publisher(url)
    try:
        for job in sorted(jobs, key=lambda j: j.submit):
            delay = started + job.submit - time.time()
            if delay > 0:
                time.sleep(delay)
            publisher.publish(
                Job(
                    id=job.id,
                    image="jobq/busybox:latest",
                    resources=job.need,
                    cmd=("sleep", f"{job.runtime:.3f}"),
                    submitted_at=time.time(),
                    priority=job.priority,
                    expected_runtime=job.estimate if math.isfinite(job.estimate) else None,
                )
            )
    finally:
        publisher.close()


def save(jobs: list[SimJob], path: Path) -> None:
    with path.open("w") as out:
        for job in jobs:
            out.write(
                json.dumps(
                    {
                        "id": job.id,
                        "submit": round(job.submit, 3),
                        "runtime": round(job.runtime, 3),
                        "cpu": job.need.nano_cpus / NANO,
                        "memory": job.need.memory,
                        **(
                            {"expected_runtime": round(job.estimate, 3)}
                            if math.isfinite(job.estimate)
                            else {}
                        ),
                    }
                )
                + "\n"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--skip", type=int, default=0, help="trace jobs to skip first")
    parser.add_argument(
        "--target-seconds",
        type=float,
        default=600,
        help="the predicted makespan the time compression aims at",
    )
    parser.add_argument(
        "--start-overhead",
        type=float,
        default=START_OVERHEAD,
        help="seconds from booking a job to its container running, as measured",
    )
    parser.add_argument(
        "--end-overhead",
        type=float,
        default=END_OVERHEAD,
        help="seconds from a container's exit to its job's release, as measured",
    )
    parser.add_argument("--window", type=int, default=20, help="prefetch of every worker")
    parser.add_argument("--save", type=Path, default=REPO / "var" / "replay.jsonl")
    args = parser.parse_args()

    jobs = scaled_workload(args.jobs, args.skip, args.target_seconds, args.window)
    args.save.parent.mkdir(parents=True, exist_ok=True)
    save(jobs, args.save)
    predicted = predict(jobs, args.start_overhead, args.end_overhead, args.window)
    print(
        f"{len(jobs)} jobs saved to {args.save}; predicted makespan {predicted.makespan:.0f}s;"
        " running them for real...",
        flush=True,
    )
    real_run = run_for_real(jobs, args.window)
    measured, failed = real_run.metrics, real_run.failed
    print(
        f"\noverheads: modelled {args.start_overhead:.2f}s before and {args.end_overhead:.2f}s "
        f"after each run; this run had {real_run.start_overhead:.2f}s and "
        f"{real_run.end_overhead:.2f}s (means; {real_run.spread})"
    )
    hindsight = predict(jobs, real_run.start_overhead, real_run.end_overhead, args.window)
    print(f"\n{'metric':<24}{'simulated':>12}{'measured':>12}{'difference':>12}{'hindsight':>12}")
    worst = 0.0
    for name in (*COMPARED, "p95_wait", "max_wait", "ratio"):
        sim, real = getattr(predicted, name), getattr(measured, name)
        diff = (real - sim) / sim if sim else float("nan")
        if name in COMPARED:
            worst = max(worst, abs(diff))
        flag = "" if name not in COMPARED or abs(diff) <= TOLERANCE else "  <-- over 15%"
        late = getattr(hindsight, name)
        print(f"{name:<24}{sim:>12.3f}{real:>12.3f}{diff:>+11.1%} {late:>11.3f}{flag}")
    print(
        f"\njobs not succeeded: {failed}; largest difference on the compared metrics: "
        f"{worst:.1%} (target {TOLERANCE:.0%})"
    )
    return 0 if worst <= TOLERANCE and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
