"""client/units.py: parsing and formatting CPU and memory, and Resources arithmetic."""

from __future__ import annotations

import math

import pytest

from jobq.client.units import (
    NANO,
    ZERO,
    Resources,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_duration,
    parse_memory,
)

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4


# parse_memory: accepted spellings


def test_parse_memory_int_is_bytes():
    assert parse_memory(536870912) == 536870912
    assert parse_memory(1) == 1


def test_parse_memory_plain_number_string_is_bytes():
    assert parse_memory("512") == 512


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1b", 1),
        ("1k", KIB),
        ("1kb", KIB),
        ("1ki", KIB),
        ("1kib", KIB),
        ("256m", 256 * MIB),
        ("256mb", 256 * MIB),
        ("256mi", 256 * MIB),
        ("256mib", 256 * MIB),
        ("2g", 2 * GIB),
        ("2gb", 2 * GIB),
        ("2gi", 2 * GIB),
        ("2gib", 2 * GIB),
        ("1t", TIB),
        ("1tb", TIB),
        ("1ti", TIB),
        ("1tib", TIB),
    ],
)
def test_parse_memory_units_are_binary_multiples(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["256M", "256MB", "256Mi", "256MiB", "256mIb", "256Mb"])
def test_parse_memory_units_are_case_insensitive(text):
    assert parse_memory(text) == 256 * MIB


def test_parse_memory_kb_means_1024_not_1000():
    # Docker reads --memory 1kb as 1024 bytes; jobq must agree.
    assert parse_memory("1kb") == 1024
    assert parse_memory("1mb") == 1048576


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5g", 1610612736),
        ("1.5GiB", 1610612736),
        ("0.5m", 524288),
        ("2.25k", 2304),
        ("1.0t", TIB),
    ],
)
def test_parse_memory_decimals(text, expected):
    assert parse_memory(text) == expected


def test_parse_memory_decimal_fraction_of_a_byte_is_truncated():
    assert parse_memory("0.1k") == 102  # 102.4 bytes


@pytest.mark.parametrize("text", [" 256m", "256m ", "  256m\t", "256 m", "\n256m\n", "256  MiB"])
def test_parse_memory_ignores_surrounding_and_inner_whitespace(text):
    assert parse_memory(text) == 256 * MIB


# parse_memory: rejections


@pytest.mark.parametrize("value", [True, False])
def test_parse_memory_rejects_bool(value):
    with pytest.raises(ValueError, match="must be a size"):
        parse_memory(value)


@pytest.mark.parametrize("value", [1.5, 536870912.0, float("nan"), float("inf")])
def test_parse_memory_rejects_float_that_is_not_a_string(value):
    with pytest.raises(ValueError, match="must be a size"):
        parse_memory(value)


@pytest.mark.parametrize("value", [None, [], ["256m"], {"memory": "256m"}, b"256m"])
def test_parse_memory_rejects_non_string_non_int(value):
    with pytest.raises(ValueError, match="must be a size"):
        parse_memory(value)


@pytest.mark.parametrize("value", [0, -1, -536870912])
def test_parse_memory_rejects_zero_and_negative_int(value):
    with pytest.raises(ValueError, match="greater than 0"):
        parse_memory(value)


@pytest.mark.parametrize("text", ["0", "0m", "0.0g", "0.0001k"])
def test_parse_memory_rejects_zero_string(text):
    with pytest.raises(ValueError, match="greater than 0"):
        parse_memory(text)


@pytest.mark.parametrize(
    "text",
    ["-1", "-256m", "abc", "12x", "12mm", "12 gigabytes", "", "   ", "m", ".5g", "1e3", "1,5g"],
)
def test_parse_memory_rejects_unreadable_string(text):
    with pytest.raises(ValueError, match="cannot read"):
        parse_memory(text)


def test_parse_memory_error_quotes_the_input():
    with pytest.raises(ValueError) as info:
        parse_memory("12x")
    assert "'12x'" in str(info.value)


def test_parse_memory_rejects_overflowing_size_with_value_error():
    with pytest.raises(ValueError):
        parse_memory("9" * 400 + "g")


# parse_cpu


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, NANO),
        (4, 4 * NANO),
        (0.5, 500_000_000),
        (0.1, 100_000_000),
        (0.01, 10_000_000),
        (1.25, 1_250_000_000),
        (2.0, 2 * NANO),
        (1e-9, 1),
    ],
)
def test_parse_cpu_returns_nano_cpus(value, expected):
    assert parse_cpu(value) == expected
    assert isinstance(parse_cpu(value), int)


def test_parse_cpu_fractions_are_exact_in_nano_cpus():
    # 0.1 + 0.2 != 0.3 in floats, but the nano-CPU sums are exact.
    assert 0.1 + 0.2 != 0.3
    assert parse_cpu(0.1) + parse_cpu(0.2) == parse_cpu(0.3)


@pytest.mark.parametrize("value", [True, False])
def test_parse_cpu_rejects_bool(value):
    with pytest.raises(ValueError, match="must be a number of CPUs"):
        parse_cpu(value)


@pytest.mark.parametrize("value", ["1", "0.5", "two", "", None, [1], {"cpu": 1}])
def test_parse_cpu_rejects_strings_and_other_types(value):
    with pytest.raises(ValueError, match="must be a number of CPUs"):
        parse_cpu(value)


@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, -0.0])
def test_parse_cpu_rejects_zero_and_negative(value):
    with pytest.raises(ValueError, match="greater than 0"):
        parse_cpu(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_parse_cpu_rejects_nan_and_inf(value):
    with pytest.raises(ValueError, match="greater than 0"):
        parse_cpu(value)


def test_parse_cpu_rejects_huge_float_with_value_error():
    with pytest.raises(ValueError):
        parse_cpu(1e300)


def test_parse_cpu_rejects_huge_int_with_value_error():
    with pytest.raises(ValueError):
        parse_cpu(10**400)


def test_parse_cpu_rejects_positive_value_that_rounds_to_zero():
    with pytest.raises(ValueError):
        parse_cpu(1e-10)


# format_memory / format_cpu


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0B"),
        (1, "1B"),
        (1023, "1023B"),
        (1024, "1KiB"),
        (1536, "1.5KiB"),
        (256 * MIB, "256MiB"),
        (268435456, "256MiB"),
        (1610612736, "1.5GiB"),
        (GIB, "1GiB"),
        (2 * TIB, "2TiB"),
    ],
)
def test_format_memory(size, expected):
    assert format_memory(size) == expected


@pytest.mark.parametrize("text", ["256m", "1.5g", "1k", "2t", "100m", "6m"])
def test_format_memory_output_parses_back_to_the_same_size(text):
    size = parse_memory(text)
    assert parse_memory(format_memory(size)) == size


@pytest.mark.parametrize(
    ("nano_cpus", "expected"), [(NANO, "1"), (500_000_000, "0.5"), (2 * NANO, "2"), (10**7, "0.01")]
)
def test_format_cpu(nano_cpus, expected):
    assert format_cpu(nano_cpus) == expected


# Resources


def test_resources_add():
    assert Resources(NANO, 100) + Resources(2 * NANO, 50) == Resources(3 * NANO, 150)


def test_resources_sub():
    assert Resources(3 * NANO, 150) - Resources(NANO, 100) == Resources(2 * NANO, 50)


def test_resources_sub_can_go_negative():
    assert Resources(NANO, 10) - Resources(2 * NANO, 20) == Resources(-NANO, -10)


def test_resources_zero_is_additive_identity():
    r = Resources(123, 456)
    assert r + ZERO == r
    assert r - ZERO == r
    assert Resources(0, 0) == ZERO


def test_resources_cpu_property_is_float_cpus():
    assert Resources(1_500_000_000, 1).cpu == 1.5


def test_resources_fits_in_equal():
    assert Resources(NANO, GIB).fits_in(Resources(NANO, GIB))


def test_resources_fits_in_smaller():
    assert Resources(NANO // 2, MIB).fits_in(Resources(NANO, GIB))


def test_resources_fits_in_fails_when_cpu_too_big():
    assert not Resources(NANO + 1, MIB).fits_in(Resources(NANO, GIB))


def test_resources_fits_in_fails_when_memory_too_big():
    assert not Resources(1, GIB + 1).fits_in(Resources(NANO, GIB))


def test_resources_fits_in_is_per_dimension_not_ordering():
    # Ordering compares as tuples; fits_in must check both dimensions.
    small_cpu_big_memory = Resources(1, 10 * GIB)
    capacity = Resources(NANO, GIB)
    assert small_cpu_big_memory < capacity
    assert not small_cpu_big_memory.fits_in(capacity)


def test_resources_fits_in_nothing_fits_in_negative():
    assert not Resources(0, 0).fits_in(Resources(-1, GIB))


def test_resources_str():
    assert str(Resources(500_000_000, 256 * MIB)) == "cpu=0.5 memory=256MiB"


def test_resources_are_frozen():
    r = Resources(1, 1)
    with pytest.raises(AttributeError):
        r.memory = 2  # type: ignore[misc]


# parse_duration: expected_runtime's spellings


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("1.5h", 5400.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        (" 2h ", 7200.0),
        (10**3, 1000.0),
    ],
)
def test_parse_duration_reads_seconds_and_units(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "more than 0"),
        (-5, "more than 0"),
        ("0h", "more than 0"),
        (math.inf, "finite"),
        (math.nan, "finite"),
        ("2y", "unknown unit 'y'"),
        ("2M", "in '2M'; use s, m"),
        ("2hours", "unknown unit 'hours'"),
        (10**400, "finite"),
        ("soon", "a duration such as"),
        ("", "a duration such as"),
        ("1h30m", "a duration such as"),
        (True, "a duration such as"),
        (None, "a duration such as"),
    ],
)
def test_parse_duration_rejects_what_is_not_a_positive_duration(value, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


def test_parse_duration_takes_zero_only_when_allowed():
    assert parse_duration("0s", allow_zero=True) == 0
    assert parse_duration(0, allow_zero=True) == 0
    with pytest.raises(ValueError, match="0 seconds or more"):
        parse_duration(-1, allow_zero=True)
