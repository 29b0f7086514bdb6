"""Shipping running jobs' output to the jobq.output stream, for `jobq-send --follow`.

The monitor writes each job's output to its log file; the consumer (the AMQP
side) reads the new bytes every half second and publishes them as
`job.<id>.output` events, each with the byte offset it starts at. A reader
keeps the next offset it expects, so a chunk sent twice (after a consumer
restart, which starts again from 0) is simply skipped.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from .runs import RunStore

CHUNK_BYTES = 64 * 1024
CHUNKS_PER_JOB_PER_ROUND = 4  # a chatty job cannot hold up the consumer's loop
ROUND_SECONDS = 0.5

PublishEvent = Callable[[str, str, dict[str, Any]], None]


class OutputShipper:
    def __init__(self, store: RunStore, publish_event: PublishEvent) -> None:
        self.store = store
        self.publish_event = publish_event
        self.offsets: dict[str, int] = {}
        self.next_round = 0.0

    def ship_due(self, now: float) -> None:
        if now < self.next_round:
            return
        self.next_round = now + ROUND_SECONDS
        for job_id in self.store.active():
            if self.store.claimed(job_id) and not self.store.revoked(job_id):
                self.ship(job_id, CHUNKS_PER_JOB_PER_ROUND)

    def ship(self, job_id: str, max_chunks: int | None = None) -> None:
        """Publish what the log file holds beyond what was shipped; all of it if no limit."""
        path = self.store.log_path(job_id)
        offset = self.offsets.get(job_id, 0)
        try:
            with path.open("rb") as log:
                size = log.seek(0, 2)
                if size < offset:  # copied again whole after Docker went away
                    offset = size
                log.seek(offset)
                sent = 0
                while max_chunks is None or sent < max_chunks:
                    data = log.read(CHUNK_BYTES)
                    if not data:
                        break
                    self.publish_event(
                        job_id,
                        "output",
                        {
                            "offset": offset,
                            "data": base64.b64encode(data).decode(),
                            "sent_at": time.time(),
                        },
                    )
                    offset += len(data)
                    sent += 1
        except FileNotFoundError:
            return
        self.offsets[job_id] = offset

    def finish(self, job_id: str) -> None:
        """Ship the last of a job's output (before its outcome) and forget it."""
        self.ship(job_id)
        self.offsets.pop(job_id, None)
