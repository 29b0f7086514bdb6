"""The exceptions jobq raises. Callers catch these, never pika's or docker's."""

from __future__ import annotations


def brief(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut short.

    A message that echoes a 3 MB argument helps nobody, and one quoted in a
    dead-letter header can outgrow an AMQP frame.
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


class JobqError(Exception):
    """Base class for every error jobq reports to a user."""


# The "field" of a problem with the whole document rather than one field.
DOCUMENT = "(document)"


class InvalidJob(JobqError):
    """A job document breaks the job format.

    ``problems`` holds one ``(field, message)`` pair per broken field, so a
    user sees every mistake at once instead of fixing them one run at a time.
    """

    def __init__(self, problems: list[tuple[str, str]], source: str = "job") -> None:
        self.problems = problems
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(self._line(field, message) for field, message in self.problems)

    def _line(self, field: str, message: str) -> str:
        if field == DOCUMENT:
            return f"{self.source}: {message}; a job is one JSON object (see docs/job-format.md)"
        return f"{self.source}: field '{field}': {message}"


class ConfigError(JobqError):
    """A worker configuration file is invalid; the message names the file and key."""


class BrokerUnavailable(JobqError):
    """RabbitMQ could not be reached, or it refused or failed a publish."""
