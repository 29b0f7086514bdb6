"""One container's life, in its own process: start it or adopt it, wait, record how it ended.

The monitor is the only process that waits on a container. It writes the
outcome to the run store before it removes the container, so a crash at any
point leaves either a container to adopt or an outcome to report, never
neither. Killing a monitor never touches its container: the supervisor starts
another monitor, which adopts the container by its job-id label.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from jobq.client.job import Job
from jobq.client.outcome import Outcome, Status, parse_time

from . import containers
from .containers import EngineUnavailable, ImageUnavailable, StartRefused
from .runs import RunStore

log = logging.getLogger("jobq.monitor")

REASONS = {
    Status.OOM_KILLED: "killed for exceeding its memory limit",
    Status.CANCELLED: "cancelled while it ran; its container was stopped",
}
EXIT_OOM_SIGNAL = 137  # 128 + SIGKILL, which is how the kernel's OOM killer ends a process
ENGINE_RETRY_SECONDS = (1, 2, 5, 10, 30)
LOG_DRAIN_SECONDS = 10


def monitor(job_id: str, worker_id: str, store: RunStore) -> None:
    """Run (or adopt) the job's container to its end and record the outcome."""
    job = store.job(job_id)
    if store.outcome(job_id) is not None:
        return
    client = _connect_patiently(job)
    container, pull_seconds = _start_or_adopt(client, job, worker_id, store)
    if container is None:
        return
    copier = LogCopier(job.id, store.log_path(job.id))
    copier.start(container.id)
    exit_code = _wait_patiently(client, container, job)
    # Copy the whole log once more from Docker: a follow stream can end before
    # the log driver has handed over all a fast container wrote (seen with the
    # local driver), and the engine may have gone away meanwhile.
    copier.finish(container.id)
    state = containers.state(container)
    outcome = _outcome(
        job,
        worker_id,
        store,
        state,
        exit_code,
        oom_event=exit_code == EXIT_OOM_SIGNAL
        and containers.saw_oom(client, container, _epoch(state["StartedAt"])),
        pull_seconds=pull_seconds,
    )
    store.record_outcome(outcome)
    containers.remove(container)
    log.info("%s", outcome.summary())


def classify(
    exit_code: int | None, oom_flag: bool, oom_event: bool, cancelled: bool = False
) -> tuple[Status, bool]:
    """Status and OOM verdict from what Docker reports.

    Docker's OOMKilled flag alone is not trusted (moby #38352): exit 137 with
    an `oom` event for the container is an OOM kill even when the flag is false.
    A cancelled job that ended any other way than by success is cancelled.
    """
    oom_killed = oom_flag or (exit_code == EXIT_OOM_SIGNAL and oom_event)
    if exit_code == 0:
        return Status.SUCCEEDED, oom_killed
    if cancelled:
        return Status.CANCELLED, oom_killed
    if oom_killed:
        return Status.OOM_KILLED, True
    return Status.FAILED, False


def _start_or_adopt(
    client: Any, job: Job, worker_id: str, store: RunStore
) -> tuple[Any | None, float | None]:
    container = containers.find(client, job.id, worker_id)
    if container is not None:
        if containers.state(container)["Status"] == "created":
            containers.start(container)
        log.info("job %s: adopted container %s", job.id, container.short_id)
        return container, None
    container = None
    try:
        pull_seconds = containers.ensure_image(client, job.image)
        container = containers.create(client, job, worker_id)
        containers.start(container)
    except ImageUnavailable as exc:
        _record_no_run(job, worker_id, store, Status.IMAGE_UNAVAILABLE, str(exc))
        return None, None
    except StartRefused as exc:
        if container is not None:
            containers.remove(container)
        _record_no_run(job, worker_id, store, Status.START_FAILED, str(exc))
        return None, None
    log.info(
        "job %s: started container %s (%s, %s)",
        job.id,
        container.short_id,
        job.image,
        job.resources,
    )
    return container, pull_seconds


def _wait_patiently(client: Any, container: Any, job: Job) -> int:
    """Wait for the exit, riding out engine restarts; the exit code."""
    for attempt in range(1_000_000):
        try:
            containers.wait(container)
            return int(containers.state(container)["ExitCode"])
        except EngineUnavailable as exc:
            delay = ENGINE_RETRY_SECONDS[min(attempt, len(ENGINE_RETRY_SECONDS) - 1)]
            log.warning("job %s: lost the Docker engine (%s); retrying in %ss", job.id, exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _connect_patiently(job: Job) -> Any:
    for attempt in range(1_000_000):
        try:
            return containers.connect()
        except EngineUnavailable as exc:
            delay = ENGINE_RETRY_SECONDS[min(attempt, len(ENGINE_RETRY_SECONDS) - 1)]
            log.warning("job %s: %s; retrying in %ss", job.id, exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _outcome(
    job: Job,
    worker_id: str,
    store: RunStore,
    state: dict[str, Any],
    exit_code: int,
    oom_event: bool,
    pull_seconds: float | None,
) -> Outcome:
    status, oom_killed = classify(
        exit_code, bool(state.get("OOMKilled")), oom_event, cancelled=store.cancelled(job.id)
    )
    output, size = store.output_tail(job.id)
    return Outcome(
        job_id=job.id,
        name=job.name,
        worker=worker_id,
        status=status,
        exit_code=exit_code,
        oom_killed=oom_killed,
        started_at=_iso(state.get("StartedAt")),
        finished_at=_iso(state.get("FinishedAt")),
        reason=REASONS.get(status),
        submitted_at=job.submitted_at,
        log_path=str(store.log_path(job.id)),
        output=output,
        output_bytes=size,
        image_pull_seconds=pull_seconds,
        attempt=store.attempt(job.id),
    )


def _record_no_run(job: Job, worker_id: str, store: RunStore, status: Status, reason: str) -> None:
    outcome = Outcome.without_run(
        job, worker_id, status, reason, store.attempt(job.id), log_path=str(store.log_path(job.id))
    )
    store.record_outcome(outcome)
    log.info("%s", outcome.summary())


class LogCopier:
    """Copies a container's output into its log file while it runs.

    The copy runs on a thread because the stream blocks. A follow stream can
    miss output (the engine went away, the log driver had not handed over
    all of it, or the stream hung at exit, docker-py #3084), so ``finish``
    always copies the whole log again from Docker once the container ended.
    """

    def __init__(self, job_id: str, path: Path) -> None:
        self.job_id = job_id
        self.path = path
        self._stream: Any = None
        self._thread: threading.Thread | None = None

    def start(self, container_id: str) -> None:
        self._thread = threading.Thread(target=self._copy, args=(container_id,), daemon=True)
        self._thread.start()

    def finish(self, container_id: str) -> None:
        assert self._thread is not None
        # Let the live copy end first: both write the same file.
        self._thread.join(LOG_DRAIN_SECONDS)
        if self._thread.is_alive() and self._stream is not None:
            self._stream.close()
        self._copy(container_id, follow=False)

    def _copy(self, container_id: str, follow: bool = True) -> None:
        try:
            client = containers.connect(timeout=None)
            stream = containers.logs(client.containers.get(container_id), follow=follow)
            self._stream = stream if follow else None
            with self.path.open("wb") as sink:
                for chunk in stream:
                    sink.write(chunk)
                    sink.flush()
        except Exception as exc:  # the thread must not die silently; finish() copies again
            log.warning("job %s: copying output stopped early: %s", self.job_id, exc)


def _iso(docker_time: str | None) -> str | None:
    if not docker_time or docker_time.startswith("0001-"):
        return None
    return parse_time(docker_time).isoformat().replace("+00:00", "Z")


def _epoch(docker_time: str) -> float:
    return parse_time(docker_time).timestamp() - 1
