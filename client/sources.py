"""Reading jobs from what a user hands jobq-send: a file, standard input, or a folder.

- a JSON file holding one job (an object);
- a JSON-lines file (`.jsonl`, or any file of one object per line): one job a line;
- a folder: every `*.json` and `*.jsonl` file in it, in name order.

Every job is checked before anything is sent, and every problem is reported,
each naming its file (and line) and field.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import job as jobs
from .errors import InvalidJob
from .job import Job

JSON_LINES_SUFFIXES = {".jsonl", ".ndjson"}


def read_jobs(path: str) -> tuple[list[Job], list[InvalidJob]]:
    """The jobs in ``path`` ("-" for standard input), and the problems found."""
    if path == "-":
        return _from_bytes(sys.stdin.buffer.read(), "<stdin>", json_lines=None)
    folder = Path(path)
    if folder.is_dir():
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and (p.suffix == ".json" or p.suffix in JSON_LINES_SUFFIXES)
        )
        if not files:
            return [], [InvalidJob([("(folder)", "holds no .json or .jsonl files")], path)]
        found: list[Job] = []
        problems: list[InvalidJob] = []
        for file in files:
            more, trouble = _from_file(file)
            found += more
            problems += trouble
        return found, problems + _repeated_ids(found, path)
    found, problems = _from_file(folder)
    return found, problems + _repeated_ids(found, path)


def _from_file(path: Path) -> tuple[list[Job], list[InvalidJob]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], [InvalidJob([("(file)", f"cannot read it: {exc.strerror}")], str(path))]
    json_lines = True if path.suffix in JSON_LINES_SUFFIXES else None
    return _from_bytes(data, str(path), json_lines)


def _from_bytes(
    data: bytes, source: str, json_lines: bool | None
) -> tuple[list[Job], list[InvalidJob]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], [InvalidJob([("(file)", "is not UTF-8 text")], source)]
    if json_lines is None:
        json_lines = _looks_like_json_lines(text)
    if not json_lines:
        try:
            return [jobs.loads(text, source=source)], []
        except InvalidJob as exc:
            return [], [exc]
    found: list[Job] = []
    problems: list[InvalidJob] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(jobs.loads(line, source=f"{source}:{number}"))
        except InvalidJob as exc:
            problems.append(exc)
    if not found and not problems:
        problems.append(InvalidJob([("(file)", "holds no job")], source))
    return found, problems


def _looks_like_json_lines(text: str) -> bool:
    """One object in the whole text is a job file; else one object a line is JSON lines."""
    try:
        json.loads(text)
        return False
    except ValueError:
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except ValueError:
        return False


def _repeated_ids(found: list[Job], source: str) -> list[InvalidJob]:
    seen: set[str] = set()
    problems = []
    for job in found:
        if job.id in seen:
            problems.append(
                InvalidJob(
                    [
                        (
                            "id",
                            f"{job.id!r} is given to more than one job; each job needs its own id",
                        )
                    ],
                    source,
                )
            )
        seen.add(job.id)
    return problems
