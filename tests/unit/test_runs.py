"""runner/runs.py: the worker's on-disk record of accepted jobs, outcomes and output."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from jobq.client.errors import InvalidJob
from jobq.client.job import Job
from jobq.client.outcome import OUTPUT_TAIL_BYTES, Outcome, Status
from jobq.client.units import NANO, Resources
from jobq.runner.runs import RunStore

MIB = 1024**2


def make_job(job_id: str = "job-1", **overrides: Any) -> Job:
    values: dict[str, Any] = {
        "id": job_id,
        "image": "busybox:1.36",
        "resources": Resources(NANO // 2, 64 * MIB),
        "cmd": ("sh", "-c", "echo 'hi there' $X"),
        "env": {"X": "1"},
        "name": "a job",
        "submitted_at": 1767225600.5,
    }
    values.update(overrides)
    return Job(**values)


def make_outcome(job_id: str = "job-1", **overrides: Any) -> Outcome:
    values: dict[str, Any] = {
        "job_id": job_id,
        "worker": "worker-1",
        "status": Status.SUCCEEDED,
        "exit_code": 0,
        "oom_killed": False,
        "started_at": "2026-12-03T16:22:33.538436Z",
        "finished_at": "2026-12-03T16:22:34Z",
        "output": "done\n",
        "output_bytes": 5,
    }
    values.update(overrides)
    return Outcome(**values)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    runs = RunStore(tmp_path / "state")
    runs.prepare()
    return runs


def age(store: RunStore, job_id: str, seconds_ago: float) -> None:
    """Backdate a run's job file, since file times can be coarser than a test's pace."""
    moment = time.time() - seconds_ago
    os.utime(store.runs_dir / job_id / "job.json", (moment, moment))


def test_runstore_prepare_creates_folders(tmp_path):
    runs = RunStore(tmp_path / "a" / "b")
    runs.prepare()
    assert (tmp_path / "a" / "b" / "runs").is_dir()
    assert (tmp_path / "a" / "b" / "logs").is_dir()


def test_runstore_prepare_twice_is_fine(store):
    store.prepare()
    assert store.runs_dir.is_dir()


def test_runstore_accept_writes_job_json(store):
    store.accept(make_job())
    assert (store.runs_dir / "job-1" / "job.json").is_file()
    assert not (store.runs_dir / "job-1" / "job.json.tmp").exists()


def test_runstore_job_reads_back_what_was_accepted(store):
    job = make_job()
    store.accept(job)
    assert store.job("job-1") == job


def test_runstore_accept_again_overwrites(store):
    store.accept(make_job(name="first"))
    store.accept(make_job(name="second"))
    assert store.job("job-1").name == "second"


def test_runstore_job_missing_raises(store):
    with pytest.raises(FileNotFoundError):
        store.job("nope")


def test_runstore_job_corrupt_file_raises_invalid_job_naming_the_file(store):
    folder = store.runs_dir / "bad"
    folder.mkdir()
    (folder / "job.json").write_text("{not json")
    with pytest.raises(InvalidJob) as info:
        store.job("bad")
    assert info.value.source == str(folder / "job.json")


def test_runstore_active_empty(store):
    assert store.active() == []


def test_runstore_active_lists_accepted_runs_oldest_first(store):
    store.accept(make_job("b-old"))
    age(store, "b-old", 30)
    store.accept(make_job("a-new"))
    age(store, "a-new", 10)
    store.accept(make_job("c-mid"))
    age(store, "c-mid", 20)
    assert store.active() == ["b-old", "c-mid", "a-new"]


def test_runstore_active_ignores_folders_without_job_json(store):
    store.accept(make_job("real"))
    (store.runs_dir / "half-made").mkdir()
    assert store.active() == ["real"]


def test_runstore_active_still_lists_runs_with_an_outcome(store):
    store.accept(make_job("done"))
    store.record_outcome(make_outcome("done"))
    assert store.active() == ["done"]


def test_runstore_active_order_is_kept_after_record_outcome(store):
    store.accept(make_job("first"))
    age(store, "first", 30)
    store.accept(make_job("second"))
    age(store, "second", 20)
    store.record_outcome(make_outcome("first"))
    assert store.active() == ["first", "second"]


def test_runstore_outcome_none_before_recorded(store):
    store.accept(make_job())
    assert store.outcome("job-1") is None


def test_runstore_outcome_none_for_unknown_job(store):
    assert store.outcome("never-seen") is None


def test_runstore_record_outcome_round_trip(store):
    store.accept(make_job())
    outcome = make_outcome(
        status=Status.OOM_KILLED,
        exit_code=137,
        oom_killed=True,
        reason="killed for exceeding its memory limit",
        name="a job",
        submitted_at=1767225600.5,
        log_path=str(store.log_path("job-1")),
        image_pull_seconds=1.25,
    )
    store.record_outcome(outcome)
    assert store.outcome("job-1") == outcome
    assert not (store.runs_dir / "job-1" / "outcome.json.tmp").exists()


def test_runstore_record_outcome_again_overwrites(store):
    store.accept(make_job())
    store.record_outcome(make_outcome(exit_code=1, status=Status.FAILED))
    store.record_outcome(make_outcome(exit_code=2, status=Status.FAILED))
    assert store.outcome("job-1").exit_code == 2


def test_runstore_forget_drops_the_run_but_keeps_the_log(store):
    store.accept(make_job())
    store.record_outcome(make_outcome())
    store.log_path("job-1").write_bytes(b"output\n")
    store.forget("job-1")
    assert not (store.runs_dir / "job-1").exists()
    assert store.active() == []
    assert store.outcome("job-1") is None
    assert store.log_path("job-1").read_bytes() == b"output\n"


def test_runstore_forget_unknown_job_is_harmless(store):
    store.accept(make_job("keep"))
    store.forget("never-seen")
    assert store.active() == ["keep"]


def test_runstore_forget_twice_is_harmless(store):
    store.accept(make_job())
    store.forget("job-1")
    store.forget("job-1")
    assert store.active() == []


def test_runstore_log_path(store, tmp_path):
    assert store.log_path("job-1") == tmp_path / "state" / "logs" / "job-1.log"


def test_runstore_output_tail_without_log_is_empty(store):
    assert store.output_tail("job-1") == ("", 0)


def test_runstore_output_tail_empty_log(store):
    store.log_path("job-1").write_bytes(b"")
    assert store.output_tail("job-1") == ("", 0)


def test_runstore_output_tail_small_log_is_whole(store):
    store.log_path("job-1").write_bytes(b"line 1\nline 2\n")
    assert store.output_tail("job-1") == ("line 1\nline 2\n", 14)


def test_runstore_output_tail_exactly_the_limit_is_whole(store):
    data = b"x" * OUTPUT_TAIL_BYTES
    store.log_path("job-1").write_bytes(data)
    text, size = store.output_tail("job-1")
    assert size == OUTPUT_TAIL_BYTES
    assert text == data.decode()


def test_runstore_output_tail_is_limited_and_reports_full_size(store):
    head = b"H" * 1000
    tail = bytes(ord("a") + i % 26 for i in range(OUTPUT_TAIL_BYTES))
    store.log_path("job-1").write_bytes(head + tail)
    text, size = store.output_tail("job-1")
    assert size == 1000 + OUTPUT_TAIL_BYTES
    assert len(text.encode()) == OUTPUT_TAIL_BYTES
    assert text == tail.decode()
    assert "H" not in text


def test_runstore_output_tail_of_large_log(store):
    data = b"0123456789" * (OUTPUT_TAIL_BYTES // 2)  # 5x the limit
    store.log_path("job-1").write_bytes(data)
    text, size = store.output_tail("job-1")
    assert size == len(data)
    assert text.encode() == data[-OUTPUT_TAIL_BYTES:]


def test_runstore_output_tail_cut_inside_a_character_is_replaced(store):
    # "é" is two bytes; cutting before its second byte leaves a lone continuation byte.
    data = "é".encode() * (OUTPUT_TAIL_BYTES // 2) + b"z"
    store.log_path("job-1").write_bytes(data)
    text, size = store.output_tail("job-1")
    assert size == len(data)
    assert text.startswith("\ufffd")
    assert text.endswith("éz")


def test_runstore_output_tail_invalid_utf8_is_replaced(store):
    store.log_path("job-1").write_bytes(b"ok \xff\xfe end")
    text, size = store.output_tail("job-1")
    assert size == 9
    assert text == "ok \ufffd\ufffd end"


def test_runstore_kept_marks_a_claimed_run_that_waits_until_it_starts(store):
    store.accept(make_job())
    assert not store.kept("job-1")
    store.mark_kept("job-1")
    store.mark_claimed("job-1")
    assert store.kept("job-1") and store.claimed("job-1")
    assert store.held() == {"job-1": 1}  # announced in heartbeats like a running job
    store.unmark_kept("job-1")
    assert not store.kept("job-1") and store.claimed("job-1")
    store.unmark_kept("job-1")  # twice is harmless (a restart between the two steps)
