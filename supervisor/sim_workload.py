"""Workloads for jobq-sim: the Standard Workload Format and JSON lines.

SWF (Parallel Workloads Archive) maps to a jobq job so (docs/placement.md):

- cpu     = allocated processors (field 5), else requested processors (field 8);
- memory  = requested memory per processor (field 10, KB read as KiB) x cpu, else
            ``default_memory_per_cpu`` x cpu when field 10 is -1. Field 7 (used
            memory) is ignored: in many logs it merely copies field 10;
- runtime = run time (field 4);
- estimate (``expected_runtime``) = requested time (field 9), the user's own
            guess at submit, if given; a policy may see it, never the runtime;
- submit  = submit time (field 2); the caller rebases it to the first job;
- id      = job number (field 1), zero-padded so ids sort in file order.

A job with no runtime (<= 0 or -1), no processors or no submit time is skipped
and counted: a real queue could not run it either.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from jobq.client.job import read_expected_runtime
from jobq.client.units import NANO, Resources, parse_cpu, parse_memory
from jobq.supervisor.sim_engine import SimJob

KIB = 1024
MIB = 1024**2
# Seth, the HPC2N cluster, had 1 GB per 2-CPU node: 512 MB per processor.
DEFAULT_MEMORY_PER_CPU = 512 * MIB


@dataclass
class Workload:
    jobs: list[SimJob]
    source: str
    read: int = 0  # job lines seen
    no_runtime: int = 0  # skipped: run time <= 0 or unknown
    no_cpu: int = 0  # skipped: processors unknown
    no_submit: int = 0  # skipped: submit time unknown
    memory_defaulted: int = 0  # field 10 was -1: default per-CPU memory used

    @property
    def skipped(self) -> int:
        return self.no_runtime + self.no_cpu + self.no_submit


def read_swf(
    lines: Iterable[str], source: str = "swf", default_memory_per_cpu: int = DEFAULT_MEMORY_PER_CPU
) -> Workload:
    """Read an SWF log: ``;`` comment lines, then 18 whitespace-separated fields a line."""
    workload = Workload([], source)
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith(";"):
            continue
        fields = text.split()
        if len(fields) < 10:
            raise ValueError(
                f"{source}:{number}: an SWF job line has 18 fields, found {len(fields)}"
            )
        try:
            job_number = int(fields[0])
            submit, runtime = float(fields[1]), float(fields[3])
            allocated, requested = int(float(fields[4])), int(float(fields[7]))
            memory_kib = float(fields[9])
            requested_time = float(fields[8])
        except ValueError:
            raise ValueError(f"{source}:{number}: not an SWF job line: {text[:80]!r}") from None
        workload.read += 1
        cpus = allocated if allocated > 0 else requested
        if runtime <= 0:
            workload.no_runtime += 1
            continue
        if cpus <= 0:
            workload.no_cpu += 1
            continue
        if submit < 0:
            workload.no_submit += 1
            continue
        if memory_kib > 0:
            per_cpu = round(memory_kib * KIB)
        else:
            per_cpu = default_memory_per_cpu
            workload.memory_defaulted += 1
        need = Resources(cpus * NANO, per_cpu * cpus)
        estimate = requested_time if requested_time > 0 else math.inf
        workload.jobs.append(SimJob(f"{job_number:09d}", submit, runtime, need, 0, estimate))
    return workload


def read_jsonl(lines: Iterable[str], source: str = "jsonl") -> Workload:
    """One JSON object a line: submit (s), runtime (s), cpu, memory; optional priority,
    expected_runtime and id.

    ``memory`` is bytes or a string such as "512m" (binary units, as jobq reads them);
    ``expected_runtime`` is what a job file's says (seconds or "2h"), seen by policies.
    """
    workload = Workload([], source)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{where}: expected an object such as {_EXAMPLE}")
        missing = [key for key in ("submit", "runtime", "cpu", "memory") if key not in doc]
        if missing:
            raise ValueError(
                f"{where}: missing {', '.join(missing)}; a job line is like {_EXAMPLE}"
            )
        try:
            submit, runtime = _seconds(doc["submit"], "submit"), _seconds(doc["runtime"], "runtime")
            need = Resources(parse_cpu(doc["cpu"]), parse_memory(doc["memory"]))
            priority = doc.get("priority", 0)
            if isinstance(priority, bool) or not isinstance(priority, int):
                raise ValueError(f"priority must be a whole number, got {priority!r}")
            estimate = math.inf
            if "expected_runtime" in doc:
                estimate = _expected_runtime(doc["expected_runtime"])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        workload.read += 1
        if runtime <= 0:
            workload.no_runtime += 1
            continue
        job_id = str(doc.get("id", f"{number:09d}"))
        workload.jobs.append(SimJob(job_id, submit, runtime, need, priority, estimate))
    return workload


_EXAMPLE = '{"submit": 0, "runtime": 60, "cpu": 2, "memory": "1g", "priority": 0}'


def _expected_runtime(value: object) -> float:
    try:
        return read_expected_runtime(value)
    except ValueError as exc:
        raise ValueError(f"expected_runtime {exc}") from None


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    return float(value)


ESTIMATES = ("given", "none", "runtime")


def arrange(
    jobs: list[SimJob],
    all_at_once: bool = False,
    time_scale: float = 1.0,
    limit: int | None = None,
    estimates: str = "given",
    estimate_scale: float = 1.0,
) -> list[SimJob]:
    """Order by submit time, keep the first ``limit``, rebase to 0, then scale or flatten.

    ``time_scale`` multiplies every submit time after rebasing: 0.5 makes jobs
    arrive twice as fast (inter-arrival times halved), so the load doubles.
    ``estimates`` is which expected_runtime each job gives: the one it was read
    with ("given"), none, or its true runtime (estimates as good as they get);
    then times ``estimate_scale`` (0.1: users who think their jobs ten times
    shorter than they are). Neither changes a runtime.
    """
    if estimates not in ESTIMATES:
        raise ValueError(f"estimates must be one of {', '.join(ESTIMATES)}, got {estimates!r}")
    ordered = sorted(jobs, key=lambda job: job.submit)[:limit]
    if not ordered:
        return []
    first = ordered[0].submit
    return [
        replace(
            job,
            submit=0.0 if all_at_once else (job.submit - first) * time_scale,
            estimate=_estimate(job, estimates) * estimate_scale,
        )
        for job in ordered
    ]


def _estimate(job: SimJob, estimates: str) -> float:
    if estimates == "none":
        return math.inf
    return job.runtime if estimates == "runtime" else job.estimate


def load(path: str, default_memory_per_cpu: int = DEFAULT_MEMORY_PER_CPU) -> Workload:
    """Read ``path`` as JSON lines if it ends in .jsonl/.json/.ndjson, else as SWF."""
    with open(path, encoding="utf-8") as stream:
        if path.endswith((".jsonl", ".json", ".ndjson")):
            return read_jsonl(stream, path)
        return read_swf(stream, path, default_memory_per_cpu)
