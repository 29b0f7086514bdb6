"""jobq-sim: replay a workload against workers of given sizes, under each placement policy.

The policies are the pure functions of supervisor/placement.py; the simulator
(sim_engine.py) gives them exactly what the consumer gives ``place()``, at the
moments the consumer would call it. docs/placement.md explains the model and
the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

from jobq.client.units import NANO, Resources, format_memory, parse_duration, parse_memory
from jobq.supervisor.placement import Rules, greedy, head_of_line, place
from jobq.supervisor.sim_engine import Policy, Settings, SimJob, WorkerSpec, simulate
from jobq.supervisor.sim_metrics import Metrics, lower_bound, measure
from jobq.supervisor.sim_workload import (
    DEFAULT_MEMORY_PER_CPU,
    ESTIMATES,
    MIB,
    Workload,
    arrange,
    load,
)


@dataclass(frozen=True)
class Contender:
    name: str
    policy: Policy
    window: int | None  # None: the --prefetch window
    baseline: bool


CONTENDERS = {
    "ours": Contender("ours", place, None, False),
    "greedy": Contender("greedy", greedy, None, True),
    # Take the next message and wait until it fits: a window of one.
    "head-of-line": Contender("head-of-line", head_of_line, 1, True),
}
DEFAULT_WORKERS = (96, 64, 48, 32)  # CPUs: 240, as the HPC2N trace's cluster

HELP = """\
Replay a workload against workers of given sizes under three placement
policies, through the same simulator, and compare them:

  ours          supervisor/placement.place(), what the consumer runs
  greedy        start whatever fits, first fit in line order, same window
  head-of-line  take the next job and wait until it fits (a window of one)

The simulator has the real system's limits: one FIFO queue; each worker holds
at most --prefetch delivered-but-not-started jobs, filled from the queue's
head round-robin; a job given back goes to the back of the queue; a worker
decides when something changes for it (a delivery, one of its jobs ending, a
give-back timer). Policies see CPU, memory, submit time and priority, never a
runtime; ours also sees each job's expected_runtime, if it gave one (an SWF
log's requested time, field 9), as the consumer does. --estimates none
replays as if no job gave one; --estimates runtime and --estimate-scale ask
what better or worse estimates would do.

Give-back rules: a job a worker can never fit goes back after
--give-back-after (all three). Ours also gives back any job held --hold-limit,
as the consumer must to stay clear of RabbitMQ's consumer_timeout, except a
head of the line sent --overdue-after ago or more, which it keeps (claims)
and clears room for; the baselines, as head-of-line and greedy are usually
defined, hold a job until it fits, unless --baseline-hold-limit says
otherwise. docs/placement.md shows both.

Reported per policy: makespan (first submit to last end), makespan / lower
bound, CPU and memory utilisation, mean / p95 / max wait (start - submit),
mean bounded slowdown max(1, (wait + run) / max(run, 10 s)), give-backs.
The lower bound is the largest of total CPU-time / total CPU, total
memory-time / total memory, and the latest submit + runtime.

Workloads: a Standard Workload Format log (.swf; see docs/placement.md for how
its fields map to cpu, memory and runtime) or JSON lines (.jsonl), one job a
line: {"submit": 0, "runtime": 60, "cpu": 2, "memory": "1g", "priority": 0,
"expected_runtime": "2m"} (priority and expected_runtime optional).
Jobs larger than every worker can never run: they are counted and left out.

examples:
  jobq-sim trace.swf --all-at-once
  jobq-sim trace.swf --time-scale 0.7 --worker 64:32g --worker 32:16g
  jobq-sim jobs.jsonl --policy ours --policy greedy --json
"""


def parse_worker(text: str) -> Resources:
    """``CPU:MEMORY``, e.g. ``64:32g`` (memory in binary units, as jobq reads them)."""
    cpu, sep, memory = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"give a worker as CPU:MEMORY, e.g. 64:32g; got {text!r}")
    try:
        cpus = float(cpu)
        if not math.isfinite(cpus) or cpus <= 0:
            raise ValueError(f"CPUs must be a number above 0, got {cpu!r}")
        return Resources(round(cpus * NANO), parse_memory(memory))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _seconds(text: str) -> float:
    value = float(text)  # accepts "inf"
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def _duration(text: str) -> float:
    """A duration as jobq reads one (90, 30m, 150h, 6d), 0, or inf: never."""
    if text.strip() == "inf":
        return math.inf
    try:
        return parse_duration(text, allow_zero=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _at_least_zero(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text!r}")
    return value


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def _memory(text: str) -> int:
    try:
        return parse_memory(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobq-sim",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("workload", help="an .swf log, or .jsonl job lines")
    parser.add_argument(
        "--worker",
        action="append",
        type=parse_worker,
        metavar="CPU:MEMORY",
        help="a worker, e.g. 64:32g; repeat for more. Default: four of different "
        "sizes, 96, 64, 48 and 32 CPUs with 512MiB per CPU (the trace's 240 CPUs)",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=20,
        metavar="N",
        help="jobs a worker holds besides those it runs: its window (default 20, as the "
        "consumer). head-of-line always uses 1",
    )
    arrivals = parser.add_mutually_exclusive_group()
    arrivals.add_argument(
        "--all-at-once", action="store_true", help="every job submitted at time 0, in file order"
    )
    arrivals.add_argument(
        "--time-scale",
        type=_scale,
        default=1.0,
        metavar="X",
        help="multiply submit times (rebased to the first job) by X: 0.5 makes jobs "
        "arrive twice as fast, doubling the load. Default 1",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N jobs (by submit)")
    parser.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="shuffle, with this seed, the order of jobs submitted at the same time "
        "(with --all-at-once: the whole queue), to check a result is not an accident "
        "of the file's order. Default: file order",
    )
    parser.add_argument(
        "--estimates",
        choices=ESTIMATES,
        default="given",
        help="the expected_runtime each job gives ours: what the workload says (SWF: "
        "requested time; default), none (ours then backfills by room alone), or its true "
        "runtime (the best estimates could be). The baselines never use them",
    )
    parser.add_argument(
        "--estimate-scale",
        type=_scale,
        default=1.0,
        metavar="X",
        help="multiply every estimate by X, e.g. 0.1 for users who think their jobs ten "
        "times shorter than they are. Default 1",
    )
    parser.add_argument(
        "--policy",
        action="append",
        choices=sorted(CONTENDERS),
        help="run only these policies (repeat). Default: all three",
    )
    parser.add_argument(
        "--give-back-after",
        type=_seconds,
        default=Rules().give_back_after,
        metavar="S",
        help="a job a worker can never fit goes back after S seconds (default %(default)s)",
    )
    parser.add_argument(
        "--hold-limit",
        type=_seconds,
        default=Rules().hold_limit,
        metavar="S",
        help="ours gives back any job held S seconds without starting it, as the consumer "
        "does to stay clear of RabbitMQ's consumer_timeout, but for an overdue head, "
        "which it keeps (default %(default)g)",
    )
    parser.add_argument(
        "--overdue-after",
        type=_duration,
        default=Rules().overdue_after,
        metavar="T",
        help="ours protects the head of a line once it was sent T ago: seconds, or with "
        "a unit, e.g. 150h or 6d; inf never (default %(default)gs, as [placement] "
        "overdue_after)",
    )
    parser.add_argument(
        "--baseline-hold-limit",
        type=_seconds,
        default=math.inf,
        metavar="S",
        help="the same for the baselines. Default inf: as head-of-line and greedy are "
        "usually defined, they hold a job until it fits. Give the --hold-limit value "
        "to compare like with like",
    )
    parser.add_argument(
        "--decision-latency",
        type=_at_least_zero,
        default=0.0,
        metavar="S",
        help="a worker decides S seconds after something changes (the consumer polls "
        "every 0.2 s). Default 0",
    )
    parser.add_argument(
        "--start-overhead",
        type=_at_least_zero,
        default=0.0,
        metavar="S",
        help="seconds a started job holds its CPU and memory before its runtime begins "
        "(creating and starting its container). Default 0",
    )
    parser.add_argument(
        "--end-overhead",
        type=_at_least_zero,
        default=0.0,
        metavar="S",
        help="seconds a job goes on holding its CPU and memory after its runtime ends "
        "(recording the outcome, removing the container). Default 0",
    )
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=256,
        metavar="N",
        help="running jobs per worker at most, as [worker] max_jobs (default 256)",
    )
    parser.add_argument(
        "--default-memory-per-cpu",
        type=_memory,
        default=DEFAULT_MEMORY_PER_CPU,
        metavar="SIZE",
        help="SWF jobs with no memory request (field 10 = -1) get this much per CPU "
        "(default 512m: the trace's 1 GB per 2-CPU node)",
    )
    parser.add_argument(
        "--unit",
        choices=("s", "m", "h", "d", "auto"),
        default="auto",
        help="unit of the times in the table (default: hours, or minutes or seconds for "
        "short workloads)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="policies simulated at once, one process each (default: one per CPU)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    return parser


@dataclass(frozen=True)
class Result:
    name: str
    window: int
    hold_limit: float
    metrics: Metrics
    seconds: float  # wall time the simulation took


def prepare(
    workload: Workload,
    workers: Sequence[WorkerSpec],
    all_at_once: bool = False,
    time_scale: float = 1.0,
    limit: int | None = None,
    seed: int | None = None,
    estimates: str = "given",
    estimate_scale: float = 1.0,
) -> tuple[list[SimJob], list[SimJob]]:
    """The jobs to replay, and those no worker can ever run (left out)."""
    jobs = arrange(workload.jobs, all_at_once, time_scale, limit, estimates, estimate_scale)
    if seed is not None:
        rng = random.Random(seed)
        keyed = [(job.submit, rng.random(), job) for job in jobs]
        keyed.sort(key=lambda item: (item[0], item[1]))
        jobs = [job for _, _, job in keyed]
    runnable = [job for job in jobs if any(job.need.fits_in(w.capacity) for w in workers)]
    too_big = [job for job in jobs if not any(job.need.fits_in(w.capacity) for w in workers)]
    return runnable, too_big


def run_one(
    contender: Contender, jobs: Sequence[SimJob], workers: Sequence[WorkerSpec], settings: Settings
) -> Result:
    started = time.perf_counter()
    outcome = simulate(jobs, workers, contender.policy, settings)
    metrics = measure(outcome.runs, workers, outcome.give_backs, outcome.looks)
    return Result(
        contender.name,
        settings.window,
        settings.rules.hold_limit,
        metrics,
        time.perf_counter() - started,
    )


def settings_for(contender: Contender, args: argparse.Namespace) -> Settings:
    hold = args.baseline_hold_limit if contender.baseline else args.hold_limit
    return Settings(
        window=contender.window or args.prefetch,
        rules=Rules(
            give_back_after=args.give_back_after,
            hold_limit=hold,
            overdue_after=args.overdue_after,
        ),
        decision_latency=args.decision_latency,
        start_overhead=args.start_overhead,
        end_overhead=args.end_overhead,
        max_jobs=args.max_jobs,
    )


def run_all(
    contenders: Sequence[Contender],
    jobs: Sequence[SimJob],
    workers: Sequence[WorkerSpec],
    args: argparse.Namespace,
) -> list[Result]:
    processes = args.jobs or min(len(contenders), os.cpu_count() or 1)
    tasks = [(c, jobs, workers, settings_for(c, args)) for c in contenders]
    if processes <= 1 or len(tasks) == 1:
        return [run_one(*task) for task in tasks]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        futures = [pool.submit(run_one, *task) for task in tasks]
        return [future.result() for future in futures]


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def pick_unit(seconds: float) -> str:
    """Hours for anything long (days make waits hard to compare), else minutes or seconds."""
    for unit in ("h", "m"):
        if seconds >= 10 * _UNITS[unit]:
            return unit
    return "s"


def table(results: Sequence[Result], unit: str) -> str:
    scale = _UNITS[unit]
    header = (
        "policy",
        "window",
        "makespan",
        "/bound",
        "cpu use",
        "mem use",
        "mean wait",
        "p95 wait",
        "max wait",
        "mean bsld",
        "give-backs",
        "sim time",
    )
    rows = [header]
    for r in results:
        m = r.metrics
        rows.append(
            (
                r.name,
                str(r.window),
                f"{m.makespan / scale:.1f}{unit}",
                f"{m.ratio:.3f}",
                f"{m.cpu_utilisation:.1%}",
                f"{m.memory_utilisation:.1%}",
                f"{m.mean_wait / scale:.2f}{unit}",
                f"{m.p95_wait / scale:.1f}{unit}",
                f"{m.max_wait / scale:.1f}{unit}",
                f"{m.mean_bounded_slowdown:.1f}",
                str(m.give_backs),
                f"{r.seconds:.1f}s",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def describe_worker(capacity: Resources) -> str:
    return f"{capacity.cpu:g}cpu/{format_memory(capacity.memory)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.prefetch < 1 or args.max_jobs < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--prefetch, --max-jobs and --limit must be at least 1")
    capacities = args.worker or [Resources(c * NANO, c * 512 * MIB) for c in DEFAULT_WORKERS]
    workers = [WorkerSpec(f"w{i + 1}-{describe_worker(c)}", c) for i, c in enumerate(capacities)]
    try:
        workload = load(args.workload, args.default_memory_per_cpu)
    except (OSError, ValueError) as exc:
        print(f"jobq-sim: {exc}", file=sys.stderr)
        return 2
    jobs, too_big = prepare(
        workload,
        workers,
        args.all_at_once,
        args.time_scale,
        args.limit,
        args.seed,
        estimates=args.estimates,
        estimate_scale=args.estimate_scale,
    )
    if not jobs:
        print(f"jobq-sim: {args.workload}: no job to replay", file=sys.stderr)
        return 2
    names = args.policy or list(CONTENDERS)
    contenders = [CONTENDERS[name] for name in dict.fromkeys(names)]
    results = run_all(contenders, jobs, workers, args)
    bound = lower_bound(jobs, workers)
    arrivals = "all at once" if args.all_at_once else f"time scale {args.time_scale:g}"
    if args.json:
        doc = {
            "workload": {
                "path": args.workload,
                "read": workload.read,
                "skipped_no_runtime": workload.no_runtime,
                "skipped_no_cpu": workload.no_cpu,
                "skipped_no_submit": workload.no_submit,
                "memory_defaulted": workload.memory_defaulted,
                "unschedulable": len(too_big),
                "replayed": len(jobs),
                "arrivals": arrivals,
                "estimates": args.estimates,
                "estimate_scale": args.estimate_scale,
                "with_estimates": sum(math.isfinite(j.estimate) for j in jobs),
            },
            "workers": [{"cpu": w.capacity.cpu, "memory": w.capacity.memory} for w in workers],
            "prefetch": args.prefetch,
            "lower_bound": bound,
            "policies": {
                r.name: {
                    **asdict(r.metrics),
                    "ratio": r.metrics.ratio,
                    "window": r.window,
                    "hold_limit": r.hold_limit if math.isfinite(r.hold_limit) else None,
                    "seconds": r.seconds,
                }
                for r in results
            },
        }
        print(json.dumps(doc, indent=2, allow_nan=False, default=_no_inf))
        return 0
    unit = pick_unit(bound) if args.unit == "auto" else args.unit
    total = sum((w.capacity for w in workers), Resources(0, 0))
    print(
        f"{args.workload}: {workload.read} jobs read; skipped {workload.skipped} "
        f"(no runtime {workload.no_runtime}, no CPUs {workload.no_cpu}, no submit time "
        f"{workload.no_submit}); {workload.memory_defaulted} without a memory request "
        f"given {format_memory(args.default_memory_per_cpu)}/CPU"
    )
    if too_big:
        shown = ", ".join(f"{j.id} ({j.need})" for j in too_big[:3])
        print(
            f"unschedulable, left out: {len(too_big)} jobs larger than every worker: "
            f"{shown}{', ...' if len(too_big) > 3 else ''}"
        )
    estimated = sum(math.isfinite(j.estimate) for j in jobs)
    scaled = f" x {args.estimate_scale:g}" if args.estimate_scale != 1 else ""
    print(
        f"replayed {len(jobs)} jobs (expected_runtime: {args.estimates}{scaled}, "
        f"{estimated} with one), "
        f"arrivals {arrivals}, on {len(workers)} workers "
        f"({', '.join(describe_worker(w.capacity) for w in workers)}; "
        f"{describe_worker(total)} in all); prefetch {args.prefetch}"
    )
    holds = ", ".join(
        f"{r.name} {f'{r.hold_limit:g}s' if math.isfinite(r.hold_limit) else 'none'}"
        for r in results
    )
    print(
        f"hold limit: {holds}; ours' heads overdue after {args.overdue_after:g}s; "
        f"lower bound {bound / _UNITS[unit]:.1f}{unit}"
    )
    print()
    print(table(results, unit))
    return 0


def _no_inf(value: object) -> object:
    raise TypeError(f"cannot encode {value!r}")


if __name__ == "__main__":
    sys.exit(main())
