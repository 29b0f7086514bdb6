"""The head of the line is kept, not handed back, past the hold limit (docs/placement.md).

A worker with a hold limit of 2 s runs a 1-CPU blocker; a 2-CPU job waits at
the head of its line. Past the hold limit it is claimed and its message
acknowledged, so it keeps its place here instead of going to the back of the
queue; it must still run exactly once, through a supervisor killed outright,
and go back to the queue when its worker drains.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

from harness import (
    BIN,
    Cluster,
    OutcomeListener,
    Worker,
    containers_created,
    job,
    send,
    settled_counts,
)

from jobq.client import topology
from jobq.client.outcome import parse_time

# Overdue at once, so kept at the hold limit.
SHORT_HOLD = "[placement]\nhold_limit = 2\noverdue_after = 0\n"


def keep_a_head(cluster: Cluster, blocker_seconds: int) -> tuple[Worker, dict, dict]:
    worker = cluster.worker(cpu=2, memory="256m", extra=SHORT_HOLD)
    blocker = job(["sleep", str(blocker_seconds)], cpu=1, memory="32m", name="blocker")
    assert send(cluster.broker_url, blocker).returncode == 0
    worker.wait_for_log(f"job {blocker['id']}: started container", timeout=30)
    head = job(["echo", "head"], cpu=2, memory="32m", name="head")
    assert send(cluster.broker_url, head).returncode == 0
    worker.wait_for_log(f"job {head['id']}: kept at the head of the line", timeout=30)
    return worker, blocker, head


def test_the_head_is_kept_past_the_hold_limit_and_runs_once_room_frees(
    cluster: Cluster, vhost: str, outcomes: OutcomeListener, docker_client
):
    since = time.time()
    worker, blocker, head = keep_a_head(cluster, blocker_seconds=8)

    # Claimed and acknowledged: nothing of it is left on the jobs queue, held or not.
    assert settled_counts(vhost, topology.JOBS_QUEUE, (0, 0)) == (0, 0)
    time.sleep(1)  # a heartbeat that lists it
    status = subprocess.run(
        [BIN / "jobq-status", "--broker", cluster.broker_url, "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    (shown,) = json.loads(status.stdout)["workers"]
    assert (shown["running_jobs"], shown["kept_jobs"]) == (1, 1)

    done = {o.job_id: o for o in outcomes.wait_for(2, timeout=60)}
    assert done[head["id"]].exit_code == 0
    assert done[head["id"]].output == "head\n"
    assert parse_time(done[head["id"]].started_at) >= parse_time(done[blocker["id"]].finished_at)
    assert f"job {head['id']}: handing it back" not in worker.log_text()
    assert containers_created(docker_client, head["id"], since) == 1


def test_a_kept_job_survives_its_supervisor_being_killed(
    cluster: Cluster, outcomes: OutcomeListener, docker_client
):
    since = time.time()
    worker, blocker, head = keep_a_head(cluster, blocker_seconds=8)

    worker.kill_all()  # SIGKILL: the blocker's container runs on; the kept job is on disk
    worker.start(cluster.broker_url)

    done = {o.job_id: o for o in outcomes.wait_for(2, timeout=60)}
    assert done[blocker["id"]].exit_code == 0
    assert done[head["id"]].exit_code == 0
    assert done[head["id"]].attempt == 1  # never requeued: its claim stood throughout
    assert containers_created(docker_client, head["id"], since) == 1
    assert containers_created(docker_client, blocker["id"], since) == 1


def test_a_draining_worker_hands_its_kept_job_to_another(
    cluster: Cluster, outcomes: OutcomeListener
):
    draining, _blocker, head = keep_a_head(cluster, blocker_seconds=15)
    other = cluster.worker(cpu=2, memory="256m", name="other")
    time.sleep(6)  # a heartbeat from `draining` that lists the job (as kept) reaches `other`

    draining.process.send_signal(signal.SIGUSR1)

    draining.wait_for_log(f"job {head['id']}: kept job handed back to jobq.jobs", timeout=20)
    (outcome,) = outcomes.wait_for(1, timeout=30)[:1]
    assert outcome.job_id == head["id"]
    assert outcome.worker == other.id  # long before the blocker's 15 s are up
    assert draining.process.wait(40) == 0  # drained once the blocker ended
