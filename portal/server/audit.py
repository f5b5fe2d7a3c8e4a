"""The audit log of staff actions: who did what, on which day, to how many submissions.

It never holds submitter data, and not even the ids of cases or submissions: those would
outlive the submissions they name once retention deletes them, and keep on the server a trace
that a case existed. Counts and sizes are enough to answer "who took or deleted what, when".
A name typed at a failed sign-in is kept only when it is an existing account's: a mistyped
name may be a passphrase typed in the wrong field.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.formats import sizes
from portal.server.models import AuditEvent
from portal.server.services import today

MAX_DETAIL = 500
COMMAND_LINE = "(command line)"
UNKNOWN_NAME = "(unknown name)"

# action -> how the staff site names it
ACTIONS: dict[str, str] = {
    "login": "Signed in",
    "login-failed": "Sign-in refused",
    "login-locked": "Sign-in refused: account locked",
    "logout": "Signed out",
    "export": "Downloaded a bundle",
    "export-interrupted": "Bundle download interrupted (nothing marked exported)",
    "delete": "Deleted submissions",
    "reply": "Uploaded a reply",
    "reply-refused": "Reply file refused",
    "account-added": "Account added",
    "account-removed": "Account removed",
    "account-reset": "Account reset (new passphrase and code)",
    "account-unlocked": "Account unlocked",
}


def record(session: Session, staff_name: str, action: str, detail: str = "") -> AuditEvent:
    """Add an event for today (the caller commits it with the action it records)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    event = AuditEvent(
        day=today(), staff_name=staff_name[:64], action=action, detail=detail[:MAX_DETAIL]
    )
    session.add(event)
    return event


def recent(session: Session, limit: int, offset: int = 0) -> list[AuditEvent]:
    """Events, newest first."""
    return list(
        session.scalars(
            select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
        )
    )


def count(session: Session) -> int:
    """How many events the log holds."""
    return int(session.scalar(select(func.count(AuditEvent.id))) or 0)


def submissions(n: int, size_bytes: int | None = None) -> str:
    """A detail such as "3 submissions, 1.2 MiB"."""
    text = f"{n} submission" + ("" if n == 1 else "s")
    if size_bytes is not None:
        text += f", {sizes.human_size(size_bytes)}"
    return text
