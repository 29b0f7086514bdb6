"""The job format: what a user writes, what travels on the queue, and its checks.

A job document is JSON::

    {"image": "busybox", "cmd": ["sh", "-c", "echo $GREETING"],
     "env": {"GREETING": "hi"}, "resources": {"cpu": 0.5, "memory": "256m"}}

docs/job-format.md is the reference. Unknown fields are errors, so a typo such
as ``"enviroment"`` cannot pass silently, and the format has no field that asks
for privileges, host mounts or host networking.
"""

from __future__ import annotations

import difflib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .errors import DOCUMENT, InvalidJob, brief
from .units import NANO, YEAR, Resources, parse_cpu, parse_duration, parse_memory

FORMAT_VERSION = 1

# Docker refuses smaller limits; checking here turns a late container error
# into an early message that names the field.
MIN_CPU = 0.01
MIN_MEMORY = 6 * 1024 * 1024

# Job ids become container names, label values and file names, so they keep to
# the characters all three accept.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ENV_NAME_RE = re.compile(r"[^=\x00]+")
# Docker's image reference grammar (distribution/reference), without its length
# rules: [registry[:port]/]path[:tag][@digest], the path in lower case.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = r"(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
IMAGE_RE = re.compile(
    rf"{_REGISTRY}{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
MAX_IMAGE_LENGTH = 255
# What a container's command line and environment may hold together; Linux
# refuses more than about 2 MiB (ARG_MAX) when it starts the program.
MAX_ARGS_BYTES = 1024 * 1024

USER_FIELDS = {"id", "name", "image", "cmd", "env", "resources", "priority", "expected_runtime"}
MAX_PRIORITY = 1000
# An estimate past a year says nothing the placement could use.
MAX_EXPECTED_RUNTIME = YEAR
WIRE_FIELDS = USER_FIELDS | {"version", "submitted_at"}
RESOURCE_FIELDS = {"cpu", "memory"}
ONLY_FIELDS = "a job has only: " + ", ".join(sorted(USER_FIELDS))
ONLY_RESOURCES = "resources has only: " + ", ".join(sorted(RESOURCE_FIELDS))
RESOURCES_EXAMPLE = '{"cpu": 1, "memory": "512m"}'


@dataclass(frozen=True)
class Job:
    id: str
    image: str
    resources: Resources
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    submitted_at: float | None = None
    priority: int = 0  # higher runs first when both fit
    # Seconds the job expects to run: lets placement start it in room a larger
    # job waits for, if it ends first. A hint, never a limit.
    expected_runtime: float | None = None

    @property
    def label(self) -> str:
        """How logs refer to the job: its id, and its name when it has one."""
        return f"{self.id} ({self.name})" if self.name else self.id

    def to_wire(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "id": self.id,
            "image": self.image,
            "cmd": list(self.cmd),
            "env": dict(self.env),
            "resources": {"cpu": self.resources.nano_cpus / NANO, "memory": self.resources.memory},
            "submitted_at": self.submitted_at,
        }
        if self.name is not None:
            doc["name"] = self.name
        if self.priority:
            doc["priority"] = self.priority
        if self.expected_runtime is not None:
            doc["expected_runtime"] = self.expected_runtime
        return doc

    def encode(self) -> bytes:
        return json.dumps(self.to_wire(), separators=(",", ":")).encode()


def decode(body: bytes, source: str = "message") -> Job:
    """Read a job from a queue message body (anyone can publish, so check it all)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJob(
            [(DOCUMENT, f"not UTF-8 text: {exc.reason} at byte {exc.start}")], source
        ) from None
    return parse(_json(text, source), source=source, wire=True)


def loads(text: str, source: str = "job") -> Job:
    """Read a job a user wrote; ``source`` names the file in error messages."""
    return parse(_json(text, source), source=source)


def _json(text: str, source: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_no_repeated_keys)
    except json.JSONDecodeError as exc:
        raise InvalidJob([(DOCUMENT, f"not valid JSON: {exc}")], source) from None
    except RecursionError:
        raise InvalidJob([(DOCUMENT, "nested too deeply to read")], source) from None
    except ValueError as exc:  # a key given twice, or a number too long to read
        raise InvalidJob([(DOCUMENT, str(exc))], source) from None


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(f"field {brief(key)} is given twice; keep one")
        doc[key] = value
    return doc


def parse(doc: object, source: str = "job", wire: bool = False) -> Job:
    """Check a decoded JSON document and build a Job, reporting every problem at once."""
    if not isinstance(doc, dict):
        raise InvalidJob([(DOCUMENT, 'must be a JSON object such as {"image": ...}')], source)
    problems: list[tuple[str, str]] = []

    def check(name: str, reader: Any, default: Any = None) -> Any:
        if name not in doc:
            return default
        try:
            return reader(doc[name])
        except ValueError as exc:
            problems.append((name, str(exc)))
            return default

    allowed = WIRE_FIELDS if wire else USER_FIELDS
    for unknown in sorted(set(doc) - allowed):
        problems.append((unknown, _unknown_field(unknown, allowed, ONLY_FIELDS)))
    if "image" not in doc:
        problems.append(("image", 'missing; name the Docker image to run, e.g. "busybox"'))
    if "resources" not in doc:
        problems.append(("resources", f"missing; give {RESOURCES_EXAMPLE}"))

    if wire and doc.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        problems.append(
            (
                "version",
                f"format {brief(doc.get('version'))} is not one this "
                f"worker reads ({FORMAT_VERSION}); upgrade the worker",
            )
        )
    job_id = check("id", _read_id) or uuid.uuid4().hex
    image = check("image", _read_image)
    cmd = check("cmd", _read_cmd, ())
    env = check("env", _read_env, {})
    name = check("name", _read_name)
    priority = check("priority", _read_priority, 0)
    expected_runtime = check("expected_runtime", read_expected_runtime)
    submitted_at = check("submitted_at", _read_timestamp) if wire else None
    resources = _read_resources(doc.get("resources"), problems) if "resources" in doc else None
    if cmd and env is not None:
        size = sum(len(arg.encode()) + 1 for arg in cmd)
        size += sum(len(k.encode()) + len(v.encode()) + 2 for k, v in env.items())
        if size > MAX_ARGS_BYTES:
            problems.append(
                (
                    "cmd",
                    f"cmd and env hold {size} bytes together; the limit is "
                    f"{MAX_ARGS_BYTES} (pass big data through the image or a file)",
                )
            )
    if problems:
        raise InvalidJob(problems, source)
    return Job(
        id=job_id,
        image=image,
        resources=resources,
        cmd=cmd,
        env=env,
        name=name,
        submitted_at=submitted_at,
        priority=priority,
        expected_runtime=expected_runtime,
    )


def _unknown_field(name: str, allowed: set[str], listed: str) -> str:
    # A typo is the usual cause, so name the field that was probably meant.
    known = sorted(allowed)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    close = close or [k for k in known if name.lower().startswith(k) and len(name) > len(k)]
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field; {hint}{listed}"


def with_submit_time(job: Job) -> Job:
    """Stamp a job as the client sends it; queue wait is measured from here."""
    return Job(**{**job.__dict__, "submitted_at": time.time()})


def _read_id(value: object) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise ValueError(
            "must be 1-64 characters of letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit; got {brief(value)}"
        )
    return value


def _read_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise ValueError(f"must be a non-empty string of up to 256 characters, got {brief(value)}")
    return value


def _read_priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_PRIORITY:
        raise ValueError(
            f"must be a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY} "
            f"(higher runs first; default 0), got {brief(value)}"
        )
    return value


def read_expected_runtime(value: object) -> float:
    """Seconds, from what a job's ``expected_runtime`` says (also read by jobq-sim)."""
    seconds = parse_duration(value)
    if seconds > MAX_EXPECTED_RUNTIME:
        raise ValueError(f"{brief(value)} is more than a year; leave it out if unknown")
    return seconds


def _read_image(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_IMAGE_LENGTH or not IMAGE_RE.fullmatch(value):
        raise ValueError(f'must be an image reference such as "busybox:1.36", got {brief(value)}')
    return value


def _read_cmd(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise ValueError(
            f'must be a list of strings such as ["sh", "-c", "echo hi"], got {brief(value)}'
        )
    if any("\x00" in arg for arg in value):
        raise ValueError("arguments cannot contain the NUL character")
    return tuple(value)


def _read_env(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object of string names to string values, got {brief(value)}")
    for key, item in value.items():
        if not ENV_NAME_RE.fullmatch(key):
            raise ValueError(f"variable name {brief(key)} must be non-empty, with no '=' or NUL")
        if not isinstance(item, str):
            raise ValueError(
                f'value of {brief(key)} must be a string, got {brief(item)}; quote it: "{item}"'
            )
        if "\x00" in item:
            raise ValueError(f"value of {brief(key)} cannot contain the NUL character")
    return dict(value)


def _read_timestamp(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value == value:
        raise ValueError(f"must be seconds since the epoch, got {brief(value)}")
    return float(value)


def _read_resources(value: object, problems: list[tuple[str, str]]) -> Resources | None:
    if not isinstance(value, dict):
        problems.append(("resources", f"must be like {RESOURCES_EXAMPLE}, got {brief(value)}"))
        return None
    for unknown in sorted(set(value) - RESOURCE_FIELDS):
        problems.append(
            (f"resources.{unknown}", _unknown_field(unknown, RESOURCE_FIELDS, ONLY_RESOURCES))
        )
    nano_cpus = memory = None
    if "cpu" not in value:
        problems.append(("resources.cpu", "missing; give the CPUs the job needs, e.g. 1 or 0.5"))
    else:
        try:
            nano_cpus = parse_cpu(value["cpu"])
            if nano_cpus < MIN_CPU * NANO:
                raise ValueError(f"must be at least {MIN_CPU} (Docker's smallest CPU limit)")
        except ValueError as exc:
            problems.append(("resources.cpu", str(exc)))
    if "memory" not in value:
        problems.append(("resources.memory", 'missing; give the job\'s memory, e.g. "512m"'))
    else:
        try:
            memory = parse_memory(value["memory"])
            if memory < MIN_MEMORY:
                raise ValueError("must be at least 6m (Docker's smallest memory limit)")
        except ValueError as exc:
            problems.append(("resources.memory", str(exc)))
    if nano_cpus is None or memory is None:
        return None
    return Resources(nano_cpus, memory)
