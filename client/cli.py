"""jobq-send: check a job file and publish it to RabbitMQ."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import job as jobs
from .broker import BROKER_ENV, DEFAULT_BROKER_URL, resolve_url
from .errors import BrokerUnavailable, InvalidJob
from .job import Job
from .publish import Publisher

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_BROKER = 3
EXIT_TIMEOUT = 124

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
    parser.add_argument("file", metavar="FILE", help="the job file (JSON), or - for standard input")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="wait for the job to end, print its output and exit with its exit code",
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


def read_job(path: str) -> Job:
    source = "<stdin>" if path == "-" else path
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InvalidJob([("(file)", f"cannot read it: {exc.strerror}")], source=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJob([("(file)", "is not UTF-8 text")], source=source) from None
    return jobs.loads(text, source=source)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.timeout is not None and not args.wait:
        print("jobq-send: --timeout only applies with --wait", file=sys.stderr)
        return EXIT_INVALID
    if args.timeout is not None and not 0 < args.timeout < float("inf"):
        print("jobq-send: --timeout must be a number of seconds above 0", file=sys.stderr)
        return EXIT_INVALID
    try:
        job = jobs.with_submit_time(read_job(args.file))
    except InvalidJob as exc:
        print(f"jobq-send: invalid job, nothing sent:\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        return send(job, resolve_url(args.broker), args.wait, args.timeout)
    except BrokerUnavailable as exc:
        print(f"jobq-send: {exc}", file=sys.stderr)
        return EXIT_BROKER
    except KeyboardInterrupt:
        return 130


def send(job: Job, url: str, wait: bool, timeout: float | None) -> int:
    publisher = Publisher(url)
    try:
        watch = publisher.watch_outcome(job.id, warn) if wait else None
        publisher.publish(job)
        print(job.id, flush=True)
        if watch is None:
            return EXIT_OK
        outcome = watch.wait(timeout)
    finally:
        publisher.close()
    if outcome is None:
        print(
            f"jobq-send: job {job.id} has not ended after {timeout:g}s; it goes on", file=sys.stderr
        )
        return EXIT_TIMEOUT
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


def warn(message: str) -> None:
    print(f"jobq-send: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
