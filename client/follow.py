"""Following a job's output as it runs, for `jobq-send --follow` and `--follow-id`.

Output comes from the jobq.output stream (chunks with byte offsets, kept a
day) and the end from the jobq.history stream (the outcome). Both are read
from a point in time, so this works for a job just sent, one sent earlier,
and one already ended (then its whole output, or, past the output stream's
day, the outcome's last 64 KiB).
"""

from __future__ import annotations

import base64
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from . import topology
from .outcome import Outcome

AFTER_OUTCOME_SECONDS = 2.0  # the two streams are read apart: let the last output arrive
COLOUR = "\033[36m"
RESET = "\033[0m"


class Follower:
    def __init__(
        self, connection: Any, job_id: str, since: datetime | None, out: TextIO = sys.stdout
    ) -> None:
        self.connection = connection
        self.job_id = job_id
        self.out = out
        self.prefix = f"[{job_id[:8]}] "
        if out.isatty():
            self.prefix = f"{COLOUR}{self.prefix}{RESET}"
        self.next_offset = 0
        self.partial = b""
        self.outcome: Outcome | None = None
        offset: Any = "first" if since is None else since - timedelta(seconds=5)
        for stream, handler in (
            (topology.OUTPUT_STREAM, self._on_output),
            (topology.HISTORY_STREAM, self._on_history),
        ):
            channel = connection.channel()
            channel.basic_qos(prefetch_count=200)
            channel.basic_consume(stream, handler, arguments={"x-stream-offset": offset})

    def run(self, timeout: float | None = None) -> Outcome | None:
        """Print output until the outcome arrives; the outcome, or None after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.outcome is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            self.connection.process_data_events(time_limit=0.2)
        settle = time.monotonic() + AFTER_OUTCOME_SECONDS
        while self.next_offset < self.outcome.output_bytes and time.monotonic() < settle:
            self.connection.process_data_events(time_limit=0.2)
        if self.next_offset == 0 and self.outcome.output:
            # The output stream no longer holds it: show what the outcome kept.
            self._write(self.outcome.output.encode())
        self._write(b"", flush_partial=True)
        return self.outcome

    def _on_output(self, channel: Any, method: Any, _props: Any, body: bytes) -> None:
        channel.basic_ack(method.delivery_tag)
        doc = _read(body)
        if doc is None or doc.get("job_id") != self.job_id:
            return
        offset, data = int(doc.get("offset", -1)), base64.b64decode(doc.get("data", ""))
        if offset > self.next_offset or offset + len(data) <= self.next_offset:
            return  # a chunk shipped twice, or one we cannot place
        self._write(data[self.next_offset - offset :])
        self.next_offset = offset + len(data)

    def _on_history(self, channel: Any, method: Any, _props: Any, body: bytes) -> None:
        channel.basic_ack(method.delivery_tag)
        doc = _read(body)
        if doc is None or doc.get("job_id") != self.job_id:
            return
        if doc.get("event") == "outcome":
            try:
                self.outcome = Outcome.from_dict(doc["outcome"])
            except (KeyError, TypeError, ValueError):
                return

    def _write(self, data: bytes, flush_partial: bool = False) -> None:
        """Write whole lines, each with the job's prefix."""
        self.partial += data
        *lines, self.partial = self.partial.split(b"\n")
        if flush_partial and self.partial:
            lines.append(self.partial)
            self.partial = b""
        for line in lines:
            self.out.write(self.prefix + line.decode("utf-8", errors="replace") + "\n")
        self.out.flush()


def _read(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def since_now() -> datetime:
    return datetime.now(UTC)
