"""Export: sealed submissions as a bundle v1 stream, marked exported only once fully sent.

Used by `portal export` and by the staff site's download. The bundle is produced as a stream
of tar blocks from the blob store, so its size never matters to memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.formats import bundle, crypto
from portal.server.models import Submission
from portal.server.services import Services, today

# Submitter copies of replies stay on the server for the follow-up page; the team gets its own.
EXPORTABLE = (Submission.recipient.is_(None)) | (Submission.recipient == "team")


def pending(session: Session) -> list[Submission]:
    """Submissions not yet exported, in the order they arrived."""
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.exported_day.is_(None), EXPORTABLE)
            .order_by(Submission.received_day, Submission.case_id, Submission.seq)
        )
    )


def all_exportable(session: Session) -> list[Submission]:
    """Every submission the team may take, exported or not."""
    return list(
        session.scalars(
            select(Submission)
            .where(EXPORTABLE)
            .order_by(Submission.received_day, Submission.case_id, Submission.seq)
        )
    )


def entry(submission: Submission) -> bundle.Entry:
    """The bundle index entry of a submission."""
    reply_key = None
    if submission.kind != "reply":
        reply_key = crypto.b64encode(submission.case.reply_public_key)
    return bundle.Entry(
        submission.id,
        submission.case_id,
        submission.kind,
        submission.received_day.isoformat(),
        submission.file_count,
        submission.recipient,
        reply_key,
    )


def stream(services: Services, submissions: Sequence[Submission]) -> Iterator[bytes]:
    """The bundle of `submissions`, as tar blocks."""
    entries = [entry(s) for s in submissions]
    members: list[bundle.Member] = []
    for e in entries:
        members += bundle.members_of(e, services.store.path(e.id))
    return bundle.stream(entries, members)


def mark_exported(session: Session, ids: Sequence[str], day: date | None = None) -> None:
    """Record that these submissions left the server (on this day)."""
    day = day or today()
    for submission in session.scalars(select(Submission).where(Submission.id.in_(list(ids)))):
        submission.exported_day = day
    session.commit()


__all__ = ["all_exportable", "entry", "mark_exported", "pending", "stream"]
