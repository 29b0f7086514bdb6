"""runner/monitor.py: classify(), the pure verdict from Docker's exit code and OOM signals."""

from __future__ import annotations

import pytest

from jobq.client.outcome import Status
from jobq.runner.monitor import EXIT_OOM_SIGNAL, classify


def test_classify_exit_zero_succeeds():
    assert classify(0, False, False) == (Status.SUCCEEDED, False)


@pytest.mark.parametrize("code", [1, 2, 125, 126, 127, 130, 143, 255])
def test_classify_non_zero_exit_fails(code):
    assert classify(code, False, False) == (Status.FAILED, False)


def test_classify_oom_signal_constant_is_128_plus_sigkill():
    assert EXIT_OOM_SIGNAL == 137


def test_classify_oom_flag_with_137_is_oom_killed():
    assert classify(137, True, False) == (Status.OOM_KILLED, True)


def test_classify_oom_flag_and_event_with_137_is_oom_killed():
    assert classify(137, True, True) == (Status.OOM_KILLED, True)


def test_classify_137_with_oom_event_but_no_flag_is_oom_killed():
    # moby #38352: the OOMKilled flag can be false after a real OOM kill.
    assert classify(137, False, True) == (Status.OOM_KILLED, True)


def test_classify_137_without_flag_or_event_is_plain_failure():
    # A `docker kill` or any other SIGKILL is not an OOM kill.
    assert classify(137, False, False) == (Status.FAILED, False)


@pytest.mark.parametrize("code", [1, 2, 139])
def test_classify_oom_event_without_137_is_not_trusted(code):
    assert classify(code, False, True) == (Status.FAILED, False)


@pytest.mark.parametrize("code", [1, 2, 139])
def test_classify_oom_flag_with_other_non_zero_exit_is_oom_killed(code):
    assert classify(code, True, False) == (Status.OOM_KILLED, True)


def test_classify_exit_zero_with_oom_flag_still_succeeds_but_reports_oom():
    # A child process was OOM-killed but the job's main process exited 0.
    assert classify(0, True, False) == (Status.SUCCEEDED, True)


def test_classify_exit_zero_with_oom_event_only_is_not_oom():
    assert classify(0, False, True) == (Status.SUCCEEDED, False)


def test_classify_no_exit_code_is_failure():
    assert classify(None, False, False) == (Status.FAILED, False)
    assert classify(None, False, True) == (Status.FAILED, False)
