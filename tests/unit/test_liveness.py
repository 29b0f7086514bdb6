"""supervisor/liveness.py: who is alive, who sweeps, and what becomes of each claim."""

from __future__ import annotations

from jobq.supervisor.liveness import Claim, Heartbeat, Liveness, Verdict


def beat(
    worker: str, sent_at: float, running: dict[str, int] | None = None, timeout: float = 10
) -> Heartbeat:
    return Heartbeat(
        worker=worker,
        sent_at=sent_at,
        timeout=timeout,
        running=running or {},
        capacity={},
        allocated={},
    )


def claim(
    job_id: str = "j1", worker: str = "a", attempt: int = 1, at: float = 100.0, timeout: float = 10
) -> Claim:
    return Claim(
        job_id=job_id, worker=worker, attempt=attempt, at=at, timeout=timeout, job={"image": "x"}
    )


def test_heartbeat_and_claim_round_trip_through_dicts():
    b = beat("a", 5.0, {"j1": 2})
    assert Heartbeat.from_dict(b.to_dict()) == b
    c = claim()
    assert Claim.from_dict(c.to_dict()) == c


def test_a_worker_is_alive_until_its_own_timeout_passes_silently():
    live = Liveness("me", now=0)
    live.heard(beat("a", 100, timeout=10), now=5)
    assert live.alive("a", now=15)
    assert not live.alive("a", now=15.1)
    assert not live.alive("never-heard", now=1)


def test_claim_is_kept_while_its_worker_lists_the_job():
    live = Liveness("me", now=0)
    live.heard(beat("a", 200, {"j1": 1}), now=50)
    assert live.verdict(claim(at=100), now=55) is Verdict.KEEP


def test_claim_is_dropped_once_a_later_heartbeat_no_longer_lists_the_job():
    live = Liveness("me", now=0)
    live.heard(beat("a", sent_at=101, running={}), now=50)
    assert live.verdict(claim(at=100), now=55) is Verdict.DROP


def test_claim_is_kept_when_the_heartbeat_predates_it():
    # The run was claimed after the worker's last heartbeat: absence proves nothing yet.
    live = Liveness("me", now=0)
    live.heard(beat("a", sent_at=99, running={}), now=50)
    assert live.verdict(claim(at=100), now=55) is Verdict.KEEP


def test_claim_of_a_silent_worker_is_requeued_after_its_timeout():
    live = Liveness("me", now=0)
    live.heard(beat("a", 200, {"j1": 1}, timeout=10), now=50)
    assert live.verdict(claim(), now=59) is Verdict.KEEP
    assert live.verdict(claim(), now=60.5) is Verdict.REQUEUE


def test_claim_of_a_never_heard_worker_waits_a_full_timeout_of_listening():
    live = Liveness("me", now=100)
    assert live.verdict(claim(timeout=10), now=105) is Verdict.KEEP
    assert live.verdict(claim(timeout=10), now=110.5) is Verdict.REQUEUE


def test_after_we_were_cut_off_nobody_is_declared_dead_until_we_listened_again():
    live = Liveness("me", now=0)
    live.heard(beat("a", 200, {"j1": 1}, timeout=10), now=1)
    live.restart_watch(now=100)  # we were disconnected; a's silence is ours, not a's
    assert live.verdict(claim(), now=105) is Verdict.KEEP
    assert live.verdict(claim(), now=110.5) is Verdict.REQUEUE


def test_runner_of_finds_another_live_worker_at_this_attempt_or_later():
    live = Liveness("me", now=0)
    live.heard(beat("a", 1, {"j1": 2}), now=0)
    live.heard(beat("me", 1, {"j2": 1}), now=0)
    assert live.runner_of("j1", attempt=1, now=1) == "a"
    assert live.runner_of("j1", attempt=2, now=1) == "a"
    assert live.runner_of("j1", attempt=3, now=1) is None, "a requeued copy supersedes"
    assert live.runner_of("j2", attempt=1, now=1) is None, "our own runs do not count"
    assert live.runner_of("j1", attempt=1, now=100) is None, "a is dead by then"


def test_runner_of_ignores_a_job_another_worker_only_keeps():
    # A kept job may be on its way back to the queue (drain): that copy must run.
    live = Liveness("me", now=0)
    kept = beat("a", 1, {"j1": 1, "j2": 1})
    live.heard(Heartbeat(**{**kept.__dict__, "kept": ["j1"]}), now=0)
    assert live.runner_of("j1", attempt=1, now=1) is None
    assert live.runner_of("j2", attempt=1, now=1) == "a"


def test_a_heartbeat_round_trips_its_kept_jobs():
    sent = Heartbeat("a", 1.0, 10, {"j1": 1}, {}, {}, kept=["j1"])
    assert Heartbeat.from_dict(sent.to_dict()) == sent
    older = {k: v for k, v in sent.to_dict().items() if k != "kept"}  # from before kept
    assert Heartbeat.from_dict(older).kept == []


def test_the_sweeper_is_the_live_worker_with_the_smallest_id():
    live = Liveness("m", now=0)
    assert live.is_sweeper(now=0)
    live.heard(beat("z", 1), now=0)
    assert live.is_sweeper(now=1), "z > m"
    live.heard(beat("a", 1, timeout=10), now=0)
    assert not live.is_sweeper(now=1)
    assert live.is_sweeper(now=11), "a died; m sweeps again"
