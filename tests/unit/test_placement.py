"""supervisor/placement.py: the project's policy and the two baselines, rule by rule."""

from __future__ import annotations

import pytest

from jobq.client.units import NANO, Resources
from jobq.supervisor.placement import (
    Candidate,
    Decision,
    Rules,
    greedy,
    head_of_line,
    in_line,
    place,
)

GIB = 1024**3
HOUR = 3600.0
CAPACITY = Resources(4 * NANO, 8 * GIB)
RULES = Rules(give_back_after=30.0, hold_limit=600.0, reserve_after=10 * HOUR)
NOW = 1_000_000.0


def need(cpu: float, memory_gib: float = 1) -> Resources:
    return Resources(round(cpu * NANO), round(memory_gib * GIB))


def job(
    job_id: str,
    cpu: float,
    memory_gib: float = 1,
    submitted_at: float = 0.0,
    waited: float = 0.0,
    priority: int = 0,
) -> Candidate:
    return Candidate(job_id, need(cpu, memory_gib), waited, submitted_at, priority)


def run(policy, waiting, free=CAPACITY, free_slots=100, rules=RULES) -> Decision:
    return policy(CAPACITY, free, free_slots, waiting, NOW, rules)


# -- line order ------------------------------------------------------------


def test_in_line_orders_by_priority_then_submit_time_then_id():
    waiting = [
        job("c", 1, submitted_at=5),
        job("b", 1, submitted_at=5),
        job("a", 1, submitted_at=9),
        job("p", 1, submitted_at=9, priority=1),
    ]
    assert [c.job_id for c in in_line(waiting)] == ["p", "b", "c", "a"]


def test_place_nothing_waiting_decides_nothing():
    assert run(place, []) == Decision([], [])


def test_place_starts_every_job_that_fits_in_line_order():
    waiting = [job("b", 1, submitted_at=2), job("a", 1, submitted_at=1), job("c", 2, 1, 3)]
    assert run(place, waiting).start == ["a", "b", "c"]


def test_place_runs_the_higher_priority_first_when_only_one_fits():
    waiting = [job("old", 3, submitted_at=1), job("urgent", 3, submitted_at=5, priority=10)]
    assert run(place, waiting).start == ["urgent"]


def test_place_runs_the_oldest_of_equal_priority_first_when_only_one_fits():
    waiting = [job("young", 3, submitted_at=5), job("old", 3, submitted_at=1)]
    assert run(place, waiting).start == ["old"]


def test_place_a_higher_priority_job_that_does_not_fit_does_not_block_lower_ones():
    # Priority orders jobs that both fit; it does not make a worker wait.
    waiting = [job("urgent", 4, submitted_at=5, priority=10), job("small", 1, submitted_at=1)]
    assert run(place, waiting, free=need(2, 8)).start == ["small"]


def test_place_starts_younger_jobs_past_an_older_one_that_does_not_fit_now():
    waiting = [
        job("a", 2, submitted_at=1),
        job("b", 2, submitted_at=2),
        job("c", 1, submitted_at=3),
        job("d", 1, submitted_at=4),
    ]
    assert run(place, waiting, free=need(3, 8)).start == ["a", "c"]


def test_place_keeps_a_job_that_fits_the_worker_but_not_now():
    # It keeps its place: held, first in line at the next look; never handed back early.
    decision = run(place, [job("big", 3, waited=RULES.hold_limit - 1)], free=need(2, 8))
    assert decision == Decision([], [])


def test_place_accounts_for_what_it_already_started():
    waiting = [job(x, 2, submitted_at=i) for i, x in enumerate("abc")]
    assert run(place, waiting).start == ["a", "b"]


def test_place_memory_alone_can_block():
    waiting = [job("a", 0.5, memory_gib=6, submitted_at=1), job("b", 0.5, 6, submitted_at=2)]
    assert run(place, waiting).start == ["a"]


def test_place_fills_capacity_exactly():
    tenth = Resources(NANO // 10, GIB // 5)
    waiting = [Candidate(f"{i:02d}", tenth, 0.0, float(i)) for i in range(40)]
    waiting.append(Candidate("extra", Resources(1, 1), 0.0, 99.0))
    # Forty jobs of 0.1 CPU fill 4 CPUs exactly: not one nano-CPU is left.
    assert run(place, waiting).start == [f"{i:02d}" for i in range(40)]


def test_place_starts_nothing_when_free_is_negative():
    # After adopting runs past capacity, free can be below zero.
    decision = run(place, [job("a", 0.01, 0.01)], free=Resources(-NANO, GIB))
    assert decision == Decision([], [])


def test_place_respects_free_slots():
    waiting = [job(str(i), 0.5, submitted_at=i) for i in range(5)]
    assert run(place, waiting, free_slots=2).start == ["0", "1"]


def test_place_with_no_free_slot_starts_nothing_but_still_gives_back():
    waiting = [job("a", 1), job("huge", 9, waited=60)]
    assert run(place, waiting, free_slots=0) == Decision([], ["huge"])


def test_place_does_not_modify_its_inputs():
    waiting = [job("b", 1, submitted_at=2), job("a", 1, submitted_at=1)]
    before = list(waiting)
    for policy in (place, greedy, head_of_line):
        run(policy, waiting)
    assert waiting == before


# -- the starvation bound: reservation ------------------------------------


def starving(job_id: str = "big", cpu: float = 4) -> Candidate:
    """A job submitted long before the others, so they have been passing it."""
    return job(job_id, cpu, submitted_at=0.0)


def young(job_id: str, cpu: float = 1, after: float = RULES.reserve_after) -> Candidate:
    return job(job_id, cpu, submitted_at=after)


def test_place_reserves_for_a_starving_job_and_starts_nothing_that_would_delay_it():
    # 1 CPU free, the starving job needs 4: a younger 1-CPU job would take that CPU.
    decision = run(place, [starving(), young("small")], free=need(1, 7))
    assert decision == Decision([], [])


def test_place_a_starving_job_that_fits_now_simply_starts_first():
    waiting = [starving(cpu=2), young("two", 2), young("one", 1)]
    assert run(place, waiting, free=need(3, 8)).start == ["big", "one"]


def test_place_reservation_holds_back_even_the_smallest_younger_job():
    # Whatever is free goes towards the starving job: 3 of its 4 CPUs are there.
    waiting = [starving(), job("tiny", 0.01, 0.01, submitted_at=RULES.reserve_after)]
    assert run(place, waiting, free=need(3, 7)).start == []


def test_place_reservation_is_for_the_memory_too():
    waiting = [job("big", 1, memory_gib=7, submitted_at=0), young("small", 1)]
    # Plenty of CPU, but the small job's memory would leave the starving one short.
    assert run(place, waiting, free=need(3, 6.5)).start == []


def test_place_jobs_ahead_of_a_reservation_in_line_still_start():
    # Higher priority runs first when it fits, reservation or not.
    waiting = [starving(), young("urgent", 1), job("vip", 1, submitted_at=5 * HOUR, priority=5)]
    assert run(place, waiting, free=need(1, 7)).start == ["vip"]


def test_place_reserves_for_one_job_only():
    waiting = [starving("big", 4), job("big2", 4, submitted_at=1), young("small", 1)]
    assert run(place, waiting, free=need(1, 7)).start == []
    # Past a reservation that is not starving, greedy packing goes on.
    waiting = [job("old", 4, submitted_at=0), young("small", 1, after=RULES.reserve_after / 2)]
    assert run(place, waiting, free=need(1, 7)).start == ["small"]


def test_place_does_not_reserve_when_everything_has_waited_as_long():
    # A batch sent all at once: nobody is starving relative to the rest, so pack.
    waiting = [job("big", 4, submitted_at=0), job("small", 1, submitted_at=0)]
    assert run(place, waiting, free=need(1, 7)).start == ["small"]


def test_place_lets_no_stream_of_small_jobs_starve_a_job():
    """Rounds of: one running 1-CPU job ends, a new small job arrives, the worker looks.

    Greedy gives every freed CPU to the newcomer; ours, once the big job is
    starving, lets the CPUs pile up until it fits.
    """
    submitted = {"big": 0.0}
    for policy, expect_big_after in ((greedy, None), (place, 3)):
        running = 4  # four 1-CPU jobs hold the worker
        held = ["big"]
        started_big_at = None
        for round_ in range(8):
            running -= 1  # one ends
            newcomer = f"s{round_}"
            submitted[newcomer] = RULES.reserve_after + round_
            held.append(newcomer)
            waiting = [job(j, 4 if j == "big" else 1, submitted_at=submitted[j]) for j in held]
            decision = run(policy, waiting, free=need(4 - running, 4 + running))
            for started in decision.start:
                held.remove(started)
                running += 4 if started == "big" else 1
                if started == "big":
                    started_big_at = round_
        if expect_big_after is None:
            assert started_big_at is None, "greedy should never have room for the big job"
        else:
            assert started_big_at == expect_big_after


# -- give-back rules (every policy) ----------------------------------------


@pytest.mark.parametrize("policy", [place, greedy, head_of_line])
def test_policy_keeps_a_job_larger_than_the_worker_until_give_back_after(policy):
    assert run(policy, [job("huge", 8, waited=RULES.give_back_after - 0.001)]) == Decision([], [])


@pytest.mark.parametrize("policy", [place, greedy, head_of_line])
def test_policy_gives_back_a_job_larger_than_the_worker_at_give_back_after(policy):
    assert run(policy, [job("huge", 8, waited=RULES.give_back_after)]).give_back == ["huge"]


@pytest.mark.parametrize("too_big", [need(4.000000001, 1), Resources(NANO, 8 * GIB + 1)])
def test_place_one_dimension_over_capacity_is_given_back(too_big):
    decision = run(place, [Candidate("x", too_big, RULES.give_back_after, 0.0)])
    assert decision == Decision([], ["x"])


@pytest.mark.parametrize("policy", [place, greedy, head_of_line])
def test_policy_gives_back_any_job_held_the_hold_limit(policy):
    waiting = [job("fits", 1, waited=RULES.hold_limit), job("next", 1, submitted_at=1)]
    assert run(policy, waiting) == Decision(["next"], ["fits"])


def test_place_gives_back_and_starts_in_one_pass():
    waiting = [
        job("huge", 5, waited=60, submitted_at=1),
        job("ok", 1, submitted_at=2),
        job("huge2", 1, memory_gib=9, waited=1, submitted_at=3),
    ]
    assert run(place, waiting) == Decision(["ok"], ["huge"])


def test_place_job_exactly_the_capacity_starts_on_an_empty_worker_and_waits_on_a_busy_one():
    assert run(place, [Candidate("whole", CAPACITY, 0.0, 0.0)]).start == ["whole"]
    assert run(place, [Candidate("whole", CAPACITY, 500.0, 0.0)], free=need(3, 8)).start == []


# -- the baselines -----------------------------------------------------------


def test_greedy_starts_whatever_fits_in_line_order():
    waiting = [job("head", 3, submitted_at=1), job("a", 0.5, submitted_at=2), job("b", 1, 1, 3)]
    assert run(greedy, waiting, free=need(1.5, 8)).start == ["a", "b"]


def test_greedy_never_reserves_even_for_a_starving_job():
    assert run(greedy, [starving(), young("small")], free=need(1, 7)).start == ["small"]


def test_head_of_line_starts_in_line_order_until_the_first_that_does_not_fit():
    waiting = [job("a", 1, submitted_at=1), job("b", 3, submitted_at=2), job("c", 1, 1, 3)]
    assert run(head_of_line, waiting, free=need(2, 8)).start == ["a"]


def test_head_of_line_idles_behind_a_job_that_does_not_fit_now():
    waiting = [job("head", 3, submitted_at=1), job("one", 1, submitted_at=2)]
    assert run(head_of_line, waiting, free=need(2, 8)) == Decision([], [])


def test_head_of_line_does_not_wait_behind_a_job_it_can_never_fit():
    waiting = [job("huge", 8, submitted_at=1, waited=1), job("one", 1, submitted_at=2)]
    assert run(head_of_line, waiting) == Decision(["one"], [])
