"""jobq-send: check a job file and publish it to RabbitMQ."""

from __future__ import annotations

import argparse
import sys
import time

import pika.exceptions

from . import job as jobs
from . import workers
from .broker import BROKER_ENV, DEFAULT_BROKER_URL, connect, resolve_url
from .errors import BrokerUnavailable
from .follow import Follower, since_now
from .job import Job
from .outcome import Outcome
from .publish import Publisher
from .sources import read_jobs

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_BROKER = 3
EXIT_TIMEOUT = 124
PROGRESS_EVERY = 500

EPILOG = f"""\
a job file holds one JSON object, for example:

  {{"image": "jobq/busybox:latest", "cmd": ["sh", "-c", "echo $GREETING"],
   "env": {{"GREETING": "hi"}}, "resources": {{"cpu": 0.5, "memory": "256m"}}}}

  image       required: the Docker image to run (pulled by the worker if missing)
  resources   required: cpu, at least 0.01 (may be fractional), and memory, at
              least 6m (bytes, or 512k, 256m, 2g...: binary units, as Docker's)
  cmd         the arguments, passed as they are, with no shell; [] runs the image's default
  env         environment variables: string names to string values
  id          your own job id (1-64 of A-Z a-z 0-9 _ . -); default: a random one.
              A job id runs once at a time: sending it again while it runs
              does nothing (a different job under a running id is dead-lettered)
  name        a label for people; shown in logs and outcomes
  priority    -1000 to 1000, default 0: of two jobs that both fit, the higher starts first
  expected_runtime
              how long it expects to run: seconds, or "30m", "2h", "7d"... A hint
              that lets it run in room a larger job waits for; never a limit
see docs/job-format.md for the whole format.

broker URL: --broker, else ${BROKER_ENV}, else {DEFAULT_BROKER_URL}

exit status:
  0     sent (without --wait)
  2     the job file is invalid; nothing was published
  3     RabbitMQ is unreachable or did not confirm; the job may not have been sent
  124   --timeout passed before the job ended (the job goes on)
  with --wait: the job's own exit code, or 125 if its container never ran
        (outcome image_unavailable, start_failed or error; the summary says which)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobq-send",
        description="Check a job and publish it to the jobq queue; print its id.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="a job file (JSON), a JSON-lines file (one job a line), a folder of them, "
        "or - for standard input",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="wait for the job to end, print its output and exit with its exit code",
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="like --wait, but print the output as it comes, each line prefixed with the "
        "job's id (coloured on a terminal)",
    )
    parser.add_argument(
        "--follow-id",
        metavar="JOB_ID",
        help="follow a job sent earlier (running or ended) instead of sending one",
    )
    parser.add_argument(
        "--broker", metavar="URL", help="RabbitMQ URL (amqp://user:pass@host/vhost)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --wait, give up waiting after this long (exit 124)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.file is None) == (args.follow_id is None):
        parser.error("give a FILE to send, or --follow-id JOB_ID to follow (not both)")
    if args.follow_id is not None:
        return follow_earlier(args.follow_id, resolve_url(args.broker), args.timeout)
    if args.follow:
        args.wait = True
    if args.timeout is not None and not args.wait:
        print("jobq-send: --timeout only applies with --wait or --follow", file=sys.stderr)
        return EXIT_INVALID
    if args.timeout is not None and not 0 < args.timeout < float("inf"):
        print("jobq-send: --timeout must be a number of seconds above 0", file=sys.stderr)
        return EXIT_INVALID
    found, problems = read_jobs(args.file)
    if problems:
        count = sum(len(p.problems) for p in problems)
        print(f"jobq-send: {count} problem(s), nothing sent:", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    if args.wait and len(found) > 1:
        print(f"jobq-send: --wait follows one job; {args.file} holds {len(found)}", file=sys.stderr)
        return EXIT_INVALID
    batch = [jobs.with_submit_time(job) for job in found]
    try:
        if len(batch) == 1:
            return send(batch[0], resolve_url(args.broker), args.wait, args.timeout, args.follow)
        return send_many(batch, resolve_url(args.broker))
    except BrokerUnavailable as exc:
        print(f"jobq-send: {exc}", file=sys.stderr)
        return EXIT_BROKER
    except KeyboardInterrupt:
        return 130


def send(job: Job, url: str, wait: bool, timeout: float | None, follow: bool = False) -> int:
    publisher = Publisher(url)
    try:
        if follow:
            follower = Follower(publisher.connection, job.id, since_now())
        watch = publisher.watch_outcome(job.id, warn) if wait and not follow else None
        publisher.publish(job)
        print(job.id, flush=True)
        warn_if_unschedulable(publisher, job)
        if follow:
            return finish(follower.run(timeout), job.id, timeout, printed=True)
        if watch is None:
            return EXIT_OK
        outcome = watch.wait(timeout)
    finally:
        publisher.close()
    return finish(outcome, job.id, timeout)


def follow_earlier(job_id: str, url: str, timeout: float | None) -> int:
    try:
        connection = connect(url, "jobq-send --follow-id")
    except BrokerUnavailable as exc:
        print(f"jobq-send: {exc}", file=sys.stderr)
        return EXIT_BROKER
    try:
        return finish(
            Follower(connection, job_id, since=None).run(timeout), job_id, timeout, printed=True
        )
    except KeyboardInterrupt:
        return 130
    finally:
        if connection.is_open:
            connection.close()


def finish(
    outcome: Outcome | None, job_id: str, timeout: float | None, printed: bool = False
) -> int:
    """Print what a waiting client owes its user; the exit status."""
    if outcome is None:
        print(
            f"jobq-send: job {job_id} has not ended after {timeout:g}s; it goes on", file=sys.stderr
        )
        return EXIT_TIMEOUT
    if not printed:
        sys.stdout.write(outcome.output)
        sys.stdout.flush()
        if outcome.output_truncated:
            print(
                f"jobq-send: showing the last {len(outcome.output.encode())} of "
                f"{outcome.output_bytes} bytes of output; all of it is in {outcome.log_path} "
                f"on {outcome.worker}",
                file=sys.stderr,
            )
    print(f"jobq-send: {outcome.summary()}", file=sys.stderr)
    return outcome.exit_status


def send_many(batch: list[Job], url: str) -> int:
    """Publish every job, confirmed one by one, showing progress; print each id once sent."""
    publisher = Publisher(url)
    started = time.monotonic()
    sent = 0
    try:
        for job in batch:
            try:
                publisher.publish(job)
            except BrokerUnavailable as exc:
                print(
                    f"jobq-send: {exc}\njobq-send: sent {sent} of {len(batch)} jobs; "
                    f"the rest were not (the first not sent is {job.id})",
                    file=sys.stderr,
                )
                return EXIT_BROKER
            print(job.id)
            sent += 1
            if sent % PROGRESS_EVERY == 0:
                progress(sent, len(batch), started)
        seconds = time.monotonic() - started
        live = workers.live_workers(publisher.connection)
    finally:
        publisher.close()
    print(
        f"jobq-send: sent {sent} jobs in {seconds:.1f}s ({sent / max(seconds, 1e-9):.0f}/s)",
        file=sys.stderr,
    )
    unfit = [job for job in batch if not workers.fits_somewhere(job.resources, live)]
    if unfit:
        warn(
            f"warning: no live worker can fit {len(unfit)} of these jobs (the first: "
            f"{unfit[0].id}, needing {unfit[0].resources}; {workers.largest(live)}); "
            "they wait until one that fits joins"
        )
    return EXIT_OK


def progress(sent: int, total: int, started: float) -> None:
    rate = sent / max(time.monotonic() - started, 1e-9)
    line = f"jobq-send: {sent}/{total} sent ({rate:.0f}/s)"
    if sys.stderr.isatty():
        print("\r" + line, end="" if sent < total else "\n", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def warn_if_unschedulable(publisher: Publisher, job: Job) -> None:
    """Say so at once if no live worker could ever run the job (it is sent all the same)."""
    try:
        live = workers.live_workers(publisher.connection)
    except (pika.exceptions.AMQPError, OSError):
        return  # only a warning: never fail a send over it
    if not workers.fits_somewhere(job.resources, live):
        warn(
            f"warning: no live worker can fit job {job.id} (it needs {job.resources}; "
            f"{workers.largest(live)}); it waits until one that fits joins"
        )


def warn(message: str) -> None:
    print(f"jobq-send: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
