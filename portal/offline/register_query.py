"""Reading the register: cases in triage order with filters, and everything about one case."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

# Urgent first, then cases whose latest follow-up is newer than the latest reply (newest such
# follow-up first), then everything else by latest activity.
ORDER = (
    "ORDER BY urgent DESC, (last_follow_up > last_reply) DESC, "
    "CASE WHEN last_follow_up > last_reply THEN last_follow_up ELSE '' END DESC, "
    "last_day DESC, id"
)
COLUMNS = (
    "id, status, assigned, paragraph, consent_to_confirm, has_report, first_day, last_day, "
    "last_follow_up, last_reply, urgent, country, state, publish, facts"
)


@dataclass
class CaseRow:
    """One case's line in the register."""

    id: str
    status: str
    assigned: str
    paragraph: str
    consent_to_confirm: bool
    has_report: bool
    first_day: str
    last_day: str
    last_follow_up: str
    last_reply: str
    urgent: bool
    country: str
    state: str
    publish: str
    facts: dict[str, Any]

    @property
    def awaiting(self) -> bool:
        """A follow-up newer than the team's latest reply."""
        return self.last_follow_up > self.last_reply

    @property
    def consent(self) -> dict[str, str]:
        """The consent that applies, question by question."""
        return dict(self.facts.get("consent") or {})


@dataclass
class Filters:
    """What `portal cases list` narrows the register to; None or empty means any."""

    status: str | None = None
    urgent: bool = False
    awaiting: bool = False
    country: str | None = None
    state: str | None = None
    act: str | None = None
    body: str | None = None
    received_from: str | None = None
    received_to: str | None = None


DAY = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


class DayError(ValueError):
    """A bound of the received dates that is neither a day nor a month."""


def day_bound(value: str | None, last: bool) -> str | None:
    """A filter's bound as a day: a day (YYYY-MM-DD) as it is, a month (YYYY-MM) as its first
    day, or with `last` as its 31st, which no day of the month passes (days compare as text)."""
    if value is None:
        return None
    if not DAY.match(value):
        raise DayError(f"{value!r} is not a date (YYYY-MM-DD) or a month (YYYY-MM).")
    if len(value) == 7:
        return f"{value}-31" if last else f"{value}-01"
    return value


@dataclass
class Submission:
    """One opened submission of a case."""

    id: str
    kind: str
    day: str
    folder: str
    record: dict[str, Any]


@dataclass
class FileRow:
    """One attachment, with what it claims to be and what its first bytes show."""

    submission: str
    path: str
    name: str
    type: str
    size: int
    claimed: str
    found: str


@dataclass
class Detail:
    """Everything the register holds about one case."""

    case: CaseRow
    submissions: list[Submission] = field(default_factory=list)
    files: list[FileRow] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    changes: list[tuple[str, str]] = field(default_factory=list)
    consent: list[tuple[str, str, str, str, str | None, bool]] = field(default_factory=list)


def _row(values: tuple[Any, ...]) -> CaseRow:
    (case, status, assigned, paragraph, to_confirm, has_report, first_day, last_day,
     last_follow_up, last_reply, urgent, country, state, publish, facts) = values  # fmt: skip
    return CaseRow(
        case, status, assigned, paragraph, bool(to_confirm), bool(has_report), first_day,
        last_day, last_follow_up, last_reply, bool(urgent), country, state, publish,
        json.loads(facts),
    )  # fmt: skip


def cases(conn: sqlite3.Connection, filters: Filters | None = None) -> list[CaseRow]:
    """Cases in triage order, narrowed by `filters`."""
    f = filters or Filters()
    where, args = ["1"], []
    for column, value in (("status", f.status), ("country", f.country), ("state", f.state)):
        if value:
            where.append(f"{column} = ? COLLATE NOCASE")
            args.append(value)
    for name, value in (("act", f.act), ("body", f.body)):
        if value:
            where.append("id IN (SELECT case_id FROM case_values WHERE field = ? AND value = ?)")
            args += [name, value]
    if f.urgent:
        where.append("urgent = 1")
    if f.awaiting:
        where.append("last_follow_up > last_reply")
    if f.received_from:
        where.append("first_day >= ?")
        args.append(f.received_from)
    if f.received_to:
        where.append("first_day <= ?")
        args.append(f.received_to)
    # Only constant fragments are joined here; every value goes in as a parameter.
    query = f"SELECT {COLUMNS} FROM cases WHERE {' AND '.join(where)} {ORDER}"  # noqa: S608
    return [_row(values) for values in conn.execute(query, args)]


def detail(conn: sqlite3.Connection, case: str) -> Detail | None:
    """Everything about one case, or None if the register does not hold it."""
    query = f"SELECT {COLUMNS} FROM cases WHERE id = ?"  # noqa: S608 (constant columns)
    found = conn.execute(query, (case,)).fetchone()
    if found is None:
        return None
    result = Detail(_row(found))
    result.submissions = [
        Submission(sid, kind, day, folder, json.loads(record))
        for sid, kind, day, folder, record in conn.execute(
            "SELECT id, kind, received_day, folder, record FROM submissions WHERE case_id = ? "
            "ORDER BY received_day, seq",
            (case,),
        )
    ]
    result.files = [
        FileRow(*values)
        for values in conn.execute(
            "SELECT f.submission_id, f.path, f.name, f.type, f.size, f.claimed, f.found "
            "FROM files f JOIN submissions s ON s.id = f.submission_id WHERE s.case_id = ? "
            "ORDER BY s.received_day, s.seq, f.position",
            (case,),
        )
    ]
    result.notes = list(
        conn.execute("SELECT day, text FROM notes WHERE case_id = ? ORDER BY day, id", (case,))
    )
    result.changes = list(
        conn.execute("SELECT day, what FROM changes WHERE case_id = ? ORDER BY day, id", (case,))
    )
    result.consent = [
        (sid, day, name, value, previous, bool(ok))
        for sid, day, name, value, previous, ok in conn.execute(
            "SELECT submission_id, day, field, value, previous, confirmed FROM consent "
            "WHERE case_id = ? ORDER BY rowid",
            (case,),
        )
    ]
    return result


def all_notes(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str]]]:
    """Every case's notes, oldest first."""
    notes: dict[str, list[tuple[str, str]]] = {}
    for case, day, text in conn.execute("SELECT case_id, day, text FROM notes ORDER BY day, id"):
        notes.setdefault(case, []).append((day, text))
    return notes


def all_submissions(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str, str]]]:
    """Every case's submissions as (kind, day, folder), in date order."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for case, kind, day, folder in conn.execute(
        "SELECT case_id, kind, received_day, folder FROM submissions ORDER BY received_day, seq"
    ):
        found.setdefault(case, []).append((kind, day, folder))
    return found


def all_files(conn: sqlite3.Connection) -> dict[str, list[FileRow]]:
    """Every case's attachments."""
    found: dict[str, list[FileRow]] = {}
    for case, *values in conn.execute(
        "SELECT s.case_id, f.submission_id, f.path, f.name, f.type, f.size, f.claimed, f.found "
        "FROM files f JOIN submissions s ON s.id = f.submission_id "
        "ORDER BY s.received_day, s.seq, f.position"
    ):
        found.setdefault(case, []).append(FileRow(*values))
    return found
