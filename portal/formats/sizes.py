"""File sizes in English, for the team: report.txt, the staff pages and the audit log.

Decimal units, as people and file managers read them (1 kB = 1,000 bytes). The public site
shows sizes in the page's language with Babel's units instead (`portal.web.presenting`), which
the offline machine, with no Babel installed, cannot do.
"""

from __future__ import annotations

UNITS = ("kB", "MB", "GB", "TB")


def human_size(size: int, *, exact: bool = False) -> str:
    """A size such as "1.5 MB"; with `exact`, the byte count follows: "1.5 MB (1,500,000 bytes)"."""
    value, unit = float(size), "bytes"
    for candidate in UNITS:
        if value < 1000:
            break
        value, unit = value / 1000, candidate
    exact_text = f"{size:,} bytes"
    if unit == "bytes":
        return exact_text
    short = f"{value:.1f} {unit}"
    return f"{short} ({exact_text})" if exact else short
