"""jobq-cancel: ask for jobs to be cancelled, wherever they are.

A cancel request goes to the jobq.cancellations stream, which every
supervisor reads. A job still queued is never started: the worker that takes
its message reports it cancelled. A running job has its container stopped
(SIGTERM, then SIGKILL after 10 s), its CPU and memory freed, and its
outcome says cancelled. A job already ended is not affected.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pika

from . import topology
from .broker import BROKER_ENV, connect, resolve_url
from .errors import BrokerUnavailable
from .job import ID_RE

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_BROKER = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobq-cancel",
        description="Cancel jobs by id: a queued job never starts; a running one is stopped "
        "(SIGTERM, then SIGKILL 10 s later if it has not exited, as docker stop does). "
        "The job's outcome (jobq-send --wait, the jobq.history stream) says "
        "cancelled. Cancelling returns at once; the outcome follows when the container "
        "has stopped.",
        epilog=f"broker URL: --broker, else ${BROKER_ENV}, else the default. Exit status: 0 "
        "when every request is on the broker, 2 for a malformed id, 3 if RabbitMQ "
        "is unreachable.",
    )
    parser.add_argument("job_ids", nargs="+", metavar="JOB_ID", help="what jobq-send printed")
    parser.add_argument("--broker", metavar="URL", help="RabbitMQ URL")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bad = [job_id for job_id in args.job_ids if not ID_RE.fullmatch(job_id)]
    if bad:
        print(f"jobq-cancel: not a job id: {', '.join(map(repr, bad))}", file=sys.stderr)
        return EXIT_INVALID
    try:
        connection = connect(resolve_url(args.broker), "jobq-cancel")
    except BrokerUnavailable as exc:
        print(f"jobq-cancel: {exc}", file=sys.stderr)
        return EXIT_BROKER
    try:
        channel = connection.channel()
        topology.declare(channel)
        channel.confirm_delivery()
        for job_id in args.job_ids:
            request = {"event": "cancel", "job_id": job_id, "at": time.time()}
            channel.basic_publish(
                topology.EVENTS_EXCHANGE,
                topology.job_event_key(job_id, "cancel"),
                json.dumps(request).encode(),
                pika.BasicProperties(
                    content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent
                ),
                mandatory=True,
            )
            print(f"jobq-cancel: cancel of {job_id} requested")
    except pika.exceptions.AMQPError as exc:
        print(f"jobq-cancel: the broker did not take the request: {exc!r}", file=sys.stderr)
        return EXIT_BROKER
    finally:
        if connection.is_open:
            connection.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
