"""client/outcome.py: the outcome record, its summary, and Docker's timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from jobq.client.outcome import (
    EXIT_NO_CONTAINER,
    OUTPUT_TAIL_BYTES,
    Outcome,
    Status,
    parse_time,
)


def outcome(**overrides: Any) -> Outcome:
    values: dict[str, Any] = {
        "job_id": "job-1",
        "worker": "worker-1",
        "status": Status.FAILED,
        "exit_code": 2,
        "oom_killed": False,
        "started_at": "2026-12-03T16:22:33.538436601Z",
        "finished_at": "2026-12-03T16:22:35.038436999Z",
    }
    values.update(overrides)
    return Outcome(**values)


def full_outcome() -> Outcome:
    return outcome(
        status=Status.OOM_KILLED,
        exit_code=137,
        oom_killed=True,
        reason="killed for exceeding its memory limit",
        name="build",
        submitted_at=1767225600.25,
        log_path="/var/jobq/logs/job-1.log",
        output="last line\n",
        output_bytes=123456,
        image_pull_seconds=3.5,
    )


# to_dict / from_dict


def test_outcome_to_dict_from_dict_round_trip():
    original = full_outcome()
    assert Outcome.from_dict(original.to_dict()) == original


def test_outcome_round_trip_through_json():
    original = full_outcome()
    back = Outcome.from_dict(json.loads(json.dumps(original.to_dict())))
    assert back == original
    assert back.status is Status.OOM_KILLED


def test_outcome_to_dict_status_is_plain_string():
    doc = full_outcome().to_dict()
    assert doc["status"] == "oom_killed"
    assert type(doc["status"]) is str
    assert doc["exit_code"] == 137
    assert doc["image_pull_seconds"] == 3.5


def test_outcome_to_dict_has_every_field():
    assert set(outcome().to_dict()) == {
        "job_id",
        "worker",
        "status",
        "exit_code",
        "oom_killed",
        "started_at",
        "finished_at",
        "reason",
        "name",
        "submitted_at",
        "log_path",
        "output",
        "output_bytes",
        "image_pull_seconds",
        "attempt",
    }


def test_outcome_from_dict_ignores_unknown_keys():
    doc = outcome().to_dict()
    doc["from_a_newer_worker"] = 1
    assert Outcome.from_dict(doc) == outcome()


def test_outcome_from_dict_fills_defaults_for_missing_optional_keys():
    doc = {
        "job_id": "j",
        "worker": "w",
        "status": "image_unavailable",
        "exit_code": None,
        "oom_killed": False,
        "started_at": None,
        "finished_at": None,
    }
    back = Outcome.from_dict(doc)
    assert back.status is Status.IMAGE_UNAVAILABLE
    assert back.output == ""
    assert back.output_bytes == 0
    assert back.reason is None


def test_outcome_from_dict_rejects_unknown_status():
    doc = outcome().to_dict()
    doc["status"] = "exploded"
    with pytest.raises(ValueError):
        Outcome.from_dict(doc)


# exit_status, run_seconds, output_truncated


@pytest.mark.parametrize("code", [0, 1, 2, 137, 255])
def test_outcome_exit_status_is_the_exit_code(code):
    assert outcome(exit_code=code).exit_status == code


def test_outcome_exit_status_is_125_without_exit_code():
    assert EXIT_NO_CONTAINER == 125
    assert outcome(status=Status.START_FAILED, exit_code=None).exit_status == 125


def test_outcome_run_seconds_from_nanosecond_timestamps():
    assert outcome().run_seconds == pytest.approx(1.5, abs=1e-6)


def test_outcome_run_seconds_none_without_start_or_finish():
    assert outcome(started_at=None).run_seconds is None
    assert outcome(finished_at=None).run_seconds is None
    assert outcome(started_at=None, finished_at=None).run_seconds is None


def test_outcome_run_seconds_across_midnight():
    o = outcome(started_at="2026-12-31T23:59:59.5Z", finished_at="2027-01-01T00:00:01Z")
    assert o.run_seconds == pytest.approx(1.5)


def test_outcome_output_truncated():
    assert not outcome(output_bytes=OUTPUT_TAIL_BYTES).output_truncated
    assert outcome(output_bytes=OUTPUT_TAIL_BYTES + 1).output_truncated
    assert not outcome().output_truncated


# summary


def test_outcome_summary_full():
    o = outcome(reason="the reason")
    assert o.summary() == "job job-1: failed, exit code 2, on worker-1, ran 1.50s, the reason"


def test_outcome_summary_success_without_reason():
    o = outcome(status=Status.SUCCEEDED, exit_code=0)
    assert o.summary() == "job job-1: succeeded, exit code 0, on worker-1, ran 1.50s"


def test_outcome_summary_without_exit_code_or_times():
    o = outcome(
        status=Status.IMAGE_UNAVAILABLE,
        exit_code=None,
        started_at=None,
        finished_at=None,
        reason="pull access denied",
    )
    assert o.summary() == "job job-1: image_unavailable, on worker-1, pull access denied"


# parse_time


def test_parse_time_docker_nanoseconds():
    assert parse_time("2026-12-03T16:22:33.538436601Z") == datetime(
        2026, 12, 3, 16, 22, 33, 538436, tzinfo=UTC
    )


def test_parse_time_is_timezone_aware_utc():
    parsed = parse_time("2026-12-03T16:22:33.538436601Z")
    assert parsed.utcoffset().total_seconds() == 0


def test_parse_time_without_fraction():
    assert parse_time("2026-12-03T16:22:33Z") == datetime(2026, 12, 3, 16, 22, 33, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "micro"),
    [
        ("2026-12-03T16:22:33.5Z", 500000),
        ("2026-12-03T16:22:33.000001Z", 1),
        ("2026-12-03T16:22:33.123Z", 123000),
        ("2026-12-03T16:22:33.999999999Z", 999999),
    ],
)
def test_parse_time_fractions_of_any_length(text, micro):
    assert parse_time(text).microsecond == micro


def test_parse_time_docker_zero_time():
    # Docker reports a never-started container's StartedAt as the zero time.
    assert parse_time("0001-01-01T00:00:00Z") == datetime(1, 1, 1, tzinfo=UTC)


def test_parse_time_orders_correctly():
    earlier = parse_time("2026-12-03T16:22:33.000000999Z")
    later = parse_time("2026-12-03T16:22:33.000001000Z")
    assert later > earlier


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-03T16:22:33Z"])
def test_parse_time_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_time(text)
