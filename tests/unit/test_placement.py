"""supervisor/placement.py: the project's policy and the two baselines, rule by rule."""

from __future__ import annotations

import math

from jobq.client.units import NANO, Resources
from jobq.supervisor.placement import Candidate, Decision, Rules, greedy, head_of_line, place

GIB = 1024**3
CAPACITY = Resources(4 * NANO, 4 * GIB)
RULES = Rules(give_back_after=30.0, hold_limit=600.0, overdue_after=500.0)
NOW = 1000.0  # so a job sent at 500 or before is overdue


def job(
    job_id: str,
    cpu: float,
    memory_gib: float = 0.5,
    submitted_at: float = 0.0,
    waited: float = 0.0,
    priority: int = 0,
    started_at: float = 0.0,
    estimate: float = math.inf,
) -> Candidate:
    return Candidate(
        job_id,
        Resources(round(cpu * NANO), round(memory_gib * GIB)),
        waited=waited,
        submitted_at=submitted_at,
        priority=priority,
        started_at=started_at,
        estimate=estimate,
    )


def run(policy, waiting, free=CAPACITY, free_slots=100) -> Decision:
    return policy(CAPACITY, free, free_slots, waiting, now=NOW, rules=RULES)


def test_place_starts_everything_that_fits_in_line_order():
    waiting = [
        job("b", 1, submitted_at=2),
        job("a", 1, submitted_at=1),
        job("c", 1, submitted_at=3),
    ]
    assert run(place, waiting).start == ["a", "b", "c"]


def test_place_runs_the_higher_priority_first_when_both_fit_only_one():
    waiting = [job("old", 3, submitted_at=1), job("urgent", 3, submitted_at=5, priority=10)]
    assert run(place, waiting).start == ["urgent"]


def test_place_runs_the_oldest_of_equal_priority_first():
    waiting = [job("young", 3, submitted_at=5), job("old", 3, submitted_at=1)]
    assert run(place, waiting).start == ["old"]


def test_place_keeps_the_head_of_line_and_does_not_give_it_back():
    free = Resources(1 * NANO, 4 * GIB)
    assert run(place, [job("big", 4, submitted_at=1)], free=free) == Decision([], [])


def test_place_backfills_only_what_leaves_room_for_the_head():
    # 1 CPU free now; the head needs 3 of the 4: a 1-CPU job fits beside it, a 2-CPU does not.
    free = Resources(1 * NANO, 4 * GIB)
    waiting = [
        job("head", 3, submitted_at=1),
        job("two", 2, submitted_at=2),
        job("one", 1, submitted_at=3),
    ]
    assert run(place, waiting, free=free).start == ["one"]


def test_place_lets_no_stream_of_small_jobs_starve_the_head():
    # Greedy fills every freed CPU with a new small job; ours holds them for the head.
    free = Resources(1 * NANO, 4 * GIB)  # three 1-CPU jobs run; one ends each round
    head = job("big", 4, submitted_at=0)
    for round_ in range(3):
        small = job(f"small{round_}", 1, submitted_at=1 + round_)
        assert run(greedy, [head, small], free=free).start == [small.job_id]
        assert run(place, [head, small], free=free).start == []
    assert run(place, [head, job("late", 1, submitted_at=9)]).start == ["big"]


def test_place_gives_back_what_can_never_fit_after_the_delay():
    assert run(place, [job("huge", 8, waited=RULES.give_back_after - 0.001)]).give_back == []
    assert run(place, [job("huge", 8, waited=RULES.give_back_after)]).give_back == ["huge"]


def test_place_gives_back_a_job_held_past_the_hold_limit_but_keeps_an_overdue_head():
    free = Resources(1 * NANO, 4 * GIB)
    waiting = [
        job("head", 3, submitted_at=1, waited=RULES.hold_limit),
        job("behind", 2, submitted_at=2, waited=RULES.hold_limit),
        job("fresh", 2, submitted_at=3, waited=RULES.hold_limit - 1),
    ]
    decision = run(place, waiting, free=free)
    assert decision == Decision(start=[], give_back=["behind"], keep=["head"])


def test_place_gives_back_a_head_not_yet_overdue_at_the_hold_limit():
    free = Resources(1 * NANO, 4 * GIB)
    recent = NOW - RULES.overdue_after + 1
    waiting = [job("head", 3, submitted_at=recent, waited=RULES.hold_limit)]
    assert run(place, waiting, free=free) == Decision(give_back=["head"])


def test_place_keeps_the_head_once_and_never_gives_a_kept_job_back():
    free = Resources(1 * NANO, 4 * GIB)
    head = job("head", 3, submitted_at=1, waited=RULES.hold_limit - 1)
    assert run(place, [head], free=free) == Decision()
    kept = Candidate("head", head.need, waited=10 * RULES.hold_limit, submitted_at=1, kept=True)
    assert run(place, [kept], free=free) == Decision()
    assert run(place, [kept]).start == ["head"]


def test_place_starts_a_job_that_fits_however_long_it_was_held():
    assert run(place, [job("old", 1, waited=RULES.hold_limit)]).start == ["old"]


def test_place_counts_running_backfills_against_the_room_of_a_head_smaller_than_the_worker():
    # The stateless flaw, fixed: 2-CPU head on a 4-CPU worker, 1-CPU jobs streaming in.
    # Call after call, backfills started since the head is overdue (501) fill its room.
    head = job("head", 2, submitted_at=1)
    older = [job("older0", 1, submitted_at=0), job("older1", 1, submitted_at=0.5)]
    running = [*older, job("backfill0", 1, submitted_at=2, started_at=600)]  # 3 of 4 CPUs
    free = Resources(1 * NANO, 4 * GIB)

    def decide(waiting, running, free):
        return place(CAPACITY, free, 100, waiting, now=NOW, rules=RULES, running=running)

    # Two CPUs are beside the head; backfill0 holds one, so one more may start...
    first = decide([head, job("backfill1", 1, submitted_at=3)], running, free)
    assert first.start == ["backfill1"]
    running.append(job("backfill1", 1, submitted_at=3, started_at=NOW))
    # ...and then no more, whatever ends: an older job ends, a new small one comes.
    running.remove(older[0])
    free = Resources(1 * NANO, 4 * GIB)
    assert decide([head, job("backfill2", 1, submitted_at=4)], running, free).start == []
    running.remove(older[1])
    free = Resources(2 * NANO, 4 * GIB)
    assert decide([head, job("backfill2", 1, submitted_at=4)], running, free).start == ["head"]


def test_place_counts_running_backfills_only_against_an_overdue_head():
    def decide(sent_at, backfill_started_at=NOW):
        head = job("head", 2, submitted_at=sent_at)
        backfill = job("backfill0", 2, submitted_at=sent_at + 1, started_at=backfill_started_at)
        running = [job("older", 1, submitted_at=0), backfill]
        free = Resources(1 * NANO, 4 * GIB)
        later = job("later", 1, submitted_at=sent_at + 2)
        return place(CAPACITY, free, 100, [head, later], NOW, RULES, running).start

    overdue_now = NOW - RULES.overdue_after
    assert decide(sent_at=overdue_now + 1) == ["later"]  # not overdue: passed freely
    assert decide(sent_at=overdue_now) == []  # backfill0 passed it once overdue: its room
    # backfill0 passed it before it was overdue: it will end, and takes none of the room.
    assert decide(sent_at=overdue_now, backfill_started_at=overdue_now - 1) == ["later"]


def test_place_lets_running_jobs_ahead_of_the_head_take_no_room():
    # Jobs older than the head end before it needs their CPUs: backfill around them.
    head = job("head", 3, submitted_at=5)
    running = [job("older", 2, submitted_at=1)]
    free = Resources(2 * NANO, 4 * GIB)
    decision = place(
        CAPACITY, free, 100, [head, job("small", 1, submitted_at=6)], NOW, RULES, running
    )
    assert decision.start == ["small"]


def test_place_respects_free_slots():
    waiting = [job(str(i), 0.5, submitted_at=i) for i in range(5)]
    assert run(place, waiting, free_slots=2).start == ["0", "1"]


def test_place_never_starts_more_than_is_free():
    free = Resources(2 * NANO, 1 * GIB)
    waiting = [job(str(i), 1, memory_gib=0.4, submitted_at=i) for i in range(5)]
    assert len(run(place, waiting, free=free).start) == 2


def test_greedy_baseline_starts_whatever_fits():
    free = Resources(1 * NANO, 4 * GIB)
    waiting = [
        job("head", 3, submitted_at=1),
        job("a", 0.5, submitted_at=2),
        job("b", 0.5, submitted_at=3),
    ]
    assert run(greedy, waiting, free=free).start == ["a", "b"]


def test_head_of_line_baseline_stops_at_the_first_that_does_not_fit():
    free = Resources(1 * NANO, 4 * GIB)
    assert (
        run(
            head_of_line, [job("head", 3, submitted_at=1), job("one", 1, submitted_at=2)], free=free
        ).start
        == []
    )
    assert run(
        head_of_line, [job("a", 1, submitted_at=1), job("b", 1, submitted_at=2)], free=free
    ).start == ["a"]


def test_policies_do_not_modify_their_inputs():
    waiting = [job("b", 1, submitted_at=2), job("a", 1, submitted_at=1)]
    before = list(waiting)
    for policy in (place, greedy, head_of_line):
        run(policy, waiting)
    assert waiting == before


# Estimates: a job that says it ends before the head can fit may run in its room.
# Below, 3 of the 4 CPUs are held by a job that started at 900 and expects 300 s:
# it should end at 1200, when the 4-CPU head fits. Nothing else is free: room 0.
def _waiting_behind_a_wide_head(short_estimate: float) -> list[Candidate]:
    return [
        job("wide", 4, submitted_at=1),
        job("short", 1, submitted_at=2, estimate=short_estimate),
    ]


def _running_until_1200(started_at: float = 900.0, estimate: float = 300.0) -> list[Candidate]:
    return [job("ahead", 3, submitted_at=0, started_at=started_at, estimate=estimate)]


def _decide(waiting, running, rules=RULES) -> Decision:
    free = Resources(1 * NANO, 3.5 * GIB)
    return place(CAPACITY, free, 100, waiting, now=NOW, rules=rules, running=running)


def test_place_starts_a_job_expected_to_end_before_the_head_can_fit():
    assert _decide(_waiting_behind_a_wide_head(200.0), _running_until_1200()).start == ["short"]


def test_place_does_not_start_a_job_expected_to_end_after_the_head_could_fit():
    assert _decide(_waiting_behind_a_wide_head(201.0), _running_until_1200()).start == []


def test_place_does_not_trust_estimates_while_a_job_it_waits_for_has_none():
    waiting = _waiting_behind_a_wide_head(1.0)
    assert _decide(waiting, _running_until_1200(estimate=math.inf)).start == []


def test_place_does_not_trust_estimates_while_a_job_it_waits_for_runs_past_its_own():
    # "overran" started at 600 expecting 300 s: it should have ended at 900 and has
    # not, so when its 2 CPUs come back is unknown, and so is when the head fits.
    running = [
        job("overran", 2, submitted_at=0, started_at=600, estimate=300),
        job("ahead", 1, submitted_at=0, started_at=900, estimate=300),  # ends 1200
    ]
    assert _decide(_waiting_behind_a_wide_head(1.0), running).start == []
    running[0] = job("honest", 2, submitted_at=0, started_at=900, estimate=200)  # ends 1100
    assert _decide(_waiting_behind_a_wide_head(1.0), running).start == ["short"]


def test_place_reads_when_the_head_fits_from_the_soonest_ends_that_make_room():
    # 1 CPU free; the head needs 3.5, so the room beside it (0.5) takes no 1-CPU
    # job. The first job to end (1100) frees enough for it: a job done by then may run.
    running = [
        job("late", 0.5, started_at=900, estimate=900),  # ends 1800
        job("soon", 2.5, started_at=900, estimate=200),  # ends 1100
    ]
    for estimate, started in ((100, ["short"]), (101, [])):
        waiting = [
            job("head", 3.5, submitted_at=1),
            job("short", 1, submitted_at=2, estimate=estimate),
        ]
        assert _decide(waiting, running).start == started


def test_estimated_backfills_of_an_overdue_head_count_against_its_room_once_started():
    # The head (sent at 1, overdue) needs 3 CPUs: room 1 beside it. A short job
    # started on its estimate at 950, sent after the head, holds 1 CPU: the room
    # is gone, so a second long job may not take it, however free the CPU is.
    running = [
        job("ahead", 2, submitted_at=0, started_at=900, estimate=300),
        job("short", 1, submitted_at=2, started_at=950, estimate=100),
    ]
    waiting = [job("head", 3, submitted_at=1), job("long", 1, submitted_at=3)]
    free = Resources(1 * NANO, 2 * GIB)
    decision = place(CAPACITY, free, 100, waiting, now=NOW, rules=RULES, running=running)
    assert decision.start == []
