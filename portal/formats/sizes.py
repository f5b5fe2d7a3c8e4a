"""File sizes: the unit a size is written in, and the size in English for the team.

Decimal units, as people and file managers read them (1 kB = 1,000 bytes). `scaled` chooses the
unit for both sides: `human_size` writes it in English for report.txt, the staff pages and the
audit log, and the public site writes it in the page's language with Babel's units
(`portal.web.presenting.filesize`), which the offline machine, with no Babel installed, cannot do.
"""

from __future__ import annotations

# The units of a file size by their CLDR ids (the names Babel's `format_unit` takes), from bytes
# up, each 1,000 times the one before.
UNITS = (
    "digital-byte",
    "digital-kilobyte",
    "digital-megabyte",
    "digital-gigabyte",
    "digital-terabyte",
)
# Their English symbols, for the team's side.
SYMBOLS = {
    "digital-kilobyte": "kB",
    "digital-megabyte": "MB",
    "digital-gigabyte": "GB",
    "digital-terabyte": "TB",
}


def scaled(size: int, largest: str = UNITS[-1]) -> tuple[float, str]:
    """The size in the first unit where it is below 1,000 (or in `largest`), and that unit:
    (1.5, "digital-kilobyte") for 1,500 bytes.

    The value is divided by 1,000 once a unit, in floating point; for any size below 2**53 bytes
    (9 PB) its whole part is the exact count of whole units.
    """
    value, unit = float(size), UNITS[0]
    for candidate in UNITS[1 : UNITS.index(largest) + 1]:
        if value < 1000:
            break
        value, unit = value / 1000, candidate
    return value, unit


def human_size(size: int, *, exact: bool = False) -> str:
    """A size such as "1.5 MB"; with `exact`, the byte count follows: "1.5 MB (1,500,000 bytes)"."""
    value, unit = scaled(size)
    exact_text = "1 byte" if size == 1 else f"{size:,} bytes"
    if unit == UNITS[0]:
        return exact_text
    if round(value, 1) >= 1000 and unit != UNITS[-1]:
        # 999,999 bytes reads "1.0 MB", not "1000.0 kB": the unit follows the rounding.
        value, unit = value / 1000, UNITS[UNITS.index(unit) + 1]
    short = f"{value:.1f} {SYMBOLS[unit]}"
    return f"{short} ({exact_text})" if exact else short
