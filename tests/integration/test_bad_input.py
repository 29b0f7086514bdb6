"""Must hold 6: bad input gets a clear error and loses nothing."""

from __future__ import annotations

import json
import subprocess
import time

import pika
import pytest
from harness import (
    BIN,
    Cluster,
    OutcomeListener,
    declare_topology,
    job,
    publish_raw,
    send,
    settled_counts,
)

from jobq.client import topology

GOOD = {"image": "jobq/busybox:latest", "cmd": ["true"], "resources": {"cpu": 1, "memory": "64m"}}


def without(key: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != key}


def with_resources(**resources) -> dict:
    return {**GOOD, "resources": {**GOOD["resources"], **resources}}


@pytest.mark.parametrize(
    ("document", "names"),
    [
        ("this is not json", "not valid JSON"),
        ('["a", "list"]', "must be a JSON object"),
        (without("image"), "field 'image': missing"),
        ({**GOOD, "cmd": "echo hi"}, "field 'cmd': must be a list of strings"),
        ({**GOOD, "cmd": ["echo", 1]}, "field 'cmd': must be a list of strings"),
        ({**GOOD, "env": {"N": 1}}, "field 'env': value of 'N' must be a string"),
        (with_resources(cpu=0), "field 'resources.cpu'"),
        (with_resources(cpu=-1), "field 'resources.cpu'"),
        (with_resources(memory="lots"), "field 'resources.memory': cannot read 'lots'"),
        (with_resources(memory=0), "field 'resources.memory'"),
        (with_resources(memory="-5m"), "field 'resources.memory'"),
        ({**GOOD, "enviroment": {}}, "field 'enviroment': unknown field"),
        (without("resources"), "field 'resources': missing"),
    ],
)
def test_send_refuses_an_invalid_job_naming_the_field_and_publishes_nothing(
    broker_url: str, vhost: str, document, names: str
):
    declare_topology(broker_url)
    result = send(broker_url, document if isinstance(document, str) else json.dumps(document))

    assert result.returncode == 2
    assert names in result.stderr
    assert result.stdout == ""
    assert settled_counts(vhost, topology.JOBS_QUEUE, (0, 0), timeout=1) == (0, 0)


def test_send_names_a_missing_file(tmp_path):
    result = subprocess.run(
        [BIN / "jobq-send", str(tmp_path / "nope.json")], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "nope.json: field '(file)': cannot read it: No such file or directory" in result.stderr


def test_supervisor_dead_letters_an_invalid_message_with_its_reason_and_carries_on(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker()
    publish_raw(cluster.broker_url, b"\xff not json", message_id="garbage-1")
    publish_raw(
        cluster.broker_url, json.dumps({**GOOD, "cmd": "sh"}).encode(), message_id="bad-cmd"
    )
    assert send(cluster.broker_url, job(["true"])).returncode == 0

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert outcome.status.value == "succeeded"
    assert worker.process.poll() is None, "the supervisor died on an invalid message"

    connection = pika.BlockingConnection(pika.URLParameters(cluster.broker_url))
    channel = connection.channel()
    reasons = {}
    for _ in range(2):
        method, properties, _body = channel.basic_get(topology.DEAD_LETTER_QUEUE, auto_ack=True)
        assert method is not None, "an invalid message was dropped, not dead-lettered"
        reasons[properties.message_id] = properties.headers[topology.REASON_HEADER]
    connection.close()
    assert "not UTF-8 text" in reasons["garbage-1"]
    assert "field 'cmd'" in reasons["bad-cmd"]


@pytest.mark.parametrize(
    ("config", "names"),
    [
        ("[worker]\ncpu = 100000\n", "[worker] cpu: 100000 is more than this host's"),
        ('[worker]\nmemory = "100t"\n', "[worker] memory: 100TiB is more than this host's"),
        ("[worker]\ncpu = -1\n", "[worker] cpu: must be a finite number greater than 0"),
        ("[worker]\ncpus = 2\n", "[worker] cpus: unknown key"),
        ("[wrker]\n", "unknown section [wrker]"),
        ("[metrics]\nport = 70000\n", "[metrics] port: must be a whole number"),
        ("[worker\n", "not valid TOML"),
    ],
)
def test_supervisor_refuses_an_invalid_config_naming_the_key(tmp_path, config: str, names: str):
    path = tmp_path / "worker.toml"
    path.write_text(config)
    result = subprocess.run(
        [BIN / "jobq-supervisor", "-c", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert str(path) in result.stderr and names in result.stderr


def test_supervisor_takes_more_than_the_host_when_the_config_says_so(cluster: Cluster):
    worker = cluster.worker(cpu=100000, memory="100t", extra="overcommit = true")
    assert "capacity cpu=1e+05" in worker.log_text() or "cpu=100000" in worker.log_text()
    assert worker.process.poll() is None
    time.sleep(0.5)


def test_a_message_whose_reason_would_be_huge_is_still_dead_lettered(
    cluster: Cluster, outcomes: OutcomeListener
):
    # Echoing a 300 kB bad value into the reason header once outgrew an AMQP
    # frame: the broker dropped the connection and the message looped for ever.
    worker = cluster.worker()
    body = {**GOOD, "cmd": ["x" * 300_000, 1]}
    publish_raw(cluster.broker_url, json.dumps(body).encode(), message_id="huge-reason")
    assert send(cluster.broker_url, job(["true"])).returncode == 0

    outcomes.wait_for(1, timeout=60)
    connection = pika.BlockingConnection(pika.URLParameters(cluster.broker_url))
    method, properties, _body = connection.channel().basic_get(
        topology.DEAD_LETTER_QUEUE, auto_ack=True
    )
    connection.close()
    assert method is not None and properties.message_id == "huge-reason"
    assert len(properties.headers[topology.REASON_HEADER]) < 2100
    assert "lost the broker" not in worker.log_text()


def test_a_different_job_under_a_running_id_is_dead_lettered(
    cluster: Cluster, outcomes: OutcomeListener
):
    cluster.worker()
    first = job(["sh", "-c", "sleep 2; echo FIRST"])
    second = {**first, "cmd": ["echo", "SECOND"]}
    assert send(cluster.broker_url, first).returncode == 0
    time.sleep(1)
    assert send(cluster.broker_url, second).returncode == 0

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert outcome.output == "FIRST\n"
    connection = pika.BlockingConnection(pika.URLParameters(cluster.broker_url))
    method, properties, _body = connection.channel().basic_get(
        topology.DEAD_LETTER_QUEUE, auto_ack=True
    )
    connection.close()
    assert method is not None
    assert "already taken by a different job" in properties.headers[topology.REASON_HEADER]
