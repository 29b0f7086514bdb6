"""Counting the messages that were in hand when the consumer crashed.

Before the consumer handles a message it writes the message's key to a file;
once done, it clears it. If the process dies in between, the next consumer
finds the key there and counts one crash against that message. A message that
has crashed the consumer ``limit`` times is dead-lettered instead of handled,
so one bad message cannot take a worker down in a loop. A clean reconnect
(broker restart) counts nothing: only a death with the message in hand does.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

DEFAULT_LIMIT = 3


def message_key(properties: Any, body: bytes) -> str:
    """The message id if it has one, else a digest of the body."""
    if getattr(properties, "message_id", None):
        return f"id:{properties.message_id}"
    return "sha256:" + hashlib.sha256(body).hexdigest()


class PoisonGuard:
    def __init__(self, state_dir: Path, limit: int = DEFAULT_LIMIT) -> None:
        self.in_hand_path = state_dir / "consumer.in-hand"
        self.counts_path = state_dir / "consumer.crashes.json"
        self.limit = limit
        self.counts: dict[str, int] = {}

    def recover(self) -> list[str]:
        """At consumer start: charge a crash to what the last consumer held; return those keys."""
        try:
            self.counts = json.loads(self.counts_path.read_text())
        except (FileNotFoundError, ValueError):
            self.counts = {}
        try:
            culprits = [k for k in self.in_hand_path.read_text().splitlines() if k]
        except FileNotFoundError:
            culprits = []
        for key in culprits:
            self.counts[key] = self.counts.get(key, 0) + 1
        if culprits:
            self._save()
        self.in_hand_path.unlink(missing_ok=True)
        return culprits

    def crashes(self, key: str) -> int:
        return self.counts.get(key, 0)

    def hold(self, key: str) -> None:
        self.in_hand_path.write_text(key + "\n")

    def done(self, key: str) -> None:
        self.in_hand_path.unlink(missing_ok=True)
        if self.counts.pop(key, None) is not None:
            self._save()

    def _save(self) -> None:
        temporary = self.counts_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.counts))
        os.replace(temporary, self.counts_path)
