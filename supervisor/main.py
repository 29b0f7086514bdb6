"""jobq-supervisor: the parent process of a worker.

It owns the ledger and the metrics, forks the consumer and one monitor per
running container, and restarts children that die. SIGTERM or SIGINT stops it
promptly and leaves containers running for the next start to adopt; SIGUSR1
drains: no new jobs, exit once every running job has ended and been reported.

Like supervisord's main loop, signal handlers only record the signal; the
loop acts on it.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import multiprocess
from multiprocess.connection import wait as wait_for

from jobq.client.broker import BROKER_ENV, DEFAULT_BROKER_URL, redact, resolve_url
from jobq.client.errors import ConfigError
from jobq.client.outcome import Outcome, Status
from jobq.runner import containers
from jobq.runner.consumer import Consumer, Settings
from jobq.runner.monitor import monitor
from jobq.runner.runs import RunStore

from . import config as configs
from .ledger import Ledger
from .metrics import Metrics

log = logging.getLogger("jobq.supervisor")

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_DOCKER = 3
EXIT_METRICS = 4

RESTART_DELAYS = (0.5, 1, 2, 5, 10, 30)
MONITOR_MAX_CRASHES = 5  # in a row, for one job, before it is recorded as an error
STOP_GRACE_SECONDS = 10
PR_SET_PDEATHSIG = 1

EPILOG = f"""\
The config file (see etc/worker.toml) sets this worker's id, the CPU and memory
it may give to jobs, where it keeps run records and logs, the broker URL and
the metrics port. The broker URL comes from --broker, else ${BROKER_ENV}, else
[broker] url, else {DEFAULT_BROKER_URL}.

signals:
  SIGTERM, SIGINT  stop promptly. Running containers are left running; a
                   supervisor started again with the same [worker] id adopts them.
  SIGUSR1          drain: take no new jobs, wait for the running ones to end and
                   be reported, then exit.

exit status: 0 stopped on request, 2 invalid config, 3 Docker unreachable,
4 metrics port unavailable.
"""


@dataclass
class Child:
    """A forked child: the consumer, or the monitor of one job."""

    kind: str  # "consumer" or "monitor"
    job_id: str | None
    process: Any
    crashes: int = 0


class Supervisor:
    def __init__(self, config: configs.Config, broker_url: str) -> None:
        self.config = config
        self.broker_url = broker_url
        self.worker_id = config.worker.id
        self.context = multiprocess.get_context("fork")
        self.ledger = Ledger(config.worker.capacity, config.worker.max_jobs, self.context)
        self.store = RunStore(config.worker.state_dir)
        self.metrics = Metrics(self.worker_id, self.ledger)
        self.metrics_server: Any = None
        self.consumer: Child | None = None
        self.consumer_pipe: Any = None
        self.monitors: dict[str, Child] = {}
        self.restart_due: dict[tuple[str, str | None], tuple[float, int]] = {}
        self.stop_signal: int | None = None
        self.draining = False

    # -- lifecycle -------------------------------------------------------

    def run(self) -> int:
        try:
            self.store.prepare()
        except OSError as exc:
            log.error(
                "%s: [worker] state_dir %s: %s; choose a folder this user may write",
                self.config.source,
                self.config.worker.state_dir,
                exc.strerror or exc,
            )
            return EXIT_CONFIG
        try:
            containers.connect().close()
        except containers.EngineUnavailable as exc:
            log.error("%s", exc)
            return EXIT_DOCKER
        metrics = self.config.metrics
        try:
            self.metrics_server = self.metrics.serve(metrics.address, metrics.port)
        except OSError as exc:
            log.error(
                "%s: [metrics] port %s on %s: %s; choose another port",
                self.config.source,
                metrics.port,
                metrics.address,
                exc.strerror,
            )
            return EXIT_METRICS
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(signum, self._record_signal)
        log.info(
            "worker %s: capacity %s, state in %s, broker %s, metrics on :%s",
            self.worker_id,
            self.ledger.capacity,
            self.config.worker.state_dir,
            redact(self.broker_url),
            metrics.port,
        )
        self._adopt_runs()
        self._start_consumer()
        while self.stop_signal is None:
            self._tick()
        self._shutdown()
        return EXIT_OK

    def _record_signal(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGUSR1:
            self.draining = True
        else:
            self.stop_signal = signum

    def _tick(self) -> None:
        watched = [child.process.sentinel for child in self._children()]
        if self.consumer_pipe is not None:
            watched.append(self.consumer_pipe)
        wait_for(watched, timeout=0.5)
        if self.stop_signal is not None:
            return  # children may be dying of the same signal (a process-group kill)
        self._read_consumer()
        self._reap()
        self._restart_due()
        if self.draining:
            self._drain_step()

    def _drain_step(self) -> None:
        if not getattr(self, "_drain_announced", False):
            log.info(
                "worker %s: draining; %d job(s) still running", self.worker_id, len(self.monitors)
            )
            self._send_consumer("drain", None)
            self._drain_announced = True
        if not self.monitors and not self.store.active():
            log.info("worker %s: drained", self.worker_id)
            self.stop_signal = signal.SIGUSR1

    def _shutdown(self) -> None:
        running = [
            j
            for j in self.store.active()
            if self.store.outcome(j) is None and not self.store.kept(j)
        ]
        log.info(
            "worker %s: stopping on %s; %d job(s) left running for adoption",
            self.worker_id,
            signal.Signals(self.stop_signal).name,
            len(running),
        )
        for child in self._children():
            child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self._children():
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                child.process.kill()
                child.process.join(1)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()

    # -- children --------------------------------------------------------

    def _children(self) -> list[Child]:
        children = list(self.monitors.values())
        if self.consumer is not None:
            children.append(self.consumer)
        return children

    def _fork(self, kind: str, job_id: str | None, target: Any, *args: Any) -> Any:
        name = f"jobq-{kind}" + (f"-{job_id}" if job_id else "")
        process = self.context.Process(
            target=self._child_main, args=(target, *args), name=name, daemon=False
        )
        process.start()
        return process

    def _child_main(self, target: Any, *args: Any) -> None:
        # A child dies with its parent: a consumer orphaned by a SIGKILLed
        # supervisor would keep taking jobs nobody watches. Containers live
        # on regardless; they belong to Docker, not to this process tree.
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        if self.metrics_server is not None:
            self.metrics_server.socket.close()  # else the port stays bound by children
        target(*args)

    def _start_consumer(self, crashes: int = 0) -> None:
        parent_end, child_end = self.context.Pipe()
        settings = Settings(
            window=self.config.broker.prefetch,
            heartbeat_interval=self.config.worker.heartbeat_interval,
            worker_timeout=self.config.worker.worker_timeout,
            rules=self.config.placement,
        )
        consumer = Consumer(
            self.broker_url, self.worker_id, self.ledger, self.store, child_end, settings
        )
        consumer.draining = self.draining  # before it consumes anything
        process = self._fork("consumer", None, consumer.run)
        child_end.close()
        self.consumer_pipe = parent_end
        self.consumer = Child("consumer", None, process, crashes)
        if self.draining:
            self._send_consumer("drain", None)

    def _start_monitor(self, job_id: str, crashes: int = 0) -> None:
        if job_id in self.monitors or ("monitor", job_id) in self.restart_due:
            return
        process = self._fork("monitor", job_id, monitor, job_id, self.worker_id, self.store)
        self.monitors[job_id] = Child("monitor", job_id, process, crashes)

    # -- runs ------------------------------------------------------------

    def _adopt_runs(self) -> None:
        """Book the runs a previous supervisor with this id left, and watch their containers.

        A run whose container is gone (the host rebooted) is not started again
        yet: first the consumer must read our inbox, in case the job was
        requeued to another worker while we were away. It says "sync" then.
        """
        for job_id in self.store.active():
            if not self.store.claimed(job_id) or self.store.outcome(job_id) is not None:
                continue  # never ours (the consumer forgets it), or over (sync reports it)
            if self.store.kept(job_id) and not self.store.revoked(job_id):
                continue  # waiting for room, not started: the consumer holds it in line
            if self.store.revoked(job_id):
                self._drop_revoked(job_id)
                continue
            self.ledger.adopt(job_id, self.store.job(job_id).resources)
            if self._container_exists(job_id):
                log.info("job %s: adopting its running container", job_id)
                self.metrics.container_adopted()
                self._start_monitor(job_id)

    def _sync(self) -> None:
        """The consumer is connected and has read its inbox: put every claimed run in motion."""
        for job_id in self.store.active():
            if not self.store.claimed(job_id) or job_id in self.monitors:
                continue
            if self.store.revoked(job_id):
                self._drop_revoked(job_id)
            elif self.store.outcome(job_id) is not None:
                self._send_consumer("ended", job_id)
            elif self.store.kept(job_id):
                continue  # waiting for room: the consumer starts it when it fits
            elif ("monitor", job_id) not in self.restart_due:
                # Booked already if adopted at start-up; adopt() is idempotent.
                self.ledger.adopt(job_id, self.store.job(job_id).resources)
                log.info("job %s: its container is gone; starting the job again here", job_id)
                self._start_monitor(job_id)

    def _container_exists(self, job_id: str) -> bool:
        client = containers.connect()
        try:
            return containers.find(client, job_id, self.worker_id) is not None
        finally:
            client.close()

    def _cancel(self, job_id: str) -> None:
        """Stop a cancelled job's container; its monitor then records the outcome as cancelled.

        The stop waits up to the grace period for the process to exit, so it
        runs on a thread: the parent's loop must not wait with it.
        """
        if job_id not in self.monitors and ("monitor", job_id) not in self.restart_due:
            if self.store.has(job_id) and self.store.outcome(job_id) is None:
                self._record_without_container(
                    job_id, Status.CANCELLED, "cancelled before its container started"
                )
            return
        log.info("job %s: cancelled; stopping its container", job_id)
        threading.Thread(target=self._stop_container, args=(job_id,), daemon=True).start()

    def _stop_container(self, job_id: str) -> None:
        try:
            client = containers.connect()
            try:
                found = containers.find(client, job_id, self.worker_id)
                if found is not None:
                    containers.stop(found, STOP_GRACE_SECONDS)
            finally:
                client.close()
        except containers.EngineUnavailable as exc:
            log.error("job %s: could not stop the cancelled container: %s", job_id, exc)

    def _drop_revoked(self, job_id: str) -> None:
        """The job was requeued to another worker: remove our container and forget the run."""
        try:
            client = containers.connect()
            try:
                found = containers.find(client, job_id, self.worker_id)
                if found is not None:
                    containers.remove(found)
            finally:
                client.close()
        except containers.EngineUnavailable as exc:
            log.warning("job %s: cannot remove the revoked container yet: %s", job_id, exc)
            self._schedule_restart("revoke", job_id, 1)
            return
        self.ledger.release(job_id)
        self.metrics.finished.labels(self.worker_id, "requeued").inc()
        self.store.forget(job_id)
        log.info("job %s: our run stopped and forgotten; it runs elsewhere now", job_id)

    def _read_consumer(self) -> None:
        try:
            while self.consumer_pipe is not None and self.consumer_pipe.poll():
                kind, value = self.consumer_pipe.recv()
                if kind == "start":
                    self._start_monitor(value)
                elif kind == "sync":
                    self._sync()
                elif kind == "revoke":
                    child = self.monitors.get(value)
                    if child is not None:
                        child.process.terminate()  # _reap drops the run once it is gone
                    else:
                        self._drop_revoked(value)
                elif kind == "broker":
                    self.metrics.broker_state(value)
                elif kind == "parked":
                    self.metrics.parked.labels(self.worker_id).inc()
                elif kind == "queues":
                    for queue, depth in value.items():
                        self.metrics.queue_depth.labels(self.worker_id, queue).set(depth)
                elif kind == "cancel":
                    self._cancel(value)
                elif kind == "cancelled-waiting":
                    self.metrics.finished.labels(self.worker_id, "cancelled").inc()
        except (EOFError, OSError):
            self.consumer_pipe = None  # the consumer died; _reap restarts it

    def _send_consumer(self, kind: str, value: Any) -> None:
        try:
            if self.consumer_pipe is not None:
                self.consumer_pipe.send((kind, value))
        except (BrokenPipeError, OSError):
            pass  # the consumer is dying; its successor syncs on start

    def _reap(self) -> None:
        if self.consumer is not None and self.consumer.process.exitcode is not None:
            self._read_consumer()
            log.error(
                "consumer exited unexpectedly (%s); restarting it",
                _describe_exit(self.consumer.process.exitcode),
            )
            self.metrics.broker_state(False)
            self._schedule_restart("consumer", None, self.consumer.crashes + 1)
            self.consumer = None
            self.consumer_pipe = None
        for job_id, child in list(self.monitors.items()):
            if child.process.exitcode is not None:
                del self.monitors[job_id]
                self._monitor_exited(job_id, child)

    def _monitor_exited(self, job_id: str, child: Child) -> None:
        if self.store.revoked(job_id):
            self._drop_revoked(job_id)
            return
        outcome = self.store.outcome(job_id)
        if outcome is not None:
            self._job_ended(outcome)
            return
        crashes = child.crashes + 1
        log.error(
            "job %s: monitor exited without an outcome (%s), crash %d of %d",
            job_id,
            _describe_exit(child.process.exitcode),
            crashes,
            MONITOR_MAX_CRASHES,
        )
        if crashes >= MONITOR_MAX_CRASHES:
            self._give_up(job_id)
        else:
            self._schedule_restart("monitor", job_id, crashes)

    def _job_ended(self, outcome: Outcome) -> None:
        self.ledger.release(outcome.job_id)
        self.metrics.job_finished(outcome)
        self._send_consumer("ended", outcome.job_id)

    def _give_up(self, job_id: str) -> None:
        self._record_without_container(
            job_id,
            Status.ERROR,
            f"its monitor failed {MONITOR_MAX_CRASHES} times in a row; see the supervisor's log",
        )

    def _record_without_container(self, job_id: str, status: Status, reason: str) -> None:
        """End a run that has no monitor to record it: write its outcome and report it."""
        job = self.store.job(job_id)
        outcome = Outcome.without_run(
            job,
            self.worker_id,
            status,
            reason,
            self.store.attempt(job_id),
            log_path=str(self.store.log_path(job_id)),
        )
        self.store.record_outcome(outcome)
        self._job_ended(outcome)

    def _schedule_restart(self, kind: str, job_id: str | None, crashes: int) -> None:
        delay = RESTART_DELAYS[min(crashes - 1, len(RESTART_DELAYS) - 1)]
        self.restart_due[(kind, job_id)] = (time.monotonic() + delay, crashes)
        if kind != "revoke":
            self.metrics.process_restarted(kind)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for (kind, job_id), (due, crashes) in list(self.restart_due.items()):
            if due > now:
                continue
            del self.restart_due[(kind, job_id)]
            if kind == "consumer":
                self._start_consumer(crashes)
            elif kind == "monitor" and job_id is not None:
                self._start_monitor(job_id, crashes)
            elif kind == "revoke" and job_id is not None:
                self._drop_revoked(job_id)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobq-supervisor",
        description="Run a jobq worker: take jobs from RabbitMQ and run as many Docker "
        "containers at once as fit this worker's CPU and memory.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-c",
        "--config",
        required=True,
        metavar="FILE",
        help="the worker's TOML config, e.g. etc/worker.toml",
    )
    parser.add_argument("--broker", metavar="URL", help="RabbitMQ URL; overrides the config")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default: INFO",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s",
    )
    # pika logs every failed reconnect as errors with tracebacks; the consumer
    # logs one line per event itself.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    try:
        config = configs.load(args.config)
    except ConfigError as exc:
        print(f"jobq-supervisor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    url = resolve_url(args.broker, config.broker.url)
    return Supervisor(config, url).run()


if __name__ == "__main__":
    sys.exit(main())
