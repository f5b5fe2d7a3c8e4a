"""The one clock the portal reads: the day, in UTC.

No exact time is ever kept: bundles, the database, the register and file names hold the day
only, and the times of stored files are set to the day's midnight, so that what is kept cannot
place a person at a moment.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time


def today() -> date:
    """Today in UTC."""
    return datetime.now(UTC).date()


def today_iso() -> str:
    """Today in UTC as YYYY-MM-DD, as bundles and the register write it."""
    return today().isoformat()


def midnight(day: date) -> float:
    """The first second of a day in UTC, as a timestamp: the only time a stored file keeps."""
    return datetime.combine(day, time(0, 0), tzinfo=UTC).timestamp()
