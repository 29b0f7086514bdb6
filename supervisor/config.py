"""etc/worker.toml to frozen dataclasses, with an error naming the file and key for every mistake.

See etc/worker.toml for the commented sample.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import tomli

from jobq.client.errors import ConfigError, brief
from jobq.client.job import MIN_CPU, MIN_MEMORY
from jobq.client.units import (
    NANO,
    YEAR,
    Resources,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_duration,
    parse_memory,
)
from jobq.supervisor.placement import Rules

WORKER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_METRICS_PORT = 9840
DEFAULT_HEARTBEAT_INTERVAL = 5.0
# Long enough to ride out a supervisor restart, a broker restart with the
# consumer's 30 s reconnect backoff, or a network blip; short next to jobs that
# run for hours or weeks. See docs/design.md.
DEFAULT_WORKER_TIMEOUT = 120.0
# Memory left to the host, dockerd and the supervisor when [worker] memory is not given.
DEFAULT_MEMORY_SHARE = 0.9

SECTIONS: dict[str, set[str]] = {
    "worker": {
        "id",
        "cpu",
        "memory",
        "overcommit",
        "state_dir",
        "max_jobs",
        "heartbeat_interval",
        "worker_timeout",
    },
    "broker": {"url", "prefetch"},
    "placement": {"hold_limit", "overdue_after"},
    "metrics": {"port", "address"},
}


@dataclass(frozen=True)
class WorkerConfig:
    id: str
    capacity: Resources
    state_dir: Path
    max_jobs: int
    heartbeat_interval: float
    worker_timeout: float


@dataclass(frozen=True)
class BrokerConfig:
    url: str | None  # None: fall back to $JOBQ_BROKER_URL or the default
    prefetch: int


@dataclass(frozen=True)
class MetricsConfig:
    port: int
    address: str


@dataclass(frozen=True)
class Config:
    source: Path
    worker: WorkerConfig
    broker: BrokerConfig
    placement: Rules  # [placement]: the give-back rules of supervisor/placement.py
    metrics: MetricsConfig


@dataclass(frozen=True)
class Host:
    """What this machine has; a parameter so tests can pretend to be another host."""

    nano_cpus: int
    memory: int

    @classmethod
    def this(cls) -> Host:
        return cls(nano_cpus=(psutil.cpu_count() or 1) * NANO, memory=psutil.virtual_memory().total)


def load(path: str | os.PathLike[str], host: Host | None = None) -> Config:
    path = Path(path)
    try:
        doc = tomli.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a config file is TOML") from None
    except tomli.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(doc, path, host or Host.this())


def parse(doc: dict[str, Any], source: Path, host: Host) -> Config:
    def fail(section: str, key: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: [{section}] {key}: {message}")

    for section, value in doc.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{section}]; "
                f"the sections are {', '.join(f'[{s}]' for s in SECTIONS)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {section} must be a [{section}] table")
        for key in value:
            if key not in SECTIONS[section]:
                raise fail(
                    section,
                    key,
                    "unknown key; this section has " + ", ".join(sorted(SECTIONS[section])),
                )
    worker = doc.get("worker", {})
    broker = doc.get("broker", {})
    placement = doc.get("placement", {})
    metrics = doc.get("metrics", {})

    worker_id = worker.get("id", socket.gethostname())
    if not isinstance(worker_id, str) or not WORKER_ID_RE.fullmatch(worker_id):
        raise fail(
            "worker",
            "id",
            "must be 1-64 of letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit; got {brief(worker_id)}",
        )
    overcommit = worker.get("overcommit", False)
    if not isinstance(overcommit, bool):
        raise fail("worker", "overcommit", f"must be true or false, got {brief(overcommit)}")
    capacity = _read_capacity(worker, host, overcommit, fail)

    state_dir = worker.get("state_dir")
    if state_dir is None:
        base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        state_path = Path(base) / "jobq" / worker_id
    elif isinstance(state_dir, str) and state_dir:
        # Relative paths are read from the config file's folder, not the
        # current directory, so a unit file and a shell agree on them.
        state_path = (source.parent / Path(state_dir).expanduser()).resolve()
    else:
        raise fail("worker", "state_dir", f"must be a folder path, got {brief(state_dir)}")

    heartbeat = _read_seconds(
        worker,
        "heartbeat_interval",
        DEFAULT_HEARTBEAT_INTERVAL,
        lambda m: fail("worker", "heartbeat_interval", m),
    )
    timeout = _read_seconds(
        worker,
        "worker_timeout",
        DEFAULT_WORKER_TIMEOUT,
        lambda m: fail("worker", "worker_timeout", m),
    )
    if timeout < 3 * heartbeat:
        raise fail(
            "worker",
            "worker_timeout",
            f"{timeout:g}s must be at least three heartbeats "
            f"(heartbeat_interval = {heartbeat:g}s), or one late heartbeat kills the worker",
        )
    return Config(
        source=source,
        worker=WorkerConfig(
            id=worker_id,
            capacity=capacity,
            state_dir=state_path,
            max_jobs=_read_int(
                worker, "max_jobs", 256, 1, 4096, lambda m: fail("worker", "max_jobs", m)
            ),
            heartbeat_interval=heartbeat,
            worker_timeout=timeout,
        ),
        broker=BrokerConfig(
            url=_read_url(broker, lambda m: fail("broker", "url", m)),
            prefetch=_read_int(
                broker, "prefetch", 20, 1, 2000, lambda m: fail("broker", "prefetch", m)
            ),
        ),
        placement=Rules(
            hold_limit=_read_seconds(
                placement,
                "hold_limit",
                Rules().hold_limit,
                lambda m: fail("placement", "hold_limit", m),
            ),
            overdue_after=_read_seconds(
                placement,
                "overdue_after",
                Rules().overdue_after,
                lambda m: fail("placement", "overdue_after", m),
                low=0,
                high=YEAR,
            ),
        ),
        metrics=MetricsConfig(
            port=_read_int(
                metrics,
                "port",
                DEFAULT_METRICS_PORT,
                1,
                65535,
                lambda m: fail("metrics", "port", m),
            ),
            address=_read_address(metrics, lambda m: fail("metrics", "address", m)),
        ),
    )


def _read_capacity(worker: dict[str, Any], host: Host, overcommit: bool, fail: Any) -> Resources:
    try:
        nano_cpus = parse_cpu(worker["cpu"]) if "cpu" in worker else host.nano_cpus
    except ValueError as exc:
        raise fail("worker", "cpu", str(exc)) from None
    try:
        memory = (
            parse_memory(worker["memory"])
            if "memory" in worker
            else int(host.memory * DEFAULT_MEMORY_SHARE)
        )
    except ValueError as exc:
        raise fail("worker", "memory", str(exc)) from None
    if nano_cpus < MIN_CPU * NANO:
        raise fail(
            "worker",
            "cpu",
            f"{format_cpu(nano_cpus)} is less than the smallest job "
            f"may ask for ({MIN_CPU}); no job could ever run here",
        )
    if memory < MIN_MEMORY:
        raise fail(
            "worker",
            "memory",
            f"{format_memory(memory)} is less than the smallest job "
            "may ask for (6MiB); no job could ever run here",
        )
    if not overcommit and nano_cpus > host.nano_cpus:
        raise fail(
            "worker",
            "cpu",
            f"{format_cpu(nano_cpus)} is more than this host's "
            f"{format_cpu(host.nano_cpus)} CPUs; lower it, or set overcommit = true "
            "in [worker] if you mean it",
        )
    if not overcommit and memory > host.memory:
        raise fail(
            "worker",
            "memory",
            f"{format_memory(memory)} is more than this host's "
            f"{format_memory(host.memory)}; lower it, or set overcommit = true "
            "in [worker] if you mean it",
        )
    return Resources(nano_cpus, memory)


def _read_int(table: dict[str, Any], key: str, default: int, low: int, high: int, fail: Any) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(f"must be a whole number from {low} to {high}, got {brief(value)}")
    return value


def _read_seconds(
    table: dict[str, Any],
    key: str,
    default: float,
    fail: Any,
    low: float = 0.1,
    high: float = 86400,
) -> float:
    written = table.get(key, default)
    value = written
    if isinstance(written, str):
        try:
            value = parse_duration(written, allow_zero=True)
        except ValueError as exc:
            raise fail(str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        seconds = f" ({value:g} s)" if isinstance(written, str) else ""
        raise fail(
            f"must be a number of seconds from {low:g} to {high:.0f}, or a duration "
            f'such as "90s", "10m" or "6d"; got {brief(written)}{seconds}'
        )
    return float(value)


def _read_url(table: dict[str, Any], fail: Any) -> str | None:
    url = table.get("url")
    if url is None:
        return None
    if not isinstance(url, str) or not url.startswith(("amqp://", "amqps://")):
        raise fail(f"must be an amqp:// or amqps:// URL, got {brief(url)}")
    return url


def _read_address(table: dict[str, Any], fail: Any) -> str:
    address = table.get("address", "0.0.0.0")
    try:
        if not isinstance(address, str):
            raise ValueError
        ipaddress.ip_address(address)
    except ValueError:
        raise fail(
            f"must be an IP address to listen on, such as 0.0.0.0 or 127.0.0.1, "
            f"got {brief(address)}"
        ) from None
    return address
