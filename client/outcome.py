"""A job's outcome: how its run ended, as recorded on the worker and published to clients."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .job import Job

# How much of a job's output travels in its outcome message; the whole output
# stays in the log file on the worker, whose path the outcome names.
OUTPUT_TAIL_BYTES = 64 * 1024

# jobq-send --wait exits with the job's exit code; these stand in when the
# container never produced one (as `docker run` uses 125).
EXIT_NO_CONTAINER = 125


class Status(enum.StrEnum):
    SUCCEEDED = "succeeded"  # exit code 0
    FAILED = "failed"  # a non-zero exit code
    OOM_KILLED = "oom_killed"  # killed for going over its memory limit
    IMAGE_UNAVAILABLE = "image_unavailable"  # not on the worker, and could not be pulled
    START_FAILED = "start_failed"  # Docker refused to create or start the container
    CANCELLED = "cancelled"  # by jobq-cancel: stopped, or never started
    ERROR = "error"  # jobq could not follow the container to its end (see the worker's log)


@dataclass(frozen=True)
class Outcome:
    job_id: str
    worker: str
    status: Status
    exit_code: int | None
    oom_killed: bool
    started_at: str | None  # ISO 8601, UTC, from Docker's own record of the container
    finished_at: str | None
    reason: str | None = None  # for people: why it ended so
    name: str | None = None
    submitted_at: float | None = None
    log_path: str | None = None
    output: str = ""  # the last OUTPUT_TAIL_BYTES of stdout and stderr
    output_bytes: int = 0  # size of the whole output
    image_pull_seconds: float | None = None
    attempt: int = 1  # which run of the job this was: more than 1 after a requeue

    @classmethod
    def without_run(
        cls,
        job: Job,
        worker: str,
        status: Status,
        reason: str,
        attempt: int,
        log_path: str | None = None,
    ) -> Outcome:
        """The outcome of a job whose container never ran (or was never seen to end)."""
        return cls(
            job_id=job.id,
            name=job.name,
            worker=worker,
            status=status,
            exit_code=None,
            oom_killed=False,
            started_at=None,
            finished_at=None,
            reason=reason,
            submitted_at=job.submitted_at,
            log_path=log_path,
            attempt=attempt,
        )

    @property
    def output_truncated(self) -> bool:
        return self.output_bytes > OUTPUT_TAIL_BYTES

    @property
    def run_seconds(self) -> float | None:
        if not (self.started_at and self.finished_at):
            return None
        # Docker's start and end stamps come from different components and can
        # cross by a few milliseconds for an instant job.
        seconds = (parse_time(self.finished_at) - parse_time(self.started_at)).total_seconds()
        return max(0.0, seconds)

    @property
    def exit_status(self) -> int:
        """What `jobq-send --wait` exits with."""
        return self.exit_code if self.exit_code is not None else EXIT_NO_CONTAINER

    def summary(self) -> str:
        parts = [f"job {self.job_id}: {self.status.value}"]
        if self.exit_code is not None:
            parts.append(f"exit code {self.exit_code}")
        parts.append(f"on {self.worker}")
        if self.run_seconds is not None:
            parts.append(f"ran {self.run_seconds:.2f}s")
        if self.reason:
            parts.append(self.reason)
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["status"] = self.status.value
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Outcome:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in doc.items() if key in known}
        values["status"] = Status(values["status"])
        return cls(**values)


def parse_time(value: str) -> datetime:
    """Read Docker's timestamps, which carry nanoseconds Python cannot hold."""
    head, _, rest = value.rstrip("Z").partition(".")
    fraction = rest[:6]
    return datetime.fromisoformat(f"{head}.{fraction or '0'}+00:00")
