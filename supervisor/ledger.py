"""The ledger: which running job holds how much of this worker's CPU and memory.

It lives in shared memory so the parent, the consumer and the metrics
endpoint read one truth. Every change happens under one lock, and ``reserve``
checks and books in the same step, so two callers can never both take the
last CPU. The ledger does arithmetic only: no I/O, no logging.
"""

from __future__ import annotations

import ctypes
from typing import Any

import multiprocess

from jobq.client.units import ZERO, Resources

ID_BYTES = 64  # job ids are at most 64 ASCII characters (client/job.py)


class _Slot(ctypes.Structure):
    _fields_ = [
        ("job_id", ctypes.c_char * ID_BYTES),
        ("nano_cpus", ctypes.c_int64),
        ("memory", ctypes.c_int64),
    ]


class Ledger:
    def __init__(self, capacity: Resources, max_jobs: int, context: Any = None) -> None:
        context = context or multiprocess.get_context("fork")
        self.capacity = capacity
        self.max_jobs = max_jobs
        self._lock = context.Lock()
        self._slots = context.RawArray(_Slot, max_jobs)

    def reserve(self, job_id: str, need: Resources) -> bool:
        """Book ``need`` for ``job_id`` if it fits now; False if it does not (or is booked)."""
        key = job_id.encode()
        with self._lock:
            if self._find(key) is not None:
                return False
            if not (self._allocated() + need).fits_in(self.capacity):
                return False
            slot = self._find(b"")
            if slot is None:
                return False
            slot.job_id, slot.nano_cpus, slot.memory = key, need.nano_cpus, need.memory
            return True

    def adopt(self, job_id: str, need: Resources) -> bool:
        """Book a job found running after a restart, even past capacity.

        It runs whatever the ledger says; booking it keeps new jobs out until
        the worker is back under capacity. False if no slot is left.
        """
        key = job_id.encode()
        with self._lock:
            if self._find(key) is not None:
                return True
            slot = self._find(b"")
            if slot is None:
                return False
            slot.job_id, slot.nano_cpus, slot.memory = key, need.nano_cpus, need.memory
            return True

    def release(self, job_id: str) -> Resources | None:
        """Give back what ``job_id`` held; None if it held nothing (releasing twice is harmless)."""
        if not job_id:
            return None
        with self._lock:
            slot = self._find(job_id.encode())
            if slot is None:
                return None
            held = Resources(slot.nano_cpus, slot.memory)
            slot.job_id, slot.nano_cpus, slot.memory = b"", 0, 0
            return held

    def holds(self, job_id: str) -> bool:
        with self._lock:
            return self._find(job_id.encode()) is not None

    def allocated(self) -> Resources:
        with self._lock:
            return self._allocated()

    def free(self) -> Resources:
        return self.capacity - self.allocated()

    def running(self) -> dict[str, Resources]:
        with self._lock:
            return {
                slot.job_id.decode(): Resources(slot.nano_cpus, slot.memory)
                for slot in self._slots
                if slot.job_id
            }

    def _allocated(self) -> Resources:
        total = ZERO
        for slot in self._slots:
            if slot.job_id:
                total += Resources(slot.nano_cpus, slot.memory)
        return total

    def _find(self, key: bytes) -> Any:
        for slot in self._slots:
            if slot.job_id == key:
                return slot
        return None
