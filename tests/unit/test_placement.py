"""supervisor/placement.py: which held jobs start now, stay held, or go back to the queue."""

from __future__ import annotations

import pytest

from jobq.client.units import NANO, Resources
from jobq.supervisor.placement import Candidate, Decision, place

GIB = 1024**3
CAPACITY = Resources(4 * NANO, 8 * GIB)
GIVE_BACK_AFTER = 30.0


def need(cpu: float, memory_gib: float) -> Resources:
    return Resources(round(cpu * NANO), round(memory_gib * GIB))


def job(job_id: str, cpu: float, memory_gib: float, waited: float = 0.0) -> Candidate:
    return Candidate(job_id, need(cpu, memory_gib), waited)


def run(waiting: list[Candidate], free: Resources = CAPACITY, free_slots: int = 100) -> Decision:
    return place(CAPACITY, free, free_slots, waiting, GIVE_BACK_AFTER)


def test_place_nothing_waiting():
    assert run([]) == Decision(start=[], give_back=[])


def test_place_starts_every_job_that_fits_in_order():
    decision = run([job("a", 1, 1), job("b", 1, 2), job("c", 2, 4)])
    assert decision.start == ["a", "b", "c"]
    assert decision.give_back == []


def test_place_fills_capacity_exactly():
    tenth = Resources(NANO // 10, GIB // 8)
    waiting = [Candidate(str(i), tenth, 0.0) for i in range(40)]
    waiting.append(Candidate("extra", Resources(1, 1), 0.0))
    decision = run(waiting)
    # Forty jobs of 0.1 CPU fill 4 CPUs exactly; not one nano-CPU is left.
    assert decision.start == [str(i) for i in range(40)]


def test_place_skips_job_that_does_not_fit_now_and_keeps_it():
    decision = run([job("big", 3, 1), job("small", 1, 1)], free=need(2, 8))
    assert decision.start == ["small"]
    assert decision.give_back == []


def test_place_job_that_does_not_fit_now_is_kept_even_after_waiting_long():
    # It fits the worker, just not right now: never give it back.
    decision = run([job("big", 3, 1, waited=10_000)], free=need(2, 8))
    assert decision == Decision(start=[], give_back=[])


def test_place_later_smaller_jobs_start_past_one_that_does_not_fit():
    decision = run(
        [job("a", 2, 1), job("b", 2, 1), job("c", 1, 1), job("d", 1, 1)], free=need(3, 8)
    )
    assert decision.start == ["a", "c"]


def test_place_accounts_for_what_it_already_started():
    decision = run([job("a", 2, 1), job("b", 2, 1), job("c", 2, 1)], free=need(4, 8))
    assert decision.start == ["a", "b"]


def test_place_memory_alone_can_block():
    decision = run([job("a", 0.5, 6), job("b", 0.5, 6)], free=CAPACITY)
    assert decision.start == ["a"]


def test_place_nothing_starts_when_free_is_negative():
    # After adopting runs past capacity, free can be below zero.
    decision = run([job("a", 0.01, 0.01)], free=Resources(-NANO, GIB))
    assert decision.start == []
    assert decision.give_back == []


def test_place_job_larger_than_capacity_is_kept_before_give_back_after():
    decision = run([job("huge", 8, 1, waited=GIVE_BACK_AFTER - 0.001)])
    assert decision == Decision(start=[], give_back=[])


def test_place_job_larger_than_capacity_is_given_back_at_give_back_after():
    assert run([job("huge", 8, 1, waited=GIVE_BACK_AFTER)]).give_back == ["huge"]


def test_place_job_larger_than_capacity_is_given_back_after_give_back_after():
    assert run([job("huge", 1, 16, waited=GIVE_BACK_AFTER + 1)]).give_back == ["huge"]


@pytest.mark.parametrize("too_big", [need(4.000000001, 1), Resources(NANO, 8 * GIB + 1)])
def test_place_one_dimension_over_capacity_is_given_back(too_big):
    decision = run([Candidate("x", too_big, GIVE_BACK_AFTER)])
    assert decision == Decision(start=[], give_back=["x"])


def test_place_job_exactly_capacity_starts_when_worker_is_empty():
    decision = run([Candidate("whole", CAPACITY, 0.0)])
    assert decision.start == ["whole"]


def test_place_job_exactly_capacity_waits_when_worker_is_busy():
    decision = run([Candidate("whole", CAPACITY, 10_000)], free=need(3, 8))
    assert decision == Decision(start=[], give_back=[])


def test_place_gives_back_and_starts_in_one_pass():
    decision = run([job("huge", 5, 1, waited=60), job("ok", 1, 1), job("huge2", 1, 9, waited=1)])
    assert decision.start == ["ok"]
    assert decision.give_back == ["huge"]


def test_place_respects_free_slots():
    decision = run([job(str(i), 0.1, 0.1) for i in range(5)], free_slots=2)
    assert decision.start == ["0", "1"]
    assert decision.give_back == []


def test_place_zero_free_slots_starts_nothing_but_still_gives_back():
    decision = run([job("a", 1, 1), job("huge", 9, 1, waited=60)], free_slots=0)
    assert decision.start == []
    assert decision.give_back == ["huge"]


def test_place_does_not_modify_its_inputs():
    waiting = [job("a", 1, 1), job("b", 1, 1)]
    free = CAPACITY
    run(waiting, free=free)
    assert waiting == [job("a", 1, 1), job("b", 1, 1)]
    assert free == CAPACITY
