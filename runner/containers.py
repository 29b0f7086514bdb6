"""Everything jobq asks of Docker. The only module that imports the Docker SDK.

Docker's exceptions are turned into the three below, so callers decide by
meaning: the engine is away (wait and retry), the image cannot be had, or
Docker refused the container.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig

from jobq.client.errors import JobqError
from jobq.client.job import Job

LABEL_JOB_ID = "jobq.job-id"
LABEL_WORKER = "jobq.worker"
LABEL_JOB_NAME = "jobq.job-name"

# Seconds an ordinary API call may take; `wait` and log streams block for as
# long as the container runs and get no timeout.
API_TIMEOUT = 60


class EngineUnavailable(JobqError):
    """The Docker engine cannot be reached now; the container may still be running."""


class ImageUnavailable(JobqError):
    """The image is not on this host and could not be pulled."""


class StartRefused(JobqError):
    """Docker would not create or start the container (bad command, bad limits...)."""


def connect(timeout: int | None = API_TIMEOUT) -> docker.DockerClient:
    """A client for the engine named by $DOCKER_HOST, or the local socket."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(
            f"cannot reach the Docker engine ({exc}); is dockerd running, "
            "and may this user use /var/run/docker.sock?"
        ) from None


def container_name(job_id: str, worker_id: str) -> str:
    # One name per job and worker: a second create of the same run on this
    # engine fails with 409 Conflict instead of starting a duplicate, while
    # two workers sharing an engine never collide.
    return f"jobq-{worker_id}-{job_id}"


def ensure_image(client: docker.DockerClient, image: str) -> float | None:
    """Make sure ``image`` is on this host; return the pull time, or None if it was already here."""
    try:
        client.images.get(image)
        return None
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        if _refused(exc):
            raise ImageUnavailable(f"Docker refused the image {image!r}: {_explain(exc)}") from None
        raise EngineUnavailable(_explain(exc)) from None
    except requests.exceptions.RequestException as exc:
        raise EngineUnavailable(str(exc)) from None
    started = time.monotonic()
    try:
        client.images.pull(image)  # the SDK splits off the tag or digest itself
    except (docker.errors.APIError, docker.errors.ImageNotFound) as exc:
        raise ImageUnavailable(
            f"image {image!r} is not on this worker and pulling it failed: {_explain(exc)}"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise EngineUnavailable(str(exc)) from None
    return time.monotonic() - started


def create(client: docker.DockerClient, job: Job, worker_id: str) -> Any:
    """Create (not start) the job's container with exactly the limits and arguments it asked for.

    The job format has no way to ask for privileges, host mounts, host
    networking or capabilities, and nothing here adds them.
    """
    labels = {LABEL_JOB_ID: job.id, LABEL_WORKER: worker_id}
    # The local driver keeps output byte for byte (json-file replaces bytes
    # that are not UTF-8), and caps what Docker holds at 1 GiB per container;
    # the monitor copies all of it to the job's log file as it comes.
    log_config = LogConfig(
        type="local", config={"max-size": "100m", "max-file": "10", "compress": "false"}
    )
    if job.name:
        labels[LABEL_JOB_NAME] = job.name
    try:
        return client.containers.create(
            job.image,
            command=list(job.cmd) or None,
            environment=dict(job.env),
            name=container_name(job.id, worker_id),
            log_config=log_config,
            labels=labels,
            nano_cpus=job.resources.nano_cpus,
            mem_limit=job.resources.memory,
            memswap_limit=job.resources.memory,  # no swap beyond the memory limit
            privileged=False,
            security_opt=["no-new-privileges"],
            detach=True,
        )
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            found = find(client, job.id, worker_id)
            if found is not None:
                return found
        if _refused(exc):
            raise StartRefused(_explain(exc)) from None
        raise EngineUnavailable(_explain(exc)) from None
    except requests.exceptions.RequestException as exc:
        raise EngineUnavailable(str(exc)) from None


def start(container: Any) -> None:
    try:
        container.start()
    except docker.errors.APIError as exc:
        # A command that is not in the image fails here, as exit 127 would
        # in a shell; the container exists but never ran.
        raise StartRefused(_explain(exc)) from None
    except requests.exceptions.RequestException as exc:
        raise EngineUnavailable(str(exc)) from None


def find(client: docker.DockerClient, job_id: str, worker_id: str) -> Any | None:
    """This worker's container for ``job_id``, in any state, or None.

    Both labels: another worker on the same engine may run the same job id.
    """
    labels = [f"{LABEL_JOB_ID}={job_id}", f"{LABEL_WORKER}={worker_id}"]
    found = _call(client.containers.list, all=True, filters={"label": labels})
    return found[0] if found else None


def wait(container: Any) -> int:
    """Block until the container exits; its exit code."""
    result = _call(container.wait)
    return int(result["StatusCode"])


def state(container: Any) -> dict[str, Any]:
    _call(container.reload)
    return container.attrs["State"]


def saw_oom(client: docker.DockerClient, container: Any, since: float) -> bool:
    """Whether the engine reported an OOM kill in this container since ``since``.

    Docker's State.OOMKilled misses kills of processes other than the main
    one on some kernels; the `oom` event does not.
    """
    events = _call(
        client.events,
        since=int(since),
        until=int(time.time()) + 1,
        filters={"container": container.id, "event": "oom"},
        decode=True,
    )
    return any(True for _ in events)


def logs(container: Any, follow: bool = True) -> Iterator[bytes]:
    """Stream stdout and stderr, from the start, for as long as the container runs.

    Get ``container`` from a client made with ``connect(timeout=None)``: with a
    read timeout, a container silent for that long ends the stream early
    (docker-py #931).
    """
    return _call(container.logs, stdout=True, stderr=True, stream=True, follow=follow)


def stop(container: Any, grace_seconds: int = 10) -> None:
    """SIGTERM the container's main process, then SIGKILL after ``grace_seconds``."""
    try:
        container.stop(timeout=grace_seconds)
    except docker.errors.NotFound:
        pass
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(_explain(exc)) from None


def remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(_explain(exc)) from None


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        if isinstance(exc, docker.errors.NotFound):
            raise
        raise EngineUnavailable(_explain(exc)) from None


def _refused(exc: docker.errors.APIError) -> bool:
    """A 4xx: Docker understood and said no. Retrying the same request cannot help."""
    return exc.status_code is not None and 400 <= exc.status_code < 500


def _explain(exc: Exception) -> str:
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc)
