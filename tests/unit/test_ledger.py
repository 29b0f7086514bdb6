"""supervisor/ledger.py: booking CPU and memory for running jobs, across processes."""

from __future__ import annotations

import random
import time

import multiprocess
import pytest

from jobq.client.units import NANO, ZERO, Resources, parse_cpu
from jobq.supervisor.ledger import ID_BYTES, Ledger

GIB = 1024**3
MIB = 1024**2
CAPACITY = Resources(4 * NANO, 8 * GIB)
FORK = multiprocess.get_context("fork")


def ledger(capacity: Resources = CAPACITY, max_jobs: int = 16) -> Ledger:
    return Ledger(capacity, max_jobs, FORK)


# reserve


def test_ledger_starts_empty():
    book = ledger()
    assert book.allocated() == ZERO
    assert book.free() == CAPACITY
    assert book.running() == {}
    assert not book.holds("a")


def test_ledger_default_context_works():
    book = Ledger(CAPACITY, 2)
    assert book.reserve("a", Resources(NANO, GIB))
    assert book.holds("a")


def test_ledger_reserve_books_the_job():
    book = ledger()
    assert book.reserve("a", Resources(NANO, GIB)) is True
    assert book.holds("a")
    assert book.allocated() == Resources(NANO, GIB)
    assert book.free() == Resources(3 * NANO, 7 * GIB)
    assert book.running() == {"a": Resources(NANO, GIB)}


def test_ledger_reserve_succeeds_while_it_fits():
    book = ledger()
    assert book.reserve("a", Resources(2 * NANO, 4 * GIB))
    assert book.reserve("b", Resources(NANO, 2 * GIB))
    assert book.reserve("c", Resources(NANO, 2 * GIB))
    assert book.allocated() == CAPACITY
    assert book.free() == ZERO


def test_ledger_reserve_fails_when_cpu_would_be_exceeded():
    book = ledger()
    assert book.reserve("a", Resources(3 * NANO, GIB))
    assert book.reserve("b", Resources(NANO + 1, GIB)) is False
    assert not book.holds("b")
    assert book.allocated() == Resources(3 * NANO, GIB)


def test_ledger_reserve_fails_when_memory_would_be_exceeded():
    book = ledger()
    assert book.reserve("a", Resources(NANO, 6 * GIB))
    assert book.reserve("b", Resources(NANO, 2 * GIB + 1)) is False
    assert not book.holds("b")
    assert book.allocated() == Resources(NANO, 6 * GIB)


def test_ledger_reserve_fails_for_job_larger_than_capacity_on_empty_ledger():
    book = ledger()
    assert book.reserve("huge", Resources(5 * NANO, GIB)) is False
    assert book.running() == {}


def test_ledger_reserve_whole_capacity():
    book = ledger()
    assert book.reserve("all", CAPACITY)
    assert book.reserve("more", Resources(1, 1)) is False


def test_ledger_ten_tenths_of_a_cpu_fill_exactly_one_cpu():
    book = ledger(Resources(NANO, GIB), max_jobs=20)
    tenth = Resources(parse_cpu(0.1), MIB)
    for i in range(10):
        assert book.reserve(f"j{i}", tenth), f"reservation {i} of 0.1 CPU refused"
    assert book.allocated().nano_cpus == NANO
    assert book.free().nano_cpus == 0
    assert book.reserve("j10", Resources(1, MIB)) is False


def test_ledger_fractional_cpus_add_without_drift():
    book = ledger(Resources(parse_cpu(0.3), GIB))
    assert book.reserve("a", Resources(parse_cpu(0.1), MIB))
    assert book.reserve("b", Resources(parse_cpu(0.2), MIB))
    assert book.allocated().nano_cpus == parse_cpu(0.3)
    assert book.free().nano_cpus == 0


def test_ledger_double_reserve_of_same_id_fails():
    book = ledger()
    assert book.reserve("a", Resources(NANO, GIB))
    assert book.reserve("a", Resources(NANO, GIB)) is False
    assert book.running() == {"a": Resources(NANO, GIB)}
    assert book.allocated() == Resources(NANO, GIB)


def test_ledger_double_reserve_does_not_replace_the_booking():
    book = ledger()
    assert book.reserve("a", Resources(NANO, GIB))
    assert book.reserve("a", Resources(2 * NANO, 2 * GIB)) is False
    assert book.running()["a"] == Resources(NANO, GIB)


def test_ledger_ids_that_share_a_prefix_are_distinct():
    book = ledger()
    assert book.reserve("job", Resources(NANO, GIB))
    assert book.reserve("job-1", Resources(NANO, GIB))
    assert not book.holds("jo")
    assert book.release("job") == Resources(NANO, GIB)
    assert book.holds("job-1")


def test_ledger_id_of_the_maximum_length():
    job_id = "a" * ID_BYTES
    book = ledger()
    assert book.reserve(job_id, Resources(NANO, GIB))
    assert book.holds(job_id)
    assert book.running() == {job_id: Resources(NANO, GIB)}
    assert not book.holds("a" * (ID_BYTES - 1))
    assert book.release(job_id) == Resources(NANO, GIB)


# max_jobs


def test_ledger_max_jobs_limits_slots():
    book = ledger(max_jobs=3)
    tiny = Resources(1, 1)
    assert all(book.reserve(f"j{i}", tiny) for i in range(3))
    assert book.reserve("j3", tiny) is False
    assert len(book.running()) == 3


def test_ledger_released_slot_is_reused():
    book = ledger(max_jobs=1)
    tiny = Resources(1, 1)
    assert book.reserve("a", tiny)
    assert book.reserve("b", tiny) is False
    assert book.release("a") == tiny
    assert book.reserve("b", tiny)
    assert book.running() == {"b": tiny}


# release


def test_ledger_release_returns_what_was_held():
    book = ledger()
    book.reserve("a", Resources(NANO, GIB))
    assert book.release("a") == Resources(NANO, GIB)
    assert not book.holds("a")
    assert book.allocated() == ZERO
    assert book.free() == CAPACITY


def test_ledger_release_twice_is_harmless():
    book = ledger()
    book.reserve("a", Resources(NANO, GIB))
    book.reserve("b", Resources(2 * NANO, GIB))
    assert book.release("a") == Resources(NANO, GIB)
    assert book.release("a") is None
    assert book.allocated() == Resources(2 * NANO, GIB)
    assert book.running() == {"b": Resources(2 * NANO, GIB)}


def test_ledger_release_unknown_id_returns_none():
    book = ledger()
    book.reserve("a", Resources(NANO, GIB))
    assert book.release("never-booked") is None
    assert book.allocated() == Resources(NANO, GIB)


def test_ledger_release_frees_room_for_a_new_reservation():
    book = ledger()
    assert book.reserve("a", CAPACITY)
    assert not book.reserve("b", Resources(NANO, GIB))
    book.release("a")
    assert book.reserve("b", Resources(NANO, GIB))


def test_ledger_reserve_after_release_of_same_id():
    book = ledger()
    assert book.reserve("a", Resources(NANO, GIB))
    book.release("a")
    assert book.reserve("a", Resources(2 * NANO, GIB))
    assert book.running() == {"a": Resources(2 * NANO, GIB)}


# adopt


def test_ledger_adopt_books_past_capacity():
    book = ledger()
    assert book.reserve("a", Resources(3 * NANO, 4 * GIB))
    assert book.adopt("old", Resources(2 * NANO, 6 * GIB)) is True
    assert book.holds("old")
    assert book.allocated() == Resources(5 * NANO, 10 * GIB)
    assert book.free() == Resources(-NANO, -2 * GIB)


def test_ledger_after_adopting_past_capacity_reserve_refuses_until_back_under():
    book = ledger()
    assert book.adopt("old", Resources(5 * NANO, GIB))
    assert book.reserve("new", Resources(1, 1)) is False
    book.release("old")
    assert book.reserve("new", Resources(1, 1))


def test_ledger_adopt_same_id_twice_keeps_one_booking():
    book = ledger()
    assert book.adopt("old", Resources(NANO, GIB))
    assert book.adopt("old", Resources(NANO, GIB)) is True
    assert book.allocated() == Resources(NANO, GIB)
    assert len(book.running()) == 1


def test_ledger_adopt_already_reserved_id_keeps_the_booking():
    book = ledger()
    assert book.reserve("a", Resources(NANO, GIB))
    assert book.adopt("a", Resources(3 * NANO, 3 * GIB)) is True
    assert book.running() == {"a": Resources(NANO, GIB)}


def test_ledger_adopt_fails_without_a_free_slot():
    book = ledger(max_jobs=1)
    assert book.adopt("a", Resources(NANO, GIB))
    assert book.adopt("b", Resources(NANO, GIB)) is False
    assert not book.holds("b")


# Across processes


def test_ledger_is_shared_with_forked_processes():
    book = ledger()
    child = FORK.Process(target=book.reserve, args=("from-child", Resources(NANO, GIB)))
    child.start()
    child.join(5)
    assert child.exitcode == 0
    assert book.holds("from-child")
    assert book.allocated() == Resources(NANO, GIB)
    releaser = FORK.Process(target=book.release, args=("from-child",))
    releaser.start()
    releaser.join(5)
    assert releaser.exitcode == 0
    assert book.allocated() == ZERO


def _race_for_everything(book: Ledger, index: int, barrier: object, won: object) -> None:
    barrier.wait()
    won[index] = 1 if book.reserve(f"racer-{index}", book.capacity) else 0


def test_ledger_only_one_process_gets_the_whole_capacity():
    book = ledger()
    racers = 8
    for _round in range(3):
        barrier = FORK.Barrier(racers)
        won = FORK.RawArray("i", racers)
        processes = [
            FORK.Process(target=_race_for_everything, args=(book, i, barrier, won))
            for i in range(racers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(5)
        assert [p.exitcode for p in processes] == [0] * racers
        assert sum(won) == 1
        assert book.allocated() == CAPACITY
        (winner,) = book.running()
        assert book.release(winner) == CAPACITY


SIZES = [
    Resources(NANO // 10, 256 * MIB),
    Resources(NANO // 2, GIB),
    Resources(NANO, 2 * GIB),
    Resources(3 * NANO // 2, 3 * GIB),
    Resources(NANO // 4, 5 * GIB),
]


def _hammer(book: Ledger, worker: int, rounds: int, barrier: object, counts: object) -> None:
    """Reserve and release at random; count successes, refusals and violations."""
    rng = random.Random(worker)
    held: list[str] = []
    barrier.wait()
    for i in range(rounds):
        if held and (len(held) >= 3 or rng.random() < 0.4):
            job_id = held.pop(rng.randrange(len(held)))
            if book.release(job_id) is None:
                counts[worker * 3 + 2] += 1  # lost a booking
        else:
            job_id = f"w{worker}-{i}"
            if book.reserve(job_id, rng.choice(SIZES)):
                held.append(job_id)
                counts[worker * 3] += 1
            else:
                counts[worker * 3 + 1] += 1
        if not book.allocated().fits_in(book.capacity):
            counts[worker * 3 + 2] += 1  # over capacity
    for job_id in held:
        if book.release(job_id) is None:
            counts[worker * 3 + 2] += 1


def test_ledger_concurrent_reserve_release_never_exceeds_capacity():
    book = ledger(CAPACITY, max_jobs=32)
    workers, rounds = 6, 400
    barrier = FORK.Barrier(workers + 1)
    counts = FORK.RawArray("q", workers * 3)
    processes = [
        FORK.Process(target=_hammer, args=(book, w, rounds, barrier, counts))
        for w in range(workers)
    ]
    started = time.monotonic()
    for process in processes:
        process.start()
    barrier.wait()
    samples = 0
    while any(p.is_alive() for p in processes) and time.monotonic() - started < 10:
        assert book.allocated().fits_in(CAPACITY)
        samples += 1
    for process in processes:
        process.join(10)
    assert [p.exitcode for p in processes] == [0] * workers
    reserved = sum(counts[w * 3] for w in range(workers))
    refused = sum(counts[w * 3 + 1] for w in range(workers))
    violations = sum(counts[w * 3 + 2] for w in range(workers))
    assert violations == 0
    assert reserved > 100  # the processes really did book jobs
    assert refused > 0  # and really did run into the capacity
    assert samples > 0
    assert book.allocated() == ZERO
    assert book.running() == {}
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("max_jobs", [1, 4])
def test_ledger_concurrent_reserve_never_exceeds_max_jobs(max_jobs):
    book = ledger(Resources(100 * NANO, 100 * GIB), max_jobs=max_jobs)
    racers = 8
    barrier = FORK.Barrier(racers)
    won = FORK.RawArray("i", racers)

    def race(index: int) -> None:
        barrier.wait()
        won[index] = 1 if book.reserve(f"r{index}", Resources(NANO, GIB)) else 0

    processes = [FORK.Process(target=race, args=(i,)) for i in range(racers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(5)
    assert [p.exitcode for p in processes] == [0] * racers
    assert sum(won) == max_jobs
    assert len(book.running()) == max_jobs
