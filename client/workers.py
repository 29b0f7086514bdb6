"""What the client can learn of the live workers: their recent heartbeats.

Supervisors publish a heartbeat every few seconds; the jobq.heartbeats stream
keeps the last hour of them, so a client reads the recent ones at once
instead of waiting for the next round.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from . import topology
from .units import Resources

# Heartbeats older than this cannot belong to a live worker (timeouts above
# it are unusual; such a worker is simply not seen).
LOOK_BACK_SECONDS = 600
IDLE_SECONDS = 0.3  # a stream has no end marker: stop once it has been quiet this long
MAX_SECONDS = 3.0


def live_workers(connection: Any, now: float | None = None) -> dict[str, dict[str, Any]]:
    """The latest heartbeat of each worker whose own timeout has not run out."""
    now = time.time() if now is None else now
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1000)
    latest: dict[str, dict[str, Any]] = {}
    heard = [time.monotonic()]

    def on_beat(ch: Any, method: Any, _props: Any, body: bytes) -> None:
        ch.basic_ack(method.delivery_tag)
        heard[0] = time.monotonic()
        try:
            beat = json.loads(body)
            worker, at = str(beat["worker"]), float(beat["at"])
        except (ValueError, KeyError, TypeError):
            return
        if worker not in latest or at >= float(latest[worker]["at"]):
            latest[worker] = beat

    since = datetime.fromtimestamp(now, UTC) - timedelta(seconds=LOOK_BACK_SECONDS)
    channel.basic_consume(topology.HEARTBEATS_STREAM, on_beat, arguments={"x-stream-offset": since})
    started = time.monotonic()
    while time.monotonic() - heard[0] < IDLE_SECONDS and time.monotonic() - started < MAX_SECONDS:
        connection.process_data_events(time_limit=0.1)
    channel.close()
    return {w: b for w, b in latest.items() if float(b["at"]) + float(b.get("timeout", 0)) >= now}


def fits_somewhere(need: Resources, workers: dict[str, dict[str, Any]]) -> bool:
    return any(
        need.cpu <= float(b.get("capacity", {}).get("cpu", 0))
        and need.memory <= int(b.get("capacity", {}).get("memory", 0))
        for b in workers.values()
    )


def largest(workers: dict[str, dict[str, Any]]) -> str:
    """The biggest live worker's capacity, for people."""
    if not workers:
        return "no worker is live"
    capacity = max(
        (b.get("capacity", {}) for b in workers.values()),
        key=lambda c: (c.get("cpu", 0), c.get("memory", 0)),
    )
    size = Resources(round(float(capacity.get("cpu", 0)) * 1e9), int(capacity.get("memory", 0)))
    return f"the largest live worker has {size}"
