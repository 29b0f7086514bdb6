"""A worker's own record of its runs, on its local disk.

    <state_dir>/runs/<job id>/job.json      the job, written when the worker accepts it
    <state_dir>/runs/<job id>/attempt       which run of the job this is (1, or more if requeued)
    <state_dir>/runs/<job id>/claimed       present once the run's claim is on the broker:
                                            the run is ours
    <state_dir>/runs/<job id>/kept          present while a claimed run waits for room: the
                                            head of the line, kept here (placement's
                                            Decision.keep); removed as its container starts
    <state_dir>/runs/<job id>/handing-back  present once a kept run is being put back on the
                                            queue; the run is forgotten when that is confirmed
    <state_dir>/runs/<job id>/outcome.json  how it ended, written once the container has exited
    <state_dir>/runs/<job id>/revoked       present once the job was requeued away from us
    <state_dir>/runs/<job id>/cancelled     present once someone cancelled the job
    <state_dir>/logs/<job id>.log           the container's stdout and stderr

A run folder exists from the moment the worker accepts a job until its
outcome has been published. After a restart, these folders tell the
supervisor which containers to adopt and which outcomes still need reporting,
and the heartbeat lists them so other workers know the job is in hand.
Writes are atomic (write, fsync, rename), so a crash leaves either the old
file or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from jobq.client import job as jobs
from jobq.client.job import Job
from jobq.client.outcome import OUTPUT_TAIL_BYTES, Outcome


class RunStore:
    def __init__(self, state_dir: Path) -> None:
        self.runs_dir = state_dir / "runs"
        self.logs_dir = state_dir / "logs"

    def prepare(self) -> None:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)

    def accept(self, job: Job, attempt: int = 1) -> None:
        folder = self.runs_dir / job.id
        folder.mkdir(exist_ok=True)
        _write_atomic(folder / "attempt", str(attempt).encode())
        _write_atomic(folder / "job.json", job.encode())

    def attempt(self, job_id: str) -> int:
        try:
            return int((self.runs_dir / job_id / "attempt").read_text())
        except (FileNotFoundError, ValueError):
            return 1

    def held(self) -> dict[str, int]:
        """Every run not yet reported, with its attempt: what the heartbeat announces."""
        return {job_id: self.attempt(job_id) for job_id in self.active()}

    def mark_claimed(self, job_id: str) -> None:
        _write_atomic(self.runs_dir / job_id / "claimed", b"")

    def claimed(self, job_id: str) -> bool:
        return (self.runs_dir / job_id / "claimed").exists()

    def mark_kept(self, job_id: str) -> None:
        _write_atomic(self.runs_dir / job_id / "kept", b"")

    def kept(self, job_id: str) -> bool:
        return (self.runs_dir / job_id / "kept").exists()

    def mark_handing_back(self, job_id: str) -> None:
        _write_atomic(self.runs_dir / job_id / "handing-back", b"")

    def handing_back(self, job_id: str) -> bool:
        return (self.runs_dir / job_id / "handing-back").exists()

    def unmark_kept(self, job_id: str) -> None:
        """The kept run starts now: from here on it is an ordinary claimed run."""
        (self.runs_dir / job_id / "kept").unlink(missing_ok=True)
        _fsync_directory(self.runs_dir / job_id)

    def mark_cancelled(self, job_id: str) -> None:
        _write_atomic(self.runs_dir / job_id / "cancelled", b"")

    def cancelled(self, job_id: str) -> bool:
        return (self.runs_dir / job_id / "cancelled").exists()

    def mark_revoked(self, job_id: str) -> None:
        _write_atomic(self.runs_dir / job_id / "revoked", b"")

    def revoked(self, job_id: str) -> bool:
        return (self.runs_dir / job_id / "revoked").exists()

    def has(self, job_id: str) -> bool:
        return (self.runs_dir / job_id / "job.json").exists()

    def job(self, job_id: str) -> Job:
        path = self.runs_dir / job_id / "job.json"
        return jobs.decode(path.read_bytes(), source=str(path))

    def active(self) -> list[str]:
        """Ids of every run not yet reported, oldest first."""
        jobs = [p / "job.json" for p in self.runs_dir.iterdir() if (p / "job.json").exists()]
        return [p.parent.name for p in sorted(jobs, key=lambda p: p.stat().st_mtime)]

    def record_outcome(self, outcome: Outcome) -> None:
        data = json.dumps(outcome.to_dict()).encode()
        _write_atomic(self.runs_dir / outcome.job_id / "outcome.json", data)

    def outcome(self, job_id: str) -> Outcome | None:
        try:
            doc = json.loads((self.runs_dir / job_id / "outcome.json").read_bytes())
        except FileNotFoundError:
            return None
        return Outcome.from_dict(doc)

    def forget(self, job_id: str) -> None:
        """Drop the run folder once the outcome is reported; the log file stays."""
        shutil.rmtree(self.runs_dir / job_id, ignore_errors=True)

    def log_path(self, job_id: str) -> Path:
        return self.logs_dir / f"{job_id}.log"

    def output_tail(self, job_id: str) -> tuple[str, int]:
        """The end of a job's output, as text, and the size of the whole output in bytes."""
        path = self.log_path(job_id)
        try:
            with path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - OUTPUT_TAIL_BYTES))
                tail = log.read()
        except FileNotFoundError:
            return "", 0
        return tail.decode("utf-8", errors="replace"), size


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
