"""The team's own fields of a case in the register: status, assignment, paragraph, notes.

Each command is one transaction; changes of a field are also recorded, dated, in the case's
history, which `portal cases show` prints.
"""

from __future__ import annotations

import sqlite3

from portal.formats import days
from portal.offline import register

NOTE_MAX = 20_000
FIELD_MAX = 200
SET_COLUMN = {
    name: f"UPDATE cases SET {name} = ? WHERE id = ?"  # noqa: S608 (constant names)
    for name in ("status", "assigned", "paragraph")
}


def require_case(conn: sqlite3.Connection, case: str) -> None:
    """Raise a clear error for a case the register does not hold."""
    if conn.execute("SELECT 1 FROM cases WHERE id = ?", (case,)).fetchone() is None:
        raise register.RegisterError(
            f"The register holds no case {case!r} (see `portal cases list`)."
        )


def update(
    conn: sqlite3.Connection,
    case: str,
    status: str | None = None,
    assigned: str | None = None,
    paragraph: str | None = None,
    confirm_consent: bool = False,
) -> list[str]:
    """Change the team's fields of a case in one transaction; return what changed, in words."""
    if status is not None and status not in register.STATUSES:
        raise register.RegisterError(f"The status must be one of {', '.join(register.STATUSES)}.")
    for value in (assigned, paragraph):
        if value is not None and (len(value) > FIELD_MAX or not value.isprintable()):
            raise register.RegisterError(f"Keep it to one line of at most {FIELD_MAX} characters.")
    done: list[str] = []
    with register.transaction(conn):
        require_case(conn, case)
        row = conn.execute(
            "SELECT status, assigned, paragraph FROM cases WHERE id = ?", (case,)
        ).fetchone()
        for column, old, new in zip(
            ("status", "assigned", "paragraph"), row, (status, assigned, paragraph), strict=True
        ):
            if new is not None and new != old:
                conn.execute(SET_COLUMN[column], (new, case))
                done.append(f"{column}: {old or '(none)'} -> {new or '(none)'}")
        if confirm_consent:
            changed = conn.execute(
                "UPDATE consent SET confirmed = 1 WHERE case_id = ? AND confirmed = 0", (case,)
            ).rowcount
            conn.execute("UPDATE cases SET consent_to_confirm = 0 WHERE id = ?", (case,))
            if changed:
                done.append("consent change confirmed")
        conn.executemany(
            "INSERT INTO changes (case_id, day, what) VALUES (?, ?, ?)",
            [(case, days.today_iso(), what) for what in done],
        )
    return done


def add_note(conn: sqlite3.Connection, case: str, text: str) -> None:
    """Add a dated note to a case."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise register.RegisterError("The note is empty; nothing was added.")
    if len(text) > NOTE_MAX:
        raise register.RegisterError(
            f"The note is {len(text)} characters; the limit is {NOTE_MAX}."
        )
    with register.transaction(conn):
        require_case(conn, case)
        conn.execute(
            "INSERT INTO notes (case_id, day, text) VALUES (?, ?, ?)",
            (case, days.today_iso(), text),
        )
