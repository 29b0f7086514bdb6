"""Issue 4 in the real system: no starvation, order and priority, and jobs no live worker fits."""

from __future__ import annotations

import json
import threading
import time

import pika
from harness import FAST_LIVENESS, Cluster, OutcomeListener, job, send, settled_counts

from jobq.client import topology
from jobq.client.outcome import parse_time


def test_a_large_job_starts_despite_a_steady_stream_of_small_ones(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker(cpu=2, memory="512m")
    first_smalls = [job(["sleep", "2"], cpu=0.5, memory="32m") for _ in range(4)]
    for doc in first_smalls:
        assert send(cluster.broker_url, doc).returncode == 0
    worker.wait_for_log("started container", timeout=30)
    big = job(["echo", "big"], cpu=2, memory="64m")
    assert send(cluster.broker_url, big).returncode == 0
    sent_big = time.time()

    stop = threading.Event()

    def stream_of_small_jobs() -> None:
        while not stop.is_set():
            send(cluster.broker_url, job(["sleep", "2"], cpu=0.5, memory="32m"))
            time.sleep(0.3)

    streamer = threading.Thread(target=stream_of_small_jobs, daemon=True)
    streamer.start()
    try:
        deadline = time.monotonic() + 60
        while big["id"] not in {o.job_id for o in outcomes.outcomes}:
            assert time.monotonic() < deadline, "the large job starved behind small ones"
            outcomes.connection.process_data_events(time_limit=0.5)
    finally:
        stop.set()
        streamer.join(10)
    (outcome,) = [o for o in outcomes.outcomes if o.job_id == big["id"]]
    # It waits only for the small jobs already running to end (2 s each).
    assert parse_time(outcome.started_at).timestamp() - sent_big < 15


def test_a_job_expected_to_end_before_the_head_fits_runs_in_its_room(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker(cpu=2, memory="512m")
    ahead = job(["sleep", "8"], cpu=1.5, name="ahead", expected_runtime="8s")
    assert send(cluster.broker_url, ahead).returncode == 0
    worker.wait_for_log(f"job {ahead['id']}: started container", timeout=30)
    # The wide job needs the whole worker, so it waits for "ahead": no room is left
    # beside it. "short" says it ends before then, "unsure" says nothing.
    wide = job(["true"], cpu=2, name="wide")
    short = job(["sleep", "1"], cpu=0.5, name="short", expected_runtime=2)
    unsure = job(["sleep", "1"], cpu=0.5, name="unsure")
    for doc in (wide, short, unsure):
        assert send(cluster.broker_url, doc).returncode == 0
        time.sleep(0.2)

    done = {o.name: o for o in outcomes.wait_for(4, timeout=90)}
    started = {name: parse_time(o.started_at) for name, o in done.items()}
    assert started["short"] < parse_time(done["ahead"].finished_at)
    assert started["ahead"] < started["short"] < started["wide"] < started["unsure"]


def test_a_job_running_past_its_estimate_is_logged_once(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker(cpu=1)
    late = job(["sleep", "4"], cpu=0.5, expected_runtime="1s")
    assert send(cluster.broker_url, late).returncode == 0

    outcomes.wait_for(1, timeout=60)
    line = f"job {late['id']}: still running past its expected_runtime (1 s)"
    assert worker.log_text().count(line) == 1


def test_priority_first_then_the_oldest(cluster: Cluster, outcomes: OutcomeListener):
    worker = cluster.worker(cpu=1)
    blocker = job(["sleep", "3"], cpu=1)
    assert send(cluster.broker_url, blocker).returncode == 0
    worker.wait_for_log(f"job {blocker['id']}: started container", timeout=30)
    old = job(["true"], cpu=1, name="old")
    young = job(["true"], cpu=1, name="young")
    urgent = job(["true"], cpu=1, name="urgent", priority=10)
    for doc in (old, young, urgent):
        assert send(cluster.broker_url, doc).returncode == 0
        time.sleep(0.2)

    done = outcomes.wait_for(4, timeout=60)
    order = [o.name for o in sorted(done, key=lambda o: parse_time(o.started_at)) if o.name]
    assert order == ["urgent", "old", "young"]


def test_a_job_no_live_worker_fits_waits_quietly_and_runs_when_one_joins(
    cluster: Cluster, vhost: str, outcomes: OutcomeListener
):
    small = cluster.worker(cpu=1, memory="64m", extra=FAST_LIVENESS, name="small")
    time.sleep(1.5)  # let its heartbeats reach the stream jobq-send reads
    huge = job(["echo", "finally"], cpu=0.5, memory="128m")

    sent = send(cluster.broker_url, huge)

    assert sent.returncode == 0
    assert "no live worker can fit job" in sent.stderr
    small.wait_for_log(f"job {huge['id']}: unschedulable", timeout=30)
    assert settled_counts(vhost, topology.UNSCHEDULABLE_QUEUE, (1, 0)) == (1, 0)
    assert small.metric("jobq_jobs_unschedulable_total") == 1
    events = history_events(cluster.broker_url, huge["id"])
    assert "unschedulable" in events
    # Parked, it costs the broker nothing: no worker keeps handing it around.
    handed_back = small.log_text().count(f"job {huge['id']}: handing it back")
    time.sleep(5)
    assert small.log_text().count(f"job {huge['id']}: handing it back") == handed_back
    assert small.log_text().count(f"job {huge['id']}: received") == 1

    big = cluster.worker(
        cpu=4, memory="512m", extra=FAST_LIVENESS + "overcommit = true\n", name="big"
    )

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert outcome.worker == big.id and outcome.output == "finally\n"


def history_events(broker_url: str, job_id: str) -> list[str]:
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=100)
    found: list[str] = []
    last = [time.monotonic()]

    def on_message(ch, method, _props, body) -> None:
        ch.basic_ack(method.delivery_tag)
        last[0] = time.monotonic()
        doc = json.loads(body)
        if doc.get("job_id") == job_id:
            found.append(doc["event"])

    channel.basic_consume(
        topology.HISTORY_STREAM, on_message, arguments={"x-stream-offset": "first"}
    )
    while time.monotonic() - last[0] < 1:
        connection.process_data_events(time_limit=0.2)
    connection.close()
    return found
