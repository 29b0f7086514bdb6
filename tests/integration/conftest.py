"""Fixtures for tests on a real RabbitMQ and a real Docker engine.

Each test gets its own RabbitMQ virtual host, so queues never leak between
tests, and its own worker ids, so containers are told apart by label. Outside
CI a missing service skips these tests; under CI (CI=true) it fails them.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pika
import pytest
from harness import IMAGE, REPO, Cluster, OutcomeListener, rabbitmqctl, unavailable


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except Exception:
        unavailable("the Docker engine")
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run([REPO / "scripts" / "build-image.sh", IMAGE], check=True)
    return client


@pytest.fixture
def vhost() -> Iterator[str]:
    try:
        pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@localhost:5672/%2F")).close()
    except Exception:
        unavailable("RabbitMQ on localhost:5672")
    name = f"jobq-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    rabbitmqctl("delete_vhost", name)


@pytest.fixture
def broker_url(vhost: str) -> str:
    return f"amqp://guest:guest@localhost:5672/{vhost}"


@pytest.fixture
def cluster(
    tmp_path: Path,
    broker_url: str,
    docker_client: docker.DockerClient,
    request: pytest.FixtureRequest,
) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, broker_url, docker_client)
    yield cluster
    cluster.cleanup()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for worker in cluster.workers:
            print(f"---- {worker.id} log ----\n{worker.log_text()[-4000:]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def outcomes(broker_url: str) -> Iterator[OutcomeListener]:
    listener = OutcomeListener(broker_url)
    yield listener
    listener.close()
