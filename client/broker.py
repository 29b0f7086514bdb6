"""Connecting to RabbitMQ: where the URL comes from, and errors a user can act on."""

from __future__ import annotations

import os
import urllib.parse

import pika
import pika.exceptions

from .errors import BrokerUnavailable

DEFAULT_BROKER_URL = "amqp://guest:guest@localhost:5672/%2F"
BROKER_ENV = "JOBQ_BROKER_URL"


def resolve_url(flag: str | None, from_file: str | None = None) -> str:
    """The broker URL: --broker, else $JOBQ_BROKER_URL, else the config file, else the default."""
    return flag or os.environ.get(BROKER_ENV) or from_file or DEFAULT_BROKER_URL


def redact(url: str) -> str:
    """The URL with its password hidden, fit for logs and error messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def parameters(url: str, name: str, heartbeat: int = 30) -> pika.URLParameters:
    try:
        params = pika.URLParameters(url)
    except Exception as exc:  # pika raises bare ValueError/KeyError on bad URLs
        raise BrokerUnavailable(
            f"broker URL {redact(url)!r} is not an AMQP URL ({exc}); "
            "write it as amqp://USER:PASSWORD@HOST:5672/VHOST"
        ) from None
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": name}
    return params


def connect(url: str, name: str, heartbeat: int = 30) -> pika.BlockingConnection:
    """Open a blocking connection, turning pika's failures into BrokerUnavailable."""
    try:
        return pika.BlockingConnection(parameters(url, name, heartbeat))
    except pika.exceptions.ProbableAuthenticationError:
        raise BrokerUnavailable(
            f"RabbitMQ at {redact(url)} refused the user name or password; "
            f"fix the URL in --broker or ${BROKER_ENV}"
        ) from None
    except pika.exceptions.ProbableAccessDeniedError:
        raise BrokerUnavailable(
            f"RabbitMQ at {redact(url)} denied access to the virtual host; "
            "check the vhost in the URL and the user's permissions"
        ) from None
    except (pika.exceptions.AMQPError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise BrokerUnavailable(
            f"cannot reach RabbitMQ at {redact(url)} ({reason}); is it running? "
            f"Set the URL with --broker or ${BROKER_ENV}"
        ) from None
