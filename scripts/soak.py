#!/usr/bin/env python3
"""Soak: many short jobs through several supervisors while a chaos loop breaks things.

    .venv/bin/python scripts/soak.py --jobs 200 --workers 3

It runs on a private RabbitMQ node (the shared one is not touched) and real
Docker. While the jobs run it kills (SIGKILL, all processes) and stops
(SIGTERM) supervisors and starts them again, restarts the broker, and cuts
every connection, at random. Then it waits for the rest and reports:

- lost: jobs sent (confirmed) that never got an outcome;
- duplicate runs: jobs Docker created more than one container for
  (counted from Docker's live event stream);
- duplicate reports: jobs with more than one outcome.

A duplicate is expected only where a worker was cut off for longer than its
worker timeout; the report says how many requeues the sweepers made.
It exits 1 if any job was lost.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster, Worker, history_outcomes, job, send
from private_broker import PrivateBroker

from jobq.runner.containers import LABEL_JOB_ID

LIVENESS = "heartbeat_interval = 1\nworker_timeout = 15\n"


class CreationCounter(threading.Thread):
    """Counts container creations per job from Docker's live event stream."""

    def __init__(self, client: docker.DockerClient) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.created: Counter[str] = Counter()
        self.stream = client.events(decode=True, filters={"event": "create", "label": LABEL_JOB_ID})

    def run(self) -> None:
        for event in self.stream:
            job_id = event.get("Actor", {}).get("Attributes", {}).get(LABEL_JOB_ID)
            if job_id:
                self.created[job_id] += 1

    def stop(self) -> None:
        self.stream.close()


def chaos(
    rng: random.Random, broker: PrivateBroker, workers: list[Worker], stop_at: float, log: list[str]
) -> None:
    while time.monotonic() < stop_at:
        time.sleep(rng.uniform(6, 15))
        action = rng.choice(["kill", "term", "broker", "cut"])
        started = time.monotonic()
        if action in ("kill", "term"):
            worker = rng.choice(workers)
            if action == "kill":
                worker.kill_all()
            else:
                worker.stop(signal.SIGTERM)
            down = rng.uniform(1, 6)
            time.sleep(down)
            worker.start(broker.url, wait_connected=False)
            log.append(f"{action} {worker.id}, down {down:.1f}s")
        elif action == "broker":
            broker.stop()
            down = rng.uniform(2, 6)
            time.sleep(down)
            broker.start()
            log.append(f"broker restart, down {time.monotonic() - started:.1f}s")
        else:
            broker.close_connections()
            log.append("cut all connections")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--chaos-seconds", type=float, default=180)
    parser.add_argument("--drain-seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    client = docker.from_env()
    counter = CreationCounter(client)
    counter.start()
    began = time.monotonic()
    with PrivateBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), broker.url, client)
        try:
            sizes = [(1, "512m"), (1.5, "768m"), (2, "1g")]
            workers = [
                cluster.worker(cpu=cpu, memory=memory, extra=LIVENESS, name=f"soak{i}")
                for i, (cpu, memory) in enumerate(sizes[: args.workers])
            ]
            chaos_log: list[str] = []
            chaos_thread = threading.Thread(
                target=chaos,
                daemon=True,
                args=(rng, broker, workers, time.monotonic() + args.chaos_seconds, chaos_log),
            )
            chaos_thread.start()
            sent = send_all(broker, rng, args.jobs)
            chaos_thread.join()
            outcomes = wait_for(broker.url, sent, args.drain_seconds)
            requeues = sum(w.log_text().count("requeued as attempt") for w in workers)
            for worker in workers:
                worker.stop()
        finally:
            cluster.cleanup()
    counter.stop()
    reports = Counter(o.job_id for o in outcomes)
    lost = sorted(set(sent) - set(reports))
    duplicate_runs = {j: n for j, n in counter.created.items() if j in sent and n > 1}
    duplicate_reports = {j: n for j, n in reports.items() if n > 1}
    summary = {
        "jobs_sent": len(sent),
        "outcomes": len(outcomes),
        "lost": len(lost),
        "duplicate_runs": len(duplicate_runs),
        "duplicate_reports": len(duplicate_reports),
        "requeues_by_sweepers": requeues,
        "statuses": dict(Counter(o.status.value for o in outcomes)),
        "chaos_events": chaos_log,
        "seconds": round(time.monotonic() - began, 1),
    }
    print(json.dumps(summary, indent=2))
    if lost:
        print("lost:", " ".join(lost), file=sys.stderr)
    if duplicate_runs:
        print("duplicate runs:", duplicate_runs, file=sys.stderr)
    return 1 if lost else 0


def send_all(broker: PrivateBroker, rng: random.Random, count: int) -> set[str]:
    """Send the jobs, spread over time; a send refused while the broker is down is retried."""
    sent: set[str] = set()
    for index in range(count):
        doc = job(
            ["sh", "-c", f"echo job {index}; sleep {rng.uniform(0.5, 3):.1f}"],
            cpu=rng.choice([0.25, 0.5, 1]),
            memory=rng.choice(["32m", "64m", "128m"]),
        )
        while send(broker.url, doc).returncode != 0:
            time.sleep(1)  # the broker is down: "not sent" is safe to retry
        sent.add(doc["id"])
        time.sleep(rng.uniform(0, 0.3))
    return sent


def wait_for(url: str, sent: set[str], timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while True:
        try:
            outcomes = history_outcomes(url, idle=1)
        except Exception:  # the broker may still be starting
            outcomes = []
        if {o.job_id for o in outcomes} >= sent or time.monotonic() > deadline:
            return outcomes
        time.sleep(3)


if __name__ == "__main__":
    sys.exit(main())
