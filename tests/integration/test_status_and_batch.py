"""Issue 5: jobq-status shows workers, queues, unschedulable and dead-lettered jobs; jobq-send
sends JSON-lines files and folders, checking every job before sending any."""

from __future__ import annotations

import json
import subprocess
import time

from harness import (
    BIN,
    FAST_LIVENESS,
    Cluster,
    OutcomeListener,
    declare_topology,
    job,
    publish_raw,
    settled_counts,
)

from jobq.client import topology


def jobq_send(broker_url: str, path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "jobq-send", "--broker", broker_url, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_json_lines_file_and_a_folder_are_sent_whole(broker_url: str, vhost: str, tmp_path):
    lines = tmp_path / "jobs.jsonl"
    docs = [job(["echo", str(i)]) for i in range(5)]
    lines.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.json").write_text(json.dumps(job(["true"])))

    sent = jobq_send(broker_url, lines)
    sent_folder = jobq_send(broker_url, folder)

    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.split() == [doc["id"] for doc in docs]
    assert "sent 5 jobs in" in sent.stderr
    assert sent_folder.returncode == 0 and len(sent_folder.stdout.split()) == 2
    assert settled_counts(vhost, topology.JOBS_QUEUE, (7, 0)) == (7, 0)


def test_one_bad_line_sends_nothing_and_names_the_line(broker_url: str, vhost: str, tmp_path):
    declare_topology(broker_url)
    lines = tmp_path / "jobs.jsonl"
    bad = {**job(["true"]), "resources": {"cpu": 0, "memory": "8m"}}
    lines.write_text(json.dumps(job(["true"])) + "\n" + json.dumps(bad) + "\n")

    result = jobq_send(broker_url, lines)

    assert result.returncode == 2 and result.stdout == ""
    assert f"{lines}:2: field 'resources.cpu'" in result.stderr
    assert settled_counts(vhost, topology.JOBS_QUEUE, (0, 0), timeout=1) == (0, 0)


def test_status_shows_workers_queues_unschedulable_and_dead_letters(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker(cpu=1, memory="64m", extra=FAST_LIVENESS)
    huge = job(["true"], memory="1g")
    assert (
        subprocess.run(
            [BIN / "jobq-send", "--broker", cluster.broker_url, "-"],
            input=json.dumps(huge),
            capture_output=True,
            text=True,
            timeout=60,
        ).returncode
        == 0
    )
    publish_raw(cluster.broker_url, b"not a job", message_id="garbage-9")
    worker.wait_for_log(f"job {huge['id']}: unschedulable", timeout=30)
    time.sleep(1)

    as_json = subprocess.run(
        [BIN / "jobq-status", "--broker", cluster.broker_url, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    as_text = subprocess.run(
        [BIN / "jobq-status", "--broker", cluster.broker_url],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert as_json.returncode == 0, as_json.stderr
    status = json.loads(as_json.stdout)
    (seen,) = status["workers"]
    assert seen["id"] == worker.id and seen["capacity"] == {"cpu": 1.0, "memory": 64 * 2**20}
    assert seen["last_seen_seconds_ago"] < 5
    assert status["queues"][topology.UNSCHEDULABLE_QUEUE] == 1
    assert [j["id"] for j in status["unschedulable"]] == [huge["id"]]
    assert "no live worker can fit it" in status["unschedulable"][0]["reason"]
    assert [j["id"] for j in status["dead_lettered"]] == ["garbage-9"]
    assert worker.id in as_text.stdout and "1 unschedulable, 1 dead-lettered" in as_text.stdout
