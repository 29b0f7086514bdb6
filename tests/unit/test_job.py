"""client/job.py: the job format, what loads() accepts and rejects, and the wire encoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobq.client.errors import InvalidJob
from jobq.client.job import (
    ID_RE,
    Job,
    decode,
    loads,
    parse,
    with_submit_time,
)
from jobq.client.units import NANO, Resources

MIB = 1024**2


def minimal(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"image": "busybox", "resources": {"cpu": 1, "memory": "256m"}}
    doc.update(overrides)
    return doc


def text(doc: object) -> str:
    return json.dumps(doc)


def problems_of(doc: object, **kwargs: Any) -> dict[str, str]:
    """The problems loads() reports, as {field: message}."""
    with pytest.raises(InvalidJob) as info:
        loads(text(doc), **kwargs)
    return dict(info.value.problems)


def fields_of(doc: object) -> list[str]:
    with pytest.raises(InvalidJob) as info:
        loads(text(doc))
    return [name for name, _ in info.value.problems]


# Acceptance


def test_loads_minimal_job():
    job = loads(text(minimal()))
    assert job.image == "busybox"
    assert job.resources == Resources(NANO, 256 * MIB)
    assert job.cmd == ()
    assert job.env == {}
    assert job.name is None
    assert job.submitted_at is None


def test_loads_full_job():
    job = loads(
        text(
            {
                "id": "job-1.a_b",
                "name": "nightly build",
                "image": "registry.example.com:5000/team/app@sha256:" + "a" * 64,
                "cmd": ["sh", "-c", "echo $GREETING"],
                "env": {"GREETING": "hi", "EMPTY": ""},
                "resources": {"cpu": 0.5, "memory": 268435456},
            }
        )
    )
    assert job.id == "job-1.a_b"
    assert job.name == "nightly build"
    assert job.image.endswith("@sha256:" + "a" * 64)
    assert job.cmd == ("sh", "-c", "echo $GREETING")
    assert job.env == {"GREETING": "hi", "EMPTY": ""}
    assert job.resources == Resources(500_000_000, 256 * MIB)
    assert job.label == "job-1.a_b (nightly build)"


def test_loads_cmd_arguments_are_kept_exactly():
    args = [
        "with spaces  inside",
        "double \"quotes\" and 'single'",
        "$HOME ${PATH} $(rm -rf /) `id`",
        "line one\nline two\r\n\ttab",
        "",
        "ünïcödé ✓",
        "back\\slash; semi && pipe | glob *",
    ]
    job = loads(text(minimal(cmd=args)))
    assert job.cmd == tuple(args)


def test_loads_env_values_are_kept_exactly():
    env = {"A": "x y", "B": "$NOT_EXPANDED", "C": "multi\nline", "D": '"quoted"', "lower_ok": "1"}
    assert loads(text(minimal(env=env))).env == env


def test_loads_empty_cmd_is_accepted():
    assert loads(text(minimal(cmd=[]))).cmd == ()


def test_loads_default_id_is_generated():
    job = loads(text(minimal()))
    assert ID_RE.match(job.id)
    assert len(job.id) == 32


def test_loads_default_ids_are_unique():
    ids = {loads(text(minimal())).id for _ in range(200)}
    assert len(ids) == 200


def test_loads_given_id_is_kept():
    assert loads(text(minimal(id="abc"))).id == "abc"


@pytest.mark.parametrize("job_id", ["a", "A1", "0", "a" * 64, "a.b-c_d", "9-x"])
def test_loads_accepts_valid_ids(job_id):
    assert loads(text(minimal(id=job_id))).id == job_id


def test_loads_label_without_name_is_the_id():
    assert loads(text(minimal(id="x1"))).label == "x1"


def test_loads_cpu_minimum_is_accepted():
    assert loads(text(minimal(resources={"cpu": 0.01, "memory": "6m"}))).resources == Resources(
        10_000_000, 6 * MIB
    )


def test_loads_memory_as_bytes_int():
    assert loads(text(minimal(resources={"cpu": 1, "memory": 6 * MIB}))).resources.memory == 6 * MIB


def test_loads_json_whitespace_and_key_order_do_not_matter():
    job = loads('\n  {"resources": {"memory": "1g", "cpu": 2},\n "image": "alpine"}  \n')
    assert job.image == "alpine"
    assert job.resources == Resources(2 * NANO, 1024**3)


def test_parse_accepts_a_decoded_dict():
    job = parse(minimal(id="p1"))
    assert job.id == "p1"
    assert job.image == "busybox"


# Rejections: the document


@pytest.mark.parametrize("bad", ["", "not json", "{", "{'image': 'busybox'}", '{"image": }'])
def test_loads_rejects_invalid_json(bad):
    with pytest.raises(InvalidJob) as info:
        loads(bad)
    assert [name for name, _ in info.value.problems] == ["(document)"]
    assert "not valid JSON" in info.value.problems[0][1]


@pytest.mark.parametrize("doc", [[], ["image"], "busybox", 1, None, True])
def test_loads_rejects_top_level_not_an_object(doc):
    with pytest.raises(InvalidJob) as info:
        loads(text(doc))
    assert [name for name, _ in info.value.problems] == ["(document)"]
    assert "JSON object" in info.value.problems[0][1]


def test_not_json_error_names_the_file_and_says_what_a_job_is():
    with pytest.raises(InvalidJob) as info:
        loads("not json", source="jobs/build.json")
    message = str(info.value)
    assert message.startswith("jobs/build.json: not valid JSON: ")
    assert "(document)" not in message
    assert "docs/job-format.md" in message


def test_loads_error_message_names_source_and_field():
    with pytest.raises(InvalidJob) as info:
        loads(text(minimal(image="bad image")), source="jobs/build.json")
    assert info.value.source == "jobs/build.json"
    assert str(info.value).startswith("jobs/build.json: field 'image': ")


# Rejections: image


def test_loads_rejects_missing_image():
    doc = minimal()
    del doc["image"]
    problems = problems_of(doc)
    assert list(problems) == ["image"]
    assert "missing" in problems["image"]


@pytest.mark.parametrize("image", ["busy box", " busybox", "busybox\n", "a\tb", ""])
def test_loads_rejects_image_with_whitespace_or_empty(image):
    assert list(problems_of(minimal(image=image))) == ["image"]


@pytest.mark.parametrize("image", [None, 1, ["busybox"], {"name": "busybox"}])
def test_loads_rejects_image_not_a_string(image):
    assert list(problems_of(minimal(image=image))) == ["image"]


# Rejections: cmd


@pytest.mark.parametrize("cmd", ["echo hi", {"0": "echo"}, 1, None, True])
def test_loads_rejects_cmd_not_a_list(cmd):
    problems = problems_of(minimal(cmd=cmd))
    assert list(problems) == ["cmd"]
    assert "list of strings" in problems["cmd"]


@pytest.mark.parametrize("cmd", [["echo", 1], ["echo", None], [["nested"]], [True], ["a", 1.5]])
def test_loads_rejects_cmd_list_with_non_string(cmd):
    assert list(problems_of(minimal(cmd=cmd))) == ["cmd"]


def test_loads_rejects_cmd_argument_with_nul():
    problems = problems_of(minimal(cmd=["echo", "a\x00b"]))
    assert "NUL" in problems["cmd"]


# Rejections: env


@pytest.mark.parametrize("env", [["A=1"], "A=1", 1, None])
def test_loads_rejects_env_not_an_object(env):
    problems = problems_of(minimal(env=env))
    assert list(problems) == ["env"]
    assert "object" in problems["env"]


@pytest.mark.parametrize("value", [1, 1.5, True, None, ["x"], {"x": "y"}])
def test_loads_rejects_env_non_string_value(value):
    problems = problems_of(minimal(env={"PORT": value}))
    assert list(problems) == ["env"]
    assert "'PORT'" in problems["env"]
    assert "must be a string" in problems["env"]


def test_loads_env_number_error_suggests_quoting():
    problems = problems_of(minimal(env={"PORT": 8080}))
    assert '"8080"' in problems["env"]


@pytest.mark.parametrize("name", ["A=B", "=A", "", "NUL\x00NAME"])
def test_loads_rejects_env_bad_name(name):
    problems = problems_of(minimal(env={name: "x"}))
    assert list(problems) == ["env"]
    assert "variable name" in problems["env"]


def test_loads_rejects_env_value_with_nul():
    problems = problems_of(minimal(env={"A": "x\x00y"}))
    assert "NUL" in problems["env"]


# Rejections: id and name


@pytest.mark.parametrize(
    "job_id", ["", "-a", ".a", "_a", "a b", "a/b", "a" * 65, "ä", "a:b", 1, None, ["a"]]
)
def test_loads_rejects_bad_id(job_id):
    assert list(problems_of(minimal(id=job_id))) == ["id"]


def test_loads_rejects_id_with_trailing_newline():
    assert list(problems_of(minimal(id="abc\n"))) == ["id"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 257, 1, None, ["n"]])
def test_loads_rejects_bad_name(name):
    assert list(problems_of(minimal(name=name))) == ["name"]


def test_loads_accepts_name_of_256_characters():
    assert loads(text(minimal(name="x" * 256))).name == "x" * 256


# Rejections: resources


def test_loads_rejects_missing_resources():
    doc = minimal()
    del doc["resources"]
    problems = problems_of(doc)
    assert list(problems) == ["resources"]
    assert "missing" in problems["resources"]


@pytest.mark.parametrize("resources", [[1, "1g"], "1 cpu", 1, None])
def test_loads_rejects_resources_not_an_object(resources):
    assert list(problems_of(minimal(resources=resources))) == ["resources"]


def test_loads_rejects_missing_cpu():
    problems = problems_of(minimal(resources={"memory": "1g"}))
    assert list(problems) == ["resources.cpu"]
    assert "missing" in problems["resources.cpu"]


def test_loads_rejects_missing_memory():
    problems = problems_of(minimal(resources={"cpu": 1}))
    assert list(problems) == ["resources.memory"]
    assert "missing" in problems["resources.memory"]


@pytest.mark.parametrize("cpu", [0, -1, -0.5, 0.0])
def test_loads_rejects_cpu_zero_or_negative(cpu):
    problems = problems_of(minimal(resources={"cpu": cpu, "memory": "1g"}))
    assert list(problems) == ["resources.cpu"]
    assert "greater than 0" in problems["resources.cpu"]


@pytest.mark.parametrize("cpu", [0.009, 0.001, 1e-9])
def test_loads_rejects_cpu_below_minimum(cpu):
    problems = problems_of(minimal(resources={"cpu": cpu, "memory": "1g"}))
    assert list(problems) == ["resources.cpu"]
    assert "at least 0.01" in problems["resources.cpu"]


@pytest.mark.parametrize("cpu", ["1", "0.5", True, False, None, [1]])
def test_loads_rejects_cpu_string_or_bool(cpu):
    problems = problems_of(minimal(resources={"cpu": cpu, "memory": "1g"}))
    assert list(problems) == ["resources.cpu"]


def test_loads_rejects_cpu_nan():
    with pytest.raises(InvalidJob) as info:
        loads('{"image": "busybox", "resources": {"cpu": NaN, "memory": "1g"}}')
    assert [name for name, _ in info.value.problems] == ["resources.cpu"]


@pytest.mark.parametrize("memory", ["lots", "12x", "", "1e3", True, 1.5, None, ["1g"]])
def test_loads_rejects_memory_unparseable(memory):
    problems = problems_of(minimal(resources={"cpu": 1, "memory": memory}))
    assert list(problems) == ["resources.memory"]


@pytest.mark.parametrize("memory", [0, -1, "0", "0m"])
def test_loads_rejects_memory_zero_or_negative(memory):
    problems = problems_of(minimal(resources={"cpu": 1, "memory": memory}))
    assert list(problems) == ["resources.memory"]
    assert "greater than 0" in problems["resources.memory"]


@pytest.mark.parametrize("memory", ["5m", "6291455", 6 * MIB - 1, "1k", 1])
def test_loads_rejects_memory_below_6m(memory):
    problems = problems_of(minimal(resources={"cpu": 1, "memory": memory}))
    assert list(problems) == ["resources.memory"]
    assert "at least 6m" in problems["resources.memory"]


def test_loads_rejects_unknown_resources_field():
    problems = problems_of(minimal(resources={"cpu": 1, "memory": "1g", "gpu": 1, "disk": "1g"}))
    assert list(problems) == ["resources.disk", "resources.gpu"]
    assert "unknown field" in problems["resources.gpu"]


def test_decode_reports_huge_cpu_as_invalid_job():
    body = b'{"image": "busybox", "resources": {"cpu": 1e300, "memory": "1g"}}'
    with pytest.raises(InvalidJob) as info:
        decode(body)
    assert [name for name, _ in info.value.problems] == ["resources.cpu"]


def test_decode_reports_huge_memory_as_invalid_job():
    body = json.dumps(minimal(resources={"cpu": 1, "memory": "9" * 400 + "g"})).encode()
    with pytest.raises(InvalidJob) as info:
        decode(body)
    assert [name for name, _ in info.value.problems] == ["resources.memory"]


# Rejections: unknown top-level fields


@pytest.mark.parametrize(
    "field", ["privileged", "volumes", "enviroment", "network_mode", "user", "Image", "command"]
)
def test_loads_rejects_unknown_top_level_field(field):
    problems = problems_of(minimal(**{field: True}))
    assert list(problems) == [field]
    assert "unknown field" in problems[field]
    assert "image" in problems[field]  # it lists the known fields


@pytest.mark.parametrize(
    ("typo", "meant"), [("enviroment", "env"), ("imgae", "image"), ("resource", "resources")]
)
def test_unknown_field_names_the_field_probably_meant(typo, meant):
    problems = problems_of(minimal(**{typo: True}))
    assert f"did you mean '{meant}'?" in problems[typo]


def test_unknown_field_with_no_near_name_suggests_nothing():
    assert "did you mean" not in problems_of(minimal(privileged=True))["privileged"]


def test_unknown_resources_field_suggests_within_resources():
    problems = problems_of(minimal(resources={"cpus": 1, "memory": "1g"}))
    assert "did you mean 'cpu'? resources has only: cpu, memory" in problems["resources.cpus"]


@pytest.mark.parametrize("field", ["version", "submitted_at"])
def test_loads_rejects_wire_only_fields(field):
    problems = problems_of(minimal(**{field: 1}))
    assert list(problems) == [field]


# Several problems at once


def test_loads_reports_every_problem_at_once():
    doc = {
        "id": "-bad",
        "cmd": "echo hi",
        "env": {"A": 1},
        "privileged": True,
        "enviroment": {},
        "resources": {"cpu": 0, "memory": "5m", "gpu": 1},
    }
    assert sorted(fields_of(doc)) == sorted(
        [
            "enviroment",
            "privileged",
            "image",
            "id",
            "cmd",
            "env",
            "resources.gpu",
            "resources.cpu",
            "resources.memory",
        ]
    )


def test_loads_several_problems_rendered_one_per_line():
    with pytest.raises(InvalidJob) as info:
        loads(text({"cmd": 1}), source="j.json")
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("j.json: field 'image': ")
    assert lines[1].startswith("j.json: field 'resources': ")
    assert lines[2].startswith("j.json: field 'cmd': ")


def test_loads_empty_object_reports_image_and_resources():
    assert fields_of({}) == ["image", "resources"]


# Wire format


def full_job(**overrides: Any) -> Job:
    values: dict[str, Any] = {
        "id": "wire-1",
        "image": "busybox:1.36",
        "resources": Resources(123_456_789, 6 * MIB + 1),
        "cmd": ("sh", "-c", 'echo "$A" \n done'),
        "env": {"A": "1 2", "B": ""},
        "name": "a name",
        "submitted_at": 1767225600.123456,
    }
    values.update(overrides)
    return Job(**values)


def test_encode_decode_round_trip_keeps_everything():
    job = full_job()
    back = decode(job.encode())
    assert back == job
    assert back.cmd == ("sh", "-c", 'echo "$A" \n done')
    assert back.env == {"A": "1 2", "B": ""}
    assert back.resources.nano_cpus == 123_456_789
    assert back.resources.memory == 6 * MIB + 1
    assert back.submitted_at == 1767225600.123456
    assert back.name == "a name"


@pytest.mark.parametrize(
    "nano_cpus", [10_000_000, 100_000_000, 123_456_789, 333_333_333, 7 * NANO + 1, 64 * NANO - 1]
)
def test_encode_decode_round_trip_keeps_cpu_exact(nano_cpus):
    job = full_job(resources=Resources(nano_cpus, 6 * MIB))
    assert decode(job.encode()).resources.nano_cpus == nano_cpus


def test_encode_decode_round_trip_without_name_or_submit_time():
    job = full_job(name=None, submitted_at=None)
    wire = json.loads(job.encode())
    assert "name" not in wire
    assert wire["submitted_at"] is None
    assert decode(job.encode()) == job


def test_encode_has_version_and_compact_json():
    job = full_job(cmd=("true",), env={"A": "1"}, name=None)
    wire = job.encode()
    assert b" " not in wire
    assert json.loads(wire)["version"] == 1


def test_decode_accepts_wire_only_fields():
    body = json.dumps(minimal(version=1, submitted_at=1700000000)).encode()
    job = decode(body)
    assert job.submitted_at == 1700000000.0
    assert isinstance(job.submitted_at, float)


@pytest.mark.parametrize("submitted_at", ["yesterday", True, [1]])
def test_decode_rejects_bad_submitted_at(submitted_at):
    body = json.dumps(minimal(submitted_at=submitted_at)).encode()
    with pytest.raises(InvalidJob) as info:
        decode(body)
    assert [name for name, _ in info.value.problems] == ["submitted_at"]


def test_decode_still_rejects_unknown_fields():
    body = json.dumps(minimal(privileged=True)).encode()
    with pytest.raises(InvalidJob) as info:
        decode(body)
    assert [name for name, _ in info.value.problems] == ["privileged"]


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe\x00garbage", b"{"])
def test_decode_rejects_invalid_bytes_or_json(body):
    with pytest.raises(InvalidJob) as info:
        decode(body, source="message 7")
    assert info.value.source == "message 7"
    assert [name for name, _ in info.value.problems] == ["(document)"]


def test_decode_rejects_top_level_not_an_object():
    with pytest.raises(InvalidJob) as info:
        decode(b"[1, 2]")
    assert [name for name, _ in info.value.problems] == ["(document)"]


def test_with_submit_time_stamps_now_and_keeps_the_rest(monkeypatch):
    monkeypatch.setattr("jobq.client.job.time.time", lambda: 1234.5)
    job = full_job(submitted_at=None)
    stamped = with_submit_time(job)
    assert stamped.submitted_at == 1234.5
    assert stamped == full_job(submitted_at=1234.5)
    assert job.submitted_at is None


def raw_problems(raw: str) -> dict[str, str]:
    with pytest.raises(InvalidJob) as info:
        loads(raw)
    return dict(info.value.problems)


def test_loads_rejects_a_key_given_twice():
    problems = raw_problems('{"image": "a", "image": "b", "resources": {"cpu": 1, "memory": "8m"}}')
    assert "field 'image' is given twice" in problems["(document)"]


def test_loads_reports_too_deep_nesting_not_a_traceback():
    assert "nested too deeply" in raw_problems("[" * 100_000)["(document)"]


def test_loads_reports_an_overlong_number_not_a_traceback():
    doc = '{"image": "a", "resources": {"cpu": ' + "9" * 5000 + ', "memory": "8m"}}'
    assert "(document)" in raw_problems(doc)


@pytest.mark.parametrize("image", ["JOBQ/BusyBox:latest", "a:b:c@@", "x" * 300, "has space"])
def test_loads_rejects_an_image_docker_cannot_name(image):
    assert list(problems_of(minimal(image=image))) == ["image"]


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:1.36",
        "library/busybox",
        "registry.local:5000/team/app:v1.2-rc",
        "jobq/busybox:latest",
        "app@sha256:" + "a" * 64,
    ],
)
def test_loads_accepts_docker_image_references(image):
    assert loads(json.dumps(minimal(image=image))).image == image


def test_loads_rejects_arguments_beyond_what_linux_can_start():
    problems = problems_of(minimal(cmd=["echo", "x" * (1024 * 1024)]))
    assert "the limit is 1048576" in problems["cmd"]


def test_error_messages_quote_long_values_briefly():
    problems = problems_of(minimal(name="n" * 300))
    assert len(problems["name"]) < 200


def test_decode_refuses_a_newer_format_version():
    body = json.dumps({**minimal(), "version": 2}).encode()
    with pytest.raises(InvalidJob) as info:
        decode(body)
    assert "upgrade the worker" in str(info.value)


def test_decode_refuses_nan_submit_time():
    body = json.dumps({**minimal(), "submitted_at": float("nan")}).encode()
    with pytest.raises(InvalidJob):
        decode(body)


# expected_runtime: a placement hint, seconds on the wire


def test_loads_expected_runtime_with_a_unit_and_sends_it_as_seconds():
    job = loads(text(minimal(expected_runtime="1.5h")))
    assert job.expected_runtime == 5400.0
    assert job.to_wire()["expected_runtime"] == 5400.0
    assert decode(job.encode()).expected_runtime == 5400.0


def test_loads_without_expected_runtime_leaves_it_out_of_the_wire():
    job = loads(text(minimal()))
    assert job.expected_runtime is None
    assert "expected_runtime" not in job.to_wire()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "a duration such as"),
        (0, "more than 0"),
        ("400d", "more than a year"),
        (10**400, "finite"),  # too big for a float: a message, not a traceback
        ("3y", "unknown unit"),
    ],
)
def test_loads_rejects_a_bad_expected_runtime_naming_the_field(value, message):
    problems = problems_of(minimal(expected_runtime=value))
    assert list(problems) == ["expected_runtime"]
    assert message in problems["expected_runtime"]


def test_a_typo_of_expected_runtime_suggests_it():
    problems = problems_of(minimal(expected_run_time="2h"))
    assert "did you mean 'expected_runtime'?" in problems["expected_run_time"]
