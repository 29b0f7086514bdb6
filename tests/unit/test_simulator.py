"""supervisor/sim_*.py and simulator.py: jobq-sim on workloads small enough to check by hand."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import pytest

from jobq.client.units import NANO, Resources
from jobq.supervisor.placement import Decision, Rules, greedy, head_of_line, place
from jobq.supervisor.sim_engine import (
    Settings,
    SimJob,
    SimulationError,
    WorkerSpec,
    simulate,
)
from jobq.supervisor.sim_metrics import lower_bound, measure, percentile
from jobq.supervisor.sim_workload import DEFAULT_MEMORY_PER_CPU, arrange, read_jsonl, read_swf
from jobq.supervisor.simulator import build_parser, main, prepare

GIB = 1024**3
MIB = 1024**2


def worker(cpu: float, memory_gib: float = 8, name: str = "w") -> WorkerSpec:
    return WorkerSpec(name, Resources(round(cpu * NANO), round(memory_gib * GIB)))


def sim_job(
    job_id: str, submit: float, runtime: float, cpu: float, memory_gib: float = 1
) -> SimJob:
    return SimJob(job_id, submit, runtime, Resources(round(cpu * NANO), round(memory_gib * GIB)))


def by_id(runs):
    return {run.job.id: run for run in runs}


# -- hand-computed schedules ---------------------------------------------------

# One 4-CPU worker; all three jobs sent at 0, in this order.
THREE = [sim_job("a", 0, 10, 3), sim_job("b", 0, 4, 2), sim_job("c", 0, 4, 1)]


def test_sim_greedy_and_place_backfill_the_free_cpu_past_a_job_that_does_not_fit():
    # t=0: a starts (1 CPU left); b (2 CPUs) waits; c (1 CPU) starts beside a.
    # t=10: a ends, b starts; it ends at 14.
    for policy in (place, greedy):
        outcome = simulate(THREE, [worker(4)], policy, Settings(window=20))
        runs = by_id(outcome.runs)
        assert [(runs[j].start, runs[j].end) for j in "abc"] == [(0, 10), (10, 14), (0, 4)]
        metrics = measure(outcome.runs, [worker(4)])
        assert metrics.makespan == 14
        assert metrics.mean_wait == pytest.approx(10 / 3)
        assert metrics.max_wait == 10
        assert metrics.cpu_utilisation == pytest.approx(42 / (4 * 14))
        # slowdowns: a 1, b (10 + 4) / 10 = 1.4, c max(1, 4 / 10) = 1
        assert metrics.mean_bounded_slowdown == pytest.approx(3.4 / 3)


def test_sim_head_of_line_idles_behind_a_job_that_does_not_fit():
    # Window of one: c is not even seen until b starts at 10.
    outcome = simulate(THREE, [worker(4)], head_of_line, Settings(window=1))
    runs = by_id(outcome.runs)
    assert [(runs[j].start, runs[j].end) for j in "abc"] == [(0, 10), (10, 14), (10, 14)]
    assert measure(outcome.runs, [worker(4)]).mean_wait == pytest.approx(20 / 3)


def test_sim_a_job_no_worker_here_fits_travels_round_robin_to_one_that_does():
    # A has 1 CPU, B 2. Round-robin: p -> A, q -> B (q starts). A can never fit p:
    # at 2 s it goes back, and A, next in turn, takes it again; at 4 s it goes
    # back and B takes it; B starts it when q ends at 5.
    small, big = worker(1, name="A"), worker(2, name="B")
    jobs = [sim_job("p", 0, 6, 2), sim_job("q", 0, 5, 1)]
    outcome = simulate(jobs, [small, big], place, Settings(rules=Rules(give_back_after=2)))
    runs = by_id(outcome.runs)
    assert (runs["p"].worker, runs["p"].start, runs["p"].end) == (1, 5, 11)
    assert (runs["q"].worker, runs["q"].start) == (1, 0)
    assert outcome.give_backs == 2
    assert measure(outcome.runs, [small, big]).makespan == 11


def test_sim_a_job_given_back_goes_to_the_back_of_the_queue():
    seen: list[tuple[float, list[str]]] = []

    def watching(capacity, free, free_slots, waiting, now, rules, running) -> Decision:
        seen.append((now, sorted(c.job_id for c in waiting)))
        return greedy(capacity, free, free_slots, waiting, now, rules, running)

    # Greedy gives back all it held too long (ours keeps its head: the next test).
    # One 2-CPU worker, window 1, hold limit 4 s. a runs 0-10; b waits, held.
    # c arrives at 1 and queues. At 4 b goes back BEHIND c: c is delivered
    # next; at 8 c goes back behind b. At 10 a ends: b starts, then c.
    jobs = [sim_job("a", 0, 10, 2), sim_job("b", 0, 1, 2), sim_job("c", 1, 1, 1)]
    settings = Settings(window=1, rules=Rules(hold_limit=4))
    outcome = simulate(jobs, [worker(2)], watching, settings)
    assert seen[:7] == [
        (0, ["a"]),
        (0, ["b"]),
        (4, ["b"]),  # held 4 s: handed back
        (4, ["c"]),  # the queue's head, ahead of b
        (8, ["c"]),
        (8, ["b"]),
        (10, ["b"]),
    ]
    assert outcome.give_backs == 2
    assert [(r.job.id, r.start) for r in outcome.runs] == [("a", 0), ("b", 10), ("c", 11)]


def test_sim_place_keeps_its_head_past_the_hold_limit_and_takes_more_jobs_beside_it():
    # a runs 0-10 on 2 CPUs; b (2 CPUs) is the head from 0, overdue from 3. At 4 it is
    # kept, not given back: it leaves the window, so c is delivered, and b starts the
    # moment a ends.
    jobs = [sim_job("a", 0, 10, 2), sim_job("b", 0, 1, 2), sim_job("c", 1, 1, 1)]
    settings = Settings(window=1, rules=Rules(hold_limit=4, overdue_after=3))
    outcome = simulate(jobs, [worker(2)], place, settings)
    starts = {r.job.id: r.start for r in outcome.runs}
    assert starts == {"a": 0, "b": 10, "c": 11}
    assert outcome.give_backs == 1  # c, held 4 s beside the kept head (4-8), then back


def test_sim_decision_latency_and_overheads():
    settings = Settings(decision_latency=0.2, start_overhead=0.4, end_overhead=0.3)
    outcome = simulate([sim_job("a", 0, 10, 1)], [worker(1)], place, settings)
    (run,) = outcome.runs
    assert (run.start, run.end) == (pytest.approx(0.2), pytest.approx(10.9))


def test_sim_free_slots_are_the_worker_max_jobs():
    jobs = [sim_job(str(i), 0, 10, 0.5) for i in range(4)]
    outcome = simulate(jobs, [worker(4)], place, Settings(max_jobs=2))
    assert sorted(run.start for run in outcome.runs) == [0, 0, 10, 10]


# -- starvation ----------------------------------------------------------------


def test_sim_greedy_starves_a_large_job_that_place_starts():
    # Three 1-CPU jobs run; a 4-CPU job arrives at 1; a new 1-CPU job every 3 s
    # for two minutes keeps at least three running. Greedy gives every freed
    # CPU to a newcomer; ours makes the big job the head of the line and
    # starts it once the running ones end.
    jobs = [sim_job(f"s{i}", 0, 10, 1) for i in range(3)]
    jobs.append(sim_job("big", 1, 10, 4))
    jobs += [sim_job(f"t{i:02d}", 2 + 3 * i, 10, 1) for i in range(40)]
    settings = Settings()
    waits = {}
    for name, policy in (("greedy", greedy), ("place", place)):
        runs = by_id(simulate(jobs, [worker(4)], policy, settings).runs)
        waits[name] = runs["big"].start - runs["big"].job.submit
    assert waits["greedy"] > 100  # only after the stream stops
    assert waits["place"] <= 10  # the running ones end


# -- never overrun -------------------------------------------------------------


def test_sim_no_policy_ever_overruns_a_worker():
    rng = random.Random(7)
    workers = [worker(4, 4, "a"), worker(2, 4, "b"), worker(3, 2, "c")]
    jobs = [
        sim_job(
            f"{i:03d}",
            submit=rng.uniform(0, 50),
            runtime=rng.uniform(1, 20),
            cpu=rng.choice([0.5, 1, 2, 3, 4]),
            memory_gib=rng.choice([0.25, 1, 2, 4]),
        )
        for i in range(150)
    ]
    settings = Settings(window=5, rules=Rules(hold_limit=15))
    for policy in (place, greedy, head_of_line):
        outcome = simulate(jobs, workers, policy, settings)
        assert len(outcome.runs) == len(jobs)
        for index, spec in enumerate(workers):
            mine = [run for run in outcome.runs if run.worker == index]
            for moment in {run.start for run in mine}:
                busy = [run.job.need for run in mine if run.start <= moment < run.end]
                assert sum(n.nano_cpus for n in busy) <= spec.capacity.nano_cpus
                assert sum(n.memory for n in busy) <= spec.capacity.memory


def test_sim_stops_a_policy_that_overruns_a_worker():
    def reckless(capacity, free, free_slots, waiting, now, rules, running) -> Decision:
        return Decision([c.job_id for c in waiting], [])

    jobs = [sim_job("a", 0, 10, 1), sim_job("b", 0, 10, 1)]
    with pytest.raises(SimulationError, match="started job b"):
        simulate(jobs, [worker(1)], reckless)


def test_sim_gives_ours_the_estimates_and_a_short_job_runs_before_the_wide_head_fits():
    jobs = [
        replace(sim_job("ahead", 0, 100, 3), estimate=100),
        sim_job("wide", 1, 50, 4),
        replace(sim_job("short", 2, 10, 1), estimate=10),
    ]
    assert by_id(simulate(jobs, [worker(4)], place).runs)["short"].start == 2
    without = [replace(job, estimate=math.inf) for job in jobs]
    assert by_id(simulate(without, [worker(4)], place).runs)["short"].start == 150


def test_sim_refuses_a_job_no_worker_fits():
    with pytest.raises(ValueError, match="fits no worker"):
        simulate([sim_job("huge", 0, 1, 8)], [worker(4)], place)


def test_prepare_leaves_out_and_counts_jobs_larger_than_every_worker():
    workload = read_jsonl(
        [
            '{"submit": 0, "runtime": 5, "cpu": 2, "memory": "1g"}',
            '{"submit": 1, "runtime": 5, "cpu": 8, "memory": "1g", "id": "huge"}',
        ]
    )
    jobs, too_big = prepare(workload, [worker(4)])
    assert [j.id for j in too_big] == ["huge"] and len(jobs) == 1


# -- metrics -------------------------------------------------------------------


def test_lower_bound_cpu_time_over_total_cpu():
    jobs = [sim_job("a", 0, 10, 4), sim_job("b", 0, 10, 4)]
    assert lower_bound(jobs, [worker(2), worker(2)]) == 20  # 80 CPU-s on 4 CPUs


def test_lower_bound_memory_time_over_total_memory():
    jobs = [sim_job("a", 0, 10, 1, memory_gib=8), sim_job("b", 0, 10, 1, memory_gib=8)]
    assert lower_bound(jobs, [worker(4, memory_gib=8)]) == 20


def test_lower_bound_latest_submit_plus_runtime_from_the_first_submit():
    jobs = [sim_job("a", 100, 1, 1), sim_job("b", 200, 5, 1)]
    assert lower_bound(jobs, [worker(4)]) == 105


def test_percentile_is_nearest_rank():
    values = list(range(1, 21))
    assert percentile(values, 0.95) == 19
    assert percentile(values, 1.0) == 20
    assert percentile([5.0], 0.95) == 5.0


# -- reading workloads ---------------------------------------------------------

SWF = [
    "; Version: 2.2",
    ";   a comment, then a blank line",
    "",
    # id submit wait run alloc cpu-used mem-used req-procs req-time req-mem ...
    "1 100 5 60 2 -1 409600 2 120 409600 1 1 1 -1 -1 1 -1 -1",
    "2 110 5 -1 2 -1 -1 2 120 1024 1 1 1 -1 -1 1 -1 -1",  # run time unknown
    "3 120 5 30 -1 -1 -1 4 -1 -1 1 1 1 -1 -1 1 -1 -1",  # allocated, time, memory unknown
    "4 130 5 0 1 -1 -1 1 120 1024 1 1 1 -1 -1 1 -1 -1",  # ran 0 s
    "5 140 5 20 -1 -1 -1 -1 120 1024 1 1 1 -1 -1 1 -1 -1",  # no processors at all
]


def test_read_swf_maps_fields_to_jobs():
    workload = read_swf(SWF)
    first, third = workload.jobs
    # The requested time (field 9) is the estimate a policy may see.
    assert first == SimJob("000000001", 100, 60, Resources(2 * NANO, 2 * 400 * MIB), 0, 120)
    # Requested processors when allocated is -1; the default memory per CPU when -1;
    # no estimate when the requested time is -1.
    need = Resources(4 * NANO, 4 * DEFAULT_MEMORY_PER_CPU)
    assert third == SimJob("000000003", 120, 30, need, 0, math.inf)


def test_read_swf_counts_what_it_skips():
    workload = read_swf(SWF)
    assert (workload.read, workload.no_runtime, workload.no_cpu) == (5, 2, 1)
    assert workload.memory_defaulted == 1 and workload.skipped == 3


def test_read_swf_names_a_line_it_cannot_read():
    with pytest.raises(ValueError, match="trace:2"):
        read_swf(["; ok", "1 2 3"], source="trace")


def test_read_jsonl_reads_sizes_as_jobq_does():
    workload = read_jsonl(
        [
            '{"submit": 0, "runtime": 5, "cpu": 0.5, "memory": "256m"}',
            "",
            '{"submit": 3, "runtime": 7, "cpu": 2, "memory": 1073741824, "priority": 4, "id": "x",'
            ' "expected_runtime": "2m"}',
        ]
    )
    first, second = workload.jobs
    assert first.need == Resources(NANO // 2, 256 * MIB) and first.id == "000000001"
    assert first.estimate == math.inf
    assert second == SimJob("x", 3, 7, Resources(2 * NANO, GIB), priority=4, estimate=120)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"submit": 0, "runtime": 5, "cpu": 1}', "missing memory"),
        ('{"submit": 0, "runtime": 5, "cpu": 1, "memory": "lots"}', "cannot read"),
        ('{"submit": "soon", "runtime": 5, "cpu": 1, "memory": 1}', "submit must be"),
        ("[1, 2]", "expected an object"),
        ("{not json", "not JSON"),
        (
            '{"submit": 0, "runtime": 5, "cpu": 1, "memory": 1, "expected_runtime": "soon"}',
            "expected_runtime must be",
        ),
    ],
)
def test_read_jsonl_names_the_line_and_the_problem(line, message):
    with pytest.raises(ValueError, match=message) as caught:
        read_jsonl(['{"submit": 0, "runtime": 1, "cpu": 1, "memory": 1}', line], source="f")
    assert str(caught.value).startswith("f:2:")


def test_arrange_rebases_scales_flattens_and_limits():
    jobs = [sim_job("b", 160, 1, 1), sim_job("a", 100, 1, 1), sim_job("c", 110, 1, 1)]
    assert [j.submit for j in arrange(jobs)] == [0, 10, 60]
    assert [j.submit for j in arrange(jobs, time_scale=0.5)] == [0, 5, 30]
    assert [j.submit for j in arrange(jobs, all_at_once=True)] == [0, 0, 0]
    assert [j.id for j in arrange(jobs, limit=2)] == ["a", "c"]


def test_arrange_gives_the_estimates_asked_for_and_never_scales_them_with_time():
    jobs = [SimJob("a", 100, 50, Resources(NANO, GIB), estimate=60)]
    assert arrange(jobs, time_scale=0.5)[0].estimate == 60
    assert arrange(jobs, estimates="none")[0].estimate == math.inf
    assert arrange(jobs, estimates="runtime")[0].estimate == 50
    assert arrange(jobs, estimate_scale=0.1)[0].estimate == pytest.approx(6)
    with pytest.raises(ValueError, match="estimates must be one of"):
        arrange(jobs, estimates="guess")


# -- the command ----------------------------------------------------------------


def write_jobs(tmp_path) -> str:
    path = tmp_path / "jobs.jsonl"
    lines = [
        {"submit": 0, "runtime": 10, "cpu": 3, "memory": "1g"},
        {"submit": 0, "runtime": 4, "cpu": 2, "memory": "1g"},
        {"submit": 0, "runtime": 4, "cpu": 1, "memory": "1g"},
        {"submit": 5, "runtime": 4, "cpu": 8, "memory": "1g", "id": "too-big"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def test_main_prints_one_row_per_policy_and_the_unschedulable(tmp_path, capsys):
    assert main([write_jobs(tmp_path), "--worker", "4:8g", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "unschedulable, left out: 1 jobs" in out and "too-big" in out
    rows = [line.split()[0] for line in out.splitlines() if line.split()[:1]]
    assert {"ours", "greedy", "head-of-line"} <= set(rows)


def test_main_json_has_every_metric(tmp_path, capsys):
    args = [write_jobs(tmp_path), "--worker", "4:8g", "--all-at-once", "--json", "--jobs", "1"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    ours = doc["policies"]["ours"]
    assert ours["makespan"] == 14 and ours["max_wait"] == 10
    assert doc["policies"]["head-of-line"]["mean_wait"] == pytest.approx(20 / 3)
    assert doc["lower_bound"] == 10.5 and doc["workload"]["unschedulable"] == 1
    assert doc["policies"]["greedy"]["hold_limit"] is None  # unlimited, as the issue defines it


def test_main_gives_ours_the_estimates_it_is_told_to(tmp_path, capsys):
    # A 3-CPU job runs 10 s; a 4-CPU one waits for it; a 1-CPU job of 4 s fits
    # beside them only if it says it ends first.
    path = tmp_path / "jobs.jsonl"
    lines = [
        {"submit": 0, "runtime": 10, "cpu": 3, "memory": "1g", "expected_runtime": 10},
        {"submit": 1, "runtime": 4, "cpu": 4, "memory": "1g"},
        {"submit": 2, "runtime": 4, "cpu": 1, "memory": "1g", "expected_runtime": "5s"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    common = [str(path), "--worker", "4:8g", "--policy", "ours", "--json"]

    def max_wait(*extra: str) -> float:
        assert main([*common, *extra]) == 0
        return json.loads(capsys.readouterr().out)["policies"]["ours"]["max_wait"]

    assert max_wait() == 9  # the wide job waits 9 s; the short one none
    assert max_wait("--estimates", "none") == 12  # the short one waits for the wide one
    # Estimates of 3 s and 1.5 s: the short job would end after the wide one should
    # fit, and from 3 s on the running job has broken its estimate.
    assert max_wait("--estimate-scale", "0.3") == 12


@pytest.mark.parametrize("text", ["abc", "0", "-1", "inf", "nan"])
def test_main_explains_a_bad_scale(text, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["x.swf", "--estimate-scale", text])
    assert f"must be a finite number above 0, got '{text}'" in capsys.readouterr().err


def test_main_explains_a_bad_worker(capsys):
    with pytest.raises(SystemExit):
        main(["x.swf", "--worker", "lots"])
    assert "CPU:MEMORY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30m", 1800), ("150h", 540000), ("6d", 518400), ("1w", 604800), ("0", 0)],
)
def test_main_reads_overdue_after_with_a_unit(text, seconds):
    assert build_parser().parse_args(["x.swf", "--overdue-after", text]).overdue_after == seconds
    assert build_parser().parse_args(["x.swf", "--overdue-after", "inf"]).overdue_after == math.inf


@pytest.mark.parametrize("text", ["-1", "6 days", "h", "1y", "6D", "nan"])
def test_main_explains_a_bad_overdue_after(text, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["x.swf", "--overdue-after", text])
    assert "--overdue-after" in capsys.readouterr().err
