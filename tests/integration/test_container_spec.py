"""Must hold 2 and 7: each container gets exactly what its job asked for, and nothing more."""

from __future__ import annotations

import time

from harness import Cluster, OutcomeListener, job, send

from jobq.runner.containers import LABEL_JOB_ID, LABEL_JOB_NAME, LABEL_WORKER

TRICKY_ARGS = [
    "a b",
    "'single'",
    '"double"',
    "$HOME",
    "${PATH}",
    "line1\nline2",
    "back\\slash",
    "*",
    "; rm -rf /",
    "",
    "tab\there",
]


def test_arguments_arrive_intact_without_a_shell(cluster: Cluster, outcomes: OutcomeListener):
    cluster.worker()
    doc = job(["printf", "[%s]\\n", *TRICKY_ARGS])

    sent = send(cluster.broker_url, doc)
    (outcome,) = outcomes.wait_for(1, timeout=60)

    assert sent.returncode == 0, sent.stderr
    assert outcome.status.value == "succeeded"
    assert outcome.output == "".join(f"[{arg}]\n" for arg in TRICKY_ARGS)


def test_container_has_the_jobs_limits_env_and_labels_and_no_privileges(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker()
    env = {"GREETING": "hi there", "WEIRD": "a $X 'q' \"dq\" `cmd`\nsecond line", "EMPTY": ""}
    doc = job(["sh", "-c", "env; sleep 3"], cpu=0.75, memory="96m", env=env, name="spec check")
    assert send(cluster.broker_url, doc).returncode == 0

    container = wait_for_container(cluster, worker, doc["id"])
    host = container.attrs["HostConfig"]
    config = container.attrs["Config"]
    assert host["NanoCpus"] == 750_000_000
    assert host["Memory"] == 96 * 1024 * 1024
    assert host["MemorySwap"] == 96 * 1024 * 1024, "swap must equal memory (no extra swap)"
    assert config["Labels"][LABEL_JOB_ID] == doc["id"]
    assert config["Labels"][LABEL_WORKER] == worker.id
    assert config["Labels"][LABEL_JOB_NAME] == "spec check"
    assert config["Cmd"] == ["sh", "-c", "env; sleep 3"]
    for name, value in env.items():
        assert f"{name}={value}" in config["Env"]
    assert host["Privileged"] is False
    assert not host.get("CapAdd")
    assert not host.get("Binds") and not container.attrs.get("Mounts")
    assert host["NetworkMode"] in ("default", "bridge")
    assert host["PidMode"] == "" and host["IpcMode"] in ("private", "shareable", "")
    assert "no-new-privileges" in (host.get("SecurityOpt") or [])

    (outcome,) = outcomes.wait_for(1, timeout=60)
    assert "WEIRD=a $X 'q' \"dq\" `cmd`\nsecond line\n" in outcome.output
    assert "GREETING=hi there\n" in outcome.output
    assert cluster.containers(worker) == [], "the finished container was not removed"


def wait_for_container(cluster: Cluster, worker, job_id: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for container in cluster.containers(worker):
            if container.labels.get(LABEL_JOB_ID) == job_id and container.status == "running":
                return container
        time.sleep(0.1)
    raise AssertionError(f"no running container for job {job_id} in {timeout}s")


def test_job_format_cannot_ask_for_privileges(cluster: Cluster):
    for field, value in (
        ("privileged", True),
        ("volumes", ["/:/host"]),
        ("network_mode", "host"),
        ("cap_add", ["SYS_ADMIN"]),
    ):
        doc = job(["true"], **{field: value})
        result = send(cluster.broker_url, doc)
        assert result.returncode == 2
        assert f"field '{field}': unknown field" in result.stderr
