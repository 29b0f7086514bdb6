#!/usr/bin/env python3
"""Does /metrics stay fast and small while thousands of short jobs come and go?

    .venv/bin/python scripts/bench_metrics.py --jobs 5000

One supervisor (2 CPUs) runs many `true` containers, each with its own
monitor process. Every --every jobs it times a scrape of /metrics and notes
the size of the answer, the supervisor's memory and open files, and the
files in any prometheus-client multiprocess folder (jobq sets none: only the
parent process touches metrics, so there is nothing to pile up). It prints a
table and exits 1 if the last scrape is more than twice as slow as the first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import docker
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from harness import Cluster, OutcomeListener, rabbitmqctl  # noqa: E402

from jobq.client.job import Job  # noqa: E402
from jobq.client.publish import Publisher  # noqa: E402
from jobq.client.units import Resources  # noqa: E402


def scrape(port: int) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--every", type=int, default=500)
    args = parser.parse_args()
    vhost = f"jobq-bench-metrics-{os.getpid()}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    url = f"amqp://guest:guest@localhost:5672/{vhost}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), url, docker.from_env())
        listener = OutcomeListener(url)
        try:
            worker = cluster.worker(cpu=2, memory="1g", extra="max_jobs = 16\n")
            parent = psutil.Process(worker.process.pid)
            publisher = Publisher(url)
            for index in range(args.jobs):
                publisher.publish(
                    Job(
                        id=f"m{index:06d}",
                        image="jobq/busybox:latest",
                        resources=Resources(10_000_000, 6 * 1024 * 1024),
                        cmd=("true",),
                        submitted_at=time.time(),
                    )
                )
            publisher.close()
            began = time.monotonic()
            for done in range(args.every, args.jobs + 1, args.every):
                listener.wait_for(done, timeout=3600)
                seconds, size = scrape(worker.metrics_port)
                multiproc = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
                files = len(os.listdir(multiproc)) if multiproc else 0
                rows.append(
                    {
                        "jobs_done": done,
                        "elapsed_s": round(time.monotonic() - began, 1),
                        "scrape_ms": round(seconds * 1000, 2),
                        "metrics_bytes": size,
                        "parent_rss_mib": round(parent.memory_info().rss / 2**20, 1),
                        "parent_open_files": parent.num_fds(),
                        "multiprocess_files": files,
                        "children_now": len(parent.children()),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
        finally:
            listener.close()
            cluster.cleanup()
            rabbitmqctl("delete_vhost", vhost)
    print(f"\n{'jobs':>6} {'scrape ms':>10} {'bytes':>8} {'RSS MiB':>8} {'fds':>5} {'files':>6}")
    for row in rows:
        print(
            f"{row['jobs_done']:>6} {row['scrape_ms']:>10} {row['metrics_bytes']:>8} "
            f"{row['parent_rss_mib']:>8} {row['parent_open_files']:>5} "
            f"{row['multiprocess_files']:>6}"
        )
    return 0 if rows and rows[-1]["scrape_ms"] <= 2 * max(rows[0]["scrape_ms"], 5) else 1


if __name__ == "__main__":
    sys.exit(main())
