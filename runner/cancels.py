"""Cancel requests, as heard from the jobq.cancellations stream.

Each consumer reads the whole stream when it connects, before it takes any
job, so a job cancelled while no supervisor ran is still never started; then
it hears new requests as they are made.
"""

from __future__ import annotations

import json
import time
from typing import Any

from jobq.client import topology
from jobq.client.job import Job

CATCH_UP_QUIET_SECONDS = 0.3  # a stream has no end marker: caught up once it is quiet


class Cancellations:
    def __init__(self) -> None:
        self.asked_at: dict[str, float] = {}  # job id -> when its cancel was asked
        self.pending: list[str] = []  # heard, not yet acted on

    def listen(self, connection: Any) -> Any:
        """Read the stream on a channel of its own, catching up before returning it."""
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1000)  # a stream consumer needs a prefetch
        channel.basic_consume(
            topology.CANCELLATIONS_STREAM, self._on_message, arguments={"x-stream-offset": "first"}
        )
        quiet_since, heard = time.monotonic(), len(self.pending)
        while time.monotonic() - quiet_since < CATCH_UP_QUIET_SECONDS:
            connection.process_data_events(time_limit=0.05)
            if len(self.pending) != heard:
                heard, quiet_since = len(self.pending), time.monotonic()
        return channel

    def covers(self, job: Job) -> bool:
        """Cancelled after it was sent: a job sent again later under the same id runs."""
        at = self.asked_at.get(job.id)
        return at is not None and (job.submitted_at is None or job.submitted_at <= at)

    def take_pending(self) -> list[str]:
        pending, self.pending = self.pending, []
        return pending

    def _on_message(self, channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        channel.basic_ack(method.delivery_tag)
        try:
            request = json.loads(body)
            job_id, at = str(request["job_id"]), float(request["at"])
        except (ValueError, KeyError, TypeError):
            return
        self.asked_at[job_id] = max(at, self.asked_at.get(job_id, 0.0))
        self.pending.append(job_id)
