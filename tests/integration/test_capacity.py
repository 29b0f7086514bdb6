"""Must hold 1 and 3: a worker runs as much as fits, at once, and never more; workers of
different sizes share one broker."""

from __future__ import annotations

from harness import Cluster, OutcomeListener, job, overlap, peak_usage, send

from jobq.client.units import parse_memory

MIB = 1024 * 1024


def needs_of(docs: list[dict]) -> dict[str, tuple[float, int]]:
    return {d["id"]: (d["resources"]["cpu"], parse_memory(d["resources"]["memory"])) for d in docs}


def test_worker_runs_fitting_jobs_together_and_never_over_capacity(
    cluster: Cluster, outcomes: OutcomeListener
):
    worker = cluster.worker(cpu=2, memory="256m")
    docs = [job(["sleep", "2"], cpu=1, memory="64m") for _ in range(4)]
    docs += [job(["sleep", "1"], cpu=0.5, memory="128m") for _ in range(2)]
    for doc in docs:
        assert send(cluster.broker_url, doc).returncode == 0

    done = outcomes.wait_for(len(docs), timeout=90)

    assert {o.status.value for o in done} == {"succeeded"}
    assert {o.worker for o in done} == {worker.id}
    cpu, memory, _jobs = peak_usage(done, needs_of(docs))
    assert cpu <= 2
    assert memory <= 256 * MIB
    one_cpu = [o for o in done if o.job_id in {d["id"] for d in docs[:4]}]
    assert any(overlap(a, b) for a in one_cpu for b in one_cpu if a is not b), (
        "two 1-CPU jobs on a 2-CPU worker never ran at the same time"
    )


def test_memory_bounds_how_many_run_at_once(cluster: Cluster, outcomes: OutcomeListener):
    cluster.worker(cpu=2, memory="128m")
    docs = [job(["sleep", "1.5"], cpu=0.1, memory="64m") for _ in range(4)]
    for doc in docs:
        assert send(cluster.broker_url, doc).returncode == 0

    done = outcomes.wait_for(len(docs), timeout=90)

    _cpu, memory, jobs = peak_usage(done, needs_of(docs))
    assert memory <= 128 * MIB
    assert jobs == 2, "two 64m jobs fit a 128m worker and should have run together"


def test_workers_of_different_sizes_share_one_broker(cluster: Cluster, outcomes: OutcomeListener):
    small = cluster.worker(cpu=0.5, memory="128m", name="small")
    large = cluster.worker(cpu=2, memory="512m", name="large")
    big = job(["sleep", "1"], cpu=1.5, memory="256m")
    smalls = [job(["sleep", "1"], cpu=0.25, memory="32m") for _ in range(6)]
    for doc in [big, *smalls]:
        assert send(cluster.broker_url, doc).returncode == 0

    done = outcomes.wait_for(1 + len(smalls), timeout=90)

    by_id = {o.job_id: o for o in done}
    assert by_id[big["id"]].worker == large.id, "the job only the large worker fits ran elsewhere"
    assert by_id[big["id"]].status.value == "succeeded"
    needs = needs_of([big, *smalls])
    for worker, (cpu_cap, mem_cap) in ((small, (0.5, 128 * MIB)), (large, (2, 512 * MIB))):
        mine = [o for o in done if o.worker == worker.id]
        cpu, memory, _ = peak_usage(mine, needs)
        assert cpu <= cpu_cap and memory <= mem_cap, f"{worker.id} ran {cpu} CPU / {memory} B"
