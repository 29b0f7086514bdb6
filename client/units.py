"""CPU and memory quantities: parsing what users write, formatting what they read.

CPU is kept as integer nano-CPUs (Docker's NanoCpus) and memory as integer
bytes, so the ledger's sums are exact: 0.1 + 0.2 CPUs never drifts past 0.3.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import brief

NANO = 1_000_000_000

# Binary multiples for every spelling, as Docker reads `--memory 256m`: jobq
# hands the number to Docker, so it must mean what Docker means.
_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024, "kb": 1024, "ki": 1024, "kib": 1024,
    "m": 1024**2, "mb": 1024**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1024**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1024**4, "ti": 1024**4, "tib": 1024**4,
}  # fmt: skip
# Far past any machine, and inside the ledger's 64-bit integers.
MAX_CPU = 1_000_000
MAX_MEMORY = 2**60
_MEMORY_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*")


def parse_memory(value: object) -> int:
    """Return a memory quantity in bytes.

    Accepts an integer (bytes) or a string such as ``"512"``, ``"256m"``,
    ``"1.5GiB"``. Raises ValueError with a message fit to show a user.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a size such as 512m or 2g, got {brief(value)}")
    if isinstance(value, int):
        return _check_memory(value, value)
    if not isinstance(value, str):
        raise ValueError(f"must be a size such as 512m or 2g, got {brief(value)}")
    match = _MEMORY_RE.fullmatch(value)
    if not match or match.group(2).lower() not in _MEMORY_UNITS:
        raise ValueError(
            f"cannot read {brief(value)} as a size; write bytes (536870912) "
            "or a number with a unit: k, m, g or t (binary, as Docker reads them)"
        )
    number, unit = match.groups()
    size = float(number) * _MEMORY_UNITS[unit.lower()]
    return _check_memory(int(size) if math.isfinite(size) else MAX_MEMORY + 1, value)


def _check_memory(size: int, written: object) -> int:
    if size <= 0:
        raise ValueError(f"must be greater than 0, got {brief(written)}")
    if size > MAX_MEMORY:
        raise ValueError(f"{brief(written)} is larger than any machine (limit: 1 EiB)")
    return size


def parse_cpu(value: object) -> int:
    """Return a CPU quantity (possibly fractional) in nano-CPUs."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number of CPUs such as 1 or 0.5, got {brief(value)}")
    if (isinstance(value, float) and not math.isfinite(value)) or value <= 0:
        raise ValueError(f"must be a finite number greater than 0, got {brief(value)}")
    if value > MAX_CPU:
        raise ValueError(f"{brief(value)} is more CPUs than any machine has (limit: {MAX_CPU})")
    nano_cpus = round(value * NANO)
    if nano_cpus == 0:
        raise ValueError(f"{brief(value)} is too small to be a CPU limit")
    return nano_cpus


_DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*")
YEAR = 365 * 86400.0  # the longest duration any setting or job field takes


def parse_duration(value: object, allow_zero: bool = False) -> float:
    """Return a duration in seconds: a number (seconds) or a string such as ``"90s"``, ``"2h"``.

    One number and one lower-case unit: s, m (minutes), h, d or w. Raises
    ValueError with a message fit to show a user.
    """
    example = 'a duration such as 90 (seconds), "30m", "2h" or "7d": one number, one unit'
    if isinstance(value, bool):
        raise ValueError(f"must be {example}; got {brief(value)}")
    if isinstance(value, int):
        seconds = float(value) if abs(value) <= 2**53 else math.inf  # float() may overflow
    elif isinstance(value, float):
        seconds = value
    elif isinstance(value, str) and (match := _DURATION_RE.fullmatch(value)):
        number, unit = match.groups()
        if unit not in _DURATION_UNITS:
            raise ValueError(
                f"unknown unit {unit!r} in {brief(value)}; use s, m (minutes), h, d or w, "
                "in lower case"
            )
        seconds = float(number) * _DURATION_UNITS[unit]
    else:
        raise ValueError(f"must be {example}; got {brief(value)}")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        least = "0 seconds or more" if allow_zero else "more than 0 seconds"
        raise ValueError(f"must be {least}, and finite; got {brief(value)}")
    return seconds


def format_memory(size: int) -> str:
    """Render bytes exactly, in the largest unit that fits: 268435456 -> '256MiB'.

    Exactly: a size one byte over 1GiB must not print as "1GiB".
    """
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and (size * 1000) % factor == 0:  # at most 3 decimals, exact
            return f"{size / factor:g}{unit}"
    return f"{size}B"


def format_cpu(nano_cpus: int) -> str:
    return f"{nano_cpus / NANO:g}"


@dataclass(frozen=True, order=True)
class Resources:
    """An amount of CPU (nano-CPUs) and memory (bytes)."""

    nano_cpus: int
    memory: int

    @property
    def cpu(self) -> float:
        return self.nano_cpus / NANO

    def fits_in(self, other: Resources) -> bool:
        return self.nano_cpus <= other.nano_cpus and self.memory <= other.memory

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.nano_cpus + other.nano_cpus, self.memory + other.memory)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.nano_cpus - other.nano_cpus, self.memory - other.memory)

    def __str__(self) -> str:
        return f"cpu={format_cpu(self.nano_cpus)} memory={format_memory(self.memory)}"


ZERO = Resources(0, 0)
