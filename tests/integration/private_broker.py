"""A private RabbitMQ node for integration tests that must bend or break the broker.

The main broker on localhost:5672 is shared by every test, so a test that needs a
short ``consumer_timeout`` or that stops and starts the broker while jobs run uses
its own node instead::

    with PrivateBroker(consumer_timeout_ms=60000) as broker:
        ...  # broker.url, broker.stop(), broker.start(), broker.close_connections()

The node runs from the Debian package's scripts (/usr/lib/rabbitmq/bin), not the
/usr/sbin wrappers: those `su` to the rabbitmq user through `sh -c` with hand-made
quoting and send the server's output to /var/log/rabbitmq. What a node beside the
main one needs, learnt the hard way:

* It runs as the rabbitmq user (when the tests run as root), with HOME set to that
  user's home, so the node and rabbitmqctl read the same Erlang cookie
  (/var/lib/rabbitmq/.erlang.cookie). A cookie mismatch shows up as "TCP connection
  succeeded but Erlang distribution failed".
* Its folders belong to that user and sit directly under /tmp: pytest's tmp_path
  lives under a mode-700 folder the rabbitmq user cannot traverse.
* Its node name is unique and uses the real short hostname (what rabbitmqctl
  assumes for ``-n name``); a name already registered in epmd makes the node die
  with ``duplicate_node_name``.
* Its AMQP and distribution ports are free, differ from the main node's (5672,
  25672) and from the CLI tools' distribution range (35672-35682), and lie below
  the kernel's ephemeral range, so an outgoing connection cannot take them while
  the node is stopped.
* Its environment is built from scratch (no rabbitmq-env.conf, no enabled
  plugins, no inherited ERL_* flags) and its crash dump goes to its own folder.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
RABBITMQ_USER = "rabbitmq"
EPMD_PORT = int(os.environ.get("ERL_EPMD_PORT", "4369"))
# The main node's ports and the CLI tools' distribution ports (rabbitmq-env).
RESERVED_PORTS = {4369, 5671, 5672, 15672, 25672, *range(35672, 35683)}
MARKER = "JOBQ_PRIVATE_BROKER"  # in the node's environment, to find its processes


class BrokerError(RuntimeError):
    """The private node failed to start, stop or answer."""


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_is_free(port: int) -> bool:
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 on this machine
        with sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def _pick_ports(count: int) -> list[int]:
    """Free TCP ports outside the ephemeral range and the reserved ports."""
    high = _ephemeral_floor() - 1
    low = max(10000, high - 20000)
    picked: list[int] = []
    for _ in range(1000):
        port = random.randint(low, high)
        if port not in RESERVED_PORTS and port not in picked and _port_is_free(port):
            picked.append(port)
            if len(picked) == count:
                return picked
    raise BrokerError(f"no free TCP ports between {low} and {high}")


def _epmd_names() -> dict[str, int]:
    """Node names registered in the local epmd, with their distribution ports."""
    try:
        with socket.create_connection(("127.0.0.1", EPMD_PORT), timeout=2) as sock:
            sock.sendall(struct.pack(">HB", 1, ord("n")))  # NAMES_REQ
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    except OSError:
        return {}  # no epmd: no node registered
    names = {}
    for line in data[4:].decode(errors="replace").splitlines():
        parts = line.split()  # "name <name> at port <port>"
        if len(parts) == 5 and parts[0] == "name":
            names[parts[1]] = int(parts[4])
    return names


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(not written yet)"
    except OSError as exc:
        return f"(unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} empty)"


class PrivateBroker:
    """A RabbitMQ node of its own on a free port, with its own data folder."""

    def __init__(self, consumer_timeout_ms: int | None = None, name: str = "jobqtest") -> None:
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise BrokerError(f"no RabbitMQ server scripts in {RABBITMQ_BIN}")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"node name {name!r}: use letters, digits, '_' and '-'")
        self.consumer_timeout_ms = consumer_timeout_ms
        self.host = socket.gethostname().split(".")[0]
        self.node = f"{name}-{uuid.uuid4().hex[:8]}@{self.host}"
        self.port, self.dist_port = _pick_ports(2)
        self.url = f"amqp://guest:guest@localhost:{self.port}/%2F"

        # As root the node runs as the rabbitmq user; otherwise as ourselves (node and CLI
        # then share our own cookie).
        root = os.geteuid() == 0
        user = pwd.getpwnam(RABBITMQ_USER) if root else pwd.getpwuid(os.geteuid())
        self._uid, self._gid, self._home = user.pw_uid, user.pw_gid, user.pw_dir

        self.base = Path(tempfile.mkdtemp(prefix="jobq-rabbit-", dir="/tmp"))
        self.base.chmod(0o755)
        self.mnesia_base = self.base / "mnesia"
        self.log_base = self.base / "log"
        self.config_file = self.base / "rabbitmq.conf"  # 3.10: the extension picks the format
        self.console_log = self.log_base / "console.log"
        self.log_file = self.log_base / f"{self.node}.log"
        try:
            self._write_files()
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise

        self._proc: subprocess.Popen[bytes] | None = None
        self._ever_started = False
        atexit.register(self.cleanup)

    # --- files and environment ---------------------------------------------

    def _write_files(self) -> None:
        self.mnesia_base.mkdir()
        self.log_base.mkdir()
        conf = [
            f"listeners.tcp.default = {self.port}",
            "loopback_users.guest = true",
            "log.console = false",
            "log.file.level = info",
        ]
        if self.consumer_timeout_ms is not None:
            conf.append(f"consumer_timeout = {int(self.consumer_timeout_ms)}")
        self.config_file.write_text("\n".join(conf) + "\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        for path in (self.base, *self.base.iterdir()):
            os.chown(path, self._uid, self._gid)

    def _env(self) -> dict[str, str]:
        base = self.base
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": self._home,  # where the Erlang cookie is
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.mnesia_base),
            "RABBITMQ_LOG_BASE": str(self.log_base),
            "RABBITMQ_CONFIG_FILE": str(self.config_file),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),  # absent
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "ERL_CRASH_DUMP": str(self.log_base / "erl_crash.dump"),
            MARKER: str(base),
        }

    def _as_user(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        return {"user": self._uid, "group": self._gid, "extra_groups": []}

    # --- control -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def rabbitmqctl(self, *args: str, timeout: float = 60) -> str:
        """Run rabbitmqctl against this node; its stdout, or BrokerError."""
        cmd = [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args]
        env = self._env()
        del env[MARKER]  # the marker finds the node's processes, not the CLI's
        try:
            result = subprocess.run(
                cmd,
                env=env,
                cwd=self.base,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                **self._as_user(),
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"rabbitmqctl {' '.join(args)}: no answer in {timeout}s") from exc
        if result.returncode != 0:
            raise BrokerError(
                f"rabbitmqctl {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stderr.strip()}\n{result.stdout.strip()}"
            )
        return result.stdout

    def start(self, timeout: float = 60) -> None:
        """Start the node; return once it accepts AMQP connections and rabbitmqctl."""
        if self.running:
            return
        deadline = time.monotonic() + timeout
        self._reap()  # what a crashed run may have left
        self._await_unregistered(time.monotonic() + 5)
        if self.node.split("@")[0] in _epmd_names():
            raise BrokerError(f"node {self.node} is already registered in epmd")
        if not _port_is_free(self.dist_port):
            raise BrokerError(f"distribution port {self.dist_port} is taken")
        if not _port_is_free(self.port):
            if self._ever_started:
                raise BrokerError(f"AMQP port {self.port} was taken while the node was down")
            self.port = _pick_ports(1)[0]
            self.url = f"amqp://guest:guest@localhost:{self.port}/%2F"
            self._rewrite_port()

        with self.console_log.open("ab") as console:
            console.write(f"--- start {time.strftime('%H:%M:%S')} ---\n".encode())
            console.flush()
            self._proc = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                env=self._env(),
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group; no ^C from the terminal
                **self._as_user(),
            )
        self._ever_started = True
        try:
            self._await_amqp(deadline)
            left = max(5, int(deadline - time.monotonic()))
            self.rabbitmqctl("await_startup", "--timeout", str(left), timeout=left + 10)
        except BaseException as exc:
            self._kill()
            if isinstance(exc, BrokerError):
                raise BrokerError(f"{exc}\n{self._logs()}") from None
            raise

    def _rewrite_port(self) -> None:
        text = self.config_file.read_text().splitlines()
        text = [
            f"listeners.tcp.default = {self.port}" if line.startswith("listeners.tcp") else line
            for line in text
        ]
        self.config_file.write_text("\n".join(text) + "\n")

    def _await_amqp(self, deadline: float) -> None:
        import pika  # the tests' dependency; imported here so the module loads without it

        params = pika.URLParameters(self.url + "?connection_attempts=1&socket_timeout=2")
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise BrokerError(f"node {self.node} died while starting (script status {code})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                pika.BlockingConnection(params).close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"node {self.node} accepted no AMQP connection on port {self.port}"
                    ) from None
                time.sleep(0.2)

    def stop(self, timeout: float = 60) -> None:
        """Stop the node gracefully, as a broker shutdown does; data stays."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            # The rabbitmq-server script traps SIGTERM and passes it to the Erlang VM,
            # which then shuts RabbitMQ down cleanly (closing client connections with
            # "broker forced connection closure", writing queue state to disk).
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logs = self._logs()
                self._kill()
                raise BrokerError(
                    f"node {self.node} did not stop in {timeout}s; killed it\n{logs}"
                ) from None
        self._reap()
        self._proc = None
        self._await_unregistered(time.monotonic() + 10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close_connections(self, reason: str = "test") -> None:
        """Force-close every client connection on the node: "the connection was cut"."""
        self.rabbitmqctl("close_all_connections", "--global", reason)

    def cleanup(self) -> None:
        """Stop the node if it runs and delete its folders. Never raises."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.cleanup)
        with contextlib.suppress(Exception):
            self.stop(timeout=30)
        with contextlib.suppress(Exception):
            self._kill()
        with contextlib.suppress(Exception):
            shutil.rmtree(self.base, ignore_errors=True)

    # --- process bookkeeping -------------------------------------------------

    def _node_pids(self) -> list[int]:
        """Processes started for this node (by the marker in their environment).

        epmd is left alone: if the node had to start it, the main node uses it too.
        """
        marker = f"{MARKER}={self.base}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                if (entry / "comm").read_text().strip() == "epmd":
                    continue
            except OSError:
                continue
            pids.append(int(entry.name))
        return pids

    def _kill(self) -> None:
        """SIGKILL whatever is left of the node; wait until it is gone."""
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._reap()
        self._proc = None
        self._await_unregistered(time.monotonic() + 10)

    def _reap(self) -> None:
        """Kill stragglers of an earlier run (e.g. an Erlang VM whose script died)."""
        deadline = time.monotonic() + 10
        while pids := self._node_pids():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise BrokerError(f"processes {pids} of node {self.node} do not die")
            time.sleep(0.1)

    def _await_unregistered(self, deadline: float) -> None:
        name = self.node.split("@")[0]
        while name in _epmd_names() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _logs(self) -> str:
        return (
            f"--- {self.log_file} (tail) ---\n{_tail(self.log_file)}\n"
            f"--- {self.console_log} (tail) ---\n{_tail(self.console_log)}"
        )

    # --- context manager -----------------------------------------------------

    def __enter__(self) -> PrivateBroker:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PrivateBroker {self.node} port={self.port} {state}>"
