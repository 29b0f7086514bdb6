"""supervisor/config.py: the worker's TOML config, checked against a pretend host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobq.client.errors import ConfigError
from jobq.client.units import NANO, Resources
from jobq.supervisor import config
from jobq.supervisor.config import DEFAULT_METRICS_PORT, Host, load, parse
from jobq.supervisor.placement import Rules

GIB = 1024**3
MIB = 1024**2
HOST = Host(nano_cpus=8 * NANO, memory=16 * GIB)
SOURCE = Path("etc/worker.toml")
REPO = Path(__file__).resolve().parents[2]


def read(doc: dict[str, Any], host: Host = HOST) -> config.Config:
    return parse(doc, SOURCE, host)


def error(doc: dict[str, Any], host: Host = HOST) -> str:
    with pytest.raises(ConfigError) as info:
        read(doc, host)
    return str(info.value)


@pytest.fixture(autouse=True)
def fixed_hostname(monkeypatch):
    monkeypatch.setattr(config.socket, "gethostname", lambda: "test-host")


# Defaults


def test_parse_empty_config_uses_defaults(monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", "/state")
    cfg = read({})
    assert cfg.source == SOURCE
    assert cfg.worker.id == "test-host"
    assert cfg.worker.capacity == Resources(8 * NANO, int(16 * GIB * 0.9))
    assert cfg.worker.max_jobs == 256
    assert cfg.worker.state_dir == Path("/state/jobq/test-host")
    assert cfg.broker.url is None
    assert cfg.broker.prefetch == 20
    assert cfg.placement == Rules(give_back_after=2, hold_limit=600, overdue_after=6 * 86400)
    assert cfg.metrics.port == DEFAULT_METRICS_PORT == 9840
    assert cfg.metrics.address == "0.0.0.0"


def test_parse_default_cpu_is_host_cpus():
    assert read({}, Host(nano_cpus=3 * NANO, memory=GIB)).worker.capacity.nano_cpus == 3 * NANO


def test_parse_default_memory_is_90_percent_of_host():
    host = Host(nano_cpus=NANO, memory=10 * GIB)
    assert read({}, host).worker.capacity.memory == 9 * GIB


def test_parse_default_state_dir_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = read({"worker": {"id": "w1"}})
    assert cfg.worker.state_dir == tmp_path / ".local" / "state" / "jobq" / "w1"


def test_parse_default_state_dir_uses_worker_id(monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", "/xdg")
    assert read({"worker": {"id": "w-9"}}).worker.state_dir == Path("/xdg/jobq/w-9")


def test_parse_empty_sections_are_fine():
    cfg = read({"worker": {}, "broker": {}, "metrics": {}})
    assert cfg.worker.id == "test-host"
    assert cfg.broker.prefetch == 20


# Values given


def test_parse_every_key():
    cfg = read(
        {
            "worker": {
                "id": "worker-7",
                "cpu": 2.5,
                "memory": "4g",
                "overcommit": False,
                "state_dir": "/srv/jobq",
                "max_jobs": 10,
            },
            "broker": {"url": "amqps://u:p@mq.example:5671/%2F", "prefetch": 5},
            "placement": {"hold_limit": 90, "overdue_after": 0},
            "metrics": {"port": 9999, "address": "127.0.0.1"},
        }
    )
    assert cfg.worker.id == "worker-7"
    assert cfg.worker.capacity == Resources(2_500_000_000, 4 * GIB)
    assert cfg.worker.state_dir == Path("/srv/jobq")
    assert cfg.worker.max_jobs == 10
    assert cfg.broker.url == "amqps://u:p@mq.example:5671/%2F"
    assert cfg.broker.prefetch == 5
    assert (cfg.placement.hold_limit, cfg.placement.overdue_after) == (90, 0)
    assert cfg.metrics.port == 9999
    assert cfg.metrics.address == "127.0.0.1"


def test_parse_memory_as_bytes():
    assert read({"worker": {"memory": 512 * MIB}}).worker.capacity.memory == 512 * MIB


def test_parse_cpu_and_memory_equal_to_host_are_accepted():
    cfg = read({"worker": {"cpu": 8, "memory": 16 * GIB}})
    assert cfg.worker.capacity == Resources(8 * NANO, 16 * GIB)


def test_parse_relative_state_dir_is_read_from_the_config_folder(tmp_path):
    source = tmp_path / "etc" / "worker.toml"
    cfg = parse({"worker": {"state_dir": "../var/w1"}}, source, HOST)
    assert cfg.worker.state_dir == (tmp_path / "var" / "w1").resolve()


def test_parse_relative_state_dir_does_not_depend_on_cwd(tmp_path, monkeypatch):
    source = tmp_path / "conf" / "worker.toml"
    monkeypatch.chdir("/")
    cfg = parse({"worker": {"state_dir": "state"}}, source, HOST)
    assert cfg.worker.state_dir == (tmp_path / "conf" / "state").resolve()


def test_parse_relative_state_dir_with_relative_source_is_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cfg = read({"worker": {"state_dir": "../var/worker-1"}})
    assert cfg.worker.state_dir == tmp_path.resolve() / "var" / "worker-1"
    assert cfg.worker.state_dir.is_absolute()


def test_parse_absolute_state_dir_is_kept(tmp_path):
    cfg = read({"worker": {"state_dir": str(tmp_path / "abs")}})
    assert cfg.worker.state_dir == (tmp_path / "abs").resolve()


def test_parse_state_dir_expands_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = read({"worker": {"state_dir": "~/jobq"}})
    assert cfg.worker.state_dir == (tmp_path / "jobq").resolve()


# Errors


def test_parse_rejects_unknown_section():
    message = error({"workers": {"id": "w"}})
    assert "etc/worker.toml" in message
    assert "unknown section [workers]" in message
    assert "[worker]" in message


def test_parse_rejects_section_that_is_not_a_table():
    message = error({"worker": "w1"})
    assert "etc/worker.toml" in message
    assert "[worker] table" in message


@pytest.mark.parametrize(
    ("section", "key"),
    [("worker", "cpus"), ("worker", "privileged"), ("broker", "host"), ("metrics", "path")],
)
def test_parse_rejects_unknown_key(section, key):
    message = error({section: {key: 1}})
    assert message.startswith(f"etc/worker.toml: [{section}] {key}: unknown key")


def test_parse_unknown_key_message_lists_the_known_keys():
    message = error({"broker": {"uri": "amqp://x"}})
    assert "prefetch, url" in message


@pytest.mark.parametrize("worker_id", ["", "-w", "w 1", "w/1", "a" * 65, 1, True, ["w"]])
def test_parse_rejects_bad_id(worker_id):
    assert error({"worker": {"id": worker_id}}).startswith("etc/worker.toml: [worker] id: ")


def test_parse_rejects_id_with_trailing_newline():
    assert error({"worker": {"id": "worker-1\n"}}).startswith("etc/worker.toml: [worker] id: ")


def test_parse_accepts_id_of_64_characters():
    assert read({"worker": {"id": "w" * 64}}).worker.id == "w" * 64


def test_parse_rejects_bad_hostname_as_default_id(monkeypatch):
    monkeypatch.setattr(config.socket, "gethostname", lambda: "bad host")
    assert "[worker] id: " in error({})


def test_parse_rejects_cpu_more_than_host():
    message = error({"worker": {"cpu": 9}})
    assert message.startswith("etc/worker.toml: [worker] cpu: ")
    assert "more than this host's 8 CPUs" in message
    assert "overcommit = true" in message


def test_parse_rejects_cpu_just_over_host():
    assert "[worker] cpu: " in error({"worker": {"cpu": 8.000000001}})


def test_parse_rejects_memory_more_than_host():
    message = error({"worker": {"memory": "17g"}})
    assert message.startswith("etc/worker.toml: [worker] memory: ")
    assert "16GiB" in message
    assert "overcommit = true" in message


def test_parse_rejects_memory_one_byte_over_host():
    assert "[worker] memory: " in error({"worker": {"memory": 16 * GIB + 1}})


def test_parse_overcommit_allows_more_than_host():
    cfg = read({"worker": {"cpu": 64, "memory": "1t", "overcommit": True}})
    assert cfg.worker.capacity == Resources(64 * NANO, 1024 * GIB)


@pytest.mark.parametrize("overcommit", ["yes", 1, "true"])
def test_parse_rejects_overcommit_not_bool(overcommit):
    assert "[worker] overcommit: " in error({"worker": {"overcommit": overcommit}})


@pytest.mark.parametrize("cpu", [0, -1, "2", True, float("nan")])
def test_parse_rejects_bad_cpu(cpu):
    assert error({"worker": {"cpu": cpu}}).startswith("etc/worker.toml: [worker] cpu: ")


@pytest.mark.parametrize("memory", [0, -1, "lots", "12x", 1.5, True])
def test_parse_rejects_bad_memory(memory):
    assert error({"worker": {"memory": memory}}).startswith("etc/worker.toml: [worker] memory: ")


def test_parse_reports_huge_cpu_as_config_error():
    assert "[worker] cpu: " in error({"worker": {"cpu": 1e300, "overcommit": True}})


@pytest.mark.parametrize("state_dir", ["", 1, True, ["/srv"]])
def test_parse_rejects_bad_state_dir(state_dir):
    message = error({"worker": {"state_dir": state_dir}})
    assert message.startswith("etc/worker.toml: [worker] state_dir: ")


@pytest.mark.parametrize("max_jobs", [0, -1, 4097, 1.5, "10", True])
def test_parse_rejects_bad_max_jobs(max_jobs):
    assert error({"worker": {"max_jobs": max_jobs}}).startswith(
        "etc/worker.toml: [worker] max_jobs: "
    )


@pytest.mark.parametrize("max_jobs", [1, 4096])
def test_parse_accepts_max_jobs_bounds(max_jobs):
    assert read({"worker": {"max_jobs": max_jobs}}).worker.max_jobs == max_jobs


@pytest.mark.parametrize("port", [0, -1, 65536, 70000, "9840", 9840.0, True])
def test_parse_rejects_bad_port(port):
    message = error({"metrics": {"port": port}})
    assert message.startswith("etc/worker.toml: [metrics] port: ")
    assert "1 to 65535" in message


@pytest.mark.parametrize("port", [1, 65535])
def test_parse_accepts_port_bounds(port):
    assert read({"metrics": {"port": port}}).metrics.port == port


@pytest.mark.parametrize("prefetch", [0, -5, 2001, "20", 2.5, False])
def test_parse_rejects_bad_prefetch(prefetch):
    message = error({"broker": {"prefetch": prefetch}})
    assert message.startswith("etc/worker.toml: [broker] prefetch: ")
    assert "1 to 2000" in message


@pytest.mark.parametrize("hold_limit", [0, -1, "2d", True, 86401])
def test_parse_rejects_bad_hold_limit(hold_limit):
    message = error({"placement": {"hold_limit": hold_limit}})
    assert message.startswith("etc/worker.toml: [placement] hold_limit: ")
    assert "number of seconds from 0.1 to 86400" in message


@pytest.mark.parametrize("overdue_after", [-1, "400d", False, 366 * 86400])
def test_parse_rejects_bad_overdue_after(overdue_after):
    message = error({"placement": {"overdue_after": overdue_after}})
    assert message.startswith("etc/worker.toml: [placement] overdue_after: ")
    assert "number of seconds from 0 to 31536000" in message


@pytest.mark.parametrize("text", ["six days", "6y", ""])
def test_parse_names_the_setting_of_an_unreadable_duration(text):
    message = error({"placement": {"overdue_after": text}})
    assert message.startswith("etc/worker.toml: [placement] overdue_after: ")
    assert "duration" in message or "unit" in message


def test_parse_reads_placement_times_with_units():
    rules = read({"placement": {"overdue_after": "6d", "hold_limit": "10m"}}).placement
    assert (rules.overdue_after, rules.hold_limit) == (6 * 86400, 600)
    assert read({"placement": {"overdue_after": "0s"}}).placement.overdue_after == 0


def test_parse_quotes_an_out_of_range_duration_as_written():
    message = error({"placement": {"hold_limit": "2d"}})
    assert "got '2d' (172800 s)" in message


@pytest.mark.parametrize("prefetch", [1, 2000])
def test_parse_accepts_prefetch_bounds(prefetch):
    assert read({"broker": {"prefetch": prefetch}}).broker.prefetch == prefetch


@pytest.mark.parametrize(
    "url", ["http://localhost:5672", "localhost", "", "amqp:/x", "rabbitmq://x", 5672, True]
)
def test_parse_rejects_bad_url(url):
    message = error({"broker": {"url": url}})
    assert message.startswith("etc/worker.toml: [broker] url: ")
    assert "amqp://" in message


@pytest.mark.parametrize("url", ["amqp://guest:guest@localhost:5672/%2F", "amqps://mq.example"])
def test_parse_accepts_amqp_urls(url):
    assert read({"broker": {"url": url}}).broker.url == url


@pytest.mark.parametrize("address", ["", 0, None, ["0.0.0.0"]])
def test_parse_rejects_bad_address(address):
    assert error({"metrics": {"address": address}}).startswith(
        "etc/worker.toml: [metrics] address: "
    )


# load()


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load(path, HOST)
    assert str(path) in str(info.value)
    assert "cannot read" in str(info.value)


def test_load_invalid_toml(tmp_path):
    path = tmp_path / "worker.toml"
    path.write_text("[worker\nid = 'w'\n")
    with pytest.raises(ConfigError) as info:
        load(path, HOST)
    assert str(path) in str(info.value)
    assert "not valid TOML" in str(info.value)


def test_load_reports_errors_with_the_file_path(tmp_path):
    path = tmp_path / "worker.toml"
    path.write_text("[worker]\ncpus = 2\n")
    with pytest.raises(ConfigError) as info:
        load(path, HOST)
    assert str(info.value).startswith(f"{path}: [worker] cpus: unknown key")


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "worker.toml"
    path.write_text(
        '[worker]\nid = "w2"\ncpu = 0.5\nmemory = "512m"\nstate_dir = "st"\n'
        "[broker]\nprefetch = 3\n[metrics]\nport = 9100\n"
    )
    cfg = load(str(path), HOST)
    assert cfg.source == path
    assert cfg.worker.id == "w2"
    assert cfg.worker.capacity == Resources(NANO // 2, 512 * MIB)
    assert cfg.worker.state_dir == (tmp_path / "st").resolve()
    assert cfg.broker.prefetch == 3
    assert cfg.metrics.port == 9100


def test_load_empty_file_gives_defaults(tmp_path):
    path = tmp_path / "worker.toml"
    path.write_text("")
    cfg = load(path, HOST)
    assert cfg.worker.id == "test-host"
    assert cfg.worker.capacity == Resources(8 * NANO, int(16 * GIB * 0.9))


def test_load_repo_sample_config():
    path = REPO / "etc" / "worker.toml"
    cfg = load(path, HOST)
    assert cfg.worker.id == "worker-1"
    assert cfg.worker.capacity == Resources(2 * NANO, GIB)
    assert cfg.worker.state_dir == (REPO / "var" / "worker-1").resolve()
    assert cfg.worker.max_jobs == 256
    assert cfg.broker.url is None
    assert cfg.broker.prefetch == 20
    assert cfg.metrics.port == 9840
    assert cfg.metrics.address == "0.0.0.0"


def test_host_this_reports_positive_resources():
    host = Host.this()
    assert host.nano_cpus >= NANO
    assert host.nano_cpus % NANO == 0
    assert host.memory > 0
