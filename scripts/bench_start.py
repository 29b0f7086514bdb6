#!/usr/bin/env python3
"""How long Docker takes to start a container, by the container's CPU limit.

    .venv/bin/python scripts/bench_start.py

A container's start-up (runc's init, then the program's exec) runs inside its
own CPU quota, so a job with a tiny `cpu` starts slowly: this is most of the
booking-to-start time scripts/replay.py measures, whose jobs get 1/60 of a
trace processor each (docs/placement.md). Each figure is the median of
--repeat starts of `sleep 1` in jobq/busybox:latest on an otherwise idle
engine, with the limits jobq sets (NanoCpus only: memory limits cost nothing
measurable here).
"""

from __future__ import annotations

import argparse
import statistics
import time

import docker

LABEL = "jobq.bench-start"


def start_seconds(client: docker.DockerClient, image: str, cpu: float | None) -> float:
    limits = {"nano_cpus": round(cpu * 1e9)} if cpu else {}
    container = client.containers.create(image, ["sleep", "1"], labels={LABEL: "1"}, **limits)
    try:
        started = time.monotonic()
        container.start()
        return time.monotonic() - started
    finally:
        container.wait()
        container.remove(force=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="jobq/busybox:latest")
    parser.add_argument("--repeat", type=int, default=5, help="starts per CPU limit (default 5)")
    parser.add_argument(
        "--cpu",
        type=float,
        action="append",
        help="CPU limits to try (repeat); default 0.01 0.0167 0.05 0.1 0.5 1 and none",
    )
    args = parser.parse_args()
    limits = args.cpu or [0.01, 1 / 60, 0.05, 0.1, 0.5, 1.0, 0.0]
    client = docker.from_env()
    print(f"{'cpu limit':>10}  {'start median':>12}  {'max':>6}")
    for cpu in limits:
        times = [start_seconds(client, args.image, cpu) for _ in range(args.repeat)]
        shown = f"{cpu:g}" if cpu else "none"
        print(f"{shown:>10}  {statistics.median(times):>11.3f}s  {max(times):>5.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
