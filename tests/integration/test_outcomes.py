"""Must hold 4: each job's outcome is recorded on the worker and reported to the sender."""

from __future__ import annotations

import time
from pathlib import Path

from harness import Cluster, OutcomeListener, job, send

from jobq.client.outcome import parse_time


def test_wait_prints_output_and_exits_with_the_jobs_code(cluster: Cluster):
    worker = cluster.worker()
    doc = job(["sh", "-c", "echo out-line; echo err-line >&2; exit 7"])

    result = send(cluster.broker_url, doc, "--wait", "--timeout", "60")

    assert result.returncode == 7, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == doc["id"]
    assert "out-line" in lines and "err-line" in lines
    assert f"failed, exit code 7, on {worker.id}" in result.stderr


def test_outcome_has_exit_code_times_worker_and_a_log_file(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker()
    doc = job(["sh", "-c", "echo hello-log; sleep 1; exit 3"])
    assert send(cluster.broker_url, doc).returncode == 0

    (outcome,) = outcomes.wait_for(1, timeout=60)

    assert outcome.job_id == doc["id"]
    assert outcome.status.value == "failed"
    assert outcome.exit_code == 3
    assert outcome.oom_killed is False
    assert outcome.worker == worker.id
    started, finished = parse_time(outcome.started_at), parse_time(outcome.finished_at)
    assert 0.9 <= (finished - started).total_seconds() < 10
    assert outcome.submitted_at is not None and outcome.submitted_at <= started.timestamp() + 1
    log = Path(outcome.log_path)
    assert log.is_relative_to(worker.state_dir) and log.read_text() == "hello-log\n"


def test_a_job_over_its_memory_is_reported_oom_killed(cluster: Cluster, outcomes: OutcomeListener):
    cluster.worker()
    # dd holds a 64 MiB block in memory; the job may have 16 MiB.
    doc = job(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], memory="16m")

    result = send(cluster.broker_url, doc, "--wait", "--timeout", "60")
    (outcome,) = outcomes.wait_for(1, timeout=10)

    assert outcome.status.value == "oom_killed"
    assert outcome.oom_killed is True
    assert outcome.exit_code == 137
    assert result.returncode == 137
    assert "oom_killed" in result.stderr


def test_an_image_that_cannot_be_had_is_an_outcome_with_the_reason(cluster: Cluster):
    worker = cluster.worker()
    doc = job(["true"], image="jobq-test/no-such-image:1")

    result = send(cluster.broker_url, doc, "--wait", "--timeout", "60")

    assert result.returncode == 125
    assert "image_unavailable" in result.stderr
    assert "jobq-test/no-such-image:1" in result.stderr
    assert cluster.containers(worker) == []


def test_a_command_missing_from_the_image_is_a_start_failure(cluster: Cluster):
    worker = cluster.worker()
    doc = job(["/no/such/program"])

    result = send(cluster.broker_url, doc, "--wait", "--timeout", "60")

    assert result.returncode == 125
    assert "start_failed" in result.stderr and "/no/such/program" in result.stderr
    assert cluster.containers(worker) == []


def test_a_long_output_is_cut_in_the_outcome_but_whole_in_the_log(
    cluster: Cluster, outcomes: OutcomeListener
):
    cluster.worker()
    # 200,000 numbered lines: about 1.3 MB, well past the outcome's 64 KiB tail.
    doc = job(["seq", "1", "200000"])

    result = send(cluster.broker_url, doc, "--wait", "--timeout", "60")
    (outcome,) = outcomes.wait_for(1, timeout=10)

    assert result.returncode == 0
    assert result.stdout.endswith("199999\n200000\n")
    assert "showing the last" in result.stderr
    log = Path(outcome.log_path).read_text().splitlines()
    assert log[0] == "1" and log[-1] == "200000" and len(log) == 200000


def test_binary_output_is_kept_byte_for_byte(cluster: Cluster, outcomes: OutcomeListener):
    cluster.worker()
    doc = job(["printf", "\\377\\376\\000\\001end"])
    assert send(cluster.broker_url, doc).returncode == 0

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert Path(outcome.log_path).read_bytes() == b"\xff\xfe\x00\x01end"
    assert outcome.output_bytes == 7


def test_two_workers_on_one_engine_each_run_their_own_container(
    cluster: Cluster, outcomes: OutcomeListener
):
    # The same job id reaching two workers that share a Docker engine (sent
    # twice at once): each runs and reports its own container, never the other's.
    one, two = cluster.worker(name="one"), cluster.worker(name="two")
    doc = job(["sh", "-c", "sleep 1; echo done"])
    for _ in range(2):
        assert send(cluster.broker_url, doc).returncode == 0

    done = outcomes.wait_for(1, timeout=60)
    time.sleep(3)
    done = outcomes.outcomes
    assert {o.status.value for o in done} == {"succeeded"}
    assert {o.output for o in done} == {"done\n"}
    for worker in (one, two):
        assert "adopted container" not in worker.log_text()
        assert cluster.containers(worker) == []
