"""Issue 5: jobq-send --follow streams a job's output as it runs, with an id prefix; it also
works for a job sent earlier (by id) and for one that has already ended."""

from __future__ import annotations

import json
import subprocess
import time

from harness import BIN, Cluster, OutcomeListener, job, send


def follow_id(broker_url: str, job_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "jobq-send", "--broker", broker_url, "--follow-id", job_id, "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_follow_prints_lines_as_they_come_with_the_job_prefix(cluster: Cluster):
    cluster.worker()
    doc = job(["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 1; done; exit 4"])
    process = subprocess.Popen(
        [BIN / "jobq-send", "--broker", cluster.broker_url, "--follow", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdin.write(json.dumps(doc))
    process.stdin.close()
    first_line_at = None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "line 1" in line and first_line_at is None:
            first_line_at = time.monotonic()
    ended_at = time.monotonic()
    assert process.wait(30) == 4
    prefix = f"[{doc['id'][:8]}] "
    assert lines == [
        f"{doc['id']}\n",
        f"{prefix}line 1\n",
        f"{prefix}line 2\n",
        f"{prefix}line 3\n",
    ]
    assert ended_at - first_line_at > 1.5, "the output came all at once, at the end"
    assert "failed, exit code 4" in process.stderr.read()


def test_follow_id_of_a_job_sent_earlier_shows_all_its_output(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker()
    doc = job(["sh", "-c", "echo early; sleep 3; echo late"])
    assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log(f"job {doc['id']}: started container", timeout=30)
    time.sleep(1.5)

    result = follow_id(cluster.broker_url, doc["id"])

    prefix = f"[{doc['id'][:8]}] "
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{prefix}early\n{prefix}late\n"


def test_follow_id_of_an_ended_job_shows_its_output_and_outcome(
    cluster: Cluster, outcomes: OutcomeListener
):
    cluster.worker()
    doc = job(["sh", "-c", "echo done already; exit 3"])
    assert send(cluster.broker_url, doc).returncode == 0
    outcomes.wait_for(1, timeout=60)

    result = follow_id(cluster.broker_url, doc["id"])

    assert result.returncode == 3
    assert result.stdout == f"[{doc['id'][:8]}] done already\n"
    assert "failed, exit code 3" in result.stderr
