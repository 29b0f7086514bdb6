"""jobq-status: the live workers, the queues, and the jobs that wait for people."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import pika
import pika.exceptions

from . import topology, workers
from .broker import BROKER_ENV, connect, resolve_url
from .errors import BrokerUnavailable
from .units import Resources

EXIT_OK = 0
EXIT_BROKER = 3
LIST_AT_MOST = 50  # jobs shown per waiting queue; the count is always whole


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobq-status",
        description="Show the live workers (capacity, what is booked, running jobs, last "
        "heartbeat), the queue depths, and the unschedulable and dead-lettered jobs.",
        epilog=f"broker URL: --broker, else ${BROKER_ENV}, else the default. "
        "Exit status: 0, or 3 if RabbitMQ is unreachable.",
    )
    parser.add_argument("--broker", metavar="URL", help="RabbitMQ URL")
    parser.add_argument("--json", action="store_true", help="print one JSON document, for scripts")
    return parser


def gather(url: str) -> dict[str, Any]:
    connection = connect(url, "jobq-status")
    try:
        channel = connection.channel()
        topology.declare(channel)
        now = time.time()
        live = workers.live_workers(connection, now)
        queues = {
            name: channel.queue_declare(name, passive=True).method.message_count
            for name in (
                topology.JOBS_QUEUE,
                topology.CLAIMS_QUEUE,
                topology.UNSCHEDULABLE_QUEUE,
                topology.DEAD_LETTER_QUEUE,
            )
        }
        return {
            "workers": [_worker(beat, now) for _, beat in sorted(live.items())],
            "queues": queues,
            "unschedulable": _peek(connection, topology.UNSCHEDULABLE_QUEUE),
            "dead_lettered": _peek(connection, topology.DEAD_LETTER_QUEUE),
        }
    finally:
        connection.close()


def _worker(beat: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "id": beat["worker"],
        "capacity": beat.get("capacity", {}),
        "allocated": beat.get("allocated", {}),
        "running_jobs": len(beat.get("running", {})) - len(beat.get("kept", [])),
        "kept_jobs": len(beat.get("kept", [])),
        "last_seen_seconds_ago": round(max(0.0, now - float(beat["at"])), 1),
    }


def _peek(connection: pika.BlockingConnection, queue: str) -> list[dict[str, Any]]:
    """Look at the first messages of a queue without taking them.

    They are fetched unacknowledged and the channel is closed, which hands
    them back. These queues wait for people, so their order does not matter.
    """
    channel = connection.channel()
    found = []
    try:
        for _ in range(LIST_AT_MOST):
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            found.append(_describe(properties, body))
    finally:
        channel.close()
    return found


def _describe(properties: Any, body: bytes) -> dict[str, Any]:
    headers = properties.headers or {}
    try:
        doc = json.loads(body)
        name = doc.get("name") if isinstance(doc, dict) else None
    except ValueError:
        name = None
    reason = headers.get(topology.REASON_HEADER)
    return {
        "id": properties.message_id,
        "name": name,
        "reason": reason.decode() if isinstance(reason, bytes) else reason,
    }


def render(status: dict[str, Any]) -> str:
    lines = [f"workers ({len(status['workers'])} live):"]
    if not status["workers"]:
        lines.append("  none")
    for w in status["workers"]:
        capacity = _size(w["capacity"])
        allocated = _size(w["allocated"])
        lines.append(
            f"  {w['id']:<24} capacity {capacity:<24} allocated {allocated:<24} "
            f"running {w['running_jobs']:<4} kept {w.get('kept_jobs', 0):<3} "
            f"seen {w['last_seen_seconds_ago']}s ago"
        )
    q = status["queues"]
    lines.append(
        f"queue: {q[topology.JOBS_QUEUE]} waiting, {q[topology.CLAIMS_QUEUE]} claimed "
        f"(running or kept), {q[topology.UNSCHEDULABLE_QUEUE]} unschedulable, "
        f"{q[topology.DEAD_LETTER_QUEUE]} dead-lettered"
    )
    for title, key in (("unschedulable", "unschedulable"), ("dead-lettered", "dead_lettered")):
        if status[key]:
            lines.append(f"{title}:")
            lines += [
                f"  {j['id']}{' (' + j['name'] + ')' if j['name'] else ''}: {j['reason']}"
                for j in status[key]
            ]
    return "\n".join(lines)


def _size(amount: dict[str, Any]) -> str:
    return str(Resources(round(float(amount.get("cpu", 0)) * 1e9), int(amount.get("memory", 0))))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = gather(resolve_url(args.broker))
    except (BrokerUnavailable, pika.exceptions.AMQPError) as exc:
        print(f"jobq-status: {exc}", file=sys.stderr)
        return EXIT_BROKER
    print(json.dumps(status, indent=2) if args.json else render(status))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
