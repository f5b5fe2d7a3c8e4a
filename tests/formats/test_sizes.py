"""File sizes for the team: the unit chosen once for both sites, and the English the offline
tools, the staff pages and the audit log write."""

from __future__ import annotations

import pytest

from portal.formats import sizes

# The English the team reads, 1 kB = 1,000 bytes, with one decimal; the unit follows the rounding.
KNOWN = [
    (0, "0 bytes", "0 bytes"),
    (1, "1 byte", "1 byte"),
    (999, "999 bytes", "999 bytes"),
    (1000, "1.0 kB", "1.0 kB (1,000 bytes)"),
    (1499, "1.5 kB", "1.5 kB (1,499 bytes)"),
    (1500, "1.5 kB", "1.5 kB (1,500 bytes)"),
    (999_999, "1.0 MB", "1.0 MB (999,999 bytes)"),
    (999_949, "999.9 kB", "999.9 kB (999,949 bytes)"),
    (10**6, "1.0 MB", "1.0 MB (1,000,000 bytes)"),
    (1_234_567, "1.2 MB", "1.2 MB (1,234,567 bytes)"),
    (10**9, "1.0 GB", "1.0 GB (1,000,000,000 bytes)"),
    (5 * 10**12, "5.0 TB", "5.0 TB (5,000,000,000,000 bytes)"),
    (10**15, "1000.0 TB", "1000.0 TB (1,000,000,000,000,000 bytes)"),
]


@pytest.mark.parametrize(("size", "short", "exact"), KNOWN)
def test_sizes_read_as_they_always_have(size: int, short: str, exact: str) -> None:
    assert sizes.human_size(size) == short
    assert sizes.human_size(size, exact=True) == exact


@pytest.mark.parametrize(
    ("size", "unit"),
    [
        (0, "digital-byte"),
        (999, "digital-byte"),
        (1000, "digital-kilobyte"),
        (999_999, "digital-kilobyte"),
        (10**6, "digital-megabyte"),
        (10**9, "digital-gigabyte"),
        (10**12, "digital-terabyte"),
        (10**18, "digital-terabyte"),
    ],
)
def test_the_unit_is_the_first_where_the_size_is_below_a_thousand(size: int, unit: str) -> None:
    assert sizes.scaled(size)[1] == unit


def test_a_largest_unit_stops_the_climb() -> None:
    assert sizes.scaled(5 * 10**12, "digital-gigabyte") == (5000.0, "digital-gigabyte")
    assert sizes.scaled(1500, "digital-byte") == (1500.0, "digital-byte")


@pytest.mark.parametrize(
    "size", [0, 1, 999, 1000, 1_999_999, 10**9 - 1, 123_456_789_012, 10**15 - 1, 2**53 - 1]
)
def test_the_whole_part_is_the_exact_count_of_whole_units(size: int) -> None:
    value, unit = sizes.scaled(size, "digital-gigabyte")
    assert int(value) == size // 1000 ** sizes.UNITS.index(unit)


def test_every_unit_above_bytes_has_an_english_symbol() -> None:
    assert set(sizes.SYMBOLS) == set(sizes.UNITS[1:])
